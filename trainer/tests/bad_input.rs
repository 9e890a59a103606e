//! Bad shard input and bad settings stop a run with an error that names the shard (or the flag)
//! and the reason, before the run folder exists: never a panic, never a silent wrong result.

mod common;

use std::path::Path;
use std::sync::Arc;

use datasets::arrow::array::{Array, Int64Array, RecordBatch};
use datasets::Split;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use trainer::model::ModelPreset;
use trainer::train::{train, TrainConfig};

fn config(data: &Path, out: &Path) -> TrainConfig {
    TrainConfig {
        data: data.to_owned(),
        out: out.to_owned(),
        name: "run".into(),
        model: ModelPreset::Tiny,
        epochs: 1,
        batch_size: 8,
        lr: 0.01,
        frames: 2,
        shuffle_buffer: 16,
        ..TrainConfig::default()
    }
}

/// Rewrites a shard with its `label` column replaced (schema and self-description kept).
fn set_labels(shard: &Path, labels: &[Option<i64>]) {
    let builder = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(shard).unwrap()).unwrap();
    let schema = builder.schema().clone();
    let batches: Vec<RecordBatch> = builder.build().unwrap().collect::<Result<_, _>>().unwrap();
    let batch = datasets::arrow::compute::concat_batches(&schema, &batches).unwrap();
    assert_eq!(batch.num_rows(), labels.len());
    let i = schema.index_of("label").unwrap();
    let mut columns: Vec<Arc<dyn Array>> = batch.columns().to_vec();
    columns[i] = Arc::new(Int64Array::from(labels.to_vec()));
    let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
    let mut w = ArrowWriter::try_new(std::fs::File::create(shard).unwrap(), schema, None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

/// Trains on `data` and returns the error, checking that no run folder was made.
fn error(cfg: &TrainConfig) -> String {
    let e = train::<trainer::Backend>(cfg, &Default::default(), false, false).expect_err("the run must fail");
    assert!(!cfg.out.join(&cfg.name).exists(), "no run folder for a run that cannot start");
    format!("{e:#}")
}

#[test]
fn bad_labels_name_the_shard_and_the_clip() {
    let shard0 = |data: &Path| data.join("train/train-00000-of-00003.parquet");
    // Train shard 0 holds clips 0..16; the fixture's labels are i % 2 of 2 classes.
    type Labels = Box<dyn Fn(usize) -> Option<i64>>;
    let cases: [(&str, Labels, &str); 3] = [
        ("out of range", Box::new(|i| Some(if i == 5 { 2 } else { (i % 2) as i64 })), "clip clip0005: label 2 out of range"),
        ("negative", Box::new(|i| Some(if i == 3 { -1 } else { (i % 2) as i64 })), "clip clip0003: label -1 out of range"),
        ("null", Box::new(|i| if i == 7 { None } else { Some((i % 2) as i64) }), "clip clip0007: label is null"),
    ];
    for (what, label, want) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        common::shards(&data, Split::Train, 48);
        common::shards(&data, Split::Test, 12);
        set_labels(&shard0(&data), &(0..16).map(label).collect::<Vec<_>>());
        // Checked when rows are read, so also in evaluation-only passes (the hold-out).
        let mut cfg = config(&data, &tmp.path().join("runs"));
        cfg.val_fraction = 0.0;
        let e = train::<trainer::Backend>(&cfg, &Default::default(), false, false).expect_err(what);
        let e = format!("{e:#}");
        assert!(e.contains(want) && e.contains(&shard0(&data).display().to_string()), "{what}: {e}");
    }
}

#[test]
fn incompatible_or_empty_splits_are_refused_before_the_run_starts() {
    type Breaks = fn(&Path);
    let cases: [(&str, Breaks, &str); 5] = [
        (
            "test classes differ",
            |d| {
                let mut m = common::meta(Split::Test);
                m.classes = vec!["a".into(), "c".into()];
                common::shards_with(d, &m, 12, 1);
            },
            "has another class list",
        ),
        (
            "a train shard with another audio shape",
            |d| {
                common::shards(d, Split::Test, 12);
                let mut m = common::meta(Split::Train);
                m.audio_shape = [4, 5];
                common::shards_with(&d.join("extra"), &m, 6, 1);
                std::fs::rename(d.join("extra/train/train-00000-of-00001.parquet"), d.join("train/train-99999-of-99999.parquet")).unwrap();
            },
            "has another audio shape ([4, 5], not [4, 6])",
        ),
        (
            "a train shard with another preset",
            |d| {
                common::shards(d, Split::Test, 12);
                let mut m = common::meta(Split::Train);
                m.preset.frames.jpeg_quality = 50;
                common::shards_with(&d.join("extra"), &m, 6, 1);
                std::fs::rename(d.join("extra/train/train-00000-of-00001.parquet"), d.join("train/train-99999-of-99999.parquet")).unwrap();
            },
            "was made with another preset",
        ),
        ("an empty test split", |d| common::shards_with(d, &common::meta(Split::Test), 0, 1), "has shards but no rows"),
        ("no test split", |_| {}, "no test shards"),
    ];
    for (what, breaks, want) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        common::shards(&data, Split::Train, 48);
        breaks(&data);
        let e = error(&config(&data, &tmp.path().join("runs")));
        assert!(e.contains(want), "{what}: {e}");
        assert!(e.contains(&data.display().to_string()), "{what}: the error names the shard or folder: {e}");
    }
}

#[test]
fn impossible_settings_are_refused_with_the_flag() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    common::shards(&data, Split::Train, 48);
    common::shards(&data, Split::Test, 12);
    let runs = tmp.path().join("runs");
    type Change = fn(&mut TrainConfig);
    let cases: [(&str, Change, &str); 5] = [
        ("no frames", |c| c.frames = 0, "--frames must be at least 1"),
        ("no batch", |c| c.batch_size = 0, "--batch-size"),
        ("a hold-out of everything", |c| c.val_fraction = 1.0, "--val-fraction"),
        ("an empty hold-out", |c| c.val_fraction = 0.0001, "hold-out (--val-fraction 0.0001) of 48 train clips"),
        ("a name that is a path", |c| c.name = "../elsewhere".into(), "plain folder name"),
    ];
    for (what, set, want) in cases {
        let mut cfg = config(&data, &runs);
        set(&mut cfg);
        let e = error(&cfg);
        assert!(e.contains(want), "{what}: {e}");
    }
    assert!(!runs.exists(), "nothing written");
}
