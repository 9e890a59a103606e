//! `ogm-ge`: OGM plus Generalization Enhancement, the paper's method (the reference's
//! `--modulation OGM_GE`). Inside the modulation window each encoder's conv-weight gradients are
//! scaled as `ogm` does, then given `N(0, std(g) + 1e-8)` noise, `std` the unbiased std of the
//! unscaled gradient, on both encoders (the non-dominant one too).

use burn::optim::GradientsParams;
use burn::tensor::backend::AutodiffBackend;

use super::{Applied, Method, StepContext};
use crate::balance::modulate_encoders;

/// OGM-GE.
pub struct OgmGe;

impl<B: AutodiffBackend> Method<B> for OgmGe {
    fn gradients(&mut self, grads: &mut GradientsParams, ctx: &StepContext) -> Applied {
        if !ctx.active {
            return Applied::NOTHING;
        }
        let (k_a, k_v) = (ctx.coeffs.k_a, ctx.coeffs.k_v);
        modulate_encoders::<B>(ctx.audio_ids, ctx.visual_ids, Some((k_a, k_v)), true, grads);
        Applied { k_a, k_v, modulated: true, alpha: None }
    }
}
