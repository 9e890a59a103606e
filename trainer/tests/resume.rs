//! `trainer train --resume` after a SIGKILL ends with the same metrics and logs as an
//! uninterrupted run (CPU, fixed seed).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use datasets::Split;

fn train(data: &Path, runs: &Path, name: &str, extra: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_trainer"));
    cmd.args(["train", "--model", "tiny", "--epochs", "4", "--batch-size", "8", "--frames", "2", "--lr", "0.01", "--seed", "3"])
        .arg("--data")
        .arg(data)
        .arg("--out")
        .arg(runs)
        .args(["--name", name])
        .args(extra);
    cmd
}

/// The epoch log without the wall-clock field.
fn epochs(run: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("epochs.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            v.as_object_mut().unwrap().remove("seconds");
            v
        })
        .collect()
}

#[test]
fn resume_after_a_kill_matches_an_uninterrupted_run() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    common::shards(&data, Split::Train, 48);
    common::shards(&data, Split::Test, 12);
    let runs = tmp.path().join("runs");

    let full = train(&data, &runs, "full", &[]).output().unwrap();
    assert!(full.status.success(), "{}", String::from_utf8_lossy(&full.stderr));

    let mut child = train(&data, &runs, "killed", &[]).spawn().unwrap();
    let progress = runs.join("killed/checkpoint/progress.json");
    let t = Instant::now();
    while !progress.exists() {
        assert!(child.try_wait().unwrap().is_none(), "finished before the kill");
        assert!(t.elapsed() < Duration::from_secs(300));
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(child.try_wait().unwrap().is_none(), "still running when killed");
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!runs.join("killed/summary.json").exists());

    let resumed = train(&data, &runs, "killed", &["--resume"]).output().unwrap();
    let log = String::from_utf8_lossy(&resumed.stderr);
    assert!(resumed.status.success(), "{log}");
    assert!(log.contains("resuming at epoch"), "{log}");
    let summary = |name: &str| {
        let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(runs.join(name).join("summary.json")).unwrap()).unwrap();
        v.as_object_mut().unwrap().remove("run_dir");
        v
    };
    assert_eq!(summary("killed"), summary("full"), "same final metrics");
    assert_eq!(epochs(&runs.join("killed")), epochs(&runs.join("full")), "same per-epoch log");
    assert_eq!(epochs(&runs.join("full")).len(), 4);
    // The CSV view has a header and one row per epoch, without the wall-clock column equal.
    let csv = |name: &str| -> Vec<String> {
        std::fs::read_to_string(runs.join(name).join("epochs.csv")).unwrap().lines().map(|l| l.rsplit_once(',').unwrap().0.to_owned()).collect()
    };
    assert_eq!(csv("full").len(), 5);
    assert_eq!(csv("killed"), csv("full"));

    // A different config refuses to resume into the same folder.
    let other = train(&data, &runs, "killed", &["--resume", "--alpha", "0.3"]).output().unwrap();
    assert!(!other.status.success());
    assert!(String::from_utf8_lossy(&other.stderr).contains("another config"));
}
