//! `reference_step.py`'s OGM-GE step (two ResNet18 trunks, concat fusion, cross-entropy, the
//! coefficient rule with GE noise on the conv weights, SGD lr 1e-3 momentum 0.9 weight decay
//! 1e-4) written against burn 0.22.1 on Flex with Burn's own modules and gradients: what the
//! trainer's step would cost on that release before any of our Flex kernels were ported to it.
//!
//! Usage: bench-flex-next [--model tiny|paper] [--batch 16] [--steps 5] [--frames 3]
//!                        [--audio 257x188] [--balance ogm-ge|none] [--json FILE]
//! Prints one line like `bench-trainer`'s and writes the same JSON (`steps_ms`, `parts_ms`: forward,
//! backward, modulation, optimiser), so `cargo xtask bench trainer` tabulates it beside the others.

use std::collections::BTreeMap;
use std::time::Instant;

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, SgdConfig};
use burn::tensor::activation::{relu, softmax};
use burn::tensor::{Device, Distribution, Int, Tensor};

fn conv(cin: usize, cout: usize, k: usize, stride: usize, device: &Device) -> Conv2d {
    let p = k / 2;
    Conv2dConfig::new([cin, cout], [k, k]).with_stride([stride, stride]).with_padding(PaddingConfig2d::Explicit(p, p, p, p)).with_bias(false).init(device)
}

#[derive(Module, Debug)]
struct Block {
    conv1: Conv2d,
    bn1: BatchNorm,
    conv2: Conv2d,
    bn2: BatchNorm,
    down: Option<(Conv2d, BatchNorm)>,
}

impl Block {
    fn new(cin: usize, cout: usize, stride: usize, device: &Device) -> Self {
        let down = (stride != 1 || cin != cout).then(|| (conv(cin, cout, 1, stride, device), BatchNormConfig::new(cout).init(device)));
        Block {
            conv1: conv(cin, cout, 3, stride, device),
            bn1: BatchNormConfig::new(cout).init(device),
            conv2: conv(cout, cout, 3, 1, device),
            bn2: BatchNormConfig::new(cout).init(device),
            down,
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let out = relu(self.bn1.forward(self.conv1.forward(x.clone())));
        let out = self.bn2.forward(self.conv2.forward(out));
        let skip = match &self.down {
            Some((c, b)) => b.forward(c.forward(x)),
            None => x,
        };
        relu(out + skip)
    }
}

/// torchvision's ResNet18 without its pool and classifier.
#[derive(Module, Debug)]
struct Trunk {
    conv1: Conv2d,
    bn1: BatchNorm,
    pool: MaxPool2d,
    blocks: Vec<Block>,
}

impl Trunk {
    fn new(cin: usize, width: usize, device: &Device) -> Self {
        let mut blocks = Vec::new();
        let mut c = width;
        for (i, w) in [width, 2 * width, 4 * width, 8 * width].into_iter().enumerate() {
            blocks.push(Block::new(c, w, if i == 0 { 1 } else { 2 }, device));
            blocks.push(Block::new(w, w, 1, device));
            c = w;
        }
        Trunk {
            conv1: conv(cin, width, 7, 2, device),
            bn1: BatchNormConfig::new(width).init(device),
            pool: MaxPool2dConfig::new([3, 3]).with_strides([2, 2]).with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)).init(),
            blocks,
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut x = self.pool.forward(relu(self.bn1.forward(self.conv1.forward(x))));
        for b in &self.blocks {
            x = b.forward(x);
        }
        x
    }
}

#[derive(Module, Debug)]
struct AvClassifier {
    audio: Trunk,
    visual: Trunk,
    fc: Linear,
}

impl AvClassifier {
    /// The two embeddings and the fused logits.
    fn forward(&self, audio: Tensor<4>, frames: Tensor<4>, batch: usize) -> (Tensor<2>, Tensor<2>, Tensor<2>) {
        let a = self.audio.forward(audio).mean_dim(3).mean_dim(2).flatten::<2>(1, 3);
        let v = self.visual.forward(frames);
        let [n, d, h, w] = v.dims();
        let v = v.reshape([batch, n / batch, d, h * w]).mean_dim(3).mean_dim(1).flatten::<2>(1, 3);
        let out = self.fc.forward(Tensor::cat(vec![a.clone(), v.clone()], 1));
        (a, v, out)
    }
}

/// The ids of a trunk's 4-D parameters (its convolution weights), the ones OGM-GE edits.
struct ConvIds(Vec<ParamId>);

impl ModuleVisitor for ConvIds {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if D == 4 {
            self.0.push(param.id);
        }
    }
}

fn conv_ids(trunk: &Trunk) -> Vec<ParamId> {
    let mut ids = ConvIds(Vec::new());
    trunk.visit(&mut ids);
    ids.0
}

fn arg(args: &[String], flag: &str) -> Option<String> {
    args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).cloned()
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |flag: &str, default: usize| arg(&args, flag).map_or(default, |v| v.parse().unwrap_or_else(|_| panic!("{flag} {v}")));
    let model_name = arg(&args, "--model").unwrap_or_else(|| "paper".into());
    let (width, image) = match model_name.as_str() {
        "tiny" => (8, 64),
        "paper" => (64, 224),
        other => panic!("--model {other}: tiny or paper"),
    };
    let (batch, steps, frames) = (num("--batch", 16), num("--steps", 5), num("--frames", 3));
    let audio_shape = arg(&args, "--audio").unwrap_or_else(|| "257x188".into());
    let (f, t) = audio_shape.split_once('x').map(|(f, t)| (f.parse().unwrap(), t.parse().unwrap())).expect("--audio FxT");
    let balance = arg(&args, "--balance").unwrap_or_else(|| "ogm-ge".into());
    let classes = 6;
    let alpha = 0.8f32;

    let device = Device::flex().autodiff();
    device.seed(0);
    let mut model =
        AvClassifier { audio: Trunk::new(1, width, &device), visual: Trunk::new(3, width, &device), fc: LinearConfig::new(16 * width, classes).init(&device) };
    let (audio_ids, visual_ids) = (conv_ids(&model.audio), conv_ids(&model.visual));
    let mut optim = SgdConfig::new()
        .with_momentum(Some(MomentumConfig { momentum: 0.9, dampening: 0.0, nesterov: false }))
        .with_weight_decay(Some(WeightDecayConfig { penalty: 1e-4 }))
        .init();
    let loss_fn = CrossEntropyLossConfig::new().init(&device);

    // Read back after the timed steps: the steps really moved the weights.
    let first_conv = model.audio.conv1.weight.val();
    let mut totals = Vec::new();
    let mut parts: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for _ in 0..=steps {
        let audio = Tensor::<4>::random([batch, 1, f, t], Distribution::Normal(0.0, 1.0), &device);
        let video = Tensor::<4>::random([batch * frames, 3, image, image], Distribution::Normal(0.0, 1.0), &device);
        let labels: Vec<i64> = (0..batch as i64).map(|i| i % classes as i64).collect();
        let y = Tensor::<1, Int>::from_ints(labels.as_slice(), &device);
        device.sync().expect("sync");
        let start = Instant::now();
        let mut mark = start;
        let mut lap = |name: &'static str| {
            device.sync().expect("sync");
            let now = Instant::now();
            parts.entry(name).or_default().push((now - mark).as_secs_f64() * 1e3);
            mark = now;
        };

        let (a, v, out) = model.forward(audio, video, batch);
        let loss = loss_fn.forward(out, y.clone());
        lap("forward");
        let mut grads = GradientsParams::from_grads(loss.backward(), &model);
        lap("backward");
        if balance != "none" {
            let ws = 8 * width;
            let weight = model.fc.weight.val().detach();
            let bias = model.fc.bias.as_ref().expect("bias").val().detach() / 2.0;
            let score = |e: Tensor<2>, rows: std::ops::Range<usize>| -> f32 {
                let logits = e.detach().matmul(weight.clone().slice([rows, 0..classes])) + bias.clone().unsqueeze::<2>();
                softmax(logits, 1).gather(1, y.clone().unsqueeze_dim::<2>(1)).sum().into_scalar::<f32>()
            };
            let ratio_v = score(v, ws..2 * ws) / score(a, 0..ws);
            let (k_a, k_v) = if ratio_v > 1.0 { (1.0, 1.0 - (alpha * ratio_v).tanh()) } else { (1.0 - (alpha / ratio_v).tanh(), 1.0) };
            for (ids, k) in [(&audio_ids, k_a), (&visual_ids, k_v)] {
                for id in ids {
                    if let Some(g) = grads.remove::<4>(*id) {
                        let std = g.clone().flatten::<1>(0, 3).var(0).sqrt().into_scalar::<f32>() + 1e-8;
                        let noise = g.random_like(Distribution::Normal(0.0, std as f64));
                        grads.register::<4>(*id, g * k + noise);
                    }
                }
            }
        }
        lap("modulation");
        model = optim.step(1e-3, model, grads);
        lap("optimiser");
        totals.push((mark - start).as_secs_f64() * 1e3);
    }
    let moved = (model.audio.conv1.weight.val() - first_conv).abs().max().into_scalar::<f32>();
    assert!(moved > 0.0, "the audio trunk's first convolution did not change");
    let steady: Vec<String> = parts.iter().map(|(k, v)| format!("{k} {:.0}", median(&v[1..]))).collect();
    println!(
        "burn 0.22.1 Flex step: {model_name} batch {batch}, audio {f}x{t}, {frames} frames of {image}px, {balance}: first {:.0} ms, median {:.0} ms over {steps} steps (median parts, ms: {})",
        totals[0],
        median(&totals[1..]),
        steady.join(", ")
    );
    if let Some(file) = arg(&args, "--json") {
        let json = serde_json::json!({ "steps_ms": totals, "first_ms": totals[0], "median_ms": median(&totals[1..]), "parts_ms": parts });
        std::fs::write(&file, json.to_string()).unwrap_or_else(|e| panic!("writing {file}: {e}"));
    }
}
