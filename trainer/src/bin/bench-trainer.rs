//! `cargo xtask bench trainer`: the loader's samples/s alone (one training epoch, decode and
//! augmentation included), and the median ms per OGM-GE training step of a model preset on
//! random inputs of a given shape.
//!
//! Usage: bench-trainer [--data out/synthetic] [--model tiny|paper] [--batch 16] [--steps 5]
//!                      [--audio 257x188] [--frames 3] [--balance none|ogm-ge]
//!        bench-trainer --localizer [--model tiny|paper] [--batch 16] [--steps 5] [--audio 257x100]
//!   (--localizer: the AVE localizer's step, `batch` clips of 10 one-second segments)
//!        bench-trainer --methods none,ogm-ge,mmpareto [--archs plain,tsn,tsm,tbn] [--data out/synthetic] [--epochs 3]
//!   (--methods: each method (on each architecture, default plain) trains `trainer compare`'s
//!    default run (tiny, batch 32, 2 frames, SGD lr 1e-2) one after another on the data, and its
//!    mean training-step time over the epochs after the first is reported against the first one's)
//!        bench-trainer --smoke
//!   (--smoke: times each first: device, a reduction, a conv forward/backward, one tiny step;
//!    the first thing to run on a new GPU machine, with CUBECL_DEBUG_LOG=stderr)

use std::time::Instant;

use anyhow::{Context, Result};
use burn::optim::{GradientsParams, Optimizer, SgdConfig};
use burn::prelude::*;
use burn::tensor::{Distribution, TensorData};
use datasets::Split;
use trainer::balance::{coefficients, encoder_conv_ids, Balance};
use trainer::data::{LoaderConfig, ShardSet, Subset};
use trainer::methods::{build, MethodParams, StepContext};
use trainer::model::{AvClassifier, FusionKind, ModelPreset};

type B = trainer::Backend;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let get = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).cloned();
    let model = match get("--model").as_deref() {
        Some("paper") => ModelPreset::Paper,
        _ => ModelPreset::Tiny,
    };
    let batch: usize = get("--batch").map_or(Ok(16), |v| v.parse())?;
    let steps: usize = get("--steps").map_or(Ok(5), |v| v.parse())?;
    let frames: usize = get("--frames").map_or(Ok(3), |v| v.parse())?;
    let image = model.image_size();
    let balance = match get("--balance").as_deref() {
        Some("none") => Balance::None,
        _ => Balance::OgmGe,
    };

    if let Some(methods) = get("--methods") {
        let data = get("--data").unwrap_or_else(|| "out/synthetic".into());
        let epochs: usize = get("--epochs").map_or(Ok(3), |v| v.parse())?;
        let archs = get("--archs").unwrap_or_else(|| "plain".into());
        return bench_methods(&archs, &methods, &data, epochs, batch_or(&get, 32)?);
    }

    if let Some(data) = get("--data") {
        let set = ShardSet::open(data.as_ref(), Split::Train)?;
        let cfg = LoaderConfig {
            batch_size: batch,
            frames,
            image_size: image as u32,
            train: true,
            seed: 0,
            shuffle_buffer: 1024,
            audio_crop: None,
            prefetch: 2,
            subset: Subset::All,
        };
        let t = Instant::now();
        let mut n = 0;
        for b in set.epoch(&cfg, 0) {
            n += b?.len();
        }
        let s = t.elapsed().as_secs_f64();
        println!("loader: {n} samples in {s:.2} s = {:.0} samples/s ({} threads, {frames} frames of {image}px)", n as f64 / s, rayon::current_num_threads());
    }

    let (f, t) = get("--audio")
        .map(|s| {
            let (a, b) = s.split_once('x').context("--audio FxT")?;
            Ok::<_, anyhow::Error>((a.parse()?, b.parse()?))
        })
        .transpose()?
        .unwrap_or((257, 188));
    let device = Default::default();
    if args.iter().any(|a| a == "--smoke") {
        return smoke(&device);
    }
    if args.iter().any(|a| a == "--localizer") {
        let (f, t) = if get("--audio").is_some() { (f, t) } else { (257, 100) };
        return bench_localizer(model, batch, steps, f, t, balance, &device);
    }
    let mut m = AvClassifier::<B>::new(model, FusionKind::Concat, 6, &device);
    let (ia, iv) = encoder_conv_ids(&m.audio_net, &m.visual_net);
    let mut optim = SgdConfig::new().init::<B, AvClassifier<B>>();
    let ce = burn::nn::loss::CrossEntropyLossConfig::new().init(&device);
    let mut times = Vec::new();
    for i in 0..steps + 1 {
        let audio = Tensor::<B, 4>::random([batch, 1, f, t], Distribution::Normal(0.0, 1.0), &device);
        let vis = Tensor::<B, 4>::random([batch * frames, 3, image, image], Distribution::Normal(0.0, 1.0), &device);
        let labels: Vec<i64> = (0..batch as i64).map(|k| k % 6).collect();
        let y = Tensor::from_data(TensorData::new(labels.clone(), [batch]), &device);
        let start = Instant::now();
        let out = m.forward(audio, vis);
        let loss = ce.forward(out.fused.clone(), y);
        let la = out.audio.detach().into_data().convert::<f32>().to_vec::<f32>().unwrap();
        let lv = out.visual.detach().into_data().convert::<f32>().to_vec::<f32>().unwrap();
        let c = coefficients(&la, &lv, &labels, 6, 0.8);
        let mut g = GradientsParams::from_grads(loss.backward(), &m);
        modulate(balance, &c, &ia, &iv, &mut g);
        m = optim.step(1e-3, m, g);
        // Wait for the device (CUDA runs asynchronously) before stopping the clock.
        B::sync(&device).context("device sync")?;
        let ms = start.elapsed().as_secs_f64() * 1000.0;
        // Each step as it ends: a run cut short by a timeout still says how far it got (the
        // first step includes compiling the kernels on a GPU).
        eprintln!("step {i}: {ms:.0} ms{}", if i == 0 { " (first: kernel compilation, autotuning)" } else { "" });
        if i > 0 {
            times.push(ms);
        }
    }
    times.sort_by(f64::total_cmp);
    println!(
        "step: {model:?} batch {batch}, audio {f}x{t}, {frames} frames of {image}px, {balance:?}: median {:.0} ms over {steps} steps",
        times[times.len() / 2]
    );
    Ok(())
}

fn batch_or(get: &dyn Fn(&str) -> Option<String>, default: usize) -> Result<usize> {
    Ok(get("--batch").map_or(Ok(default), |v| v.parse())?)
}

/// Each method's mean training-step time (`step_seconds` of `epochs.jsonl`, epochs after the
/// first) on `trainer compare`'s default run, one run after another in this process; the ratio is
/// against the first method. UMT's teachers train first and are timed apart.
fn bench_methods(archs: &str, methods: &str, data: &str, epochs: usize, batch: usize) -> Result<()> {
    use trainer::train::{train, TrainConfig};
    let out = std::env::temp_dir().join(format!("bench-methods-{}", std::process::id()));
    let device = Default::default();
    let mut base = None;
    let runs: Vec<(&str, &str)> = archs.split(',').flat_map(|a| methods.split(',').map(move |m| (a, m))).collect();
    println!("| arch | method | ms per step | vs {} {} | fused test acc after {epochs} epochs |", runs[0].0, runs[0].1);
    println!("|---|---|---|---|---|");
    for (a, m) in runs {
        let balance: Balance = clap::ValueEnum::from_str(m, false).map_err(|e| anyhow::anyhow!("--methods: {e}"))?;
        let arch: trainer::arch::Arch = clap::ValueEnum::from_str(a, false).map_err(|e| anyhow::anyhow!("--archs: {e}"))?;
        let fusion = arch.needs_fusion().or(balance.needs_fusion()).unwrap_or(FusionKind::Concat);
        let cfg: TrainConfig = serde_json::from_value(serde_json::json!({
            "data": data, "out": out, "name": format!("{a}-{m}"), "model": "tiny", "arch": arch, "fusion": fusion, "balance": balance, "alpha": 0.8,
            "modulation_start": 0, "modulation_end": 50, "epochs": epochs, "batch_size": batch, "lr": 0.01, "momentum": 0.9,
            "weight_decay": 1e-4, "lr_step": 70, "lr_gamma": 0.1, "frames": 2, "seed": 0, "val_fraction": 0.1,
            "select_on_test": false, "shuffle_buffer": 1024,
        }))?;
        let t = Instant::now();
        let summary = train::<B>(&cfg, &device, false, false)?;
        let seconds: Vec<f64> = std::fs::read_to_string(summary.run_dir.join("epochs.jsonl"))?
            .lines()
            .skip(1)
            .map(|l| Ok(serde_json::from_str::<serde_json::Value>(l)?["step_seconds"].as_f64().unwrap_or(f64::NAN)))
            .collect::<Result<_>>()?;
        let ms = 1000.0 * seconds.iter().sum::<f64>() / seconds.len().max(1) as f64;
        let base_ms = *base.get_or_insert(ms);
        println!("| {a} | {m} | {ms:.0} | {:.2}x | {:.3} |", ms / base_ms, summary.last.fused.accuracy);
        eprintln!("{a} {m}: {:.1} s in all (UMT: with its two teachers' runs)", t.elapsed().as_secs_f64());
    }
    std::fs::remove_dir_all(&out).ok();
    Ok(())
}

/// Median ms per localizer training step (Adam, per-segment CE, the balancing rule) on random
/// inputs: `batch` clips x 10 segments of `f` x `t` audio and one frame each.
fn bench_localizer(model: ModelPreset, batch: usize, steps: usize, f: usize, t: usize, balance: Balance, device: &burn::tensor::Device<B>) -> Result<()> {
    use burn::optim::AdamConfig;
    use trainer::localize::model::{AvLocalizer, LocalizerSize};
    let segments = 10;
    let n = batch * segments;
    let image = LocalizerSize::of(model).image;
    let mut m = AvLocalizer::<B>::new(model, 29, device);
    let (ia, iv) = encoder_conv_ids(&m.audio_net, &m.visual_net);
    let mut optim = AdamConfig::new().init::<B, AvLocalizer<B>>();
    let ce = burn::nn::loss::CrossEntropyLossConfig::new().init(device);
    let mut times = Vec::new();
    for i in 0..steps + 1 {
        let audio = Tensor::<B, 4>::random([n, 1, f, t], Distribution::Normal(0.0, 1.0), device);
        let vis = Tensor::<B, 4>::random([n, 3, image, image], Distribution::Normal(0.0, 1.0), device);
        let labels: Vec<i64> = (0..n as i64).map(|k| if k % 3 == 0 { 28 } else { k % 28 }).collect();
        let y = Tensor::from_data(TensorData::new(labels.clone(), [n]), device);
        let start = Instant::now();
        let out = m.forward(audio, vis, segments);
        let loss = ce.forward(out.fused.clone(), y);
        let la = out.audio.detach().into_data().convert::<f32>().to_vec::<f32>().unwrap();
        let lv = out.visual.detach().into_data().convert::<f32>().to_vec::<f32>().unwrap();
        let c = coefficients(&la, &lv, &labels, 29, 0.8);
        let mut g = GradientsParams::from_grads(loss.backward(), &m);
        modulate(balance, &c, &ia, &iv, &mut g);
        m = optim.step(1e-3, m, g);
        B::sync(device).context("device sync")?;
        let ms = start.elapsed().as_secs_f64() * 1000.0;
        eprintln!("localizer step {i}: {ms:.0} ms{}", if i == 0 { " (first: kernel compilation, autotuning)" } else { "" });
        if i > 0 {
            times.push(ms);
        }
    }
    times.sort_by(f64::total_cmp);
    println!(
        "localizer step: {model:?} batch {batch} clips x {segments} segments, audio {f}x{t}, frames of {image}px, {balance:?}: median {:.0} ms over {steps} steps",
        times[times.len() / 2]
    );
    Ok(())
}

/// Each first operation on the device, timed: where a new machine's time goes (kernel
/// compilation, autotuning) before any step completes.
fn smoke(device: &burn::tensor::Device<B>) -> Result<()> {
    let t0 = Instant::now();
    let lap = |what: &str| eprintln!("smoke: {what} done at {:.2} s", t0.elapsed().as_secs_f64());
    let x = Tensor::<B, 2>::ones([256, 256], device);
    lap("allocation");
    let s: f32 = x.clone().sum().into_scalar().elem();
    lap(&format!("first reduction (sum {s})"));
    let y: f32 = x.clone().matmul(x).sum().into_scalar().elem();
    lap(&format!("first matmul (sum {y})"));
    let conv = burn::nn::conv::Conv2dConfig::new([3, 8], [3, 3]).init::<B>(device);
    let img = Tensor::<B, 4>::random([2, 3, 32, 32], Distribution::Normal(0.0, 1.0), device).require_grad();
    let out = conv.forward(img.clone()).sum();
    let v: f32 = out.clone().into_scalar().elem();
    lap(&format!("first conv forward ({v:.3})"));
    let g = out.backward();
    let gi: f32 = img.grad(&g).context("input gradient")?.sum().into_scalar().elem();
    lap(&format!("first conv backward ({gi:.3})"));
    B::sync(device).context("device sync")?;
    println!("smoke: ok in {:.2} s", t0.elapsed().as_secs_f64());
    Ok(())
}

/// The method's gradient edit of one step inside the modulation window.
fn modulate(balance: Balance, c: &trainer::balance::Coefficients, ia: &[burn::module::ParamId], iv: &[burn::module::ParamId], g: &mut GradientsParams) {
    let params = MethodParams::new(0.8, 0.5, 10, 0);
    build::<B>(balance, &params).gradients(
        g,
        &StepContext { epoch: 0, batch: 0, batches: 0, active: true, coeffs: c, audio_ids: ia, visual_ids: iv, parts: &Default::default(), mean_feature: None },
    );
}
