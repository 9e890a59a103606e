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
//! Where the code and its intent part: the released code's projector update
//! (`utils/utils.py` L36 at the authors' commit `4735bbc`, the same line in BalanceBenchmark's
//! `MLA_trainer.py` L48) divides `k k^T` element-wise by `alpha_p + torch.mm(k, r)`, a `d x d`
//! matrix, where the paper's recursive least squares divides by the scalar `alpha_p + r k`. The
//! paper's form is the default (`--mla-projector paper`); the code's forms are named options,
//! each matched to a literal transcription of its code:
//!
//! - `code`: the authors' commit `4735bbc` (their latest commit tests the parameter name
//!   `"module.weight"`, which the bare linear layer never has, so its projection never runs; the
//!   commit before also accepted `"weight"` and projected);
//! - `bb`: BalanceBenchmark's, which also adds the projection to the gradient (`G + G P^T`)
//!   instead of replacing it.

use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::TensorData;
use serde::{Deserialize, Serialize};

use super::params::{put, take};
use super::{Applied, Method, StepContext, StepKind};

/// Which projector update, and how the projection meets the gradient (`--mla-projector`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Projector {
    /// The paper's recursive least squares: `P - k k^T / (alpha_p + r k)`, `G <- G P^T`.
    #[default]
    Paper,
    /// The authors' released code (commit 4735bbc): `k k^T` divided element-wise by the matrix
    /// `alpha_p + k r`, `G <- G P^T`.
    Code,
    /// BalanceBenchmark's: the code's update, `G <- G + G P^T`.
    Bb,
}

/// MLA's settings (`--mla-projector`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, clap::Args)]
#[group(id = "mla")]
#[serde(default)]
pub struct Settings {
    /// MLA's projector: `paper` (scalar denominator), `code` (the authors' released element-wise
    /// form) or `bb` (that form, the projection added to the gradient).
    #[arg(long, value_enum, default_value_t = Projector::Paper)]
    pub mla_projector: Projector,
}

impl Default for Settings {
    fn default() -> Self {
        super::flag_defaults()
    }
}

/// The projector's update for one step: `P` (row-major `d x d`) with the batch mean feature `r`
/// and `alpha_p`, in `form`'s denominator.
pub fn update_projector(p: &mut [f64], r: &[f64], alpha_p: f64, form: Projector) {
    let d = r.len();
    let k: Vec<f64> = (0..d).map(|i| (0..d).map(|j| p[i * d + j] * r[j]).sum()).collect();
    let rk: f64 = r.iter().zip(&k).map(|(a, b)| a * b).sum();
    for i in 0..d {
        for j in 0..d {
            // torch.mm(k, r)[i, j] = k_i r_j in the code's forms.
            let denominator = if form == Projector::Paper { alpha_p + rk } else { alpha_p + k[i] * r[j] };
            p[i * d + j] -= k[i] * k[j] / denominator;
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
    #[serde(default)]
    form: Projector,
    projector: Vec<f64>,
    steps: u64,
}

impl Mla {
    pub fn new(form: Projector) -> Self {
        Self { form, ..Self::default() }
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
        update_projector(&mut self.projector, &r, projection_alpha(ctx.batch, ctx.batches), self.form);
        let weight: Vec<_> = ctx.parts.head.iter().copied().filter(|&(_, rank)| rank == 2).collect();
        for mut g in take::<B>(grads, &weight) {
            let device = g.values.device();
            let p = Tensor::<B::InnerBackend, 2>::from_data(TensorData::new(self.projector.iter().map(|&x| x as f32).collect::<Vec<_>>(), [d, d]), &device);
            let classes = g.shape[1];
            let projected = p.matmul(g.values.clone().reshape([d, classes])).flatten(0, 1);
            g.values = if self.form == Projector::Bb { g.values + projected } else { projected };
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
