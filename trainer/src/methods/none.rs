//! `none`: joint training, cross-entropy on the fused logits, gradients untouched (the paper's
//! baseline rows). Every hook of [`Method`] keeps its default.

use burn::tensor::backend::AutodiffBackend;

use super::Method;

/// Plain joint training.
pub struct Joint;

impl<B: AutodiffBackend> Method<B> for Joint {}
