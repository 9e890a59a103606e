//! Three `ogm` training steps of the `tiny` classifier (concat fusion, no noise) against PyTorch,
//! end to end: forward, loss, uni-modal scores, ratio and coefficients, the scaled conv-weight
//! gradients going through the optimiser (SGD with the reference's momentum and weight decay, and
//! Adam with PyTorch's epsilon), then every parameter and batch-norm running statistic after each
//! step. Goldens: `goldens/make_step_goldens.py` (PyTorch in float64, from the same initial
//! weights and batches, which both sides generate from `datasets::rng`).

use std::collections::BTreeMap;

use burn::module::{AutodiffModule, Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::Optimizer;
use burn::prelude::*;
use burn::tensor::TensorData;
use datasets::rng::{fnv1a, Rng};
use serde_json::Value;
use trainer::balance::{encoder_conv_ids, Coefficients};
use trainer::driver::{train_step, StepTools};
use trainer::methods::Balance;
use trainer::methods::{build, MethodParams, StepContext};
use trainer::model::{AvClassifier, FusionKind, ModelPreset};
use trainer::task::Forward;

type B = trainer::Backend;

/// The PyTorch name of a Burn parameter path (`reference_step.py`'s module names).
fn torch_name(path: &str) -> String {
    path.replace("fusion.fc_out.", "fc_out.")
        .replace(".downsample.conv.", ".down.0.")
        .replace(".downsample.bn.", ".down.1.")
        .replace(".gamma", ".weight")
        .replace(".beta", ".bias")
}

fn uniform(name: &str, n: usize) -> Vec<f64> {
    let mut r = Rng::new(fnv1a(name));
    (0..n).map(|_| r.uniform()).collect()
}

/// `init_value` of the golden script, in PyTorch's shape and order.
fn init_value(name: &str, torch_shape: &[usize]) -> Vec<f32> {
    let u = uniform(&format!("init/{name}"), torch_shape.iter().product());
    let (weight, s) = (name.ends_with("weight"), torch_shape);
    let v: Vec<f64> = match (weight, s.len()) {
        (true, 4) => u.iter().map(|x| (2.0 / (s[0] * s[2] * s[3]) as f64).sqrt() * 3f64.sqrt() * (2.0 * x - 1.0)).collect(),
        (true, 2) => u.iter().map(|x| (2.0 / (s[0] + s[1]) as f64).sqrt() * 3f64.sqrt() * (2.0 * x - 1.0)).collect(),
        (true, _) => u.iter().map(|x| 1.0 + 0.2 * (x - 0.5)).collect(),
        (false, _) => u.iter().map(|x| 0.2 * (x - 0.5)).collect(),
    };
    v.into_iter().map(|x| x as f32).collect()
}

/// Burn's linear weight is `[in, out]`, PyTorch's `[out, in]`.
fn transpose(v: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    (0..cols * rows).map(|i| v[(i % rows) * cols + i / rows]).collect()
}

/// Module paths as `a.b.c` while mapping or visiting.
#[derive(Default)]
struct Path(Vec<String>);
impl Path {
    fn enter(&mut self, name: &str) {
        self.0.push(name.to_owned());
    }
    fn exit(&mut self) {
        self.0.pop();
    }
    fn torch(&self) -> String {
        torch_name(&self.0.join("."))
    }
}

/// Sets every parameter to the golden script's initial value (running statistics stay 0 / 1,
/// as PyTorch's).
struct Init(Path, usize);
impl<BB: Backend> ModuleMapper<BB> for Init {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.0.enter(name)
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.0.exit()
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<BB, D>>) -> Param<Tensor<BB, D>> {
        let name = self.0.torch();
        if name.ends_with("running_mean") || name.ends_with("running_var") {
            return param;
        }
        let (id, tensor, mapper) = param.consume();
        let shape = tensor.dims();
        let values = if D == 2 { transpose(&init_value(&name, &[shape[1], shape[0]]), shape[1], shape[0]) } else { init_value(&name, &shape) };
        self.1 += 1;
        let new = Tensor::from_data(TensorData::new(values, shape), &tensor.device());
        // A tensor made from data tracks no gradient: keep what the parameter had.
        let new = if tensor.is_require_grad() { new.require_grad() } else { new };
        Param::from_mapped_value(id, new, mapper)
    }
}

/// Every float tensor of a module by PyTorch name, in PyTorch's layout.
struct Collect(Path, BTreeMap<String, Vec<f32>>);
impl<BB: Backend> ModuleVisitor<BB> for Collect {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.0.enter(name)
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.0.exit()
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<BB, D>>) {
        let t = param.val();
        let shape = t.dims();
        let v = t.into_data().convert::<f32>().to_vec::<f32>().unwrap();
        let v = if D == 2 { transpose(&v, shape[0], shape[1]) } else { v };
        self.1.insert(self.0.torch(), v);
    }
}

/// Every tensor of `m` by PyTorch name (pass `model.valid()`: it syncs the batch-norm running
/// statistics, which a visitor of the training module may see one update late).
fn tensors<BB: Backend, M: Module<BB>>(m: &M) -> BTreeMap<String, Vec<f32>> {
    let mut c = Collect(Path::default(), BTreeMap::new());
    m.visit(&mut c);
    c.1
}

struct Golden {
    json: Value,
}

impl Golden {
    fn load() -> Self {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/goldens/three_steps.json");
        Self { json: serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap() }
    }
    fn usize(&self, key: &str) -> usize {
        self.json[key].as_u64().unwrap() as usize
    }
    fn f64(&self, key: &str) -> f64 {
        self.json[key].as_f64().unwrap()
    }
    /// Every tensor after `step` (0-based), by name.
    fn after(&self, optimizer: &str, step: usize) -> BTreeMap<String, Vec<f32>> {
        let bytes = std::fs::read(format!("{}/goldens/three_steps_{optimizer}.f32", env!("CARGO_MANIFEST_DIR"))).unwrap();
        let per = self.usize("values_per_step");
        assert_eq!(bytes.len(), 4 * per * 3, "three_steps_{optimizer}.f32 size");
        let all: Vec<f32> = bytes.chunks_exact(4).skip(step * per).take(per).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
        self.json["tensors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                let n: usize = t["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).product();
                let off = t["offset"].as_u64().unwrap() as usize;
                (t["name"].as_str().unwrap().to_owned(), all[off..off + n].to_vec())
            })
            .collect()
    }
}

/// The batch of `step`, as the golden script makes it.
fn batch(g: &Golden, step: usize, device: &burn::tensor::Device<B>) -> (Tensor<B, 4>, Tensor<B, 4>, Vec<i64>) {
    let (n, t, s, classes) = (g.usize("batch"), g.usize("frames"), g.usize("image"), g.usize("classes"));
    let audio_shape: Vec<usize> = g.json["audio"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
    let (f, w) = (audio_shape[0], audio_shape[1]);
    let audio: Vec<f32> = uniform(&format!("audio/{step}"), n * f * w).iter().map(|x| (2.0 * (2.0 * x - 1.0)) as f32).collect();
    let frames: Vec<f32> = uniform(&format!("frames/{step}"), n * t * 3 * s * s).iter().map(|x| (2.0 * x - 1.0) as f32).collect();
    let labels: Vec<i64> = uniform(&format!("labels/{step}"), n).iter().map(|x| (x * classes as f64) as i64).collect();
    (Tensor::from_data(TensorData::new(audio, [n, 1, f, w]), device), Tensor::from_data(TensorData::new(frames, [n * t, 3, s, s]), device), labels)
}

/// How far our parameters are from PyTorch's: elementwise, relative to the largest magnitude of
/// the tensor (parameters) or of the step's change to it (updates).
#[derive(Default)]
struct Gap {
    /// The largest parameter difference and where.
    param: (f64, String),
    /// The largest update difference over the values within `TOLERANCE`, and where.
    update: (f64, String),
    /// Values beyond `TOLERANCE`, of `values`.
    off: usize,
    values: usize,
}

const TOLERANCE: f64 = 1e-4;

impl Gap {
    fn add(&mut self, name: &str, step: usize, ours: &[f32], golden: &[f32], ours_before: &[f32], golden_before: &[f32]) {
        let scale = |v: &mut dyn Iterator<Item = f64>| v.fold(0f64, |m, x| m.max(x.abs())).max(1e-12);
        let p_scale = scale(&mut golden.iter().map(|&x| f64::from(x)));
        let u_scale = scale(&mut golden.iter().zip(golden_before).map(|(&a, &b)| f64::from(a) - f64::from(b)));
        for i in 0..ours.len() {
            let e = (f64::from(ours[i]) - f64::from(golden[i])).abs() / p_scale;
            self.values += 1;
            if e > self.param.0 {
                self.param = (e, format!("{name} after step {step}"));
            }
            if e > TOLERANCE {
                self.off += 1;
                continue;
            }
            let du = (f64::from(ours[i]) - f64::from(ours_before[i])) - (f64::from(golden[i]) - f64::from(golden_before[i]));
            if du.abs() / u_scale > self.update.0 {
                self.update = (du.abs() / u_scale, format!("{name} at step {step}"));
            }
        }
    }
}

/// Three steps from the golden's initial model and batches; returns the scalars' largest relative
/// difference and the parameters' gap.
fn three_steps<O: Optimizer<AvClassifier<B>, B>>(g: &Golden, optimizer: &str, mut optim: O) -> (f64, Gap) {
    let device = Default::default();
    let classes = g.usize("classes");
    let mut init = Init(Path::default(), 0);
    let model = AvClassifier::<B>::new(ModelPreset::Tiny, FusionKind::Concat, classes, &device).map(&mut init);
    // The same initial model as PyTorch's: each parameter's sum.
    let start = tensors(&model.valid());
    let sums = g.json["init_sums"].as_object().unwrap();
    assert_eq!(init.1, sums.len(), "every PyTorch parameter is set");
    for (name, want) in sums {
        let have: f64 = start[name].iter().map(|&x| f64::from(x)).sum();
        let want = want.as_f64().unwrap();
        assert!((have - want).abs() <= 1e-5 * want.abs().max(1.0), "{name}: initial sum {have} vs {want}");
    }
    let (audio_ids, visual_ids) = encoder_conv_ids(&model.audio_net, &model.visual_net);
    let alpha = g.f64("alpha");
    // OGM through the method interface and the driver's own step.
    let mut method = build::<B>(Balance::Ogm, &MethodParams::new(alpha, 0));
    let ce = burn::nn::loss::CrossEntropyLossConfig::new().init(&device);
    let mut model = model;
    let (mut worst_scalar, mut gap) = (0f64, Gap::default());
    let (mut ours_before, mut golden_before) = (start.clone(), start);
    for step in 0..3 {
        let want = &g.json[optimizer][step];
        let (audio, frames, labels) = batch(g, step, &device);
        let out = model.forward(audio, frames);
        let y = Tensor::<B, 1, Int>::from_data(TensorData::new(labels.clone(), [labels.len()]), &device);
        let out =
            Forward { trained: out.fused.clone(), logits: out, features: None, aux_loss: None, targets: y, labels: labels.clone(), samples: labels.len() };
        let ctx = StepContext {
            epoch: 0,
            batch: 0,
            batches: 0,
            active: true,
            coeffs: &Coefficients::default(),
            audio_ids: &audio_ids,
            visual_ids: &visual_ids,
            parts: &Default::default(),
            mean_feature: None,
        };
        let tools = StepTools { optim: &mut optim, lr: g.f64("lr"), method: method.as_mut(), ce: &ce, alpha, ctx };
        let (next, loss_value, c, _) = train_step(model, out, tools);
        model = next;
        for (what, have) in [("loss", loss_value), ("score_a", c.score_a), ("score_v", c.score_v), ("ratio_a", c.ratio_a), ("k_a", c.k_a), ("k_v", c.k_v)] {
            let w = want[what].as_f64().unwrap();
            worst_scalar = worst_scalar.max((have - w).abs() / w.abs().max(1e-3));
            assert!((have - w).abs() <= TOLERANCE * w.abs().max(1e-3), "{optimizer} step {step}: {what} {have} vs PyTorch {w}");
        }
        let after = tensors(&model.valid());
        let golden = g.after(optimizer, step);
        assert_eq!(after.keys().collect::<Vec<_>>(), golden.keys().collect::<Vec<_>>(), "{optimizer}: the same tensors");
        for (name, gv) in &golden {
            gap.add(name, step, &after[name], gv, &ours_before[name], &golden_before[name]);
        }
        (ours_before, golden_before) = (after, golden);
    }
    println!(
        "{optimizer}: largest relative difference of loss, scores, ratio, coefficients {worst_scalar:.1e}; parameters: {} of {} values beyond {TOLERANCE:.0e} \
         (largest {:.1e}, {}); updates of the others within {:.1e} ({})",
        gap.off, gap.values, gap.param.0, gap.param.1, gap.update.0, gap.update.1
    );
    (worst_scalar, gap)
}

#[test]
fn three_ogm_steps_with_sgd_match_pytorch() {
    let g = Golden::load();
    let (_, gap) = three_steps(&g, "sgd", trainer::optim::sgd(g.f64("momentum"), g.f64("weight_decay")).init::<B, AvClassifier<B>>());
    assert_eq!(gap.off, 0, "every parameter within {TOLERANCE:.0e}: largest {:.1e} ({})", gap.param.0, gap.param.1);
    assert!(gap.update.0 <= 1e-2, "updates {:.1e} apart ({})", gap.update.0, gap.update.1);
}

/// Adam's update is `lr * m / (sqrt(v) + eps)`: where a value's whole gradient (weight decay
/// included) is within float32 rounding of zero, its update is decided by that rounding, in
/// PyTorch as here. Those values (a few in 10^5) may differ by up to 2 lr; every other one must be
/// within the tolerance. Burn's default eps (1e-5 instead of 1e-8) puts thousands of values off.
/// The golden's lr is 5e-4: at 1e-3 its third step sat on a kink. One weight of the audio
/// encoder's `blocks.6.conv1`, moved 1.1e-4 by such a rounding-decided update, changed the
/// outcome from 16 to 11885 values off. Flex passed and LibTorch failed only by which side of
/// the kink their rounding fell on. How many values rounding decides depends on each side's
/// summation order: Flex with its own forward convolution (`flex_conv`, PyTorch's im2col order)
/// puts 267 of 1,066,668 off (2.5 in 10^4; 16 with Flex's channels-last convolution), with the
/// step's scalars within 4e-6 and the SGD test at 0 off: up to 5 in 10^4 may be.
#[test]
fn three_ogm_steps_with_adam_match_pytorch() {
    let g = Golden::load();
    let (_, gap) = three_steps(&g, "adam", trainer::optim::adam(g.f64("weight_decay")).init::<B, AvClassifier<B>>());
    assert!(gap.off * 2_000 <= gap.values, "{} of {} values beyond {TOLERANCE:.0e}", gap.off, gap.values);
    assert!(gap.param.0 <= 2.0 * 2.0 * g.f64("lr") / 0.05, "largest difference {:.1e} ({})", gap.param.0, gap.param.1);
    // The same rounding reaches the updates of values near those (within the parameter tolerance).
    assert!(gap.update.0 <= 5e-2, "updates {:.1e} apart ({})", gap.update.0, gap.update.1);
}
