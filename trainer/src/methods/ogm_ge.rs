//! `ogm-ge`: OGM plus Generalization Enhancement, the paper's method (the reference's
//! `--modulation OGM_GE`). Inside the modulation window each encoder's conv-weight gradients are
//! scaled as `ogm` does, then given `N(0, std(g) + 1e-8)` noise, `std` the unbiased std of the
//! unscaled gradient, on both encoders (the non-dominant one too).

use burn::optim::GradientsParams;
use burn::tensor::backend::AutodiffBackend;

use super::ogm::modulate_with_rule;
use super::{Applied, Method, StepContext};

/// OGM-GE.
pub struct OgmGe;

impl<B: AutodiffBackend> Method<B> for OgmGe {
    fn gradients(&mut self, grads: &mut GradientsParams, ctx: &StepContext) -> Applied {
        modulate_with_rule::<B>(grads, ctx, true)
    }
}
