//! The balancing rule against the reference, and what it does to gradients.

use burn::module::{Module, ParamId};
use burn::optim::{GradientsParams, Optimizer, SgdConfig};
use burn::prelude::*;
use burn::tensor::TensorData;
use trainer::balance::{coefficients, encoder_conv_ids, Coefficients};
use trainer::methods::Balance;
use trainer::methods::{build, MethodParams, StepContext};
use trainer::model::{AvClassifier, FusionKind, ModelPreset};

type B = trainer::Backend;
type Inner = <B as burn::tensor::backend::AutodiffBackend>::InnerBackend;

#[test]
fn coefficients_match_the_reference_formula() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/goldens/ogm_coefficients.json");
    let golden: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let cases = golden["cases"].as_array().unwrap();
    let f32s = |v: &serde_json::Value| v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect::<Vec<_>>();
    let mut damped = [0, 0];
    for (i, c) in cases.iter().enumerate() {
        let labels: Vec<i64> = c["labels"].as_array().unwrap().iter().map(|x| x.as_i64().unwrap()).collect();
        let got =
            coefficients(&f32s(&c["audio_logits"]), &f32s(&c["visual_logits"]), &labels, c["classes"].as_u64().unwrap() as usize, c["alpha"].as_f64().unwrap());
        for (name, want, have) in [("k_a", &c["k_a"], got.k_a), ("k_v", &c["k_v"], got.k_v), ("ratio_a", &c["ratio_a"], got.ratio_a)] {
            let want = want.as_f64().unwrap();
            assert!((want - have).abs() <= 1e-6, "case {i} {name}: {have} vs reference {want}");
        }
        damped[usize::from(got.k_v < 1.0)] += 1;
    }
    assert!(damped[0] > 5 && damped[1] > 5, "both branches exercised: {damped:?}");
}

/// The same batch every call, from a local generator: the backend's RNG is global, and the tests
/// of this file run on parallel threads (a `B::seed` followed by `Tensor::random` raced with
/// the other tests' draws, so two calls could see different inputs).
fn batch(device: &burn::tensor::Device<B>) -> (Tensor<B, 4>, Tensor<B, 4>, Tensor<B, 1, Int>) {
    let mut rng = datasets::rng::Rng::new(3);
    let mut values = |n: usize| (0..n).map(|_| (2.0 * rng.uniform() - 1.0) as f32 * 1.7).collect::<Vec<f32>>();
    let audio = Tensor::from_data(TensorData::new(values(4 * 32 * 24), [4, 1, 32, 24]), device);
    let frames = Tensor::from_data(TensorData::new(values(8 * 3 * 32 * 32), [8, 3, 32, 32]), device);
    let labels = Tensor::from_data(TensorData::new(vec![0i64, 1, 2, 1], [4]), device);
    (audio, frames, labels)
}

fn grads_of(model: &AvClassifier<B>, device: &burn::tensor::Device<B>) -> GradientsParams {
    let (a, f, y) = batch(device);
    let out = model.forward(a, f);
    let loss = burn::nn::loss::CrossEntropyLossConfig::new().init(device).forward(out.fused, y);
    GradientsParams::from_grads(loss.backward(), model)
}

struct AllIds(Vec<(ParamId, usize)>);
impl<BB: Backend> burn::module::ModuleVisitor<BB> for AllIds {
    fn visit_float<const D: usize>(&mut self, p: &burn::module::Param<Tensor<BB, D>>) {
        self.0.push((p.id, D));
    }
}

fn flat(g: &GradientsParams, id: ParamId, rank: usize) -> Vec<f32> {
    let data = match rank {
        1 => g.get::<Inner, 1>(id).map(|t| t.into_data()),
        2 => g.get::<Inner, 2>(id).map(|t| t.into_data()),
        4 => g.get::<Inner, 4>(id).map(|t| t.into_data()),
        _ => None,
    };
    data.map(|d| d.to_vec::<f32>().unwrap()).unwrap_or_default()
}

/// A method's gradient edit of one step (`active`: inside the modulation window).
fn modulate(method: Balance, c: &Coefficients, active: bool, audio_ids: &[ParamId], visual_ids: &[ParamId], grads: &mut GradientsParams) {
    let params = MethodParams::new(0.8, 0);
    build::<B>(method, &params).gradients(
        grads,
        &StepContext { epoch: 0, batch: 0, batches: 0, active, coeffs: c, audio_ids, visual_ids, parts: &Default::default(), mean_feature: None },
    );
}

#[test]
fn ogm_scales_only_the_dominant_encoders_conv_weights() {
    let device = Default::default();
    let model = AvClassifier::<B>::new(ModelPreset::Tiny, FusionKind::Concat, 3, &device);
    let (audio_ids, visual_ids) = encoder_conv_ids(&model.audio_net, &model.visual_net);
    assert_eq!((audio_ids.len(), visual_ids.len()), (20, 20), "20 conv weights per ResNet18, as the reference");
    let reference = grads_of(&model, &device);
    let mut modulated = grads_of(&model, &device);
    let c = Coefficients { score_a: 3.0, score_v: 1.0, ratio_a: 3.0, k_a: 0.25, k_v: 1.0 };
    modulate(Balance::Ogm, &c, true, &audio_ids, &visual_ids, &mut modulated);
    let mut all = AllIds(Vec::new());
    model.visit(&mut all);
    let (mut scaled, mut same) = (0, 0);
    for (id, rank) in all.0 {
        let (r, m) = (flat(&reference, id, rank), flat(&modulated, id, rank));
        assert_eq!(r.len(), m.len());
        let k = if audio_ids.contains(&id) { 0.25 } else { 1.0 };
        for (x, y) in r.iter().zip(&m) {
            assert!((x * k - y).abs() <= 1e-6 * x.abs().max(1e-3), "param rank {rank}: {y} vs {x} * {k}");
        }
        if k < 1.0 {
            scaled += 1
        } else {
            same += 1
        }
    }
    assert_eq!(scaled, 20);
    assert!(same > 40, "BatchNorm, visual and fusion parameters untouched ({same})");
    // Outside the window nothing changes.
    let mut outside = grads_of(&model, &device);
    modulate(Balance::OgmGe, &c, false, &audio_ids, &visual_ids, &mut outside);
    assert_eq!(flat(&outside, audio_ids[0], 4), flat(&reference, audio_ids[0], 4));
}

fn std(v: &[f32]) -> f64 {
    let n = v.len() as f64;
    let m = v.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
    (v.iter().map(|&x| (f64::from(x) - m).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
}

#[test]
fn ge_noise_has_the_std_of_the_unscaled_gradient() {
    let device = Default::default();
    let model = AvClassifier::<B>::new(ModelPreset::Tiny, FusionKind::Concat, 3, &device);
    let (audio_ids, visual_ids) = encoder_conv_ids(&model.audio_net, &model.visual_net);
    let reference = grads_of(&model, &device);
    let mut noisy = grads_of(&model, &device);
    let c = Coefficients { score_a: 1.0, score_v: 2.0, ratio_a: 0.5, k_a: 1.0, k_v: 0.4 };
    modulate(Balance::OgmGe, &c, true, &audio_ids, &visual_ids, &mut noisy);
    // The biggest conv weights have thousands of values: the sample std is within a few percent.
    for (ids, k) in [(&audio_ids, 1.0f32), (&visual_ids, 0.4)] {
        let id = *ids.last().unwrap();
        let (g, out) = (flat(&reference, id, 4), flat(&noisy, id, 4));
        assert!(g.len() > 4000, "{}", g.len());
        let noise: Vec<f32> = out.iter().zip(&g).map(|(o, g)| o - k * g).collect();
        let ratio = std(&noise) / (std(&g) + 1e-8);
        assert!((ratio - 1.0).abs() < 0.05, "noise std / grad std = {ratio}");
        let mean = noise.iter().map(|&x| f64::from(x)).sum::<f64>() / noise.len() as f64;
        assert!(mean.abs() < 0.05 * std(&g), "noise mean {mean}");
    }
}

#[test]
fn an_optimiser_step_changes_the_parameters() {
    let device = Default::default();
    let model = AvClassifier::<B>::new(ModelPreset::Tiny, FusionKind::Sum, 3, &device);
    let grads = grads_of(&model, &device);
    assert!(!grads.is_empty());
    let w0 = first_conv(&model);
    let mut optim = SgdConfig::new().init::<B, AvClassifier<B>>();
    let model = optim.step(0.1, model, grads);
    let w1 = first_conv(&model);
    let changed = w0.iter().zip(&w1).filter(|(a, b)| a != b).count();
    assert!(changed > w0.len() / 2, "{changed} of {} weights changed", w0.len());
}

fn first_conv(model: &AvClassifier<B>) -> Vec<f32> {
    struct First(Option<Vec<f32>>);
    impl<BB: Backend> burn::module::ModuleVisitor<BB> for First {
        fn visit_float<const D: usize>(&mut self, p: &burn::module::Param<Tensor<BB, D>>) {
            if D == 4 && self.0.is_none() {
                self.0 = Some(p.val().into_data().to_vec::<f32>().unwrap());
            }
        }
    }
    let mut f = First(None);
    model.audio_net.visit(&mut f);
    f.0.unwrap()
}
