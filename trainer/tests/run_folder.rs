//! The `train` command and its run folder: an existing run is never overwritten by accident, the
//! default name follows the settings a config file brings, and the logs report what was applied
//! (coefficients of 1 without modulation) with every metric of every head.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use datasets::Split;

fn train(data: &Path, runs: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trainer"))
        .args(["train", "--model", "tiny", "--epochs", "1", "--batch-size", "8", "--frames", "2", "--lr", "0.01"])
        .arg("--data")
        .arg(data)
        .arg("--out")
        .arg(runs)
        .args(extra)
        .output()
        .unwrap()
}

fn ok(o: &Output) {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

fn refused(o: &Output, want: &str) {
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && e.contains(want), "expected a refusal with {want:?}: {e}");
}

/// Every file of a run folder with its bytes.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for sub in ["", "checkpoint"] {
        for e in std::fs::read_dir(dir.join(sub)).unwrap() {
            let p = e.unwrap().path();
            if p.is_file() {
                out.push((p.display().to_string(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn an_existing_run_is_never_overwritten_and_names_follow_the_config_file() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    common::shards(&data, Split::Train, 48);
    common::shards(&data, Split::Test, 12);
    let runs = tmp.path().join("runs");

    ok(&train(&data, &runs, &["--name", "a"]));
    let a = runs.join("a");
    let before = snapshot(&a);
    // The same name again, or the run's own config.json (which carries its name), is refused and
    // leaves the run as it was.
    refused(&train(&data, &runs, &["--name", "a"]), "already holds a run; pass --resume");
    let config = a.join("config.json");
    refused(&train(&data, &runs, &["--config", config.to_str().unwrap()]), "already holds a run");
    assert_eq!(snapshot(&a), before, "the earlier run is untouched");
    // With a new name the config file repeats the run elsewhere.
    ok(&train(&data, &runs, &["--config", config.to_str().unwrap(), "--name", "b"]));
    let cfg = |run: &str| {
        let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(runs.join(run).join("config.json")).unwrap()).unwrap();
        v.as_object_mut().unwrap().remove("name");
        v
    };
    assert_eq!(cfg("b"), cfg("a"));

    // The default name is derived after the file is applied: sum fusion, no balancing.
    let file = tmp.path().join("sum-none.json");
    std::fs::write(&file, r#"{"fusion": "sum", "balance": "none"}"#).unwrap();
    ok(&train(&data, &runs, &["--config", file.to_str().unwrap()]));
    let run = runs.join("tiny-sum-none-seed0");
    assert!(run.join("summary.json").is_file(), "run folder named after the file's settings: {:?}", std::fs::read_dir(&runs).unwrap().collect::<Vec<_>>());

    // `none` applies no coefficient: the logs say 1, the rule's own value is kept apart.
    let epochs: serde_json::Value = serde_json::from_str(std::fs::read_to_string(run.join("epochs.jsonl")).unwrap().lines().next().unwrap()).unwrap();
    assert_eq!((epochs["mean_k_a"].as_f64(), epochs["mean_k_v"].as_f64()), (Some(1.0), Some(1.0)), "{epochs}");
    let steps = std::fs::read_to_string(run.join("steps.jsonl")).unwrap();
    // The pass's wall time holds every step and the loader's waits between them.
    let in_steps = epochs["step_seconds"].as_f64().unwrap() * steps.lines().filter(|l| l.contains("\"epoch\":0,")).count() as f64;
    let pass = epochs["train_seconds"].as_f64().unwrap();
    assert!(in_steps > 0.0 && pass >= in_steps && pass < epochs["seconds"].as_f64().unwrap(), "pass {pass} s, steps {in_steps} s: {epochs}");
    for line in steps.lines() {
        let s: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!((s["k_a"].as_f64(), s["k_v"].as_f64(), s["modulated"].as_bool()), (Some(1.0), Some(1.0), Some(false)), "{s}");
        assert!(s["rule_k_a"].as_f64().unwrap().min(s["rule_k_v"].as_f64().unwrap()) < 1.0, "the rule's value is still recorded: {s}");
    }
    // `ogm-ge` (run a) applies the rule's coefficients inside the window.
    let s: serde_json::Value = serde_json::from_str(std::fs::read_to_string(a.join("steps.jsonl")).unwrap().lines().next().unwrap()).unwrap();
    assert_eq!((s["k_a"].as_f64(), s["k_v"].as_f64()), (s["rule_k_a"].as_f64(), s["rule_k_v"].as_f64()), "{s}");

    // The CSV has accuracy, macro-F1 and mAP of every head, for val and test, as the JSONL.
    let csv = std::fs::read_to_string(run.join("epochs.csv")).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let row: Vec<&str> = csv.lines().nth(1).unwrap().split(',').collect();
    assert_eq!(header.len(), row.len());
    for split in ["val", "test"] {
        for head in ["", "_audio", "_visual"] {
            for metric in ["acc", "macro_f1", "map"] {
                let col = format!("{split}_{metric}{head}");
                let i = header.iter().position(|h| *h == col).unwrap_or_else(|| panic!("no column {col}: {header:?}"));
                let key = if head.is_empty() { "fused" } else { &head[1..] };
                let json = epochs[split][key][if metric == "acc" { "accuracy" } else { metric }].as_f64().unwrap();
                assert!((row[i].parse::<f64>().unwrap() - json).abs() < 1e-6, "{col}: {} vs {json}", row[i]);
            }
        }
    }

    // Another optimiser trains, is recorded in the config and named in the default name.
    ok(&train(&data, &runs, &["--optimizer", "adamw"]));
    let adamw: serde_json::Value = serde_json::from_slice(&std::fs::read(runs.join("tiny-concat-ogmge-adamw-seed0/config.json")).unwrap()).unwrap();
    assert_eq!(adamw["optimizer"], "adamw");

    // No frames per clip is refused before anything is written.
    let o = Command::new(env!("CARGO_BIN_EXE_trainer"))
        .args(["train", "--model", "tiny", "--frames", "0", "--name", "c", "--data", data.to_str().unwrap(), "--out", runs.to_str().unwrap()])
        .output()
        .unwrap();
    refused(&o, "--frames must be at least 1");
    assert!(!runs.join("c").exists());
}
