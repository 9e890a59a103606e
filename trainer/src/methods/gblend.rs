//! `gblend-offline`, `gblend-online`: Gradient-Blending (Wang, Tran, Feiszli, CVPR 2020), as
//! methods.md section 2 describes the paper and BalanceBenchmark's code, with BB's defects fixed.
//!
//! The loss is `w_a CE(out_a) + w_v CE(out_v) + w_av CE(out)` over the audio, visual and fused
//! heads (the uni-modal heads are the fused head's shares, as everywhere in this trainer). The
//! weights minimise the overfitting-to-generalisation ratio: each head's copy of the current model
//! trains `S` epochs (`--gblend-super-epoch`) on its own head's loss; from its losses after the first and
//! after the last of them,
//!
//! ```text
//! g = L_val(last) - L_val(first)                               (minus the generalisation gain)
//! o = (L_val(last) - L_train(last)) - (L_val(first) - L_train(first))    (the overfitting change)
//! w_k = |g / o^2|,   normalised to sum 1
//! ```
//!
//! Offline: one estimate before training, from the initial model. Online: a new estimate at the
//! start of every super-epoch (epochs 0, S, 2S, ...) from the current model.
//!
//! Two estimate rules (`--gblend-estimate`). `heads` (the default) fixes BB's defects, as listed
//! below. `bb` is BB's `super_epoch_origin` (`GBlending_trainer.py` L306-375, its optimiser from
//! `train.py` L83-87), as written: for audio, visual and the fused output in turn, a copy of the
//! model trains the *fused* logits with the other modality's raw input zeroed (none for the
//! output), from the optimiser's initial state at the base learning rate; its losses are sums of
//! batch means (train: the running loss of the epoch; validation: over the split the run
//! selects on, which BB's recipe makes the test split). The weights' formula is the same.
//!
//! Decisions of `heads` where BB's code is not the paper (methods.md section 2, "Deviations"):
//! - each head's copy trains on that head's own logits (BB trains the fused logits of a model whose
//!   other modality's raw input is zeroed), so the weights judge the same heads the blended loss
//!   trains;
//! - losses are per-sample means on both sides (BB sums batch means: train and validation on two
//!   scales); the training loss is the running one of the copy's epoch, as BB;
//! - `L_val` is the validation hold-out carved from train, never the test split (BB: test);
//! - the copies start a fresh optimiser of the run's kind at the run's current learning rate;
//! - `o^2` is floored at 1e-12 (BB divides by zero when a head's overfitting does not change).

use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use serde::{Deserialize, Serialize};

use super::{EstimateRule, Head, HeadEstimate, LossInput, Method};

/// When the weights are estimated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Offline,
    Online,
}

/// The blending weights (audio, visual, fused) from the three heads' estimate runs.
pub fn blend_weights(estimates: &[HeadEstimate]) -> [f64; 3] {
    let raw = |h: Head| {
        let e = estimates.iter().find(|e| e.head == h).expect("an estimate per head");
        let g = e.val_last - e.val_first;
        let o = (e.val_last - e.train_last) - (e.val_first - e.train_first);
        (g / (o * o).max(1e-12)).abs()
    };
    let w = Head::ALL.map(raw);
    let sum: f64 = w.iter().sum();
    if sum > 0.0 && sum.is_finite() {
        w.map(|x| x / sum)
    } else {
        [1.0 / 3.0; 3]
    }
}

/// It estimates its weights on the validation hold-out (`heads`; `bb` on the selection split).
pub const NEEDS: super::Needs = super::Needs { holdout: true, ..super::Needs::NOTHING };

/// Gradient-Blending's settings (`--gblend-super-epoch`; `super_epoch` in configs written before it was named).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, clap::Args)]
#[group(id = "gblend")]
#[serde(default)]
pub struct Settings {
    /// Gradient-Blending's super-epoch: epochs each head's copy trains per weight estimate, and (online) epochs between estimates (BalanceBenchmark's 10).
    #[arg(long, visible_alias = "super-epoch", default_value_t = 10)]
    #[serde(alias = "super_epoch")]
    pub gblend_super_epoch: usize,
    /// Gradient-Blending's estimate: `heads` (each head's copy on its own logits, the hold-out) or `bb` (BalanceBenchmark's: the fused logits with the other modality's input zeroed, on the split the run selects on).
    #[arg(long, value_enum, default_value_t = EstimateRule::Heads)]
    pub gblend_estimate: EstimateRule,
}

impl Default for Settings {
    fn default() -> Self {
        super::flag_defaults()
    }
}

/// Gradient-Blending's state: the weights in force and the estimate they came from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GradientBlending {
    mode: Mode,
    super_epoch: usize,
    #[serde(default)]
    estimate: EstimateRule,
    /// Audio, visual, fused.
    weights: Option<[f64; 3]>,
    /// The epoch of the last estimate and its runs.
    estimated_at: Option<usize>,
    estimates: Vec<HeadEstimate>,
}

impl GradientBlending {
    pub fn new(mode: Mode, settings: Settings) -> Self {
        Self {
            mode,
            super_epoch: settings.gblend_super_epoch.max(2),
            estimate: settings.gblend_estimate,
            weights: None,
            estimated_at: None,
            estimates: Vec::new(),
        }
    }

    pub fn weights(&self) -> Option<[f64; 3]> {
        self.weights
    }
}

impl<B: AutodiffBackend> Method<B> for GradientBlending {
    fn loss(&mut self, input: &LossInput<B>, ce: &dyn Fn(Tensor<B, 2>) -> Tensor<B, 1>) -> Tensor<B, 1> {
        let logits = input.logits;
        let w = self.weights.expect("the weights are estimated before the first step");
        ce(logits.audio.clone()) * w[0] + ce(logits.visual.clone()) * w[1] + ce(logits.fused.clone()) * w[2]
    }

    fn estimate_before(&self, epoch: usize) -> Option<super::EstimateRequest> {
        let due = match self.mode {
            Mode::Offline => epoch == 0,
            Mode::Online => epoch.is_multiple_of(self.super_epoch),
        };
        // A resumed run re-estimates only when its estimate for this epoch is missing.
        (due && self.estimated_at != Some(epoch)).then_some(super::EstimateRequest { epochs: self.super_epoch, rule: self.estimate })
    }

    fn estimated(&mut self, epoch: usize, estimates: &[HeadEstimate]) {
        self.weights = Some(blend_weights(estimates));
        self.estimated_at = Some(epoch);
        self.estimates = estimates.to_vec();
    }

    fn state(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("plain data")
    }

    fn restore(&mut self, state: &serde_json::Value) -> anyhow::Result<()> {
        super::restore_whole(self, state)
    }

    fn epoch_log(&self, epoch: usize) -> Option<serde_json::Value> {
        let w = self.weights?;
        let fresh = self.estimated_at == Some(epoch);
        Some(serde_json::json!({
            "epoch": epoch,
            "weights": { "audio": w[0], "visual": w[1], "fused": w[2] },
            "estimated": fresh,
            "estimates": if fresh { serde_json::to_value(&self.estimates).expect("plain data") } else { serde_json::Value::Null },
        }))
    }
}
