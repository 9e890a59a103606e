//! Fixtures shared by the cross-crate tests: deterministic shard rows with real JPEG frames, and
//! the Python interpreter of the interop tests.

pub mod slurm;

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::Command;

use datasets::catalog::{DatasetKind, Split};
use datasets::rng::Rng;
use datasets::schema::ShardMeta;
use datasets::shard::{ClipRecord, Frame, Provenance};
use datasets::{AudioPreset, FramePreset, Preset};

/// Metadata of a small synthetic shard: 6 classes, audio 8 x 12.
pub fn sample_meta(split: Split) -> ShardMeta {
    ShardMeta {
        dataset: DatasetKind::Synthetic,
        split,
        preset: Preset { audio: AudioPreset::synthetic_stft(), frames: FramePreset::default() },
        classes: ["beep", "boop", "buzz", "click", "hum", "whirr"].map(String::from).to_vec(),
        audio_shape: [8, 12],
        audio_dims: ["freq".into(), "time".into()],
    }
}

/// A real JPEG of a `w` x `h` image whose colour encodes `seed`.
pub fn jpeg(seed: u8, w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([seed, (x * 255 / w) as u8, (y * 255 / h) as u8]));
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Jpeg).expect("jpeg encodes");
    out.into_inner()
}

/// `n` deterministic rows for `meta`; row `i` has `1 + i % 3` frames and label `i % classes`.
pub fn sample_records(meta: &ShardMeta, n: usize, seed: u64) -> Vec<ClipRecord> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|i| {
            let label = (i % meta.classes.len()) as u32;
            let frames = 1 + i % 3;
            let clip_id = format!("clip_{seed}_{i:04}");
            ClipRecord {
                split: meta.split,
                label,
                label_name: meta.classes[label as usize].clone(),
                audio: (0..meta.audio_len()).map(|_| rng.uniform() as f32 * 2.0 - 1.0).collect(),
                frames: (0..frames).map(|f| Frame { jpeg: jpeg((i * 40 + f) as u8, 32, 24), path: format!("{clip_id}/frame_{f:02}.jpg") }).collect(),
                frame_times: (0..frames).map(|f| f as f32 + 0.5).collect(),
                segment_labels: (i % 2 == 0).then(|| vec![label, 28, label]),
                provenance: Provenance {
                    source_path: format!("{}/{clip_id}.mp4", meta.split),
                    audio_source_path: (i % 4 == 0).then(|| format!("wav/{clip_id}.wav")),
                    source_bytes: 1000 + i as u64,
                    source_sha256: format!("{:064x}", i),
                    duration_s: 2.0 + i as f64 * 0.25,
                    orig_fps: (i % 5 != 0).then_some(25.0),
                    orig_width: Some(320),
                    orig_height: Some(240),
                    orig_sample_rate: Some(44100),
                    orig_channels: Some(2),
                    audio_tiled: i % 3 == 0,
                },
                clip_id,
            }
        })
        .collect()
}

/// The Python of the interop tests: `$OGMGE_PYTHON` (set by `cargo xtask test`), else the repo's
/// `.venv`. Panics with the set-up command when neither exists: an interop test never passes
/// without running its readers.
pub fn python() -> PathBuf {
    python_with(&["pyarrow", "pandas", "datasets", "duckdb", "polars"])
}

/// [`python`], able to import every one of `modules` (imported from outside the repository, so a
/// folder of the same name there never passes for a package).
pub fn python_with(modules: &[&str]) -> PathBuf {
    let candidate =
        std::env::var_os("OGMGE_PYTHON").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv/bin/python")));
    let ok = Command::new(&candidate).args(["-c", &format!("import {}", modules.join(", "))]).current_dir(std::env::temp_dir()).output();
    match ok {
        Ok(o) if o.status.success() => candidate,
        _ => panic!(
            "this test needs Python with {}; run `cargo xtask setup` (or `cargo xtask test`), or set OGMGE_PYTHON ({} was not usable)",
            modules.join(", "),
            candidate.display()
        ),
    }
}

/// Pipeline options of the end-to-end tests: 2 jobs, 64 clips per shard, no progress bar.
pub fn prepare_options(out: PathBuf) -> preprocess::pipeline::PrepareOptions {
    preprocess::pipeline::PrepareOptions {
        out,
        jobs: 2,
        part: None,
        merge_only: false,
        parts: None,
        clips_per_shard: 64,
        writer: Default::default(),
        clip: Default::default(),
        progress: false,
    }
}

/// A binary of the workspace built beside this test (`cargo test --workspace` builds every
/// package's binaries): `target/<profile>/<name>`. Panics with the build command when absent.
pub fn workspace_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test's path");
    let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile>/deps/<test>");
    let bin = profile_dir.join(name);
    assert!(bin.is_file(), "{} is not built: run the tests with `cargo xtask test` (or `cargo build -p {name}` first)", bin.display());
    bin
}

/// The tests' training run: the `tiny` model, concat fusion, OGM-GE at alpha 0.8 over epochs
/// 0-50, SGD at 0.01, 2 frames, seed 0, a 10% hold-out; 6 epochs of batches of 16. Tests change
/// what they vary with struct update syntax.
pub fn tiny_run(data: &Path, out: &Path) -> trainer::train::TrainConfig {
    trainer::train::TrainConfig {
        data: data.to_owned(),
        out: out.to_owned(),
        name: "tiny".into(),
        model: trainer::model::ModelPreset::Tiny,
        fusion: trainer::model::FusionKind::Concat,
        arch: trainer::arch::Arch::Plain,
        balance: trainer::methods::Balance::OgmGe,
        alpha: 0.8,
        modulation_start: 0,
        modulation_end: 50,
        epochs: 6,
        batch_size: 16,
        lr: 0.01,
        momentum: 0.9,
        weight_decay: 1e-4,
        lr_step: 70,
        lr_gamma: 0.1,
        frames: 2,
        seed: 0,
        val_fraction: 0.1,
        select_on_test: false,
        shuffle_buffer: 256,
        train_head: Default::default(),
        optimizer: Default::default(),
        ..Default::default()
    }
}
