//! Every fusion head gives fused and uni-modal logits of the right shape, finite, and the
//! uni-modal logits follow the definitions in `model.rs` (the reference's FiLM and gated
//! branches crash; ours must not).

use burn::prelude::*;
use burn::tensor::{Distribution, TensorData};
use trainer::model::{AvClassifier, FusionKind, ModelPreset};

type B = trainer::Backend;

fn values<const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec::<f32>().unwrap()
}

#[test]
fn every_fusion_head_has_finite_unimodal_logits_and_trains() {
    let device = Default::default();
    for kind in [FusionKind::Sum, FusionKind::Concat, FusionKind::Film, FusionKind::Gated] {
        let model = AvClassifier::<B>::new(ModelPreset::Tiny, kind, 5, &device);
        assert_eq!(model.fusion.kind(), kind);
        let audio = Tensor::<B, 4>::random([3, 1, 32, 24], Distribution::Normal(0.0, 1.0), &device);
        let frames = Tensor::<B, 4>::random([6, 3, 32, 32], Distribution::Normal(0.0, 1.0), &device);
        let out = model.forward(audio, frames);
        for (name, t) in [("fused", &out.fused), ("audio", &out.audio), ("visual", &out.visual)] {
            assert_eq!(t.dims(), [3, 5], "{kind:?} {name}");
            assert!(values(t.clone()).iter().all(|v| v.is_finite()), "{kind:?} {name}");
        }
        if matches!(kind, FusionKind::Sum) {
            // Sum fusion: the fused logits are exactly the sum of the uni-modal ones.
            let sum = values(out.audio.clone() + out.visual.clone());
            for (a, b) in sum.iter().zip(values(out.fused.clone())) {
                assert!((a - b).abs() < 1e-5);
            }
        }
        if matches!(kind, FusionKind::Concat) {
            // Concat: fused = audio + visual (each carries half the bias).
            let sum = values(out.audio.clone() + out.visual.clone());
            for (a, b) in sum.iter().zip(values(out.fused.clone())) {
                assert!((a - b).abs() < 1e-4, "{a} vs {b}");
            }
        }
        let y = Tensor::<B, 1, Int>::from_data(TensorData::new(vec![0i64, 3, 4], [3]), &device);
        let loss = burn::nn::loss::CrossEntropyLossConfig::new().init(&device).forward(out.fused, y);
        let grads = loss.backward();
        let params = burn::optim::GradientsParams::from_grads(grads, &model);
        assert!(params.len() > 40, "{kind:?}: gradients reach the encoders and the head ({})", params.len());
    }
}
