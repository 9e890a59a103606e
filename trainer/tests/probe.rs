//! `trainer probe`: linear classifiers on a trained run's frozen encoders. On shards where only
//! vision carries the label (a class colour; audio the same for every clip), the visual probe
//! separates the classes and the audio probe cannot.

mod common;

use std::path::Path;
use std::process::Command;

use datasets::shard::{ClipRecord, Frame, Provenance, ShardWriter, WriterOptions};
use datasets::Split;

fn frame(label: usize, i: usize) -> Vec<u8> {
    // Class 0 red-ish, class 1 blue-ish, with a little per-clip variation.
    let c = (i % 7) as u8 * 4;
    let rgb = if label == 0 { [220 - c, 20 + c, 30] } else { [30, 20 + c, 220 - c] };
    let img = image::RgbImage::from_pixel(40, 30, image::Rgb(rgb));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
    out.into_inner()
}

fn shards(dir: &Path, split: Split, rows: usize) {
    let meta = common::meta(split);
    let mut w =
        ShardWriter::create(dir, &format!("{split}/{split}-00000-of-00001.parquet"), &meta, WriterOptions { rows_per_group: 8, zstd_level: 1 }).unwrap();
    let recs: Vec<ClipRecord> = (0..rows)
        .map(|i| ClipRecord {
            clip_id: format!("{split}{i:04}"),
            split,
            label: (i % 2) as u32,
            label_name: ["a", "b"][i % 2].into(),
            audio: vec![0.5; meta.audio_len()],
            frames: (0..2).map(|_| Frame { jpeg: frame(i % 2, i), path: String::new() }).collect(),
            frame_times: vec![0.5, 1.5],
            segment_labels: None,
            provenance: Provenance::default(),
        })
        .collect();
    w.write(&recs).unwrap();
    w.finish().unwrap();
}

#[test]
fn probes_find_the_informative_encoder() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    shards(&data, Split::Train, 40);
    shards(&data, Split::Test, 16);
    let runs = tmp.path().join("runs");
    let train = Command::new(env!("CARGO_BIN_EXE_trainer"))
        .args(["train", "--model", "tiny", "--epochs", "1", "--batch-size", "8", "--frames", "2", "--lr", "0.01", "--balance", "none", "--name", "r"])
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(&runs)
        .output()
        .unwrap();
    assert!(train.status.success(), "{}", String::from_utf8_lossy(&train.stderr));
    let probe = Command::new(env!("CARGO_BIN_EXE_trainer")).args(["probe", "--epochs", "60", "--lr", "0.01", "--run"]).arg(runs.join("r")).output().unwrap();
    assert!(probe.status.success(), "{}", String::from_utf8_lossy(&probe.stderr));
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(runs.join("r/probe.json")).unwrap()).unwrap();
    let acc = |m: &str, split: &str| report[m][split]["accuracy"].as_f64().unwrap();
    assert_eq!(report["test_clips"], 16);
    assert!(report["fit_clips"].as_u64().unwrap() < 40, "fitted on train without its hold-out: {report}");
    assert_eq!(acc("visual", "test"), 1.0, "two colours are linearly separable in any encoder's features: {report}");
    assert!(acc("audio", "test") <= 0.5 + 1e-9, "identical audio carries no label: {report}");
    assert!(report["visual"]["joint_head_test"]["accuracy"].as_f64().is_some());

    // Not a run folder: a clear error naming it.
    let bad = Command::new(env!("CARGO_BIN_EXE_trainer")).args(["probe", "--run"]).arg(&data).output().unwrap();
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success() && err.contains("not a run folder"), "{err}");
}
