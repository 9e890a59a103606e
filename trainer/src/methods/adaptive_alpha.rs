//! `ogm-ge-adaptive`: OGM-GE with alpha chosen every step from the step's own scores, the paper's
//! open question 2 ("how would you make the algorithm choose alpha dynamically?").
//!
//! The rule. OGM scales the dominant modality's conv gradients by `k = 1 - tanh(alpha * rho)`,
//! `rho > 1` its score ratio over the other modality. Its intent is that the dominant encoder stops
//! outrunning the other; the ratio says by how much it does: the dominant head puts `rho` times the
//! true-class probability on this batch. Scaling its gradient by `1 / rho` makes the two encoders'
//! updates proportional to the same confidence, so the step in which the dominant modality is
//! `rho` times ahead moves it `rho` times less. That is `k = 1 / rho`, i.e. the alpha that solves
//! `1 - tanh(alpha * rho) = 1 / rho`:
//!
//! ```text
//! alpha_t = atanh(1 - 1 / rho_t) / rho_t        (rho_t >= 1; the non-dominant modality keeps k = 1)
//! ```
//!
//! What follows from it: no hyper-parameter; continuous at `rho = 1` (where the fixed-alpha rule
//! jumps from 1 to `1 - tanh(alpha)`, so a balanced batch is damped hardest relative to its
//! imbalance); strong damping only when the imbalance is large (`rho = 4` gives `k = 0.25`, the
//! fixed rule's `alpha = 0.8` gives 0.04 there and 0.34 at `rho = 1`); it lets go as the weak
//! modality catches up. GE's noise is added as in `ogm-ge`. The alpha each step chose is logged
//! (`alpha` in `steps.jsonl`).

use burn::optim::GradientsParams;
use burn::tensor::backend::AutodiffBackend;

use super::{Applied, Method, StepContext};
use crate::balance::modulate_encoders;

/// The coefficients `(k_a, k_v)` and the alpha of the adaptive rule for `score_a / score_v`.
pub fn adaptive_coefficients(ratio_a: f64) -> (f64, f64, f64) {
    // Audio dominant at a tie, as the reference's rule.
    let (rho, audio_dominant) = if ratio_a >= 1.0 { (ratio_a, true) } else { (1.0 / ratio_a, false) };
    let k = (1.0 / rho).clamp(0.0, 1.0);
    let alpha = (1.0 - k).atanh() / rho;
    if audio_dominant {
        (k, 1.0, alpha)
    } else {
        (1.0, k, alpha)
    }
}

/// OGM-GE with a per-step alpha.
pub struct AdaptiveAlpha;

impl<B: AutodiffBackend> Method<B> for AdaptiveAlpha {
    fn gradients(&mut self, grads: &mut GradientsParams, ctx: &StepContext) -> Applied {
        if !ctx.active {
            return Applied::NOTHING;
        }
        let (k_a, k_v, alpha) = adaptive_coefficients(ctx.coeffs.ratio_a);
        modulate_encoders::<B>(ctx.audio_ids, ctx.visual_ids, Some((k_a, k_v)), true, grads);
        Applied { k_a, k_v, modulated: true, alpha: Some(alpha) }
    }
}
