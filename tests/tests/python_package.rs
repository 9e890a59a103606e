//! The Python package (`python/ogmge`) against the Rust side, on real preprocessed shards: the
//! loader's items against the trainer's loader (eval and train, classifier and AVE segments),
//! the exporters against transcriptions of the reference programs' own dataset classes, and a
//! run's TensorBoard events against its `epochs.jsonl` through `tensorboard`'s own reader.

use std::path::Path;
use std::process::Command;

use datasets::{DatasetKind, Split};
use preprocess::pipeline::prepare;
use preprocess::synthetic::{generate, generate_ave, SyntheticAveConfig, SyntheticConfig};
use serde_json::json;
use trainer::data::{LoaderConfig, ShardSet, Subset};
use trainer::localize::data::assemble_segments;
use trainer::train::{train, TrainConfig};

/// What a loader yielded for one epoch, written as `<name>.json` (ids, labels, shapes) and the
/// audio and frames as raw little-endian float32 (`<name>.audio.f32`, `<name>.frames.f32`).
#[derive(Default)]
struct Dump {
    ids: Vec<String>,
    labels: Vec<i64>,
    audio: Vec<f32>,
    frames: Vec<f32>,
    audio_shape: [usize; 2],
}

impl Dump {
    fn add(&mut self, audio_shape: [usize; 2], ids: Vec<String>, labels: Vec<i64>, audio: Vec<f32>, frames: Vec<f32>) {
        self.audio_shape = audio_shape;
        self.ids.extend(ids);
        self.labels.extend(labels);
        self.audio.extend(audio);
        self.frames.extend(frames);
    }

    fn write(&self, dir: &Path, name: &str, clip_audio: &[usize], clip_frames: &[usize]) {
        let raw = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        std::fs::write(dir.join(format!("{name}.audio.f32")), raw(&self.audio)).unwrap();
        std::fs::write(dir.join(format!("{name}.frames.f32")), raw(&self.frames)).unwrap();
        let n = self.ids.len();
        let shape = |per_clip: &[usize]| [&[n][..], per_clip].concat();
        let meta = json!({"clip_ids": self.ids, "labels": self.labels, "audio_shape": shape(clip_audio), "frames_shape": shape(clip_frames)});
        std::fs::write(dir.join(format!("{name}.json")), meta.to_string()).unwrap();
    }
}

fn check(script_args: &[&dyn AsRef<std::ffi::OsStr>]) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/package_check.py");
    let mut cmd = Command::new(tests::python_with(&["ogmge", "torch", "torchvision", "tensorboard"]));
    cmd.arg(script);
    for a in script_args {
        cmd.arg(a);
    }
    let out = cmd.output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{script} failed:\n{stdout}\n{stderr}");
    println!("{stdout}");
}

#[test]
fn python_package_loads_exports_and_reads_events_as_the_rust_side_writes_them() {
    let tmp = tempfile::tempdir().unwrap();
    // 8-s clips: 8 frames each, the most the reference classes' frame rules (> 3 files, seg*i+1)
    // exercise without reaching their two-digit naming bug.
    let cfg = SyntheticConfig { train_per_class: 2, test_per_class: 2, seconds: 8.0, ..SyntheticConfig::default() };
    generate(&tmp.path().join("raw/synthetic"), &cfg).unwrap();
    let catalog = DatasetKind::Synthetic.scan(&tmp.path().join("raw/synthetic")).unwrap();
    let out = tmp.path().join("out");
    // Row groups of 5 rows: the trainer's epoch order shuffles groups, then rows through a buffer.
    let mut opts = tests::prepare_options(out.clone());
    opts.writer.rows_per_group = 5;
    prepare(&catalog, &DatasetKind::Synthetic.default_preset(), &opts).unwrap();
    let synthetic = out.join("synthetic");

    let ave_cfg = SyntheticAveConfig { classes: 2, train_per_class: 1, val_per_class: 1, test_per_class: 2, ..SyntheticAveConfig::default() };
    let ave_raw = tmp.path().join("raw/AVE_Dataset");
    generate_ave(&ave_raw, &ave_cfg).unwrap();
    let mut preset = DatasetKind::Ave.default_preset();
    preset.frames.short_side = ave_cfg.size;
    prepare(&DatasetKind::Ave.scan(&ave_raw).unwrap(), &preset, &tests::prepare_options(out.clone())).unwrap();
    let ave = out.join("ave");

    // 1. The trainer's loader, eval and train, classifier (with an audio crop) and segments.
    let dumps = tmp.path().join("dumps");
    std::fs::create_dir(&dumps).unwrap();
    for train_mode in [false, true] {
        let mode = if train_mode { "train" } else { "eval" };
        let loader = LoaderConfig {
            batch_size: 4,
            frames: 3,
            image_size: 40,
            train: train_mode,
            seed: 7,
            shuffle_buffer: 8,
            audio_crop: Some(100),
            prefetch: 1,
            subset: Subset::All,
            drop_last: false,
        };
        let mut d = Dump::default();
        for b in ShardSet::open(&synthetic, Split::Test).unwrap().epoch(&loader, 2) {
            let b = b.unwrap();
            d.add(b.audio_shape, b.clip_ids, b.labels, b.audio, b.frames);
        }
        d.write(&dumps, &format!("clips-{mode}"), &[1, d.audio_shape[0], d.audio_shape[1]], &[3, 3, 40, 40]);

        let mut d = Dump::default();
        for b in ShardSet::open(&ave, Split::Test).unwrap().epoch_with(&LoaderConfig { audio_crop: None, ..loader }, 2, assemble_segments(10)) {
            let b = b.unwrap();
            d.add(b.audio_shape, b.clip_ids, b.labels, b.audio, b.frames);
        }
        d.write(&dumps, &format!("segments-{mode}"), &[10, 1, d.audio_shape[0], d.audio_shape[1]], &[10, 3, 40, 40]);
    }
    check(&[&"loader", &synthetic, &ave, &dumps]);

    // 2. Every layout, read by the reference programs' classes.
    check(&[&"export", &synthetic, &tmp.path().join("exports")]);

    // 3. A run's TensorBoard scalars, read back with tensorboard's event reader.
    let run = TrainConfig {
        name: "tb".into(),
        epochs: 2,
        batch_size: 4,
        val_fraction: 0.25,
        shuffle_buffer: 16,
        ..tests::tiny_run(&synthetic, &tmp.path().join("runs"))
    };
    let summary = train::<trainer::Backend>(&run, &Default::default(), false, false).unwrap();
    check(&[&"tensorboard", &summary.run_dir]);
}
