//! `ge-only`: GE's noise without the modulation, the ablation the paper's discussion asks for
//! (does the noise alone help?). Inside the modulation window both encoders' conv-weight
//! gradients get `N(0, std(g) + 1e-8)` noise and are not scaled.

use burn::optim::GradientsParams;
use burn::tensor::backend::AutodiffBackend;

use super::{Applied, Method, StepContext};
use crate::balance::modulate_encoders;

/// Noise only.
pub struct GeOnly;

impl<B: AutodiffBackend> Method<B> for GeOnly {
    fn gradients(&mut self, grads: &mut GradientsParams, ctx: &StepContext) -> Applied {
        if !ctx.active {
            return Applied::NOTHING;
        }
        modulate_encoders::<B>(ctx.audio_ids, ctx.visual_ids, None, true, grads);
        Applied { k_a: 1.0, k_v: 1.0, modulated: true, alpha: None }
    }
}
