//! The balancing methods, one file each, behind one interface ([`Method`]). A method acts on a
//! training step at four points, each a default that does nothing:
//!
//! 1. [`Method::features`]: the pooled audio and visual features before fusion (Modality-Drop,
//!    OPM; [`FeatureStep`] also gives the labels, the fusion head and the raw inputs);
//! 2. [`Method::loss`]: the loss minimised, from the fused and uni-modal logits and the features
//!    (Gradient-Blending, AGM, PMR, UMT);
//! 3. [`Method::gradients`]: the gradients between backward and the optimiser's step (OGM, GE,
//!    MLA's projection);
//! 4. between epochs: [`Method::estimate_before`] / [`Method::estimated`], what it estimates on the
//!    validation hold-out (Gradient-Blending's per-head weights), and
//!    [`Method::sample_before`] / [`Method::sampled`], features of a sample of the training set
//!    (PMR's prototypes), with [`Method::state`] so a resumed run continues with what it had.
//!
//! Two methods change the step itself ([`Method::step_kind`]): MMPareto needs the multimodal and
//! the uni-modal gradients apart ([`StepKind::Pareto`], two backward passes and
//! [`Method::combine`]), MLA steps each modality alone through a shared head
//! ([`StepKind::Alternating`]).
//!
//! What a method logs: its step's applied coefficients (`steps.jsonl`, through [`Applied`]) and
//! one line per epoch of `method.jsonl` ([`Method::epoch_log`]).
//!
//! Adding a method is adding a file here and its line in `registry.rs` (with, if it has settings,
//! a field of [`MethodSettings`]).

use burn::module::ParamId;
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use serde::{Deserialize, Serialize};

pub use crate::balance::Applied;
use crate::balance::Coefficients;
use crate::model::Logits;

pub mod adaptive_alpha;
pub mod agm;
pub mod agm_bb;
pub mod gblend;
pub mod ge_only;
pub mod mla;
pub mod mmpareto;
pub mod modality_drop;
pub mod none;
pub mod ogm;
pub mod ogm_ge;
pub mod opm;
pub mod params;
pub mod pmr;
mod registry;
pub mod umt;

pub use registry::{build, Balance, MethodSettings, RENAMED_KEYS};

impl Balance {
    /// The CLI's name of the method (`ogm-ge`, `modality-drop-audio`, ...).
    pub fn name(self) -> String {
        clap::ValueEnum::to_possible_value(&self).expect("no skipped variants").get_name().to_owned()
    }

    /// Whether the method only edits gradients (what the AVE localizer supports).
    pub fn gradient_only(self) -> bool {
        self.needs().gradients_only
    }

    /// Whether the method needs the validation hold-out between epochs.
    pub fn needs_holdout(self) -> bool {
        self.needs().holdout
    }

    /// The fusion the method needs, if it needs one.
    pub fn needs_fusion(self) -> Option<crate::model::FusionKind> {
        self.needs().fusion
    }
}

/// What a method needs of a run, declared in its file and listed in the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Needs {
    /// The fusion head its rule is defined on.
    pub fusion: Option<crate::model::FusionKind>,
    /// The validation hold-out between epochs (what it estimates there).
    pub holdout: bool,
    /// It acts on gradients and logits only, never on clip features (what per-segment fusion
    /// and the AVE localizer allow).
    pub gradients_only: bool,
}

impl Needs {
    pub const NOTHING: Needs = Needs { fusion: None, holdout: false, gradients_only: false };
    pub const GRADIENTS_ONLY: Needs = Needs { gradients_only: true, ..Needs::NOTHING };
}

/// The defaults of a settings struct: its flags' `default_value_t`s, so each default is written
/// once, where its flag is.
pub fn flag_defaults<T: clap::Args + clap::FromArgMatches>() -> T {
    let command = T::augment_args(clap::Command::new("defaults"));
    T::from_arg_matches(&command.get_matches_from(["defaults"])).expect("every setting's flag has a default")
}

/// How a method's training step runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepKind {
    /// One forward, the method's loss, one backward, the method's gradient edit, one update.
    Joint,
    /// The multimodal loss and the uni-modal losses backward apart (two forwards of the same
    /// batch, the second without touching batch-norm running statistics), then
    /// [`Method::combine`] makes the step's gradients.
    Pareto,
    /// Per batch, one update per modality: its encoder and the shared head on its own logits.
    Alternating,
}

/// The pooled features of a training step, before fusion, with what a method may need to act on
/// them.
pub struct FeatureStep<'a, B: Backend> {
    pub audio: Tensor<B, 2>,
    pub visual: Tensor<B, 2>,
    pub labels: &'a [i64],
    /// The model's fusion head on given features.
    pub head: &'a dyn Fn(Tensor<B, 2>, Tensor<B, 2>) -> Logits<B>,
    /// The step's raw inputs (spectrograms `[B, 1, F, T]`, frames `[B*T, 3, H, W]`).
    pub inputs: Option<(Tensor<B, 4>, Tensor<B, 4>)>,
}

/// What a method's loss is made of.
pub struct LossInput<'a, B: Backend> {
    pub logits: &'a Logits<B>,
    /// The logits the run trains without a method (the fused ones, or one modality's for a
    /// uni-modal run).
    pub trained: Tensor<B, 2>,
    /// The pooled features the head fused (after [`Method::features`]), when the task has them.
    pub features: Option<(Tensor<B, 2>, Tensor<B, 2>)>,
    pub labels: &'a [i64],
    pub targets: Tensor<B, 1, Int>,
}

/// A sample of the training set's pooled features (row-major `[n, dim]`) and labels.
#[derive(Debug, Clone, Default)]
pub struct SampledFeatures {
    pub dim: usize,
    pub classes: usize,
    pub audio: Vec<f32>,
    pub visual: Vec<f32>,
    pub labels: Vec<i64>,
}

/// What a method is built from: the run's rule alpha and seed, every method's settings, UMT's
/// teachers.
#[derive(Debug, Clone)]
pub struct MethodParams {
    /// OGM's alpha.
    pub alpha: f64,
    /// The run's seed (Modality-Drop's and OPM's draws).
    pub seed: u64,
    pub settings: MethodSettings,
    /// UMT's teachers.
    pub teachers: Option<umt::Teachers>,
}

impl MethodParams {
    /// The given alpha and seed, every method at its default settings.
    pub fn new(alpha: f64, seed: u64) -> Self {
        Self { alpha, seed, settings: MethodSettings::default(), teachers: None }
    }
}

/// The context of one step's gradient edit.
#[derive(Clone, Copy)]
pub struct StepContext<'a> {
    pub epoch: usize,
    /// The step's index in its epoch and the epoch's number of steps (0 where unknown).
    pub batch: usize,
    pub batches: usize,
    /// Inside the modulation window (`--modulation-start ..= --modulation-end`).
    pub active: bool,
    /// This step's scores and the OGM rule's coefficients at the run's alpha.
    pub coeffs: &'a Coefficients,
    /// Conv-weight parameters of the audio and the visual encoder.
    pub audio_ids: &'a [ParamId],
    pub visual_ids: &'a [ParamId],
    /// Every parameter of the model by part, with its rank (MMPareto's combination).
    pub parts: &'a params::Parts,
    /// An alternating step's batch mean of its modality's pooled features.
    pub mean_feature: Option<&'a [f32]>,
}

/// The three heads' mean per-sample losses (validation or training), audio, visual, fused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct HeadLosses {
    pub audio: f64,
    pub visual: f64,
    pub fused: f64,
}

/// A head of the classifier (its logits: the fused, or one modality's share of the head).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Head {
    Audio,
    Visual,
    Fused,
}

impl Head {
    pub const ALL: [Head; 3] = [Head::Audio, Head::Visual, Head::Fused];

    pub fn logits<B: Backend>(self, l: &Logits<B>) -> Tensor<B, 2> {
        match self {
            Head::Audio => l.audio.clone(),
            Head::Visual => l.visual.clone(),
            Head::Fused => l.fused.clone(),
        }
    }

    pub fn of(self, h: &HeadLosses) -> f64 {
        match self {
            Head::Audio => h.audio,
            Head::Visual => h.visual,
            Head::Fused => h.fused,
        }
    }
}

/// How the copies of an estimate run train and what their losses are (Gradient-Blending's
/// `--gblend-estimate`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum EstimateRule {
    /// Each head's copy trains its own head at the run's current learning rate; per-sample mean
    /// losses; validation on the hold-out.
    #[default]
    Heads,
    /// BalanceBenchmark's: the fused logits with the other modality's input zeroed, a fresh
    /// optimiser at the base learning rate, sums of batch means, validation on the split the run
    /// selects on.
    Bb,
}

impl EstimateRule {
    /// Whether the copies validate on the hold-out, rather than on whichever split the run
    /// selects on.
    pub fn needs_holdout(self) -> bool {
        self == Self::Heads
    }
}

/// Estimate runs a method asks for before an epoch: a copy of the model per head, trained
/// `epochs` epochs as `rule` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EstimateRequest {
    pub epochs: usize,
    pub rule: EstimateRule,
}

/// One head's estimate run: its copy's losses after the first and after the last of its epochs
/// (per-sample means, or BalanceBenchmark's sums of batch means under [`EstimateRule::Bb`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HeadEstimate {
    pub head: Head,
    /// Training loss of the first epoch and of the last (running, as trained).
    pub train_first: f64,
    pub train_last: f64,
    /// Validation loss after the first epoch and after the last.
    pub val_first: f64,
    pub val_last: f64,
}

/// A balancing method. `B` is the autodiff backend of the run.
pub trait Method<B: AutodiffBackend> {
    /// Called before each epoch's training steps (and again on resume); `active`: the epoch is
    /// inside the modulation window.
    fn begin_epoch(&mut self, _epoch: usize, _active: bool) {}

    /// How the method's training step runs.
    fn step_kind(&self) -> StepKind {
        StepKind::Joint
    }

    /// The pooled features `[n, d]` a training step fuses.
    fn features(&mut self, step: FeatureStep<B>) -> (Tensor<B, 2>, Tensor<B, 2>) {
        (step.audio, step.visual)
    }

    /// The training loss, from the step's logits and features and the loss function.
    fn loss(&mut self, input: &LossInput<B>, ce: &dyn Fn(Tensor<B, 2>) -> Tensor<B, 1>) -> Tensor<B, 1> {
        ce(input.trained.clone())
    }

    /// Edits `grads` before the optimiser's step; returns what it applied.
    fn gradients(&mut self, _grads: &mut GradientsParams, _ctx: &StepContext) -> Applied {
        Applied::NOTHING
    }

    /// [`StepKind::Pareto`]: the step's gradients from those of the multimodal loss and of the
    /// uni-modal losses.
    fn combine(&mut self, multimodal: GradientsParams, _unimodal: GradientsParams, _ctx: &StepContext) -> (GradientsParams, Applied) {
        (multimodal, Applied::NOTHING)
    }

    /// Whether the method needs a sample of the training set's features before `epoch`.
    fn sample_before(&self, _epoch: usize) -> bool {
        false
    }

    /// That sample, taken with the model as it is before `epoch`.
    fn sampled(&mut self, _epoch: usize, _sample: &SampledFeatures) {}

    /// The estimate runs due before `epoch` starts (how many epochs each copy trains, and how),
    /// if the method re-estimates then.
    fn estimate_before(&self, _epoch: usize) -> Option<EstimateRequest> {
        None
    }

    /// The estimate runs' results for `epoch`.
    fn estimated(&mut self, _epoch: usize, _estimates: &[HeadEstimate]) {}

    /// The state a resumed run needs (what was estimated), and its restoration.
    fn state(&self) -> serde_json::Value {
        serde_json::Value::Null
    }
    fn restore(&mut self, _state: &serde_json::Value) -> anyhow::Result<()> {
        Ok(())
    }

    /// The epoch's line of `method.jsonl`, for a method with something to say.
    fn epoch_log(&self, _epoch: usize) -> Option<serde_json::Value> {
        None
    }
}

/// [`Method::restore`] for a method whose whole value is its state (as `serde_json::to_value` of
/// it wrote it); a null state (a run saved before the method had any) leaves it as built.
pub(crate) fn restore_whole<T: serde::de::DeserializeOwned>(method: &mut T, state: &serde_json::Value) -> anyhow::Result<()> {
    if !state.is_null() {
        *method = serde_json::from_value(state.clone())?;
    }
    Ok(())
}
