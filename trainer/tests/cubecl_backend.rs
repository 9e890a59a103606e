//! The GPU code path on a machine without a GPU: one OGM training step of the `tiny` model on
//! CubeCL's WebGPU/Vulkan runtime (the kernels CUDA runs too, compiled for Vulkan; on CI, Mesa's
//! lavapipe CPU driver) against the same step on Flex, from the same weights and inputs. Logits,
//! coefficients, the modulated conv gradients of both encoders, and the model after the SGD
//! update (evaluation mode: batch-norm running statistics included) must agree to float
//! round-off: the two backends sum in different orders, nothing else may differ.
//!
//! Built only with `--features wgpu` (`cargo xtask test` runs it so).
#![cfg(feature = "wgpu")]

use burn::backend::{Autodiff, Flex, Wgpu};
use burn::module::AutodiffModule;
use burn::optim::{GradientsParams, Optimizer, SgdConfig};
use burn::prelude::*;
use burn::record::{BinBytesRecorder, FullPrecisionSettings, Recorder};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::TensorData;
use trainer::balance::{coefficients, encoder_conv_ids, logits_vec, modulate, Balance, Coefficients};
use trainer::model::{AvClassifier, FusionKind, ModelPreset};

const BATCH: usize = 4;
const FRAMES: usize = 2;
const CLASSES: usize = 6;
const AUDIO: [usize; 2] = [64, 48];

/// Deterministic inputs (a fixed LCG, no backend RNG) and labels.
fn inputs() -> (TensorData, TensorData, Vec<i64>) {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    };
    let image = ModelPreset::Tiny.image_size();
    let audio: Vec<f32> = (0..BATCH * AUDIO[0] * AUDIO[1]).map(|_| next()).collect();
    let frames: Vec<f32> = (0..BATCH * FRAMES * 3 * image * image).map(|_| next()).collect();
    let labels = (0..BATCH as i64).map(|k| (k * 5) % CLASSES as i64).collect();
    (
        TensorData::new(audio, [BATCH, 1, AUDIO[0], AUDIO[1]]),
        TensorData::new(frames, [BATCH * FRAMES, 3, image, image]),
        labels,
    )
}

/// What one step produced, brought back to the host.
struct StepOutcome {
    logits: [Vec<f32>; 3],
    coefficients: Coefficients,
    /// The modulated gradients of every conv weight of both encoders, in visiting order.
    grads: Vec<Vec<f32>>,
    /// Evaluation-mode logits of the updated model on the same inputs.
    after: [Vec<f32>; 3],
}

fn step<B: AutodiffBackend>(weights: &[u8], device: &B::Device) -> StepOutcome {
    let recorder = BinBytesRecorder::<FullPrecisionSettings>::default();
    let record = recorder.load(weights.to_vec(), device).expect("weights load");
    let model = AvClassifier::<B>::new(ModelPreset::Tiny, FusionKind::Concat, CLASSES, device).load_record(record);
    let (audio, frames, labels) = inputs();
    let (audio, frames) = (Tensor::<B, 4>::from_data(audio, device), Tensor::<B, 4>::from_data(frames, device));
    let out = model.forward(audio.clone(), frames.clone());
    let logits = [logits_vec(out.fused.clone()), logits_vec(out.audio.clone()), logits_vec(out.visual.clone())];
    let c = coefficients(&logits[1], &logits[2], &labels, CLASSES, 0.8);
    let y = Tensor::<B, 1, Int>::from_data(TensorData::new(labels, [BATCH]), device);
    let loss = burn::nn::loss::CrossEntropyLossConfig::new().init(device).forward(out.fused, y);
    let (ia, iv) = encoder_conv_ids(&model.audio_net, &model.visual_net);
    let mut grads = GradientsParams::from_grads(loss.backward(), &model);
    modulate::<B>(Balance::Ogm, &c, true, &ia, &iv, &mut grads);
    let grads_host = ia.iter().chain(&iv).map(|&id| logits_vec(grads.get::<B::InnerBackend, 4>(id).expect("conv gradient"))).collect();
    let model = SgdConfig::new().init::<B, AvClassifier<B>>().step(1e-2, model, grads);
    let eval = model.valid();
    let o = eval.forward(audio.inner(), frames.inner());
    StepOutcome { logits, coefficients: c, grads: grads_host, after: [logits_vec(o.fused), logits_vec(o.audio), logits_vec(o.visual)] }
}

/// Largest |a - b| relative to the largest |b| of the vector (a scale-free comparison: a
/// gradient's small entries carry the round-off of its large ones).
fn rel_error(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0f32, |m, x| m.max(x.abs())).max(1e-12);
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale
}

#[test]
fn an_ogm_step_on_cubecl_matches_flex() {
    let flex_device = Default::default();
    let reference = AvClassifier::<Autodiff<Flex>>::new(ModelPreset::Tiny, FusionKind::Concat, CLASSES, &flex_device);
    let weights = BinBytesRecorder::<FullPrecisionSettings>::default().record(reference.into_record(), ()).expect("weights");
    let cpu = step::<Autodiff<Flex>>(&weights, &flex_device);
    let gpu = step::<Autodiff<Wgpu>>(&weights, &Default::default());

    for (what, a, b) in [("fused", 0), ("audio", 1), ("visual", 2)].map(|(w, i)| (w, &gpu.logits[i], &cpu.logits[i])) {
        let e = rel_error(a, b);
        eprintln!("{what} logits: relative difference {e:e}");
        assert!(e < 1e-4, "{what} logits differ by {e:e} (relative)");
    }
    let (c, d) = (gpu.coefficients, cpu.coefficients);
    for (what, x, y) in [("ratio", c.ratio_a, d.ratio_a), ("k_a", c.k_a, d.k_a), ("k_v", c.k_v, d.k_v)] {
        assert!((x - y).abs() <= 1e-5 * y.abs().max(1.0), "{what}: {x} vs {y}");
    }
    assert!(c.k_a < 1.0 || c.k_v < 1.0, "the step must modulate one encoder: {c:?}");
    assert_eq!(gpu.grads.len(), cpu.grads.len());
    let mut worst = 0f32;
    for (k, (a, b)) in gpu.grads.iter().zip(&cpu.grads).enumerate() {
        let e = rel_error(a, b);
        worst = worst.max(e);
        assert!(e < 1e-3, "conv gradient {k} differs by {e:e} (relative)");
    }
    eprintln!("largest relative difference of a conv gradient: {worst:e}");
    for (what, a, b) in [("fused", 0), ("audio", 1), ("visual", 2)].map(|(w, i)| (w, &gpu.after[i], &cpu.after[i])) {
        let e = rel_error(a, b);
        eprintln!("{what} logits after the update: relative difference {e:e}");
        assert!(e < 1e-3, "{what} logits after the update differ by {e:e} (relative)");
    }
}
