//! The OGM rule's parts, exactly as the reference's current rule (ogm-ge-reference.md section
//! 5.2), which the OGM family of methods (`methods/ogm.rs`, `ogm_ge.rs`, `ge_only.rs`,
//! `adaptive_alpha.rs`) put together; and what a step and an epoch log of any method:
//!
//! - scores: batch sums of the true-class softmax of each modality's uni-modal logits;
//! - `ratio_v = score_v / score_a`, `ratio_a = 1 / ratio_v`;
//! - the dominant modality (`ratio > 1`; audio at a tie) gets `k = 1 - tanh(alpha * relu(ratio))`,
//!   the other `k = 1`;
//! - while `start <= epoch <= end` (inclusive): each encoder's conv-weight gradients (rank 4) are
//!   scaled by its `k` (`ogm`, `ogm-ge`), and `ogm-ge` / `ge-only` add `N(0, std(g) + 1e-8)` noise
//!   to both encoders' conv-weight gradients, `std` being the unbiased std of the unscaled tensor.
//!   BatchNorm and fusion parameters are never touched.

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use serde::{Deserialize, Serialize};

/// One step's scores, ratio and coefficients.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Coefficients {
    pub score_a: f64,
    pub score_v: f64,
    /// `score_a / score_v`.
    pub ratio_a: f64,
    pub k_a: f64,
    pub k_v: f64,
}

/// `softmax(logits_i)[y_i]` of each row of row-major `[B, classes]` logits.
pub fn true_class_probabilities<'a>(logits: &'a [f32], labels: &'a [i64], classes: usize) -> impl Iterator<Item = f64> + 'a {
    labels.iter().enumerate().map(move |(i, &y)| {
        let row = &logits[i * classes..(i + 1) * classes];
        let max = row.iter().fold(f64::NEG_INFINITY, |m, &x| m.max(f64::from(x)));
        let z: f64 = row.iter().map(|&x| (f64::from(x) - max).exp()).sum();
        (f64::from(row[y as usize]) - max).exp() / z
    })
}

/// `sum_i softmax(logits_i)[y_i]`: a modality's OGM score over a batch.
pub fn true_class_softmax_sum(logits: &[f32], labels: &[i64], classes: usize) -> f64 {
    true_class_probabilities(logits, labels, classes).sum()
}

/// The coefficient rule on row-major `[B, classes]` uni-modal logits.
pub fn coefficients(audio_logits: &[f32], visual_logits: &[f32], labels: &[i64], classes: usize, alpha: f64) -> Coefficients {
    let score_a = true_class_softmax_sum(audio_logits, labels, classes);
    let score_v = true_class_softmax_sum(visual_logits, labels, classes);
    let ratio_v = score_v / score_a;
    let ratio_a = 1.0 / ratio_v;
    let (k_a, k_v) = if ratio_v > 1.0 { (1.0, 1.0 - (alpha * ratio_v.max(0.0)).tanh()) } else { (1.0 - (alpha * ratio_a.max(0.0)).tanh(), 1.0) };
    Coefficients { score_a, score_v, ratio_a, k_a, k_v }
}

/// Collects the ids of rank-4 (conv weight) parameters of a module.
#[derive(Default)]
pub struct ConvWeightIds(pub Vec<ParamId>);

impl<B: Backend> ModuleVisitor<B> for ConvWeightIds {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if D == 4 {
            self.0.push(param.id);
        }
    }
}

/// Conv-weight ids of the audio and visual encoders.
pub fn encoder_conv_ids<B: Backend, A: Module<B>, V: Module<B>>(audio: &A, visual: &V) -> (Vec<ParamId>, Vec<ParamId>) {
    let (mut a, mut v) = (ConvWeightIds::default(), ConvWeightIds::default());
    audio.visit(&mut a);
    visual.visit(&mut v);
    (a.0, v.0)
}

/// Unbiased std of a tensor, as `torch.std`.
fn std_unbiased<B: Backend>(g: &Tensor<B, 4>) -> f64 {
    let n = g.dims().iter().product::<usize>() as f64;
    let mean = g.clone().mean();
    let ss: f64 = (g.clone() - mean.unsqueeze()).powi_scalar(2).sum().into_scalar().elem();
    (ss / (n - 1.0).max(1.0)).sqrt()
}

/// The OGM rule on `grads`: each encoder's conv-weight gradients scaled by its coefficient
/// (`scale`: `(k_a, k_v)`) and/or given `N(0, std(g) + 1e-8)` noise (`noise`), `std` the unbiased
/// std of the unscaled tensor, in place of the reference's loop over `named_parameters`.
pub fn modulate_encoders<B: AutodiffBackend>(
    audio_ids: &[ParamId],
    visual_ids: &[ParamId],
    scale: Option<(f64, f64)>,
    noise: bool,
    grads: &mut GradientsParams,
) {
    let (k_a, k_v) = scale.unwrap_or((1.0, 1.0));
    for (ids, k) in [(audio_ids, k_a), (visual_ids, k_v)] {
        for &id in ids {
            let Some(g) = grads.remove::<B::InnerBackend, 4>(id) else { continue };
            let mut out = if scale.is_some() { g.clone() * k } else { g.clone() };
            if noise {
                let std = std_unbiased(&g) + 1e-8;
                out = out + crate::noise::normal_like(&g, std);
            }
            grads.register::<B::InnerBackend, 4>(id, out);
        }
    }
}

/// A tensor's values as `f32`, row-major (logits brought back from the device).
pub fn logits_vec<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec::<f32>().expect("f32 logits")
}

/// What a step's gradient edit applied, as `steps.jsonl` records it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Applied {
    /// The factors the encoders' conv gradients were scaled by (1: untouched).
    pub k_a: f64,
    pub k_v: f64,
    /// Whether the gradients were changed (scaled or noised).
    pub modulated: bool,
    /// The alpha the step chose, for a method that chooses one.
    pub alpha: Option<f64>,
}

impl Applied {
    pub const NOTHING: Applied = Applied { k_a: 1.0, k_v: 1.0, modulated: false, alpha: None };
}
