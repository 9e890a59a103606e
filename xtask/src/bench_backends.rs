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

/// What the comparison runs: `--models tiny,paper --batches 16,64 --steps 3 --backends
/// flex,tch,torch --rounds 1`. With `--rounds N`, each model and batch runs every backend in turn,
/// N times over (A B C A B C ...), and each backend's steps of all rounds are pooled: a machine
/// whose speed drifts slows every backend alike.
pub struct Plan {
    models: Vec<String>,
    batches: Vec<usize>,
    steps: usize,
    backends: Vec<String>,
    rounds: usize,
}

const BACKENDS: [&str; 6] = ["flex", "flex-burn", "flex-next", "tch", "tch-burn", "torch"];

impl Plan {
    /// The comparison's own flags, or None where `args` are `bench-trainer`'s (passed through).
    pub fn parse(args: &[String]) -> Result<Option<Plan>> {
        let ours = ["--models", "--batches", "--steps", "--backends", "--rounds"];
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
        let rounds = get("--rounds", "1").parse().context("--rounds")?;
        if rounds == 0 {
            bail!("--rounds 0: at least one round");
        }
        Ok(Some(Plan { models, batches, steps, backends, rounds }))
    }
}

/// One backend's steps after the first of each run (ms), the whole step and each part, pooled
/// over rounds.
#[derive(Default)]
struct Measured {
    steps: Vec<f64>,
    parts: Vec<(String, Vec<f64>)>,
}

impl Measured {
    fn median(&self) -> f64 {
        median(&self.steps)
    }

    /// Each part's median, in the order the program gave them.
    fn parts(&self) -> String {
        self.parts.iter().map(|(p, ms)| format!("{p} {:.0}", median(ms))).collect::<Vec<_>>().join(", ")
    }

    /// One run's JSON (`steps_ms`, `parts_ms`), its first step left out.
    fn read(file: &Path) -> Result<Measured> {
        let v: Value = serde_json::from_slice(&std::fs::read(file).with_context(|| format!("reading {}", file.display()))?)?;
        let steady = |a: &Value| -> Vec<f64> { a.as_array().map(|a| a.iter().skip(1).filter_map(Value::as_f64).collect()).unwrap_or_default() };
        let parts = v["parts_ms"].as_object().context("no parts_ms")?.iter().map(|(k, a)| (k.clone(), steady(a))).collect();
        Ok(Measured { steps: steady(&v["steps_ms"]), parts })
    }

    /// `run`'s steps added to these, part by part.
    fn pool(&mut self, run: Measured) {
        self.steps.extend(run.steps);
        for (k, a) in run.parts {
            match self.parts.iter_mut().find(|(p, _)| *p == k) {
                Some((_, ms)) => ms.extend(a),
                None => self.parts.push((k, a)),
            }
        }
    }
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// `trainer/bench/flex-next` (release, its own lock file and target dir under `target/`), copied
/// to `dir`.
fn build_flex_next(dir: &Path) -> Result<PathBuf> {
    eprintln!("xtask: building bench-flex-next (burn 0.22.1)");
    let target = crate::target_dir().join("flex-next");
    let args = ["build", "--release", "--quiet", "--locked", "--manifest-path", "trainer/bench/flex-next/Cargo.toml", "--target-dir"];
    crate::cargo(&args, &[target.to_string_lossy().into_owned()], &[])?;
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
        "OGM-GE step, CREMA-D shapes (audio 257x188, 3 frames, 6 classes), SGD; {cores} cores, one backend at a time; median of {} steps after the first{}",
        plan.steps,
        if plan.rounds > 1 { format!(" of each of {} rounds, the backends in turn", plan.rounds) } else { String::new() }
    );
    let mut rows = Vec::new();
    for model in &plan.models {
        let (width, image) = if model == "tiny" { ("8", "64") } else { ("64", "224") };
        for &batch in &plan.batches {
            let mut measured: Vec<(&str, Measured)> = bins.iter().map(|(name, _, _)| (*name, Measured::default())).collect();
            for round in 1..=plan.rounds {
                for ((name, bin, extra), (_, pooled)) in bins.iter().zip(measured.iter_mut()) {
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
                    let of = if plan.rounds > 1 { format!(", round {round} of {}", plan.rounds) } else { String::new() };
                    eprintln!("xtask: {model} batch {batch} on {name}{of}");
                    crate::run_cmd(&mut cmd)?;
                    let run = Measured::read(&json)?;
                    println!("{model} batch {batch} {name}{of}: {:.0} ms/step ({})", run.median(), run.parts());
                    pooled.pool(run);
                }
            }
            if plan.rounds > 1 {
                for (name, m) in &measured {
                    println!("{model} batch {batch} {name}, {} rounds: {:.0} ms/step ({})", plan.rounds, m.median(), m.parts());
                }
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
        let mut line = format!("| {model} | {batch} | {} |", measured.iter().map(|(_, m)| format!("{:.0}", m.median())).collect::<Vec<_>>().join(" | "));
        if let Some((_, torch)) = measured.iter().find(|(n, _)| *n == "PyTorch") {
            line += &measured.iter().filter(|(n, _)| *n != "PyTorch").map(|(_, m)| format!(" {:.2}x |", m.median() / torch.median())).collect::<String>();
        }
        println!("{line}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rounds pool each backend's steps after the first of every run, whole and by part; a plan
    /// of no rounds is refused.
    #[test]
    fn rounds_pool_the_steps_after_each_first() {
        let dir = std::env::temp_dir().join(format!("bench-backends-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let runs = [
            r#"{"steps_ms": [900, 10, 30, 20], "parts_ms": {"forward": [500, 4, 6, 5], "backward": [400, 6, 24, 15]}}"#,
            r#"{"steps_ms": [800, 50, 40], "parts_ms": {"forward": [300, 20, 10], "backward": [500, 30, 30]}}"#,
        ];
        let mut m = Measured::default();
        for (i, run) in runs.iter().enumerate() {
            let file = dir.join(format!("{i}.json"));
            std::fs::write(&file, run).unwrap();
            m.pool(Measured::read(&file).unwrap());
        }
        std::fs::remove_dir_all(&dir).ok();
        assert_eq!(m.steps, [10.0, 30.0, 20.0, 50.0, 40.0]);
        assert_eq!(m.median(), 30.0);
        assert_eq!(m.parts(), "backward 24, forward 6");

        let args = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        assert_eq!(Plan::parse(&args("--rounds 3 --models tiny")).unwrap().map(|p| p.rounds), Some(3));
        assert!(Plan::parse(&args("--rounds 0")).is_err());
        assert!(Plan::parse(&args("--data out/synthetic")).unwrap().is_none(), "bench-trainer's own flags pass through");
    }
}
