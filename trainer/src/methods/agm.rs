//! `agm`: Adaptive Gradient Modulation (Li et al., ICCV 2023; methods.md section 5), as the
//! authors' code does it (`lihong2303/AGM_ICCV2023`, `model/CREMAD_net.py`,
//! `run/CREMAD_main.py`):
//!
//! - mono-modal responses by the 2-player Shapley decomposition of the fused prediction,
//!   `m_a = (f(a, v) - f(0, v) + f(a, 0)) / 2`, `m_v = (f(a, v) - f(a, 0) + f(0, v)) / 2`, so
//!   `m_a + m_v = f(a, v)`;
//! - scores `s_m = mean_i -log softmax(m_m)[i, y_i]` (each term floored at `-log 1e-8`);
//! - `r_a = exp(s_v - s_a)`, `tau_a = exp(t_v - t_a)` from the running means `t` (before this
//!   step's update), `kappa_a = exp(alpha min(tau_a - r_a, 10))`, symmetrically for visual; then
//!   `t_m <- t_m (it - 1) / it + s_m / it` (mean over every step so far, `t = 0` at the start);
//! - the backward hooks multiply `dL/dm_a` by `kappa_a` and `dL/dm_v` by `kappa_v`: here the loss
//!   is `CE(m_a' + m_v')` with `m' = kappa m + (1 - kappa) detach(m)`, the same values and the
//!   same gradients as the hooks;
//! - outside the modulation window the last `kappa` stays in force (the code never resets its
//!   hooks), the running means keep updating;
//! - when the head weight's gradient leaves [-1, 1], every gradient is clipped to a global norm
//!   of 1 (`clip_grad_norm_`).
//!
//! One change our encoders force: the code zeroes the other modality's *raw input* and runs the
//! whole model again in eval mode (3 extra forwards with graphs). Here the other modality's
//! *pooled features* are zeroed; for the concat head this makes `m_a` exactly the head's audio
//! slice plus half the bias (`W_a a + b/2`), the uni-modal logits the toolkit already has, at no
//! extra forward. (The raw-input form adds a per-class constant `(W_v E_v(0) - W_a E_a(0)) / 2`
//! to `m_a`; our form has none.) So `agm` needs `--fusion concat`.
//!
//! `agm-bb` (`agm_bb.rs`) is BalanceBenchmark's version, which differs in its responses, its
//! ratio's direction, where it scales and where it clips.

use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use serde::{Deserialize, Serialize};

use super::params::{norm2, put, take};
use super::{Applied, LossInput, Method, StepContext};
use crate::balance::{logits_vec, true_class_probabilities};

/// Which ratio the coefficients use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Ratio {
    /// The authors' code: pulls the modalities back to their running balance.
    Official,
    /// BalanceBenchmark's flipped ratio, clamped at 7 (`agm_bb.rs`).
    BalanceBenchmark,
}

/// Mean `-log softmax(z)[i, y_i]` over a batch, each term floored at `-log 1e-8`.
pub fn response_score(logits: &[f32], labels: &[i64], classes: usize) -> f64 {
    let n = labels.len().max(1) as f64;
    true_class_probabilities(logits, labels, classes).map(|p| if p < 1e-8 || !p.is_finite() { -(1e-8f64).ln() } else { -p.ln() }).sum::<f64>() / n
}

/// AGM's running state: the running means of the scores and the step counter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct AgmState {
    pub t_a: f64,
    pub t_v: f64,
    pub it: u64,
}

impl AgmState {
    /// One step: the coefficients `(kappa_a, kappa_v)` for scores `s_a`, `s_v`, then the update
    /// of the running means.
    pub fn step(&mut self, s_a: f64, s_v: f64, alpha: f64, ratio: Ratio) -> (f64, f64) {
        let (k_a, k_v) = match ratio {
            Ratio::Official => {
                let (r_a, r_v) = ((s_v - s_a).exp(), (s_a - s_v).exp());
                let (tau_a, tau_v) = ((self.t_v - self.t_a).exp(), (self.t_a - self.t_v).exp());
                ((alpha * (tau_a - r_a).min(10.0)).exp(), (alpha * (tau_v - r_v).min(10.0)).exp())
            }
            Ratio::BalanceBenchmark => {
                let (r_a, r_v) = ((s_a - s_v).exp(), (s_v - s_a).exp());
                let (tau_a, tau_v) = ((self.t_a - self.t_v).exp(), (self.t_v - self.t_a).exp());
                ((alpha * (tau_a - r_a).min(7.0)).exp(), (alpha * (tau_v - r_v).min(7.0)).exp())
            }
        };
        self.it += 1;
        let it = self.it as f64;
        self.t_a = self.t_a * (it - 1.0) / it + s_a / it;
        self.t_v = self.t_v * (it - 1.0) / it + s_v / it;
        (k_a, k_v)
    }
}

/// Its uni-modal responses are Shapley values of a concat head.
pub const NEEDS: super::Needs = super::Needs { fusion: Some(crate::model::FusionKind::Concat), ..super::Needs::NOTHING };

/// AGM's settings (`--agm-alpha`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, clap::Args)]
#[group(id = "agm")]
#[serde(default)]
pub struct Settings {
    /// AGM's alpha (the authors' 1.0; BalanceBenchmark 0.1).
    #[arg(long, default_value_t = 1.0)]
    pub agm_alpha: f64,
}

impl Default for Settings {
    fn default() -> Self {
        super::flag_defaults()
    }
}

/// AGM.
pub struct Agm {
    alpha: f64,
    state: AgmState,
    active: bool,
    /// The scales in force (the last ones set inside the window).
    kappa: (f64, f64),
    sums: [f64; 2],
    steps: usize,
    clipped: usize,
}

impl Agm {
    pub fn new(alpha: f64) -> Self {
        Self { alpha, state: AgmState::default(), active: true, kappa: (1.0, 1.0), sums: [0.0; 2], steps: 0, clipped: 0 }
    }
}

/// `kappa m + (1 - kappa) detach(m)`: the value of `m`, its gradient times `kappa`.
pub fn scale_gradient<B: AutodiffBackend>(m: Tensor<B, 2>, kappa: f64) -> Tensor<B, 2> {
    m.clone() * kappa + m.detach() * (1.0 - kappa)
}

#[derive(Serialize, Deserialize)]
struct Saved {
    state: AgmState,
    kappa: (f64, f64),
}

impl<B: AutodiffBackend> Method<B> for Agm {
    fn begin_epoch(&mut self, _epoch: usize, active: bool) {
        self.active = active;
        (self.sums, self.steps, self.clipped) = ([0.0; 2], 0, 0);
    }

    fn loss(&mut self, input: &LossInput<B>, ce: &dyn Fn(Tensor<B, 2>) -> Tensor<B, 1>) -> Tensor<B, 1> {
        let (m_a, m_v) = (input.logits.audio.clone(), input.logits.visual.clone());
        let classes = m_a.dims()[1];
        let s_a = response_score(&logits_vec(m_a.clone().detach()), input.labels, classes);
        let s_v = response_score(&logits_vec(m_v.clone().detach()), input.labels, classes);
        let kappa = self.state.step(s_a, s_v, self.alpha, Ratio::Official);
        if self.active {
            self.kappa = kappa;
        }
        self.sums[0] += self.kappa.0;
        self.sums[1] += self.kappa.1;
        self.steps += 1;
        ce(scale_gradient(m_a, self.kappa.0) + scale_gradient(m_v, self.kappa.1))
    }

    fn gradients(&mut self, grads: &mut GradientsParams, ctx: &StepContext) -> Applied {
        // The head's weight: the part's rank-2 parameter.
        let weight: Vec<_> = ctx.parts.head.iter().copied().filter(|&(_, r)| r == 2).collect();
        let w = take::<B>(grads, &weight);
        let outside = w.iter().any(|f| {
            let (lo, hi): (f64, f64) = (f.values.clone().min().into_scalar().elem(), f.values.clone().max().into_scalar().elem());
            lo < -1.0 || hi > 1.0
        });
        w.into_iter().for_each(|f| put::<B>(grads, f));
        if outside {
            let all: Vec<_> = ctx.parts.audio.iter().chain(&ctx.parts.visual).chain(&ctx.parts.head).copied().collect();
            let flats = take::<B>(grads, &all);
            let total = flats.iter().map(|f| norm2(&f.values)).sum::<f64>().sqrt();
            let coef = (1.0 / (total + 1e-6)).min(1.0);
            self.clipped += 1;
            for mut f in flats {
                f.values = f.values * coef;
                put::<B>(grads, f);
            }
        }
        Applied { k_a: self.kappa.0, k_v: self.kappa.1, modulated: self.active, alpha: None }
    }

    fn state(&self) -> serde_json::Value {
        serde_json::to_value(Saved { state: self.state, kappa: self.kappa }).expect("plain data")
    }

    fn restore(&mut self, state: &serde_json::Value) -> anyhow::Result<()> {
        if !state.is_null() {
            let s: Saved = serde_json::from_value(state.clone())?;
            (self.state, self.kappa) = (s.state, s.kappa);
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
