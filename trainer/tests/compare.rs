//! `trainer compare` end to end on synthetic shards: every new method trains (an epoch or three
//! of `tiny`) and logs what it did; `--part 0/2` + `--part 1/2` (one of them killed and run again)
//! + `--merge` give exactly the table of one full comparison; a finished comparison trains nothing.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use datasets::Split;

const METHODS: &str = "none,ogm-ge-adaptive,modality-drop-audio,modality-drop-visual,gblend-offline,gblend-online,ogm,ogm-ge,ge-only";

fn compare(data: &Path, out: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_trainer"));
    cmd.args(["compare", "--model", "tiny", "--epochs", "3", "--batch-size", "8", "--frames", "2", "--super-epoch", "2", "--val-fraction", "0.25"])
        .args(["--seeds", "0", "--methods", METHODS])
        .arg("--data")
        .arg(data)
        .arg("--out")
        .arg(out)
        .args(extra);
    cmd
}

fn ok(o: Output) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{err}");
    err
}

fn jsonl(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn compare_runs_every_method_and_its_parts_merge_to_the_full_table() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    common::shards(&data, Split::Train, 32);
    common::shards(&data, Split::Test, 8);
    let (full, parts) = (tmp.path().join("full"), tmp.path().join("parts"));

    // In this process (--jobs 1); the parts below run each run in its own process (--jobs 2).
    ok(compare(&data, &full, &["--jobs", "1", "--probe"]).output().unwrap());
    let csv = std::fs::read_to_string(full.join("compare.csv")).unwrap();
    assert_eq!(csv.lines().count(), 10, "a header and one row per run:\n{csv}");
    assert!(full.join("compare.png").is_file());
    let md = std::fs::read_to_string(full.join("compare.md")).unwrap();
    for m in METHODS.split(',') {
        assert!(md.contains(&format!("| {m} | sgd | 1 |")), "{m} has its row:\n{md}");
    }

    // What each method logged.
    let method_log = |run: &str| jsonl(&full.join(run).join("method.jsonl"));
    for (run, estimated_at) in [("gblend-offline-seed0", vec![0]), ("gblend-online-seed0", vec![0, 2])] {
        let log = method_log(run);
        assert_eq!(log.len(), 3, "{run}: a line per epoch");
        let at: Vec<u64> = log.iter().filter(|l| l["estimated"] == true).map(|l| l["epoch"].as_u64().unwrap()).collect();
        assert_eq!(at, estimated_at, "{run}: estimated at the start of each super-epoch");
        for l in &log {
            let w = &l["weights"];
            let sum: f64 = ["audio", "visual", "fused"].iter().map(|h| w[h].as_f64().unwrap()).sum();
            assert!((sum - 1.0).abs() < 1e-9, "{run}: weights sum to 1: {l}");
        }
        let e = &log[0]["estimates"];
        assert_eq!(e.as_array().unwrap().len(), 3, "{run}: one estimate run per head: {e}");
    }
    let dropped: u64 = ["modality-drop-audio-seed0", "modality-drop-visual-seed0"]
        .iter()
        .flat_map(|r| method_log(r))
        .map(|l| {
            assert!(l["dropped"].as_u64().unwrap() <= l["steps"].as_u64().unwrap(), "{l}");
            l["dropped"].as_u64().unwrap()
        })
        .sum();
    assert!(dropped > 0, "some batches were dropped");
    for s in jsonl(&full.join("ogm-ge-adaptive-seed0/steps.jsonl")) {
        let (ratio_a, k_a, k_v) = (s["ratio_a"].as_f64().unwrap(), s["k_a"].as_f64().unwrap(), s["k_v"].as_f64().unwrap());
        let k = if ratio_a >= 1.0 { k_a } else { k_v };
        assert!((k - 1.0 / ratio_a.max(1.0 / ratio_a)).abs() < 1e-9 && s["alpha"].as_f64().is_some(), "the dominant modality is scaled by 1/rho: {s}");
    }
    for s in jsonl(&full.join("ge-only-seed0/steps.jsonl")) {
        assert!(s["k_a"] == 1.0 && s["k_v"] == 1.0 && s["modulated"] == true, "noise without scaling: {s}");
    }
    for s in jsonl(&full.join("ogm-seed0/steps.jsonl")) {
        assert!(s["k_a"] == s["rule_k_a"] && s["k_v"] == s["rule_k_v"] && s["modulated"] == true, "the rule's coefficients applied: {s}");
    }
    let summary: serde_json::Value = serde_json::from_slice(&std::fs::read(full.join("none-seed0/summary.json")).unwrap()).unwrap();
    let c = &summary["test"]["contribution"];
    let (a, v, both, neither) = (c["audio"].as_f64().unwrap(), c["visual"].as_f64().unwrap(), c["both"].as_f64().unwrap(), c["neither"].as_f64().unwrap());
    assert!((a + v - (both - neither)).abs() < 1e-9, "Shapley efficiency: {c}");

    // The same comparison in two parts, the second killed during its first run and run again.
    ok(compare(&data, &parts, &["--part", "0/2", "--jobs", "2"]).output().unwrap());
    let refused = compare(&data, &parts, &["--merge"]).output().unwrap();
    assert!(!refused.status.success() && String::from_utf8_lossy(&refused.stderr).contains("have not finished"), "merging before part 1 is refused");
    let progress = parts.join("ogm-ge-adaptive-seed0/checkpoint/progress.json");
    common::kill_after_first_checkpoint(compare(&data, &parts, &["--part", "1/2", "--jobs", "2"]), &progress);
    let killed_at: serde_json::Value = serde_json::from_slice(&std::fs::read(&progress).unwrap()).unwrap();
    ok(compare(&data, &parts, &["--part", "1/2", "--jobs", "2"]).output().unwrap());
    let log = std::fs::read_to_string(parts.join("logs/ogm-ge-adaptive-seed0.log")).unwrap();
    assert!(log.contains("resuming at epoch"), "the killed run resumes (killed at {killed_at}): {log}");
    ok(compare(&data, &parts, &["--merge", "--probe"]).output().unwrap());
    assert!(md.contains("probe visual"), "{md}");
    for f in ["compare.csv", "compare.md"] {
        let text = |dir: &Path| std::fs::read_to_string(dir.join(f)).unwrap().replace(&dir.display().to_string(), "OUT");
        assert_eq!(text(&parts), text(&full), "{f}: the parts merge to the full comparison");
    }

    // Running the finished comparison again trains nothing; other settings are refused.
    let log = ok(compare(&data, &parts, &["--jobs", "2", "--probe"]).output().unwrap());
    assert_eq!(log.matches("read back").count(), 9, "{log}");
    assert!(!log.contains("linear probes"), "probes are read back too: {log}");
    assert!(!log.contains("epoch   0"), "{log}");
    let other = compare(&data, &parts, &["--merge", "--alpha", "0.3"]).output().unwrap();
    assert!(!other.status.success() && String::from_utf8_lossy(&other.stderr).contains("other settings"), "a run of other settings is never merged");
}
