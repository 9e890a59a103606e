//! `cargo xtask bench epoch --ogm-ge PATH`: one training epoch end to end, loading included, of
//! `trainer train` (Flex and LibTorch builds) against OGM-GE's own program on the same clips.
//!
//! For each corpus (the default synthetic one, whose 2-s clips hold 2 frames, and the same clips
//! kept at 5 frames a second, 10 frames each) it prepares shards, exports them to OGM-GE's layout
//! (`ogmge export ogm-ge`), then times, one after another on the same cores: `trainer train`
//! (`paper` model, 3 frames at 224 pixels, OGM-GE, SGD, batch 16, every train clip, one epoch;
//! its `train_seconds` in `epochs.jsonl`: the pass from the first batch asked for to the last
//! update) and `trainer/bench/ogm_ge_epoch.py` (their `train_epoch` over their `AVDataset` and
//! `AVClassifier`, imported unmodified from the checkout, a DataLoader with one worker per core),
//! once under the allocator setting the trainer's binaries start with and once as a user runs it.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde_json::Value;

/// `--ogm-ge PATH [--train-per-class 24] [--batch 16] [--backends flex,tch,ogm-ge] [--corpora 2,10]`.
pub struct Plan {
    checkout: PathBuf,
    train_per_class: usize,
    batch: usize,
    backends: Vec<String>,
    corpora: Vec<usize>,
}

const BACKENDS: [&str; 3] = ["flex", "tch", "ogm-ge"];

impl Plan {
    pub fn parse(args: &[String]) -> Result<Plan> {
        let flags = ["--ogm-ge", "--train-per-class", "--batch", "--backends", "--corpora"];
        if let Some(kv) = args.chunks(2).find(|kv| !flags.contains(&kv[0].as_str()) || kv.len() < 2) {
            bail!("bench epoch: unexpected {:?} (flags: {}, each with a value)", kv[0], flags.join(" "));
        }
        let get = |flag: &str| args.chunks(2).find(|kv| kv[0] == flag).map(|kv| kv[1].clone());
        let checkout = PathBuf::from(get("--ogm-ge").context("bench epoch needs --ogm-ge PATH: a checkout of GeWu-Lab/OGM-GE_CVPR2022")?);
        if !checkout.join("main.py").is_file() || !checkout.join("dataset/dataset.py").is_file() {
            bail!("--ogm-ge {}: no main.py and dataset/dataset.py there (not a checkout of OGM-GE_CVPR2022)", checkout.display());
        }
        let number = |flag: &str, default: usize| -> Result<usize> { get(flag).map_or(Ok(default), |v| v.parse().with_context(|| format!("{flag} {v}"))) };
        let backends: Vec<String> = get("--backends").unwrap_or_else(|| BACKENDS.join(",")).split(',').map(str::to_owned).collect();
        if let Some(b) = backends.iter().find(|b| !BACKENDS.contains(&b.as_str())) {
            bail!("--backends: no backend {b} ({})", BACKENDS.join(", "));
        }
        let corpora = get("--corpora")
            .unwrap_or_else(|| "2,10".into())
            .split(',')
            .map(|c| c.parse().with_context(|| format!("--corpora {c}")))
            .collect::<Result<Vec<usize>>>()?;
        if let Some(c) = corpora.iter().find(|c| ![2, 10].contains(*c)) {
            bail!("--corpora: no corpus of {c} frames a clip (2: the default synthetic corpus, 10: its clips at 5 fps)");
        }
        Ok(Plan { checkout, train_per_class: number("--train-per-class", 24)?, batch: number("--batch", 16)?, backends, corpora })
    }
}

/// Shards and their OGM-GE export for one corpus, made once and kept under `dir`.
fn corpus(plan: &Plan, frames: usize, dir: &Path, py: &Path) -> Result<(PathBuf, PathBuf)> {
    let root = dir.join(format!("{frames}-frames"));
    let shards = root.join("out/synthetic");
    if !shards.join("index.json").is_file() {
        let (out, raw) = (root.join("out").to_string_lossy().into_owned(), root.join("raw").to_string_lossy().into_owned());
        let per_class = plan.train_per_class.to_string();
        let mut args = vec!["--out", &out, "--synthetic-raw", &raw, "--synthetic-train-per-class", &per_class, "--synthetic-test-per-class", "4", "--quiet"];
        if frames == 10 {
            // The synthetic clips last 2 s at 8 fps: 5 a second keeps 10 frames.
            args.extend(["--fps", "5"]);
        }
        let args: Vec<String> = args.into_iter().map(String::from).collect();
        crate::cargo(&["run", "--release", "--quiet", "-p", "preprocess", "--bin", "preprocess", "--"], &args, &[])?;
    }
    let export = root.join("ogm-ge");
    if !export.join("my_train.txt").is_file() {
        std::fs::remove_dir_all(&export).ok();
        crate::run_cmd(Command::new(py).args(["-m", "ogmge", "export", "ogm-ge"]).arg(&shards).arg(&export))?;
    }
    Ok((shards, export))
}

struct Row {
    corpus: usize,
    name: String,
    samples: usize,
    seconds: f64,
}

pub fn run(plan: &Plan, py: &Path) -> Result<()> {
    let dir = PathBuf::from("target/bench-epoch");
    std::fs::create_dir_all(&dir)?;
    let mut bins = Vec::new();
    for b in &plan.backends {
        match b.as_str() {
            "flex" => bins.push(("trainer, Flex", crate::build_release("trainer", "flex", None, &dir)?)),
            "tch" => bins.push(("trainer, LibTorch", crate::build_release("trainer", "tch", Some("tch"), &dir)?)),
            _ => {}
        }
    }
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mut rows = Vec::new();
    for &frames in &plan.corpora {
        let (shards, export) = corpus(plan, frames, &dir, py)?;
        let samples = std::fs::read_to_string(export.join("my_train.txt"))?.lines().filter(|l| !l.trim().is_empty()).count();
        for (name, bin) in &bins {
            let runs = dir.join(format!("{frames}-frames/runs"));
            let tag: String = name.chars().filter(char::is_ascii_alphanumeric).collect();
            // The benchmark's own run folder: replaced on purpose each time.
            std::fs::remove_dir_all(runs.join(&tag)).ok();
            eprintln!("xtask: {frames}-frame clips, {name}");
            let batch = plan.batch.to_string();
            crate::run_cmd(Command::new(bin).arg("train").arg("--data").arg(&shards).arg("--out").arg(&runs).args([
                "--name",
                &tag,
                "--model",
                "paper",
                "--frames",
                "3",
                "--batch-size",
                &batch,
                "--epochs",
                "1",
                "--val-fraction",
                "0",
                "--select-on-test",
                "--balance",
                "ogm-ge",
            ]))?;
            let log = std::fs::read_to_string(runs.join(&tag).join("epochs.jsonl"))?;
            let first: Value = serde_json::from_str(log.lines().next().context("empty epochs.jsonl")?)?;
            let seconds = first["train_seconds"].as_f64().context("epochs.jsonl has no train_seconds")?;
            rows.push(Row { corpus: frames, name: (*name).to_owned(), samples, seconds });
        }
        if plan.backends.iter().any(|b| b == "ogm-ge") {
            for (name, env) in [("OGM-GE main.py, allocator as the trainer's", &crate::KEEP_HEAP[..]), ("OGM-GE main.py, default allocator", &[][..])] {
                eprintln!("xtask: {frames}-frame clips, {name}");
                let json = dir.join(format!("{frames}-frames/ogm-ge-{}.json", env.len()));
                let batch = plan.batch.to_string();
                crate::run_cmd(
                    Command::new(py)
                        .envs(env.iter().copied())
                        .arg("trainer/bench/ogm_ge_epoch.py")
                        .arg("--checkout")
                        .arg(&plan.checkout)
                        .arg("--data")
                        .arg(&export)
                        .args(["--batch", &batch, "--json"])
                        .arg(&json),
                )?;
                let v: Value = serde_json::from_slice(&std::fs::read(&json)?)?;
                let got = v["samples"].as_u64().context("no samples")? as usize;
                if got != samples {
                    bail!("OGM-GE's AVDataset loaded {got} train clips of {samples} exported");
                }
                rows.push(Row { corpus: frames, name: name.into(), samples, seconds: v["seconds"].as_f64().context("no seconds")? });
            }
        }
    }
    println!(
        "\nOne training epoch end to end (loading included), OGM-GE, `paper` model (ResNet18 x2), 3 frames at 224 px, batch {}; {cores} cores, one program at a time",
        plan.batch
    );
    println!("| clips | frames a clip | program | epoch s | samples/s | speed vs OGM-GE main.py as users run it |");
    println!("|---|---|---|---|---|---|");
    for r in &rows {
        let original = rows.iter().find(|o| o.corpus == r.corpus && o.name.ends_with("default allocator"));
        let ratio = original.map_or(String::from("-"), |o| format!("{:.2}x", o.seconds / r.seconds));
        println!("| {} | {} | {} | {:.1} | {:.2} | {ratio} |", r.samples, r.corpus, r.name, r.seconds, r.samples as f64 / r.seconds);
    }
    Ok(())
}
