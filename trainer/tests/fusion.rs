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
    for kind in [FusionKind::Sum, FusionKind::Concat, FusionKind::Film, FusionKind::Gated, FusionKind::Binding] {
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
        if matches!(kind, FusionKind::Concat | FusionKind::Binding) {
            // Concat, binding: fused = audio + visual (each carries half the biases).
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

/// Sets every bias of the fusion head to a constant per layer: fc_x 0.3, fc_y -0.7, fc_out 0.1.
struct Biases(Vec<String>);
impl burn::module::ModuleMapper<B> for Biases {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.0.push(name.to_owned());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.0.pop();
    }
    fn map_float<const D: usize>(&mut self, param: burn::module::Param<Tensor<B, D>>) -> burn::module::Param<Tensor<B, D>> {
        let value = match self.0.first().map(String::as_str) {
            Some("fc_x") => 0.3,
            Some("fc_y") => -0.7,
            _ => 0.1,
        };
        if D != 1 {
            return param;
        }
        let (id, t, mapper) = param.consume();
        burn::module::Param::from_mapped_value(id, t.zeros_like().add_scalar(value), mapper)
    }
}

fn with_biases(kind: FusionKind) -> AvClassifier<B> {
    let mut m = AvClassifier::<B>::new(ModelPreset::Tiny, kind, 5, &Default::default());
    m.fusion = burn::module::Module::map(m.fusion, &mut Biases(Vec::new()));
    m
}

fn inputs(clips: usize) -> (Tensor<B, 4>, Tensor<B, 4>) {
    let device = Default::default();
    B::seed(&device, 5);
    (
        Tensor::<B, 4>::random([clips, 1, 32, 24], Distribution::Normal(0.0, 1.0), &device),
        Tensor::<B, 4>::random([clips * 2, 3, 32, 32], Distribution::Normal(0.0, 1.0), &device),
    )
}

#[test]
fn sum_fusion_gives_unimodal_logits_half_the_bias_at_evaluation_only() {
    use burn::module::AutodiffModule;
    let model = with_biases(FusionKind::Sum);
    let (audio, frames) = inputs(3);
    // Training (the reference's train step): each branch keeps its full bias.
    let out = model.forward(audio.clone(), frames.clone());
    let gap = values(out.fused - out.audio - out.visual);
    assert!(gap.iter().all(|g| g.abs() < 1e-5), "training: fused = audio + visual ({gap:?})");
    // Evaluation (the reference's valid()): bias / 2 on each, so fused = audio + visual + (b_x + b_y) / 2.
    let out = model.valid().forward(audio.inner(), frames.inner());
    let gap = (out.fused - out.audio - out.visual).into_data().to_vec::<f32>().unwrap();
    assert!(gap.iter().all(|g| (g - (0.3 - 0.7) / 2.0).abs() < 1e-5), "evaluation: {gap:?}");
}

#[test]
fn every_fusion_heads_logits_of_a_clip_do_not_depend_on_its_batch() {
    use burn::module::AutodiffModule;
    for kind in [FusionKind::Sum, FusionKind::Concat, FusionKind::Film, FusionKind::Gated, FusionKind::Binding] {
        // Evaluation mode: batch norm uses running statistics, so only the head could mix clips.
        let model = with_biases(kind).valid();
        let (audio, frames) = inputs(3);
        let (audio, frames) = (audio.inner(), frames.inner());
        let batch = model.forward(audio.clone(), frames.clone());
        let alone = model.forward(audio.narrow(0, 0, 1), frames.narrow(0, 0, 2));
        for (name, b, a) in [("fused", batch.fused, alone.fused), ("audio", batch.audio, alone.audio), ("visual", batch.visual, alone.visual)] {
            let (b, a) = (b.narrow(0, 0, 1).into_data().to_vec::<f32>().unwrap(), a.into_data().to_vec::<f32>().unwrap());
            for (x, y) in b.iter().zip(&a) {
                assert!((x - y).abs() < 1e-4, "{kind:?} {name}: clip 0 in a batch of 3 {b:?}, alone {a:?}");
            }
        }
    }
}
