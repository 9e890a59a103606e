//! Shards written by Rust, read back by real Python readers (pyarrow, pandas, HF `datasets`,
//! DuckDB, polars), which compare values against what was written.

use std::process::Command;

use datasets::card;
use datasets::index::{DatasetIndex, IndexedShard};
use datasets::shard::{ShardWriter, WriterOptions};
use datasets::Split;
use serde_json::json;
use tests::{sample_meta, sample_records};

#[test]
fn python_readers_see_what_rust_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let meta = sample_meta(Split::Train);
    let mut index = DatasetIndex::new(meta.dataset, meta.preset.clone(), meta.classes.clone());
    let mut all = Vec::new();
    for (shard, seed) in [(0, 11), (1, 12)] {
        let name = format!("train/train-{shard:05}-of-00002.parquet");
        let opts = WriterOptions { rows_per_group: 3, ..WriterOptions::default() };
        let mut w = ShardWriter::create(dir.path(), &name, &meta, opts).unwrap();
        let rows = sample_records(&meta, 5, seed);
        w.write(&rows).unwrap();
        index.shards.push(IndexedShard { split: Split::Train, info: w.finish().unwrap() });
        all.extend(rows);
    }
    index.normalise();
    index.write(&dir.path().join("index.json")).unwrap();
    std::fs::write(dir.path().join("README.md"), card::render(&index)).unwrap();

    let expected = json!({
        "shape": meta.audio_shape,
        "classes": meta.classes,
        "rows": all.iter().enumerate().map(|(k, r)| {
            let i = k % 5; // frame colours are seeded by the row's index within its shard
            json!({
                "clip_id": r.clip_id, "label": r.label, "label_name": r.label_name, "audio": r.audio,
                "frame_seeds": (0..r.frames.len()).map(|f| (i * 40 + f) as u8).collect::<Vec<_>>(),
                "segment_labels": r.segment_labels, "orig_fps": r.provenance.orig_fps,
                "audio_source_path": r.provenance.audio_source_path,
            })
        }).collect::<Vec<_>>(),
    });
    let expected_path = dir.path().join("expected.json");
    std::fs::write(&expected_path, expected.to_string()).unwrap();

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/interop_check.py");
    let out = Command::new(tests::python())
        .arg(script)
        .arg(dir.path())
        .arg(&expected_path)
        .env("HF_DATASETS_CACHE", dir.path().join("hf-cache"))
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "python interop failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("interop ok"), "{stdout}");
    println!("{stdout}");
}
