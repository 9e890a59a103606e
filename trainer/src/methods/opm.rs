//! `opm`: On-the-fly Prediction Modulation (Wei, Hu, Du, Wen, TPAMI 2024; methods.md section 3),
//! as the authors' code does it (`GeWu-Lab/BML_TPAMI2024`, `code/models/Classifier.py`,
//! `code/main.py`): per batch,
//!
//! - scores `s_m = sum_i softmax(t_m)[i, y_i]` of the uni-modal logits on the head's *detached*
//!   weights (the step's features through the fusion head, nothing of it in the loss);
//! - `rho_a = tanh(relu(s_a / s_v - 1))`, `rho_v = tanh(relu(s_v / s_a - 1))`;
//!   `q_m = q_base (1 + lambda rho_m)` where `rho_m > 0`, else 0, clipped to [0, 1]: only the
//!   dominant modality is ever dropped;
//! - with probability `p_exe` the drop executes: `theta = (d_a q_a + d_v q_v) / (d_a + d_v)`,
//!   each sample's feature of modality `m` kept with probability `1 - q_m` (independent draws),
//!   and *both* modalities' features multiplied by `1 / (1 - theta)` (forward and backward, as
//!   the authors' custom autograd function);
//! - samples with both features dropped are removed (`R` in methods.md): impossible here, since
//!   one `q` is always 0, so no row is ever removed and no batch skipped.
//!
//! Defaults are the code's argparse ones: `q_base` 0.5, `lambda` 0.5, `p_exe` 0.7 (its
//! `config.py` says `q_base` 0.4, which the argparse default overrides; BalanceBenchmark uses
//! 0.4). The code's 6-epoch warm-up without OPM is the modulation window here:
//! `--modulation-start 6` reproduces it; the default window (from epoch 0) is BalanceBenchmark's.
//! Draws come from the run's generator, derived from (seed, epoch), so a resumed run draws what
//! the uninterrupted one did.

use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::TensorData;
use datasets::rng::Rng;
use serde::{Deserialize, Serialize};

use super::{FeatureStep, Method};
use crate::balance::{logits_vec, true_class_softmax_sum};

/// OPM's settings: `--opm-q-base`, `--opm-lambda`, `--opm-p-exe` (the `opm_*` keys of
/// `config.json`), defaulting to the authors' argparse values.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, clap::Args)]
#[group(id = "opm")]
#[serde(default)]
pub struct Settings {
    /// OPM's base drop probability q_base of the dominant modality (the authors' argparse 0.5;
    /// BalanceBenchmark 0.4).
    #[arg(long, default_value_t = 0.5)]
    pub opm_q_base: f64,
    /// OPM's lambda: how much the dominant modality's lead raises its drop probability.
    #[arg(long, default_value_t = 0.5)]
    pub opm_lambda: f64,
    /// OPM's p_exe: the probability that a step's drop executes.
    #[arg(long, default_value_t = 0.7)]
    pub opm_p_exe: f64,
}

impl Default for Settings {
    fn default() -> Self {
        super::flag_defaults()
    }
}

/// The drop probabilities `(q_a, q_v)` and the rescale's `theta` for scores `s_a`, `s_v` and
/// feature widths `d_a`, `d_v` (the code's `calcu_q` and `Modality_drop`).
pub fn drop_probabilities(s_a: f64, s_v: f64, d_a: usize, d_v: usize, p: &Settings) -> (f64, f64, f64) {
    let rho = |x: f64| x.max(0.0).tanh();
    let (rho_a, rho_v) = (rho(s_a / s_v - 1.0), rho(s_v / s_a - 1.0));
    let q = |r: f64| if r > 0.0 { (p.opm_q_base * (1.0 + p.opm_lambda * r)).clamp(0.0, 1.0) } else { 0.0 };
    let (q_a, q_v) = (q(rho_a), q(rho_v));
    let theta = (d_a as f64 * q_a + d_v as f64 * q_v) / (d_a + d_v) as f64;
    (q_a, q_v, theta)
}

/// OPM.
pub struct Opm {
    params: Settings,
    seed: u64,
    rng: Rng,
    active: bool,
    /// This epoch: steps, steps where the drop executed, features dropped per modality.
    steps: usize,
    executed: usize,
    dropped: [usize; 2],
    q_sum: [f64; 2],
}

impl Opm {
    pub fn new(params: Settings, seed: u64) -> Self {
        Self { params, seed, rng: Rng::new(seed), active: true, steps: 0, executed: 0, dropped: [0; 2], q_sum: [0.0; 2] }
    }
}

impl<B: AutodiffBackend> Method<B> for Opm {
    fn begin_epoch(&mut self, epoch: usize, active: bool) {
        self.rng = Rng::derive(&[self.seed, epoch as u64, datasets::rng::fnv1a("opm")]);
        self.active = active;
        (self.steps, self.executed, self.dropped, self.q_sum) = (0, 0, [0; 2], [0.0; 2]);
    }

    fn features(&mut self, step: FeatureStep<B>) -> (Tensor<B, 2>, Tensor<B, 2>) {
        let (a, v) = (step.audio, step.visual);
        if !self.active {
            return (a, v);
        }
        self.steps += 1;
        let t = (step.head)(a.clone().detach(), v.clone().detach());
        let classes = t.audio.dims()[1];
        let s_a = true_class_softmax_sum(&logits_vec(t.audio), step.labels, classes);
        let s_v = true_class_softmax_sum(&logits_vec(t.visual), step.labels, classes);
        let ([n, d_a], d_v) = (a.dims(), v.dims()[1]);
        let (q_a, q_v, theta) = drop_probabilities(s_a, s_v, d_a, d_v, &self.params);
        self.q_sum[0] += q_a;
        self.q_sum[1] += q_v;
        if self.rng.uniform() < 1.0 - self.params.opm_p_exe {
            return (a, v);
        }
        self.executed += 1;
        let scale = 1.0 / (1.0 - theta);
        let mut mask = |q: f64, dropped: &mut usize| {
            let keep: Vec<f32> = (0..n).map(|_| if self.rng.uniform() < 1.0 - q { 1.0 } else { 0.0 }).collect();
            *dropped += keep.iter().filter(|&&k| k == 0.0).count();
            Tensor::<B, 2>::from_data(TensorData::new(keep.iter().map(|&k| k * scale as f32).collect::<Vec<_>>(), [n, 1]), &a.device())
        };
        let (mut da, mut dv) = (0, 0);
        let (keep_a, keep_v) = (mask(q_a, &mut da), mask(q_v, &mut dv));
        self.dropped[0] += da;
        self.dropped[1] += dv;
        (a * keep_a, v * keep_v)
    }

    fn epoch_log(&self, epoch: usize) -> Option<serde_json::Value> {
        let mean = |i: usize| self.q_sum[i] / self.steps.max(1) as f64;
        Some(serde_json::json!({
            "epoch": epoch, "steps": self.steps, "executed": self.executed,
            "dropped_audio": self.dropped[0], "dropped_visual": self.dropped[1],
            "mean_q_audio": mean(0), "mean_q_visual": mean(1),
        }))
    }
}
