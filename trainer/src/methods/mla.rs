//! `mla`: Multimodal Learning with Alternating Unimodal Adaptation (Zhang, Yoon, Bansal, Yao,
//! CVPR 2024; methods.md section 8), as the authors' code does it
//! (`Cecile-hi/Multimodal-Learning-with-Alternating-Unimodal-Adaptation`, `main.py`,
//! `utils/utils.py`), on the shared head (`--fusion shared`):
//!
//! - per batch, one optimiser step per modality, audio then visual: that encoder and the shared
//!   head on `CE(H(h_m), y)` alone (the other encoder untouched);
//! - from the second step of the run on, the head weight's gradient is projected: with
//!   `alpha_p = 0.1^(j/T + 1)` (`j` the batch's index in its epoch, `T` the epoch's batches),
//!   `r` the batch mean of the step's features, `k = P r^T`,
//!   `P <- P - k k^T / (alpha_p + r k)`, `P <- P / ||P||_F`, then `G <- G P^T` (PyTorch's `[C, d]`
//!   layout; `P G` in Burn's `[d, C]`); `P` starts at the identity and is never reset; the
//!   bias's gradient is untouched;
//! - at evaluation the shared head's fused logits weigh each modality's per sample by the
//!   entropy of its prediction (`FusionKind::Shared`; the paper's form, BalanceBenchmark's
//!   `dim=1` code).
//!
//! Where the code and its intent part: the authors' latest commit tests the parameter name
//! `"module.weight"`, which the bare linear layer never has, so its projection never runs; the
//! commit before (`4735bbc`) also accepted `"weight"` and projected, as here. BalanceBenchmark
//! adds the projection to the gradient (`G + G P^T`) instead of replacing it; not followed.

use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::TensorData;
use serde::{Deserialize, Serialize};

use super::params::{put, take};
use super::{Applied, Method, StepContext, StepKind};

/// The projector's update for one step: `P` (row-major `d x d`) with the batch mean feature `r`
/// and `alpha_p`.
pub fn update_projector(p: &mut [f64], r: &[f64], alpha_p: f64) {
    let d = r.len();
    let k: Vec<f64> = (0..d).map(|i| (0..d).map(|j| p[i * d + j] * r[j]).sum()).collect();
    let rk: f64 = r.iter().zip(&k).map(|(a, b)| a * b).sum();
    for i in 0..d {
        for j in 0..d {
            p[i * d + j] -= k[i] * k[j] / (alpha_p + rk);
        }
    }
    let norm = p.iter().map(|x| x * x).sum::<f64>().sqrt();
    p.iter_mut().for_each(|x| *x /= norm);
}

/// `alpha_p` of batch `j` of `t` in its epoch.
pub fn projection_alpha(j: usize, t: usize) -> f64 {
    0.1f64.powf(j as f64 / t.max(1) as f64 + 1.0)
}

/// Its modalities step alone through one shared head.
pub const NEEDS: super::Needs = super::Needs { fusion: Some(crate::model::FusionKind::Shared), ..super::Needs::NOTHING };

/// MLA's state: the projector and the run's optimiser steps so far.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Mla {
    projector: Vec<f64>,
    steps: u64,
}

impl Mla {
    pub fn new() -> Self {
        Self::default()
    }

    /// The projector, row-major `d x d` (empty before the first step).
    pub fn projector(&self) -> &[f64] {
        &self.projector
    }
}

impl<B: AutodiffBackend> Method<B> for Mla {
    fn step_kind(&self) -> StepKind {
        StepKind::Alternating
    }

    fn gradients(&mut self, grads: &mut GradientsParams, ctx: &StepContext) -> Applied {
        let r: Vec<f64> = ctx.mean_feature.expect("an alternating step has its features").iter().map(|&x| f64::from(x)).collect();
        let d = r.len();
        if self.projector.is_empty() {
            self.projector = (0..d * d).map(|k| if k / d == k % d { 1.0 } else { 0.0 }).collect();
        }
        let first = self.steps == 0;
        self.steps += 1;
        if first {
            return Applied::NOTHING;
        }
        update_projector(&mut self.projector, &r, projection_alpha(ctx.batch, ctx.batches));
        let weight: Vec<_> = ctx.parts.head.iter().copied().filter(|&(_, rank)| rank == 2).collect();
        for mut g in take::<B>(grads, &weight) {
            let device = g.values.device();
            let p = Tensor::<B::InnerBackend, 2>::from_data(TensorData::new(self.projector.iter().map(|&x| x as f32).collect::<Vec<_>>(), [d, d]), &device);
            let classes = g.shape[1];
            g.values = p.matmul(g.values.reshape([d, classes])).flatten(0, 1);
            put::<B>(grads, g);
        }
        Applied { k_a: 1.0, k_v: 1.0, modulated: true, alpha: None }
    }

    fn state(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("plain data")
    }

    fn restore(&mut self, state: &serde_json::Value) -> anyhow::Result<()> {
        super::restore_whole(self, state)
    }

    fn epoch_log(&self, epoch: usize) -> Option<serde_json::Value> {
        let d = (self.projector.len() as f64).sqrt() as usize;
        let trace: f64 = (0..d).map(|i| self.projector[i * d + i]).sum();
        Some(serde_json::json!({ "epoch": epoch, "optimizer_steps": self.steps, "projector_trace": trace }))
    }
}
