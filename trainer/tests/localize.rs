//! The localizer's data path and model on small fixtures (no FFmpeg): segment batches take the
//! preset's columns of each second, the model's uni-modal shares add up to the fused logits.

mod common;

use burn::prelude::*;
use burn::tensor::Distribution;
use datasets::catalog::{DatasetKind, AVE_SEGMENTS};
use datasets::schema::ShardMeta;
use datasets::shard::{ClipRecord, Frame, Provenance, ShardWriter, WriterOptions};
use datasets::{AudioPreset, FramePreset, Preset, Split};
use trainer::balance::encoder_conv_ids;
use trainer::data::{LoaderConfig, ShardSet, Subset};
use trainer::localize::data::{assemble_segments, segment_ranges};
use trainer::localize::model::AvLocalizer;
use trainer::model::ModelPreset;

type B = trainer::Backend;

/// An AVE-like shard: psd-1004 audio of `freq` x 1004 whose every value is its column index, 10
/// frames, per-second labels.
fn ave_shard(dir: &std::path::Path, clips: usize, split: Split, freq: usize) {
    let meta = ShardMeta {
        dataset: DatasetKind::Ave,
        split,
        preset: Preset { audio: AudioPreset::psd_1004(), frames: FramePreset { exact_frames: Some(10), ..FramePreset::default() } },
        classes: (0..28).map(|i| format!("c{i}")).collect(),
        audio_shape: [freq, 1004],
        audio_dims: ["freq".into(), "time".into()],
    };
    let name = format!("{split}/{split}-00000-of-00001.parquet");
    let mut w = ShardWriter::create(dir, &name, &meta, WriterOptions { rows_per_group: 4, zstd_level: 1 }).unwrap();
    let recs: Vec<ClipRecord> = (0..clips)
        .map(|i| ClipRecord {
            clip_id: format!("{split}{i:03}"),
            split,
            label: i as u32 % 28,
            label_name: format!("c{}", i % 28),
            audio: (0..freq).flat_map(|_| (0..1004).map(|c| c as f32)).collect(),
            frames: (0..10).map(|f| Frame { jpeg: common::jpeg((i * 10 + f) as u8), path: String::new() }).collect(),
            frame_times: (0..10).map(|f| f as f32 + 0.5).collect(),
            segment_labels: Some(datasets::catalog::segment_labels(i as u32 % 28, 3, 7)),
            provenance: Provenance::default(),
        })
        .collect();
    w.write(&recs).unwrap();
    w.finish().unwrap();
}

#[test]
fn segment_batches_take_each_seconds_columns_frame_and_label() {
    let tmp = tempfile::tempdir().unwrap();
    ave_shard(tmp.path(), 6, Split::Train, 2);
    let set = ShardSet::open(tmp.path(), Split::Train).unwrap();
    let cfg = LoaderConfig {
        batch_size: 4,
        frames: 10,
        image_size: 16,
        train: false,
        seed: 0,
        shuffle_buffer: 1,
        audio_crop: None,
        prefetch: 1,
        subset: Subset::All,
        drop_last: false,
    };
    let batches: Vec<_> = set.epoch_with(&cfg, 0, assemble_segments(AVE_SEGMENTS)).into_iter().map(Result::unwrap).collect();
    assert_eq!(batches.iter().map(|b| b.clips()).collect::<Vec<_>>(), [4, 2]);
    let ranges = segment_ranges(&AudioPreset::psd_1004(), 1004, 10);
    let b = &batches[0];
    assert_eq!(b.audio_shape, [2, 100]);
    assert_eq!(b.frames.len(), 4 * 10 * 3 * 16 * 16);
    assert_eq!(b.labels.len(), 40);
    for clip in 0..4 {
        let want = datasets::catalog::segment_labels(clip as u32 % 28, 3, 7);
        assert_eq!(b.labels[clip * 10..clip * 10 + 10].iter().map(|&l| l as u32).collect::<Vec<_>>(), want);
        for (s, r) in ranges.iter().enumerate() {
            let seg = &b.audio[(clip * 10 + s) * 200..(clip * 10 + s + 1) * 200];
            for f in 0..2 {
                let cols: Vec<usize> = seg[f * 100..(f + 1) * 100].iter().map(|&v| v as usize).collect();
                assert_eq!(cols, r.clone().collect::<Vec<_>>(), "clip {clip}, second {s}, row {f}");
            }
        }
    }
    // Frames differ from second to second (each second has its own frame).
    let plane = 3 * 16 * 16;
    assert_ne!(b.frames[..plane], b.frames[plane..2 * plane]);
}

#[test]
fn localizer_shares_add_up_and_attention_is_a_distribution() {
    let device = Default::default();
    B::seed(&device, 3);
    let m = AvLocalizer::<B>::new(ModelPreset::Tiny, 29, &device);
    let (n, s) = (2 * AVE_SEGMENTS, AVE_SEGMENTS);
    let audio = Tensor::<B, 4>::random([n, 1, 257, 100], Distribution::Normal(0.0, 1.0), &device);
    let frames = Tensor::<B, 4>::random([n, 3, 64, 64], Distribution::Normal(0.0, 1.0), &device);
    let out = m.forward(audio, frames, s);
    assert_eq!(out.fused.dims(), [n, 29]);
    assert_eq!(out.attention.dims(), [n, 4], "64-px frames give a 2 x 2 map");
    let sum = (out.audio.clone() + out.visual.clone() - out.fused.clone()).abs().max().into_scalar().elem::<f32>();
    assert!(sum < 1e-4, "audio + visual shares differ from fused by {sum}");
    let att = out.attention.sum_dim(1).into_data().convert::<f32>().to_vec::<f32>().unwrap();
    assert!(att.iter().all(|&v| (v - 1.0).abs() < 1e-5), "{att:?}");
    // OGM-GE's parameters: the 20 conv weights of each trunk, nothing of attention/LSTM/head.
    let (a, v) = encoder_conv_ids(&m.audio_net, &m.visual_net);
    assert_eq!((a.len(), v.len()), (20, 20));
}

/// `trainer localize --resume` after a SIGKILL ends with the same metrics and logs as an
/// uninterrupted run (CPU, fixed seed).
#[test]
fn localize_resume_after_a_kill_matches_an_uninterrupted_run() {
    use std::process::Command;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("ave");
    for (split, clips) in [(Split::Train, 12), (Split::Val, 4), (Split::Test, 4)] {
        ave_shard(&data, clips, split, 16);
    }
    let runs = tmp.path().join("runs");
    let localize = |name: &str, extra: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_trainer"));
        cmd.args(["localize", "--model", "tiny", "--epochs", "4", "--batch-size", "4", "--lr", "0.003", "--seed", "5", "--balance", "ogm-ge"])
            .arg("--data")
            .arg(&data)
            .arg("--out")
            .arg(&runs)
            .args(["--name", name])
            .args(extra);
        cmd
    };
    let full = localize("full", &[]).output().unwrap();
    assert!(full.status.success(), "{}", String::from_utf8_lossy(&full.stderr));

    common::kill_after_first_checkpoint(localize("killed", &[]), &runs.join("killed/checkpoint/progress.json"));
    assert!(!runs.join("killed/summary.json").exists());

    let resumed = localize("killed", &["--resume"]).output().unwrap();
    let log = String::from_utf8_lossy(&resumed.stderr);
    assert!(resumed.status.success(), "{log}");
    assert!(log.contains("resuming at epoch"), "{log}");
    let epochs = |name: &str| common::epochs_without_time(&runs.join(name));
    assert_eq!(epochs("killed"), epochs("full"), "same per-epoch log");
    assert_eq!(epochs("full").len(), 4);
    let summary = |name: &str| {
        let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(runs.join(name).join("summary.json")).unwrap()).unwrap();
        v.as_object_mut().unwrap().remove("run_dir");
        v
    };
    assert_eq!(summary("killed"), summary("full"), "same final metrics");
    let csv_rows = |name: &str| std::fs::read_to_string(runs.join(name).join("epochs.csv")).unwrap().lines().count();
    assert_eq!(csv_rows("killed"), 5, "header and one row per epoch");
}
