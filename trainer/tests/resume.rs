//! `trainer train --resume` after a SIGKILL ends with the same metrics and logs as an
//! uninterrupted run (CPU, fixed seed).

mod common;

use std::path::Path;
use std::process::Command;

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

#[test]
fn resume_after_a_kill_matches_an_uninterrupted_run() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    common::shards(&data, Split::Train, 48);
    common::shards(&data, Split::Test, 12);
    let runs = tmp.path().join("runs");

    let full = train(&data, &runs, "full", &[]).output().unwrap();
    assert!(full.status.success(), "{}", String::from_utf8_lossy(&full.stderr));

    common::kill_after_first_checkpoint(train(&data, &runs, "killed", &[]), &runs.join("killed/checkpoint/progress.json"));
    assert!(!runs.join("killed/summary.json").exists());

    // A run made before a config key existed (here `optimizer`, added with a default) resumes.
    let config = runs.join("killed/config.json");
    let mut older: serde_json::Value = serde_json::from_slice(&std::fs::read(&config).unwrap()).unwrap();
    assert!(older.as_object_mut().unwrap().remove("optimizer").is_some());
    std::fs::write(&config, serde_json::to_string_pretty(&older).unwrap()).unwrap();
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
    assert_eq!(common::epochs_without_time(&runs.join("killed")), common::epochs_without_time(&runs.join("full")), "same per-epoch log");
    assert_eq!(common::epochs_without_time(&runs.join("full")).len(), 4);
    // The TensorBoard file holds each epoch once, as the uninterrupted run's (timings aside).
    let events = |name: &str| -> Vec<(i64, String, f32)> {
        let all = trainer::tensorboard::read_scalars(&runs.join(name).join(trainer::tensorboard::EVENT_FILE)).unwrap();
        all.into_iter().filter(|(_, tag, _)| !tag.ends_with("seconds")).collect()
    };
    assert_eq!(events("killed"), events("full"));
    assert_eq!(events("full").iter().filter(|(_, tag, _)| tag == "test/fused/accuracy").count(), 4);
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
