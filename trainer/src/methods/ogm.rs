//! `ogm`: On-the-fly Gradient Modulation without noise (the reference's `--modulation OGM`).
//! Inside the modulation window each encoder's conv-weight gradients (rank 4) are scaled by its
//! coefficient: the dominant modality's `1 - tanh(alpha * relu(ratio))` (audio at a tie), the
//! other's 1 (ogm-ge-reference.md section 5.2; the coefficients are `balance::coefficients`).

use burn::optim::GradientsParams;
use burn::tensor::backend::AutodiffBackend;

use super::{Applied, Method, StepContext};
use crate::balance::modulate_encoders;

/// OGM.
pub struct Ogm;

impl<B: AutodiffBackend> Method<B> for Ogm {
    fn gradients(&mut self, grads: &mut GradientsParams, ctx: &StepContext) -> Applied {
        modulate_with_rule::<B>(grads, ctx, false)
    }
}

/// The rule's coefficients on both encoders' conv gradients inside the window, with GE's noise
/// when `noise` (`ogm-ge`); what was applied.
pub(super) fn modulate_with_rule<B: AutodiffBackend>(grads: &mut GradientsParams, ctx: &StepContext, noise: bool) -> Applied {
    if !ctx.active {
        return Applied::NOTHING;
    }
    let (k_a, k_v) = (ctx.coeffs.k_a, ctx.coeffs.k_v);
    modulate_encoders::<B>(ctx.audio_ids, ctx.visual_ids, Some((k_a, k_v)), noise, grads);
    Applied { k_a, k_v, modulated: true, alpha: None }
}
