//! The balancing methods, one file each, behind one interface ([`Method`]). A method acts on a
//! training step at four points, each a default that does nothing:
//!
//! 1. [`Method::features`]: the pooled audio and visual features before fusion (Modality-Drop);
//! 2. [`Method::loss`]: the loss minimised, from the fused and uni-modal logits (Gradient-Blending);
//! 3. [`Method::gradients`]: the gradients between backward and the optimiser's step (OGM, GE);
//! 4. [`Method::estimate_before`] / [`Method::estimated`]: what it estimates between epochs on the
//!    validation hold-out (Gradient-Blending's per-head weights), with [`Method::state`] so a
//!    resumed run continues with the estimate it had.
//!
//! What a method logs: its step's applied coefficients (`steps.jsonl`, through [`Applied`]) and
//! one line per epoch of `method.jsonl` ([`Method::epoch_log`]).
//!
//! Adding a method is adding a file here, a variant of [`Balance`] and its arm in [`build`].

use burn::module::ParamId;
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use serde::{Deserialize, Serialize};

use crate::balance::Coefficients;
use crate::model::Logits;

pub mod adaptive_alpha;
pub mod gblend;
pub mod ge_only;
pub mod modality_drop;
pub mod none;
pub mod ogm;
pub mod ogm_ge;

/// The balancing method of a run (`--balance`, the `balance` field of `config.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Balance {
    /// Joint training, cross-entropy on the fused logits.
    None,
    /// OGM: the dominant encoder's conv gradients scaled by `1 - tanh(alpha * ratio)`.
    Ogm,
    /// OGM-GE: OGM plus Gaussian noise of each conv gradient's own std (the paper's method).
    OgmGe,
    /// Noise without modulation: the ablation the paper's discussion asks for.
    GeOnly,
    /// OGM-GE with alpha chosen every step from the step's own score ratio (see `adaptive_alpha.rs`).
    OgmGeAdaptive,
    /// Modality-Drop (audio): the audio features dropped with probability `--drop-p` per batch.
    ModalityDropAudio,
    /// Modality-Drop (visual).
    ModalityDropVisual,
    /// Gradient-Blending, weights estimated once before training (`--super-epoch` epochs per head).
    GblendOffline,
    /// Gradient-Blending, weights re-estimated every `--super-epoch` epochs.
    GblendOnline,
}

impl Balance {
    /// The CLI's name of the method (`ogm-ge`, `modality-drop-audio`, ...).
    pub fn name(self) -> String {
        clap::ValueEnum::to_possible_value(&self).expect("no skipped variants").get_name().to_owned()
    }

    /// Whether the method only edits gradients (what the AVE localizer supports).
    pub fn gradient_only(self) -> bool {
        matches!(self, Self::None | Self::Ogm | Self::OgmGe | Self::GeOnly | Self::OgmGeAdaptive)
    }

    /// Whether the method needs the validation hold-out between epochs.
    pub fn needs_holdout(self) -> bool {
        matches!(self, Self::GblendOffline | Self::GblendOnline)
    }
}

/// The methods' parameters (those a method does not use are ignored).
#[derive(Debug, Clone, Copy)]
pub struct MethodParams {
    /// OGM's alpha.
    pub alpha: f64,
    /// Modality-Drop's probability.
    pub drop_p: f64,
    /// Gradient-Blending's super-epoch: epochs each head's copy trains per estimate.
    pub super_epoch: usize,
    /// The run's seed (Modality-Drop's draws).
    pub seed: u64,
}

/// The context of one step's gradient edit.
pub struct StepContext<'a> {
    pub epoch: usize,
    /// Inside the modulation window (`--modulation-start ..= --modulation-end`).
    pub active: bool,
    /// This step's scores and the OGM rule's coefficients at the run's alpha.
    pub coeffs: &'a Coefficients,
    /// Conv-weight parameters of the audio and the visual encoder.
    pub audio_ids: &'a [ParamId],
    pub visual_ids: &'a [ParamId],
}

/// What a step's gradient edit applied, as `steps.jsonl` records it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Applied {
    /// The factors the encoders' conv gradients were scaled by (1: untouched).
    pub k_a: f64,
    pub k_v: f64,
    /// Whether the gradients were changed (scaled or noised).
    pub modulated: bool,
    /// The alpha the step chose, for a method that chooses one.
    pub alpha: Option<f64>,
}

impl Applied {
    pub const NOTHING: Applied = Applied { k_a: 1.0, k_v: 1.0, modulated: false, alpha: None };
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

/// One head's estimate run: its copy's losses after the first and after the last of its epochs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HeadEstimate {
    pub head: Head,
    /// Mean per-sample training loss of the first epoch and of the last (running, as trained).
    pub train_first: f64,
    pub train_last: f64,
    /// Mean per-sample validation loss after the first epoch and after the last.
    pub val_first: f64,
    pub val_last: f64,
}

/// A balancing method. `B` is the autodiff backend of the run.
pub trait Method<B: AutodiffBackend> {
    /// Called before each epoch's training steps (and again on resume).
    fn begin_epoch(&mut self, _epoch: usize) {}

    /// The pooled features `[n, d]` a training step fuses.
    fn features(&mut self, audio: Tensor<B, 2>, visual: Tensor<B, 2>) -> (Tensor<B, 2>, Tensor<B, 2>) {
        (audio, visual)
    }

    /// The training loss, given the step's logits, the logits the run trains without a method
    /// (`trained`: the fused ones, or one modality's for a uni-modal run) and the loss function.
    fn loss(&self, _logits: &Logits<B>, trained: Tensor<B, 2>, ce: &dyn Fn(Tensor<B, 2>) -> Tensor<B, 1>) -> Tensor<B, 1> {
        ce(trained)
    }

    /// Edits `grads` before the optimiser's step; returns what it applied.
    fn gradients(&mut self, _grads: &mut GradientsParams, _ctx: &StepContext) -> Applied {
        Applied::NOTHING
    }

    /// How many epochs each head's copy must train before `epoch` starts, if the method
    /// re-estimates then.
    fn estimate_before(&self, _epoch: usize) -> Option<usize> {
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

/// The method `kind` with `params`.
pub fn build<B: AutodiffBackend>(kind: Balance, params: &MethodParams) -> Box<dyn Method<B>> {
    use modality_drop::{ModalityDrop, Target};
    match kind {
        Balance::None => Box::new(none::Joint),
        Balance::Ogm => Box::new(ogm::Ogm),
        Balance::OgmGe => Box::new(ogm_ge::OgmGe),
        Balance::GeOnly => Box::new(ge_only::GeOnly),
        Balance::OgmGeAdaptive => Box::new(adaptive_alpha::AdaptiveAlpha),
        Balance::ModalityDropAudio => Box::new(ModalityDrop::new(Target::Audio, params.drop_p, params.seed)),
        Balance::ModalityDropVisual => Box::new(ModalityDrop::new(Target::Visual, params.drop_p, params.seed)),
        Balance::GblendOffline => Box::new(gblend::GradientBlending::new(gblend::Mode::Offline, params.super_epoch)),
        Balance::GblendOnline => Box::new(gblend::GradientBlending::new(gblend::Mode::Online, params.super_epoch)),
    }
}
