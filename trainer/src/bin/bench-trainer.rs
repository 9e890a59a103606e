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
//!   (--data without --methods: the loader alone first; --loader-only: nothing else)
//!        bench-trainer --check [--check-models classifier,tsm-classifier,localizer,psp-localizer] [--plant-fault]
//!   (--check: one OGM step of each tiny model (default: all four) on the GPU backend against the
//!    same step on Flex, and GE's noise statistics on the GPU; exits non-zero at the first
//!    disagreement; --plant-fault perturbs the GPU's logits, to show that it does)
//! [--burn-gradients] (Burn's generic convolution gradients: on Flex instead of `flex_conv`'s;
//! on LibTorch, with Burn's batch norm, instead of PyTorch's own, as LibTorch builds trained
//! before; docs/libtorch.md).
//! Every mode: [--device default|cpu|cuda[:N]|wgpu] (default: this build's backend on its
//! `auto` device; cpu/cuda: as `trainer --device`; wgpu: CubeCL's Vulkan runtime, in builds with
//! `wgpu-runtime`) [--kernel-cache DIR] (GPU builds: the kernel
//! cache, as `trainer --kernel-cache`) [--json FILE] (the step's timings, for tests and scripts).
//! A step's parts are timed with the device synchronised after each: forward (and loss), host
//! reads (the uni-modal logits the rule needs), backward, modulation (the rule and the gradient
//! edit), optimiser.

use std::time::Instant;

use anyhow::{bail, Context, Result};
use burn::optim::{GradientsParams, Optimizer, SgdConfig};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Distribution, TensorData};
use datasets::Split;
use trainer::balance::{coefficients, encoder_conv_ids};
use trainer::data::{LoaderConfig, ShardSet, Subset};
use trainer::methods::Balance;
use trainer::methods::{build, MethodParams, StepContext};
use trainer::model::{AvClassifier, FusionKind, ModelPreset};

/// The command line, read by flag name.
struct Args(Vec<String>);

impl Args {
    fn get(&self, flag: &str) -> Option<String> {
        self.0.iter().position(|a| a == flag).and_then(|i| self.0.get(i + 1)).cloned()
    }
    fn has(&self, flag: &str) -> bool {
        self.0.iter().any(|a| a == flag)
    }
    fn num(&self, flag: &str, default: usize) -> Result<usize> {
        self.get(flag).map_or(Ok(default), |v| v.parse().with_context(|| format!("{flag} {v}")))
    }
}

fn main() -> Result<()> {
    let args = Args(std::env::args().skip(1).collect());
    if let Some(dir) = args.get("--kernel-cache") {
        let dir = trainer::kernel_cache::configure(dir.as_ref())?;
        eprintln!("kernel cache: {}", dir.display());
    }
    // Before any tensor, `--check` included: a LibTorch build first makes sure it loaded its torch.
    trainer::device::prepare()?;
    trainer::downcast::set_enabled(!args.has("--burn-gradients"));
    if args.has("--check") {
        return check(args.get("--check-models").as_deref(), args.has("--plant-fault"));
    }
    match args.get("--device").as_deref() {
        #[cfg(feature = "wgpu-runtime")]
        Some("wgpu") => bench::<burn::backend::Autodiff<burn::backend::Wgpu>>(&args, Default::default()),
        None | Some("default") => bench::<trainer::Backend>(&args, trainer::device::parse("auto")?),
        Some(spec) => bench::<trainer::Backend>(
            &args,
            trainer::device::parse(spec)
                .map_err(|e| anyhow::anyhow!("{e}{}", if cfg!(feature = "wgpu-runtime") { " (and `wgpu`: CubeCL's Vulkan runtime)" } else { "" }))?,
        ),
    }
}

fn bench<B: AutodiffBackend>(args: &Args, device: B::Device) -> Result<()> {
    let model = match args.get("--model").as_deref() {
        Some("paper") => ModelPreset::Paper,
        _ => ModelPreset::Tiny,
    };
    let batch = args.num("--batch", 16)?;
    let steps = args.num("--steps", 5)?;
    let frames = args.num("--frames", 3)?;
    let image = model.image_size();
    let balance = match args.get("--balance").as_deref() {
        Some("none") => Balance::None,
        _ => Balance::OgmGe,
    };
    if let Some(methods) = args.get("--methods") {
        let data = args.get("--data").unwrap_or_else(|| "out/synthetic".into());
        let epochs = args.num("--epochs", 3)?;
        let archs = args.get("--archs").unwrap_or_else(|| "plain".into());
        return bench_methods::<B>(&archs, &methods, &data, epochs, args.num("--batch", 32)?, model, args.num("--frames", 2)?, &device);
    }

    if let Some(data) = args.get("--data") {
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
            drop_last: false,
        };
        let t = Instant::now();
        let mut n = 0;
        for b in set.epoch(&cfg, 0) {
            n += b?.len();
        }
        let s = t.elapsed().as_secs_f64();
        println!("loader: {n} samples in {s:.2} s = {:.0} samples/s ({} threads, {frames} frames of {image}px)", n as f64 / s, rayon::current_num_threads());
        if args.has("--loader-only") {
            return Ok(());
        }
    }

    let (f, t) = args
        .get("--audio")
        .map(|s| {
            let (a, b) = s.split_once('x').context("--audio FxT")?;
            Ok::<_, anyhow::Error>((a.parse()?, b.parse()?))
        })
        .transpose()?
        .unwrap_or((257, 188));
    if args.has("--smoke") {
        return smoke::<B>(&device);
    }
    if args.has("--localizer") {
        let (f, t) = if args.get("--audio").is_some() { (f, t) } else { (257, 100) };
        return bench_localizer::<B>(model, batch, steps, f, t, balance, &device);
    }
    let mut m = AvClassifier::<B>::new(model, FusionKind::Concat, 6, &device);
    let (ia, iv) = encoder_conv_ids(&m.audio_net, &m.visual_net);
    let mut optim = SgdConfig::new().init::<B, AvClassifier<B>>();
    let ce = burn::nn::loss::CrossEntropyLossConfig::new().init(&device);
    let mut timings = Timings::default();
    for i in 0..steps + 1 {
        let audio = Tensor::<B, 4>::random([batch, 1, f, t], Distribution::Normal(0.0, 1.0), &device);
        let vis = Tensor::<B, 4>::random([batch * frames, 3, image, image], Distribution::Normal(0.0, 1.0), &device);
        let labels: Vec<i64> = (0..batch as i64).map(|k| k % 6).collect();
        let y = Tensor::from_data(TensorData::new(labels.clone(), [batch]), &device);
        B::sync(&device).context("device sync")?;
        let mut lap = Lap::<B>::new(&device);
        let out = m.forward(audio, vis);
        let loss = ce.forward(out.fused.clone(), y);
        lap.end("forward")?;
        let la = out.audio.detach().into_data().convert::<f32>().to_vec::<f32>().unwrap();
        let lv = out.visual.detach().into_data().convert::<f32>().to_vec::<f32>().unwrap();
        lap.end("host reads")?;
        let mut g = GradientsParams::from_grads(loss.backward(), &m);
        lap.end("backward")?;
        let c = coefficients(&la, &lv, &labels, 6, 0.8);
        modulate::<B>(balance, &c, &ia, &iv, &mut g);
        lap.end("modulation")?;
        m = optim.step(1e-3, m, g);
        lap.end("optimiser")?;
        // Each step as it ends: a run cut short by a timeout still says how far it got (the
        // first step includes compiling the kernels on a GPU).
        eprintln!("step {i}: {}{}", lap.line(), if i == 0 { " (first: kernel compilation, autotuning)" } else { "" });
        timings.push(lap);
    }
    println!(
        "step: {model:?} batch {batch}, audio {f}x{t}, {frames} frames of {image}px, {balance:?}: first {:.0} ms, median {:.0} ms over {steps} steps ({})",
        timings.total[0],
        median(&timings.total[1..]),
        timings.parts_line()
    );
    if let Some(file) = args.get("--json") {
        std::fs::write(&file, serde_json::to_string_pretty(&timings.json())?).with_context(|| format!("writing {file}"))?;
    }
    Ok(())
}

/// `trainer::backend_check::all`, a line per measurement; an error at the first disagreement.
#[cfg(any(feature = "cuda", feature = "wgpu-runtime", feature = "tch"))]
fn check(models: Option<&str>, plant_fault: bool) -> Result<()> {
    use trainer::backend_check::{Checked, GPU_NAME as device};
    let models = match models {
        None => Checked::ALL.to_vec(),
        Some(list) => list
            .split(',')
            .map(|m| Checked::ALL.into_iter().find(|c| c.name().replace(' ', "-") == m).with_context(|| format!("--check-models: no model {m}")))
            .collect::<Result<_>>()?,
    };
    match trainer::backend_check::all(&models, plant_fault) {
        Ok(lines) => {
            lines.iter().for_each(|l| println!("check: {l}"));
            println!("check: every step on {device} matches Flex; GE noise as the rule draws it");
            Ok(())
        }
        Err(e) => bail!("check failed on {device}: {e}"),
    }
}

#[cfg(not(any(feature = "cuda", feature = "wgpu-runtime", feature = "tch")))]
fn check(_models: Option<&str>, _plant_fault: bool) -> Result<()> {
    bail!("--check needs a build with a second backend (--features cuda or tch, or wgpu-runtime for CubeCL's Vulkan runtime)")
}

/// One step's parts, each ended by a device sync.
struct Lap<'a, B: AutodiffBackend> {
    device: &'a B::Device,
    last: Instant,
    parts: Vec<(&'static str, f64)>,
}

impl<'a, B: AutodiffBackend> Lap<'a, B> {
    fn new(device: &'a B::Device) -> Self {
        Lap { device, last: Instant::now(), parts: Vec::new() }
    }
    fn end(&mut self, part: &'static str) -> Result<()> {
        // Wait for the device (CUDA runs asynchronously) before stopping the clock.
        B::sync(self.device).context("device sync")?;
        let now = Instant::now();
        self.parts.push((part, (now - self.last).as_secs_f64() * 1000.0));
        self.last = now;
        Ok(())
    }
    fn total(&self) -> f64 {
        self.parts.iter().map(|p| p.1).sum()
    }
    fn line(&self) -> String {
        let parts: Vec<String> = self.parts.iter().map(|(p, ms)| format!("{p} {ms:.0}")).collect();
        format!("{:.0} ms ({})", self.total(), parts.join(", "))
    }
}

/// Every step's total and parts, step 0 (the first) included.
#[derive(Default)]
struct Timings {
    total: Vec<f64>,
    parts: Vec<(&'static str, Vec<f64>)>,
}

impl Timings {
    fn push<B: AutodiffBackend>(&mut self, lap: Lap<'_, B>) {
        self.total.push(lap.total());
        for (k, (name, ms)) in lap.parts.into_iter().enumerate() {
            if self.parts.len() <= k {
                self.parts.push((name, Vec::new()));
            }
            self.parts[k].1.push(ms);
        }
    }
    /// The steady state: each part's median over the steps after the first.
    fn parts_line(&self) -> String {
        let parts: Vec<String> = self.parts.iter().map(|(p, v)| format!("{p} {:.0}", median(&v[1..]))).collect();
        format!("median parts, ms: {}", parts.join(", "))
    }
    fn json(&self) -> serde_json::Value {
        let parts: serde_json::Map<String, serde_json::Value> = self.parts.iter().map(|(p, v)| (p.to_string(), serde_json::json!(v))).collect();
        serde_json::json!({ "steps_ms": self.total, "first_ms": self.total[0], "median_ms": median(&self.total[1..]), "parts_ms": parts })
    }
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Each method's mean training-step time (`step_seconds` of `epochs.jsonl`, epochs after the
/// first) and samples/s (whole epochs: loader, steps and evaluation) on `trainer compare`'s
/// default run (or `model`), one run after another in this process through the real loader; the
/// ratio is against the first method. UMT's teachers train first and are timed apart.
#[allow(clippy::too_many_arguments)]
fn bench_methods<B: AutodiffBackend>(
    archs: &str,
    methods: &str,
    data: &str,
    epochs: usize,
    batch: usize,
    model: ModelPreset,
    frames: usize,
    device: &B::Device,
) -> Result<()> {
    use trainer::train::{train, TrainConfig};
    let out = std::env::temp_dir().join(format!("bench-methods-{}", std::process::id()));
    let val_fraction = 0.1;
    let clips = ShardSet::open(data.as_ref(), Split::Train)?.count(Subset::Fit { val_fraction })? as f64;
    let mut base = None;
    let runs: Vec<(&str, &str)> = archs.split(',').flat_map(|a| methods.split(',').map(move |m| (a, m))).collect();
    println!("| arch | method | ms per step | vs {} {} | train samples/s | fused test acc after {epochs} epochs |", runs[0].0, runs[0].1);
    println!("|---|---|---|---|---|---|");
    for (a, m) in runs {
        let balance: Balance = clap::ValueEnum::from_str(m, false).map_err(|e| anyhow::anyhow!("--methods: {e}"))?;
        let arch: trainer::arch::Arch = clap::ValueEnum::from_str(a, false).map_err(|e| anyhow::anyhow!("--archs: {e}"))?;
        let fusion = arch.needs_fusion().or(balance.needs_fusion()).unwrap_or(FusionKind::Concat);
        let cfg: TrainConfig = serde_json::from_value(serde_json::json!({
            "data": data, "out": out, "name": format!("{a}-{m}"), "model": model, "arch": arch, "fusion": fusion, "balance": balance, "alpha": 0.8,
            "modulation_start": 0, "modulation_end": 50, "epochs": epochs, "batch_size": batch, "lr": 0.01, "momentum": 0.9,
            "weight_decay": 1e-4, "lr_step": 70, "lr_gamma": 0.1, "frames": frames, "seed": 0, "val_fraction": val_fraction,
            "select_on_test": false, "shuffle_buffer": 1024,
        }))?;
        let t = Instant::now();
        let summary = train::<B>(&cfg, device, false, false)?;
        let lines: Vec<serde_json::Value> =
            std::fs::read_to_string(summary.run_dir.join("epochs.jsonl"))?.lines().map(serde_json::from_str).collect::<Result<_, _>>()?;
        let seconds: Vec<f64> = lines.iter().skip(1).map(|l| l["step_seconds"].as_f64().unwrap_or(f64::NAN)).collect();
        let ms = 1000.0 * seconds.iter().sum::<f64>() / seconds.len().max(1) as f64;
        let base_ms = *base.get_or_insert(ms);
        let wall = t.elapsed().as_secs_f64();
        println!("| {a} | {m} | {ms:.0} | {:.2}x | {:.0} | {:.3} |", ms / base_ms, clips * epochs as f64 / wall, summary.last.fused.accuracy);
        eprintln!("{a} {m}: {wall:.1} s in all (UMT: with its two teachers' runs)");
    }
    std::fs::remove_dir_all(&out).ok();
    Ok(())
}

/// Median ms per localizer training step (Adam, per-segment CE, the balancing rule) on random
/// inputs: `batch` clips x 10 segments of `f` x `t` audio and one frame each.
fn bench_localizer<B: AutodiffBackend>(model: ModelPreset, batch: usize, steps: usize, f: usize, t: usize, balance: Balance, device: &B::Device) -> Result<()> {
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
        modulate::<B>(balance, &c, &ia, &iv, &mut g);
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
fn smoke<B: AutodiffBackend>(device: &B::Device) -> Result<()> {
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
fn modulate<B: AutodiffBackend>(
    balance: Balance,
    c: &trainer::balance::Coefficients,
    ia: &[burn::module::ParamId],
    iv: &[burn::module::ParamId],
    g: &mut GradientsParams,
) {
    let params = MethodParams::new(0.8, 0);
    build::<B>(balance, &params).gradients(
        g,
        &StepContext { epoch: 0, batch: 0, batches: 0, active: true, coeffs: c, audio_ids: ia, visual_ids: iv, parts: &Default::default(), mean_feature: None },
    );
}
