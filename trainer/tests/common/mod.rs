//! Shards written with the `datasets` writer (no FFmpeg needed): the trainer tests' fixture.
#![allow(dead_code)]

use datasets::catalog::DatasetKind;
use datasets::schema::ShardMeta;
use datasets::shard::{ClipRecord, Frame, Provenance, ShardWriter, WriterOptions};
use datasets::{AudioPreset, FramePreset, Preset, Split};

pub fn jpeg(c: u8) -> Vec<u8> {
    let img = image::RgbImage::from_pixel(40, 30, image::Rgb([c, 255 - c, 7]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
    out.into_inner()
}

/// The fixture shards' description: 2 classes, 4x6 audio matrices.
pub fn meta(split: Split) -> ShardMeta {
    ShardMeta {
        dataset: DatasetKind::Synthetic,
        split,
        preset: Preset { audio: AudioPreset::synthetic_stft(), frames: FramePreset::default() },
        classes: vec!["a".into(), "b".into()],
        audio_shape: [4, 6],
        audio_dims: ["freq".into(), "time".into()],
    }
}

/// 3 shards of `split` rows with distinct audio (every value = the row index), 4 frames each,
/// a few row groups per shard; label = row index % 2.
pub fn shards(dir: &std::path::Path, split: Split, rows: usize) {
    shards_with(dir, &meta(split), rows, 3)
}

/// `shards` for any description and number of shards.
pub fn shards_with(dir: &std::path::Path, meta: &ShardMeta, rows: usize, count: usize) {
    let split = meta.split;
    let per = rows.div_ceil(count).max(1);
    for s in 0..count {
        let name = format!("{split}/{split}-{s:05}-of-{count:05}.parquet");
        let mut w = ShardWriter::create(dir, &name, meta, WriterOptions { rows_per_group: 5, zstd_level: 1 }).unwrap();
        let recs: Vec<ClipRecord> = (s * per..((s + 1) * per).min(rows))
            .map(|i| ClipRecord {
                clip_id: format!("clip{i:04}"),
                split,
                label: (i % 2) as u32,
                label_name: ["a", "b"][i % 2].into(),
                audio: vec![i as f32; meta.audio_len()],
                frames: (0..4).map(|f| Frame { jpeg: jpeg((i * 4 + f) as u8), path: String::new() }).collect(),
                frame_times: vec![0.5, 1.5, 2.5, 3.5],
                segment_labels: None,
                provenance: Provenance::default(),
            })
            .collect();
        w.write(&recs).unwrap();
        w.finish().unwrap();
    }
}

/// Starts `cmd` (a training run) and SIGKILLs it once its first checkpoint is committed
/// (`progress`) while it is still running: what `--resume` must recover from.
pub fn kill_after_first_checkpoint(mut cmd: std::process::Command, progress: &std::path::Path) {
    use std::time::{Duration, Instant};
    let mut child = cmd.spawn().unwrap();
    let t = Instant::now();
    while !progress.exists() {
        assert!(child.try_wait().unwrap().is_none(), "finished before the kill");
        assert!(t.elapsed() < Duration::from_secs(300));
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(child.try_wait().unwrap().is_none(), "still running when killed");
    child.kill().unwrap();
    child.wait().unwrap();
}

/// A run's `epochs.jsonl` without the wall-clock fields (`*seconds`).
pub fn epochs_without_time(run: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("epochs.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            v.as_object_mut().unwrap().retain(|k, _| !k.ends_with("seconds"));
            v
        })
        .collect()
}
