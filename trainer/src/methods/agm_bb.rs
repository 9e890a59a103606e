//! `agm-bb`: AGM as BalanceBenchmark's trainer runs it (`balancemm/trainer/AGM_trainer.py` at
//! commit 4c1482f: `newGrad.forward` L222-266, `training_step` L535-589), not as its authors'
//! code does (that is `agm`, in `agm.rs`). Per step:
//!
//! - responses: the Shapley sum over non-empty coalitions only, so for two modalities
//!   `m_a = (F(a, v) - F(0, v)) / 2` and `m_v = (F(a, v) - F(a, 0)) / 2`, `F` the fused output with
//!   one modality's input zeroed, without gradients (L228-266); the empty-coalition term
//!   `(F(a, 0) - F(0, 0)) / 2` is missing, so `m_a + m_v != F(a, v)`;
//! - scores `s_m = mean_i -log softmax(m_m)[i, y_i]`, floored at `-log 1e-8` (L553-562);
//! - `k_m = exp(alpha min(exp(t_m - t_other) - exp(s_m - s_other), 7))` (L565-575: for two
//!   modalities `num / (num - 1) (s_m - mean) = s_m - s_other`), then `t_m <- t_m (it - 1) / it +
//!   s_m / it` with `it` the step's index from the start of training, `t = 0` before the first;
//! - the loss is the plain cross-entropy of the fused output (L551-552); after backward, every
//!   parameter whose name holds the modality and whose rank is not 1 has its gradient multiplied
//!   by `k_m` (L576-581): the encoders' conv and linear weights, not their biases or batch-norm
//!   affines, and not the head;
//! - when the head weight's gradient leaves [-5, 5], every gradient is clipped to a global norm of
//!   5 (L582-585).
//!
//! BB applies the coefficients in every epoch (its modulation window is read but never used); here
//! they apply inside the run's window, which BB's recipe sets to cover its 30 epochs.
//!
//! Two changes our encoders force, as for `agm`: the other modality's *pooled features* are
//! zeroed, not its raw input, and the responses come from the training forward's features, not a
//! second forward in eval mode. For the concat head (the only one it takes) this makes `m_a`
//! exactly half the head's audio slice, `W_a a / 2`.

use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use serde::{Deserialize, Serialize};

use super::agm::{response_score, AgmState, Ratio};
use super::params::{norm2, put, take};
use super::{Applied, FeatureStep, Method, StepContext};
use crate::balance::logits_vec;

/// The gradient-norm bound BB clips to, and the head-gradient bound that triggers it (L582-585).
pub const CLIP: f64 = 5.0;

/// BB's responses `((F(a,v) - F(0,v)) / 2, (F(a,v) - F(a,0)) / 2)` from the three fused outputs.
pub fn responses(full: &[f32], audio_zeroed: &[f32], visual_zeroed: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let half = |z: &[f32]| full.iter().zip(z).map(|(f, z)| 0.5 * (f - z)).collect();
    (half(audio_zeroed), half(visual_zeroed))
}

/// AGM as BalanceBenchmark runs it.
pub struct AgmBb {
    alpha: f64,
    state: AgmState,
    active: bool,
    /// This step's coefficients (1 outside the window).
    kappa: (f64, f64),
    sums: [f64; 2],
    steps: usize,
    clipped: usize,
}

impl AgmBb {
    pub fn new(alpha: f64) -> Self {
        Self { alpha, state: AgmState::default(), active: true, kappa: (1.0, 1.0), sums: [0.0; 2], steps: 0, clipped: 0 }
    }

    /// One step's coefficients from its scores, updating the running means (L563-575).
    pub fn coefficients(&mut self, s_a: f64, s_v: f64) -> (f64, f64) {
        let k = self.state.step(s_a, s_v, self.alpha, Ratio::BalanceBenchmark);
        self.kappa = if self.active { k } else { (1.0, 1.0) };
        self.sums[0] += self.kappa.0;
        self.sums[1] += self.kappa.1;
        self.steps += 1;
        self.kappa
    }

    pub fn running_means(&self) -> (f64, f64) {
        (self.state.t_a, self.state.t_v)
    }
}

#[derive(Serialize, Deserialize)]
struct Saved {
    state: AgmState,
}

/// BB's gradient edit with coefficients `kappa`: each encoder's tensors of rank other than 1
/// scaled by its modality's coefficient, then the clip. Returns whether it clipped.
pub fn apply<B: AutodiffBackend>(grads: &mut GradientsParams, parts: &super::params::Parts, kappa: (f64, f64)) -> bool {
    for (ids, k) in [(&parts.audio, kappa.0), (&parts.visual, kappa.1)] {
        let ranked: Vec<_> = ids.iter().copied().filter(|&(_, r)| r != 1).collect();
        for mut f in take::<B>(grads, &ranked) {
            f.values = f.values * k;
            put::<B>(grads, f);
        }
    }
    let weight: Vec<_> = parts.head.iter().copied().filter(|&(_, r)| r == 2).collect();
    let w = take::<B>(grads, &weight);
    let outside = w.iter().any(|f| {
        let (lo, hi): (f64, f64) = (f.values.clone().min().into_scalar().elem(), f.values.clone().max().into_scalar().elem());
        lo < -CLIP || hi > CLIP
    });
    w.into_iter().for_each(|f| put::<B>(grads, f));
    if outside {
        // torch.nn.utils.clip_grad_norm_: coefficient max_norm / (total + 1e-6), at most 1.
        let all: Vec<_> = parts.audio.iter().chain(&parts.visual).chain(&parts.head).copied().collect();
        let flats = take::<B>(grads, &all);
        let total = flats.iter().map(|f| norm2(&f.values)).sum::<f64>().sqrt();
        let coef = (CLIP / (total + 1e-6)).min(1.0);
        for mut f in flats {
            f.values = f.values * coef;
            put::<B>(grads, f);
        }
    }
    outside
}

impl<B: AutodiffBackend> Method<B> for AgmBb {
    fn begin_epoch(&mut self, _epoch: usize, active: bool) {
        self.active = active;
        (self.sums, self.steps, self.clipped) = ([0.0; 2], 0, 0);
    }

    fn features(&mut self, step: FeatureStep<B>) -> (Tensor<B, 2>, Tensor<B, 2>) {
        let (a, v) = (step.audio.clone().detach(), step.visual.clone().detach());
        let fused = |a, v| logits_vec((step.head)(a, v).fused.detach());
        let full = fused(a.clone(), v.clone());
        let (m_a, m_v) = responses(&full, &fused(a.zeros_like(), v.clone()), &fused(a.clone(), v.zeros_like()));
        let classes = full.len() / step.labels.len().max(1);
        self.coefficients(response_score(&m_a, step.labels, classes), response_score(&m_v, step.labels, classes));
        (step.audio, step.visual)
    }

    fn gradients(&mut self, grads: &mut GradientsParams, ctx: &StepContext) -> Applied {
        if apply::<B>(grads, ctx.parts, self.kappa) {
            self.clipped += 1;
        }
        Applied { k_a: self.kappa.0, k_v: self.kappa.1, modulated: self.active, alpha: None }
    }

    fn state(&self) -> serde_json::Value {
        serde_json::to_value(Saved { state: self.state }).expect("plain data")
    }

    fn restore(&mut self, state: &serde_json::Value) -> anyhow::Result<()> {
        if !state.is_null() {
            self.state = serde_json::from_value::<Saved>(state.clone())?.state;
        }
        Ok(())
    }

    fn epoch_log(&self, epoch: usize) -> Option<serde_json::Value> {
        let n = self.steps.max(1) as f64;
        Some(serde_json::json!({
            "epoch": epoch, "mean_kappa_audio": self.sums[0] / n, "mean_kappa_visual": self.sums[1] / n,
            "t_audio": self.state.t_a, "t_visual": self.state.t_v, "clipped_steps": self.clipped,
        }))
    }
}
