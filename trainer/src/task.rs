//! What a training task brings to the driver (`driver::drive`): its batches, its forward pass
//! (the logits every method reads), its evaluation and how its logs read, and the optional pieces
//! some methods need (one-modality forwards, sampled features, hold-out losses, zeroed inputs).
//! The classifier (`train.rs`) and the AVE localizer (`localize/train.rs`) implement it; the
//! driver and the between-epoch estimates (`estimate.rs`) call it. Below both, above the methods.

use std::path::Path;
use std::sync::mpsc::Receiver;
use std::time::Instant;

use anyhow::Result;
use burn::module::AutodiffModule;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::methods::params::Parts;
use crate::methods::{FeatureStep, Head, HeadLosses, SampledFeatures};
use crate::model::Logits;
use crate::run_log::{StepRecord, TrainStats};

/// One training batch through the model: the fused and uni-modal logits (rows matching
/// `labels`), the logits a run without a method trains, the targets, and how many samples
/// (clips) it holds.
pub struct Forward<B: Backend> {
    pub logits: Logits<B>,
    /// The pooled audio and visual features the head fused (after the method's hook), where the
    /// task has them; a one-modality forward has its features in both.
    pub features: Option<(Tensor<B, 2>, Tensor<B, 2>)>,
    /// The fused logits, or one modality's for a uni-modal run.
    pub trained: Tensor<B, 2>,
    /// A term the task adds to every loss it trains (PSP's weighted AVPS loss).
    pub aux_loss: Option<Tensor<B, 1>>,
    pub targets: Tensor<B, 1, Int>,
    pub labels: Vec<i64>,
    pub samples: usize,
}

/// What a method does to the pooled features of a training step (identity for most).
pub type FeatureHook<'a, B> = &'a mut dyn FnMut(FeatureStep<B>) -> (Tensor<B, 2>, Tensor<B, 2>);

/// What one epoch's evaluation gives the driver.
pub struct Evaluated<E, L> {
    /// Model selection maximises it (strictly: the first of equal epochs is kept).
    pub score: f64,
    /// The metrics a selected epoch is remembered by (its test metrics).
    pub selected: E,
    /// The epoch's line of `epochs.jsonl`.
    pub log: L,
}

/// A training task on backend `B`.
pub trait Task<B: AutodiffBackend> {
    type Model: AutodiffModule<B>;
    type Batch: Clone;
    type Selected: Copy + Serialize + DeserializeOwned;
    type Log: Clone + Serialize + DeserializeOwned;

    /// Conv-weight parameter ids of the audio and the visual encoder (what the rule modulates).
    fn encoders(model: &Self::Model) -> (Vec<burn::module::ParamId>, Vec<burn::module::ParamId>);
    /// The training batches of `epoch`, in the loader's order.
    fn batches(&self, epoch: usize) -> Receiver<Result<Self::Batch>>;
    /// A training step's forward pass, the pooled features through `features` before fusion.
    fn forward(&self, model: &Self::Model, batch: Self::Batch, features: FeatureHook<B>) -> Forward<B>;
    /// Every parameter of the model by part (the methods that combine gradients per part).
    fn parts(_model: &Self::Model) -> Parts {
        Parts::default()
    }
    /// The number of training steps in an epoch (0 where unknown).
    fn steps_per_epoch(&self) -> usize {
        0
    }
    /// One modality's forward alone through a shared head (`trained`: its logits; `features`:
    /// its features, twice), for an alternating method.
    fn forward_one(&self, _model: &Self::Model, _batch: Self::Batch, _modality: Head) -> Result<Forward<B>> {
        anyhow::bail!("this task has no one-modality forward (alternating methods need the classifier with --fusion shared)")
    }
    /// Pooled features of a tenth of `epoch`'s training batches (at least one), the model in
    /// evaluation mode, for a method that needs them between epochs.
    fn sample_features(&self, _model: &<Self::Model as AutodiffModule<B>>::InnerModule, _epoch: usize) -> Result<Option<SampledFeatures>> {
        Ok(None)
    }
    /// Mean per-sample cross-entropy of each head on the validation hold-out, for a method that
    /// estimates between epochs; `None` for a task without one.
    fn holdout_losses(&self, _model: &<Self::Model as AutodiffModule<B>>::InnerModule) -> Result<Option<HeadLosses>> {
        Ok(None)
    }
    /// `batch` with the raw input of every modality but `keep`'s zeroed (`Fused`: as it is), for
    /// BalanceBenchmark's Gradient-Blending estimate.
    fn padded(&self, _batch: Self::Batch, _keep: Head) -> Result<Self::Batch> {
        anyhow::bail!("this task cannot zero a modality's input (Gradient-Blending's bb estimate needs the classifier)")
    }
    /// The fused head's cross-entropy on the split the run selects on, every modality's input but
    /// `keep`'s zeroed, summed over the split's batches (each batch's mean, as BalanceBenchmark
    /// sums them); `None` for a task without one.
    fn padded_selection_loss(&self, _model: &<Self::Model as AutodiffModule<B>>::InnerModule, _keep: Head) -> Result<Option<f64>> {
        Ok(None)
    }
    /// Evaluation after an epoch, with the epoch's training totals for its log line.
    fn evaluate(
        &self,
        model: &<Self::Model as AutodiffModule<B>>::InnerModule,
        epoch: usize,
        lr: f64,
        train: TrainStats,
        started: Instant,
    ) -> Result<Evaluated<Self::Selected, Self::Log>>;
    /// The progress line of an epoch.
    fn summary_line(&self, log: &Self::Log) -> String;
    /// `epochs.csv`: its header and one row per epoch.
    fn csv_header(&self) -> String;
    fn csv_row(&self, log: &Self::Log) -> String;
    /// The PNG plots of the run so far.
    fn plots(&self, dir: &Path, history: &[Self::Log], steps: &[StepRecord]) -> Result<()>;
    /// Called when an epoch becomes the selected one (e.g. to keep that model).
    fn on_selected(&self, _model: &<Self::Model as AutodiffModule<B>>::InnerModule, _dir: &Path) -> Result<()> {
        Ok(())
    }
}
