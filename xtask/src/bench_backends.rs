//! `cargo xtask bench trainer`: the same OGM-GE training step (random inputs of CREMA-D's shapes:
//! a 257x188 spectrogram, 3 frames, 6 classes; SGD) timed on every CPU backend in one run, one
//! after another on the same cores: `bench-trainer` built for Flex and for LibTorch (`--features
//! tch`), and PyTorch itself (`trainer/bench/reference_step.py`, eager, the `.venv`'s torch, the
//! same version LibTorch links). Prints each step's median and median parts, and the ratios to
//! PyTorch. Not in the default set: `tch-burn`, the LibTorch binary with `--burn-gradients`
//! (Burn's generic convolution gradients and batch norm, as LibTorch builds trained before), and
//! `flex-burn`, the Flex binary with it (Burn's generic convolution gradients instead of
//! `flex_conv`'s); and `flex-next`, the same step on the next Burn release's Flex with Burn's own
//! modules (`trainer/bench/flex-next`, built on its own, never a workspace member), the measure
//! behind the decision to stay on burn 0.21.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde_json::Value;

/// What the comparison runs: `--models tiny,paper --batches 16,64 --steps 3 --backends flex,tch,torch`.
pub struct Plan {
    models: Vec<String>,
    batches: Vec<usize>,
    steps: usize,
    backends: Vec<String>,
}

const BACKENDS: [&str; 6] = ["flex", "flex-burn", "flex-next", "tch", "tch-burn", "torch"];

impl Plan {
    /// The comparison's own flags, or None where `args` are `bench-trainer`'s (passed through).
    pub fn parse(args: &[String]) -> Result<Option<Plan>> {
        let ours = ["--models", "--batches", "--steps", "--backends"];
        if args.chunks(2).any(|kv| !ours.contains(&kv[0].as_str())) {
            return Ok(None);
        }
        let get = |flag: &str, default: &str| -> String {
            args.chunks(2).find(|kv| kv[0] == flag).and_then(|kv| kv.get(1).cloned()).unwrap_or_else(|| default.to_owned())
        };
        let list = |s: String| s.split(',').map(str::to_owned).collect::<Vec<_>>();
        let models = list(get("--models", "tiny,paper"));
        if let Some(m) = models.iter().find(|m| !["tiny", "paper"].contains(&m.as_str())) {
            bail!("--models: no model preset {m} (tiny, paper)");
        }
        let backends = list(get("--backends", "flex,tch,torch"));
        if let Some(b) = backends.iter().find(|b| !BACKENDS.contains(&b.as_str())) {
            bail!("--backends: no backend {b} ({})", BACKENDS.join(", "));
        }
        let batches = list(get("--batches", "16,64")).iter().map(|b| b.parse().with_context(|| format!("--batches {b}"))).collect::<Result<_>>()?;
        let steps = get("--steps", "3").parse().context("--steps")?;
        Ok(Some(Plan { models, batches, steps, backends }))
    }
}

/// One measured step: total median and the median of each part, in ms.
struct Measured {
    median: f64,
    parts: Vec<(String, f64)>,
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn read(file: &Path) -> Result<Measured> {
    let v: Value = serde_json::from_slice(&std::fs::read(file).with_context(|| format!("reading {}", file.display()))?)?;
    let steady = |a: &Value| -> Vec<f64> { a.as_array().map(|a| a.iter().skip(1).filter_map(Value::as_f64).collect()).unwrap_or_default() };
    let parts = v["parts_ms"].as_object().context("no parts_ms")?.iter().map(|(k, a)| (k.clone(), median(&steady(a)))).collect();
    Ok(Measured { median: median(&steady(&v["steps_ms"])), parts })
}

/// `trainer/bench/flex-next` (release, its own lock file and target dir under `target/`), copied
/// to `dir`.
fn build_flex_next(dir: &Path) -> Result<PathBuf> {
    eprintln!("xtask: building bench-flex-next (burn 0.22.1)");
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from).join("flex-next");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--release", "--quiet", "--locked", "--manifest-path", "trainer/bench/flex-next/Cargo.toml", "--target-dir"]).arg(&target);
    crate::run_cmd(&mut cmd)?;
    let to = dir.join("bench-flex-next");
    std::fs::copy(target.join("release/bench-flex-next"), &to).with_context(|| format!("copying bench-flex-next to {}", to.display()))?;
    Ok(to)
}

pub fn run(plan: &Plan, py: &Path) -> Result<()> {
    let dir = PathBuf::from("target/bench-backends");
    std::fs::create_dir_all(&dir)?;
    let mut bins: Vec<(&str, Option<PathBuf>, &[&str])> = Vec::new();
    let (mut flex, mut tch) = (None, None);
    for b in &plan.backends {
        match b.as_str() {
            "flex" | "flex-burn" => {
                if flex.is_none() {
                    flex = Some(crate::build_release("bench-trainer", "flex", None, &dir)?);
                }
                let (name, extra): (&str, &[&str]) = if b == "flex" { ("Flex", &[]) } else { ("Flex, Burn's grads", &["--burn-gradients"]) };
                bins.push((name, flex.clone(), extra));
            }
            "tch" | "tch-burn" => {
                if tch.is_none() {
                    tch = Some(crate::build_release("bench-trainer", "tch", Some("tch"), &dir)?);
                }
                let (name, extra): (&str, &[&str]) = if b == "tch" { ("LibTorch", &[]) } else { ("LibTorch, Burn's grads", &["--burn-gradients"]) };
                bins.push((name, tch.clone(), extra));
            }
            "flex-next" => bins.push(("Flex, burn 0.22.1", Some(build_flex_next(&dir)?), &[])),
            _ => bins.push(("PyTorch", None, &[])),
        }
    }
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "OGM-GE step, CREMA-D shapes (audio 257x188, 3 frames, 6 classes), SGD; {cores} cores, one backend at a time; median of {} steps after the first",
        plan.steps
    );
    let mut rows = Vec::new();
    for model in &plan.models {
        let (width, image) = if model == "tiny" { ("8", "64") } else { ("64", "224") };
        for &batch in &plan.batches {
            let mut measured = Vec::new();
            for (name, bin, extra) in &bins {
                let json = dir.join(format!("{model}-{batch}-{}.json", name.replace(|c: char| !c.is_ascii_alphanumeric(), "-")));
                let (b, s) = (batch.to_string(), plan.steps.to_string());
                let mut cmd = match bin {
                    Some(bin) => {
                        let mut c = Command::new(bin);
                        // The trainer's binaries set this allocator themselves; the probe does not.
                        c.envs(crate::KEEP_HEAP);
                        c.args(["--model", model, "--batch", &b, "--steps", &s, "--frames", "3", "--json"]).arg(&json).args(*extra);
                        c
                    }
                    None => {
                        let mut c = Command::new(py);
                        c.envs(crate::KEEP_HEAP);
                        c.arg("trainer/bench/reference_step.py")
                            .args(["--device", "cpu", "--batch", &b, "--steps", &s, "--frames", "3", "--width", width, "--image", image, "--json"])
                            .arg(&json);
                        c
                    }
                };
                eprintln!("xtask: {model} batch {batch} on {name}");
                crate::run_cmd(&mut cmd)?;
                let m = read(&json)?;
                println!(
                    "{model} batch {batch} {name}: {:.0} ms/step ({})",
                    m.median,
                    m.parts.iter().map(|(p, ms)| format!("{p} {ms:.0}")).collect::<Vec<_>>().join(", ")
                );
                measured.push((*name, m));
            }
            rows.push((model.clone(), batch, measured));
        }
    }
    println!();
    let names: Vec<&str> = bins.iter().map(|(n, _, _)| *n).collect();
    let has_torch = names.contains(&"PyTorch");
    let mut head = format!("| model | batch | {} |", names.iter().map(|n| format!("{n} ms/step")).collect::<Vec<_>>().join(" | "));
    if has_torch {
        head += &names.iter().filter(|n| **n != "PyTorch").map(|n| format!(" {n} / PyTorch |")).collect::<String>();
    }
    println!("{head}");
    println!("|{}", "---|".repeat(head.matches('|').count() - 1));
    for (model, batch, measured) in &rows {
        let mut line = format!("| {model} | {batch} | {} |", measured.iter().map(|(_, m)| format!("{:.0}", m.median)).collect::<Vec<_>>().join(" | "));
        if let Some((_, torch)) = measured.iter().find(|(n, _)| *n == "PyTorch") {
            line += &measured.iter().filter(|(n, _)| *n != "PyTorch").map(|(_, m)| format!(" {:.2}x |", m.median / torch.median)).collect::<String>();
        }
        println!("{line}");
    }
    Ok(())
}
