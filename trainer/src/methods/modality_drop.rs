//! `modality-drop-audio`, `modality-drop-visual`: the paper's "Modality-Drop (audio)" and
//! "(visual)" rows, as the OGM-GE authors' own early model coded it (methods.md section 1,
//! `models/old_models/avmodel.py` L60-61, "variant B"): at each training step one draw decides
//! whether the target modality's pooled features are dropped for the whole batch, `nn.Dropout(p)`
//! on a one-element tensor of ones: with probability `p` they are multiplied by 0, else by
//! `1 / (1 - p)`. The drop happens on the pooled features before fusion, so the dropped encoder
//! gets an exactly zero gradient on that step and its batch-norm statistics are unaffected.
//! Evaluation never drops. `p` is `--modality-drop-p` (0.5, the file's value).
//!
//! The draws come from the run's own generator, reseeded per epoch from the seed, so a resumed
//! run draws what the uninterrupted one did and the backend's generator (GE's noise) is untouched.

use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use datasets::rng::Rng;
use serde::{Deserialize, Serialize};

use super::{FeatureStep, Method};

/// The modality a Modality-Drop run drops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Audio,
    Visual,
}

/// The factor of one step: 0 (dropped) when the uniform draw `u < p`, else `1 / (1 - p)`
/// (PyTorch's `nn.Dropout(p)` of a one in training mode).
pub fn drop_factor(u: f64, p: f64) -> f64 {
    if u < p {
        0.0
    } else {
        1.0 / (1.0 - p)
    }
}

/// Modality-Drop's settings (`--modality-drop-p`; `drop_p` in configs written before it was named).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, clap::Args)]
#[group(id = "modality_drop")]
#[serde(default)]
pub struct Settings {
    /// Modality-Drop's probability of dropping its modality's features on a step (the authors' 0.5).
    #[arg(long, visible_alias = "drop-p", default_value_t = 0.5)]
    #[serde(alias = "drop_p")]
    pub modality_drop_p: f64,
}

impl Default for Settings {
    fn default() -> Self {
        super::flag_defaults()
    }
}

/// Modality-Drop.
pub struct ModalityDrop {
    target: Target,
    p: f64,
    seed: u64,
    rng: Rng,
    dropped: usize,
    steps: usize,
}

impl ModalityDrop {
    pub fn new(target: Target, p: f64, seed: u64) -> Self {
        Self { target, p, seed, rng: Rng::new(seed), dropped: 0, steps: 0 }
    }
}

impl<B: AutodiffBackend> Method<B> for ModalityDrop {
    fn begin_epoch(&mut self, epoch: usize, _active: bool) {
        self.rng = Rng::derive(&[self.seed, epoch as u64, datasets::rng::fnv1a("modality-drop")]);
        (self.dropped, self.steps) = (0, 0);
    }

    fn features(&mut self, step: FeatureStep<B>) -> (Tensor<B, 2>, Tensor<B, 2>) {
        let (audio, visual) = (step.audio, step.visual);
        let g = drop_factor(self.rng.uniform(), self.p);
        self.steps += 1;
        self.dropped += usize::from(g == 0.0);
        match self.target {
            Target::Audio => (audio * g, visual),
            Target::Visual => (audio, visual * g),
        }
    }

    fn epoch_log(&self, epoch: usize) -> Option<serde_json::Value> {
        Some(serde_json::json!({ "epoch": epoch, "steps": self.steps, "dropped": self.dropped }))
    }
}
