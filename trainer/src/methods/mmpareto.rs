//! `mmpareto`: MMPareto (Wei & Hu, ICML 2024; methods.md section 4), as the authors' code does it
//! (`GeWu-Lab/MMPareto_ICML2024`, `code/MMPareto.py`, `min_norm_solvers.py`):
//!
//! - losses `L_mm = CE(out)`, `L_a = CE(out_a)`, `L_v = CE(out_v)` (the head's slices here, as
//!   BalanceBenchmark; the official model has separate uni-modal heads);
//! - per encoder `m`: `g_both` (of `L_mm`) and `g_m` (of `L_m`) over all its parameters as one
//!   vector; `cos > 0`: weights (0.5, 0.5); else the min-norm weights of the two vectors
//!   (`c = (v22 - v12) / (v11 + v22 - 2 v12)`, clamped to 0.999 / 0.001 as the solver);
//! - per tensor `P` of the encoder: `g_new = 2 (k0 g_both + k1 g_m)`, `r = ||g_both + g_m|| /
//!   ||g_new||`, gradient `gamma r g_new` if `r > 1` else `gamma g_new` (`gamma` = 1.5,
//!   hard-coded there, `--mmpareto-gamma` here);
//! - the head keeps the plain gradient of `L_mm + L_a + L_v`.
//!
//! The code's 4 backward passes with `retain_graph` become 2 here (Burn frees a graph on
//! backward): the driver runs the batch forward twice, the second time without touching the
//! batch-norm running statistics, one backward for `L_mm` and one for `L_a + L_v` (encoders
//! are separate, so each encoder's part of that gradient is its own `g_m`). Every step works
//! inside and outside the modulation window alike, as the code (it has none).
//!
//! `mmpareto-bb` is what BalanceBenchmark's version computes (its three backward passes
//! accumulate without zeroing, so its cosine is always 1): the uniform multitask loss with every
//! encoder gradient times `2 gamma`. Kept to reproduce BB's table (its best row).

use burn::optim::GradientsParams;
use burn::tensor::backend::AutodiffBackend;
use serde::{Deserialize, Serialize};

use super::params::{dot, norm2, put, take, Flat};
use super::{Applied, Method, StepContext, StepKind};

/// Which algorithm runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Official,
    BalanceBenchmark,
}

/// The weights `(k0, k1)` of `(g_both, g_m)` from `v11 = <g_both, g_both>`, `v12`, `v22`.
pub fn pareto_weights(v11: f64, v12: f64, v22: f64) -> (f64, f64) {
    let cos = v12 / (v11.sqrt() * v22.sqrt());
    if cos > 0.0 {
        return (0.5, 0.5);
    }
    let c = if v12 >= v11 {
        0.999
    } else if v12 >= v22 {
        0.001
    } else {
        (v22 - v12) / (v11 + v22 - 2.0 * v12)
    };
    (c, 1.0 - c)
}

/// Its uni-modal losses are the head slices of a concat head.
pub const NEEDS: super::Needs = super::Needs { fusion: Some(crate::model::FusionKind::Concat), ..super::Needs::NOTHING };

/// MMPareto's settings (`--mmpareto-gamma`; `gamma` in configs written before it was named).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, clap::Args)]
#[group(id = "mmpareto")]
#[serde(default)]
pub struct Settings {
    /// MMPareto's gradient magnitude factor gamma (the authors' 1.5).
    #[arg(long, visible_alias = "gamma", default_value_t = 1.5)]
    #[serde(alias = "gamma")]
    pub mmpareto_gamma: f64,
}

impl Default for Settings {
    fn default() -> Self {
        super::flag_defaults()
    }
}

/// MMPareto.
pub struct MmPareto {
    mode: Mode,
    gamma: f64,
    steps: usize,
    conflicts: [usize; 2],
}

impl MmPareto {
    pub fn new(mode: Mode, gamma: f64) -> Self {
        Self { mode, gamma, steps: 0, conflicts: [0; 2] }
    }

    /// One encoder's gradients from its multimodal and uni-modal ones; whether they conflicted.
    fn encoder<B: AutodiffBackend>(&self, both: Vec<Flat<B::InnerBackend>>, uni: Vec<Flat<B::InnerBackend>>, out: &mut GradientsParams) -> bool {
        let (k0, k1, conflict) = match self.mode {
            Mode::BalanceBenchmark => (0.5, 0.5, false),
            Mode::Official => {
                let (v11, v12, v22) = (dot(&both, &both), dot(&both, &uni), dot(&uni, &uni));
                let (k0, k1) = pareto_weights(v11, v12, v22);
                (k0, k1, v12 / (v11.sqrt() * v22.sqrt()) <= 0.0)
            }
        };
        let mut uni: Vec<Option<Flat<B::InnerBackend>>> = uni.into_iter().map(Some).collect();
        for b in both {
            let u = uni.iter_mut().find(|u| u.as_ref().is_some_and(|u| u.id == b.id)).and_then(Option::take);
            let (id, shape) = (b.id, b.shape.clone());
            let (gb, gu) = match u {
                Some(u) => (b.values, u.values),
                None => (b.values.clone(), b.values.zeros_like()),
            };
            let values = match self.mode {
                // Its recorded "multimodal" and "uni-modal" gradients are both the sum.
                Mode::BalanceBenchmark => (gb + gu) * (2.0 * self.gamma),
                Mode::Official => {
                    let g_new = (gb.clone() * k0 + gu.clone() * k1) * 2.0;
                    let r = (norm2(&(gb + gu)) / norm2(&g_new)).sqrt();
                    if r > 1.0 {
                        g_new * (self.gamma * r)
                    } else {
                        g_new * self.gamma
                    }
                }
            };
            put::<B>(out, Flat { id, shape, values });
        }
        // A tensor only the uni-modal loss reached.
        for u in uni.into_iter().flatten() {
            let values = u.values * (2.0 * k1 * self.gamma);
            put::<B>(out, Flat { values, ..u });
        }
        conflict
    }
}

impl<B: AutodiffBackend> Method<B> for MmPareto {
    fn step_kind(&self) -> StepKind {
        StepKind::Pareto
    }

    fn begin_epoch(&mut self, _epoch: usize, _active: bool) {
        (self.steps, self.conflicts) = (0, [0; 2]);
    }

    fn combine(&mut self, mut multimodal: GradientsParams, mut unimodal: GradientsParams, ctx: &StepContext) -> (GradientsParams, Applied) {
        let mut out = GradientsParams::new();
        for (i, part) in [&ctx.parts.audio, &ctx.parts.visual].into_iter().enumerate() {
            let (both, uni) = (take::<B>(&mut multimodal, part), take::<B>(&mut unimodal, part));
            if self.encoder::<B>(both, uni, &mut out) {
                self.conflicts[i] += 1;
            }
        }
        // The head: the sum of both gradients.
        let mut uni = take::<B>(&mut unimodal, &ctx.parts.head);
        for mut h in take::<B>(&mut multimodal, &ctx.parts.head) {
            if let Some(k) = uni.iter().position(|u| u.id == h.id) {
                h.values = h.values + uni.swap_remove(k).values;
            }
            put::<B>(&mut out, h);
        }
        uni.into_iter().for_each(|u| put::<B>(&mut out, u));
        self.steps += 1;
        (out, Applied { k_a: 1.0, k_v: 1.0, modulated: true, alpha: None })
    }

    fn epoch_log(&self, epoch: usize) -> Option<serde_json::Value> {
        Some(serde_json::json!({ "epoch": epoch, "steps": self.steps, "conflicts_audio": self.conflicts[0], "conflicts_visual": self.conflicts[1] }))
    }
}
