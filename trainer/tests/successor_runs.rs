//! The successor methods (issue 16) end to end on synthetic shards: `trainer compare` trains each
//! (UMT with its teachers, MLA on the shared head it needs) and each logs what it did; a method
//! with state (AGM's running means, PMR's prototypes, MLA's projector) resumed after a kill ends
//! exactly as an uninterrupted run.

mod common;

use std::path::Path;
use std::process::Command;

use datasets::Split;

const METHODS: &str = "opm,mmpareto,mmpareto-bb,agm,agm-bb,pmr,umt,mla";

fn trainer(data: &Path, out: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_trainer"));
    cmd.args(args).args(["--model", "tiny", "--batch-size", "8", "--frames", "2", "--lr", "0.01"]).arg("--data").arg(data).arg("--out").arg(out);
    cmd
}

fn jsonl(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn u(v: &serde_json::Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("{v}"))
}

#[test]
fn every_successor_method_trains_in_a_comparison_and_logs_what_it_did() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    common::shards(&data, Split::Train, 32);
    common::shards(&data, Split::Test, 8);
    let out = tmp.path().join("cmp");
    let o =
        trainer(&data, &out, &["compare", "--epochs", "2", "--seeds", "0", "--jobs", "1", "--methods", METHODS, "--val-fraction", "0.25"]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let md = std::fs::read_to_string(out.join("compare.md")).unwrap();
    for m in METHODS.split(',') {
        assert!(md.contains(&format!("| {m} | sgd | 1 |")), "{m} has its row:\n{md}");
        assert_eq!(jsonl(&out.join(format!("{m}-seed0/method.jsonl"))).len(), 2, "{m}: a line per epoch");
    }
    let log = |m: &str| jsonl(&out.join(format!("{m}-seed0/method.jsonl")));
    let config = |m: &str| -> serde_json::Value { serde_json::from_slice(&std::fs::read(out.join(format!("{m}-seed0/config.json"))).unwrap()).unwrap() };
    assert_eq!(config("mla")["fusion"], "shared", "MLA gets the shared head it needs");
    assert_eq!(config("agm")["fusion"], "concat");
    // Steps per epoch: 24 fit clips (a quarter held out) in batches of 8.
    for l in log("opm") {
        assert!(u(&l["steps"]) == 3 && u(&l["executed"]) <= 3, "{l}");
        assert!(u(&l["dropped_audio"]) == 0 || u(&l["dropped_visual"]) == 0 || u(&l["executed"]) > 1, "one dominant modality per step: {l}");
    }
    for m in ["mmpareto", "mmpareto-bb"] {
        assert!(log(m).iter().all(|l| u(&l["steps"]) == 3), "{m}");
    }
    assert!(log("mmpareto-bb").iter().all(|l| u(&l["conflicts_audio"]) == 0 && u(&l["conflicts_visual"]) == 0), "BB's version never sees a conflict");
    for m in ["agm", "agm-bb"] {
        for l in log(m) {
            let (ka, kv) = (l["mean_kappa_audio"].as_f64().unwrap(), l["mean_kappa_visual"].as_f64().unwrap());
            assert!(ka > 0.0 && kv > 0.0 && (ka != 1.0 || kv != 1.0), "{m}: {l}");
        }
    }
    for l in log("pmr") {
        assert_eq!(u(&l["audio_boosted"]) + u(&l["visual_boosted"]), u(&l["steps"]), "one modality gets the prototype loss each step: {l}");
    }
    for l in log("mla") {
        assert_eq!(u(&l["optimizer_steps"]) % 6, 0, "two updates per batch: {l}");
    }
    // UMT trained its teachers first, each a uni-modal run, and distilled from them.
    for t in ["audio", "visual"] {
        let dir = out.join(format!("umt-seed0.teacher-{t}"));
        assert!(dir.join("summary.json").is_file() && dir.join("model-best.bin").is_file(), "{}", dir.display());
        let c: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
        assert_eq!((c["train_head"].as_str().unwrap(), c["balance"].as_str().unwrap()), (t, "none"));
    }
    for l in log("umt") {
        assert!(l["mse_audio"].as_f64().unwrap() > 0.0 && l["mse_visual"].as_f64().unwrap() > 0.0, "{l}");
    }
}

#[test]
fn a_method_with_state_resumes_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    common::shards(&data, Split::Train, 32);
    common::shards(&data, Split::Test, 8);
    let runs = tmp.path().join("runs");
    for (balance, fusion) in [("agm", "concat"), ("pmr", "concat"), ("mla", "shared")] {
        let run = |name: &str, extra: &[&str]| {
            let mut cmd = trainer(&data, &runs, &["train", "--epochs", "3", "--seed", "4", "--balance", balance, "--fusion", fusion, "--name", name]);
            cmd.args(extra);
            cmd
        };
        let full = run(&format!("{balance}-full"), &[]).output().unwrap();
        assert!(full.status.success(), "{}", String::from_utf8_lossy(&full.stderr));
        let killed = format!("{balance}-killed");
        common::kill_after_first_checkpoint(run(&killed, &[]), &runs.join(&killed).join("checkpoint/progress.json"));
        let resumed = run(&killed, &["--resume"]).output().unwrap();
        assert!(resumed.status.success(), "{}", String::from_utf8_lossy(&resumed.stderr));
        let (a, b) = (runs.join(format!("{balance}-full")), runs.join(&killed));
        assert_eq!(common::epochs_without_time(&b), common::epochs_without_time(&a), "{balance}: same per-epoch log");
        assert_eq!(
            std::fs::read_to_string(b.join("method.jsonl")).unwrap(),
            std::fs::read_to_string(a.join("method.jsonl")).unwrap(),
            "{balance}: same method log"
        );
    }
}
