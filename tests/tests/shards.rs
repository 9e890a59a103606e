//! Shard files: round trip, determinism, streaming access, and atomic visibility.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use datasets::schema::col;
use datasets::shard::{file_sha256, ShardReader, ShardWriter, WriterOptions};
use datasets::Split;
use tests::{sample_meta, sample_records};

fn write_shard(dir: &std::path::Path, rows: usize, per_group: usize) -> datasets::shard::ShardInfo {
    let meta = sample_meta(Split::Train);
    let opts = WriterOptions { rows_per_group: per_group, ..WriterOptions::default() };
    let mut w = ShardWriter::create(dir, "train/train-00000-of-00001.parquet", &meta, opts).unwrap();
    let records = sample_records(&meta, rows, 7);
    // Written in uneven pieces: row groups follow rows_per_group, not the calls.
    w.write(&records[..3]).unwrap();
    w.write(&records[3..]).unwrap();
    w.finish().unwrap()
}

#[test]
fn round_trip_keeps_every_value() {
    let dir = tempfile::tempdir().unwrap();
    let info = write_shard(dir.path(), 10, 4);
    assert_eq!(info.rows, 10);
    let path = dir.path().join(&info.file);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), info.bytes);
    assert_eq!(file_sha256(&path).unwrap(), info.sha256);

    let reader = ShardReader::open(&path).unwrap();
    let meta = sample_meta(Split::Train);
    assert_eq!(reader.meta(), &meta);
    assert_eq!((reader.num_rows(), reader.num_row_groups()), (10, 3));
    assert_eq!((0..3).map(|g| reader.row_group_rows(g)).collect::<Vec<_>>(), [4, 4, 2]);
    let back: Vec<_> = reader.records().collect::<Result<Vec<_>, _>>().unwrap().concat();
    assert_eq!(back, sample_records(&meta, 10, 7));
}

#[test]
fn same_rows_give_identical_bytes() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (ia, ib) = (write_shard(a.path(), 9, 4), write_shard(b.path(), 9, 4));
    assert_eq!(ia, ib);
    let bytes = |d: &tempfile::TempDir| std::fs::read(d.path().join(&ia.file)).unwrap();
    assert_eq!(bytes(&a), bytes(&b));
    // And different content does change the hash.
    let c = tempfile::tempdir().unwrap();
    assert_ne!(write_shard(c.path(), 8, 4).sha256, ia.sha256);
}

/// How each column is stored: the spectrogram floats byte-stream-split, everything zstd; the
/// Python readers of the interop test read them back.
#[test]
fn spectrograms_are_stored_byte_stream_split() {
    use parquet::basic::{Compression, Encoding};
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let dir = tempfile::tempdir().unwrap();
    let info = write_shard(dir.path(), 6, 4);
    let reader = SerializedFileReader::new(std::fs::File::open(dir.path().join(&info.file)).unwrap()).unwrap();
    let meta = reader.metadata();
    assert_eq!(meta.num_row_groups(), 2);
    for group in meta.row_groups() {
        for c in group.columns() {
            let path = c.column_path().string();
            let encodings: Vec<Encoding> = c.encodings().collect();
            assert!(matches!(c.compression(), Compression::ZSTD(_)), "{path}: {:?}", c.compression());
            let split = encodings.contains(&Encoding::BYTE_STREAM_SPLIT);
            assert_eq!(split, path == "audio.list.item", "{path}: {encodings:?}");
        }
    }
}

#[test]
fn random_access_and_projection() {
    let dir = tempfile::tempdir().unwrap();
    let info = write_shard(dir.path(), 10, 4);
    let reader = ShardReader::open(&dir.path().join(&info.file)).unwrap();
    let batch = reader.read_row_group(2, Some(&[col::LABEL, col::CLIP_ID])).unwrap();
    assert_eq!(batch.num_columns(), 2);
    assert_eq!(batch.num_rows(), 2);
    let ids = batch.column_by_name(col::CLIP_ID).unwrap();
    let ids = ids.as_any().downcast_ref::<datasets::arrow::array::StringArray>().unwrap();
    assert_eq!(ids.value(0), "clip_7_0008");
    assert!(reader.read_row_group(3, None).is_err());
    let err = reader.read_row_group(0, Some(&["nope"])).unwrap_err().to_string();
    assert!(err.contains("nope") && err.contains("train-00000"), "{err}");
}

#[test]
fn rows_that_do_not_fit_the_schema_are_an_error_naming_the_shard() {
    let dir = tempfile::tempdir().unwrap();
    let meta = sample_meta(Split::Train);
    let mut w = ShardWriter::create(dir.path(), "train/x.parquet", &meta, WriterOptions::default()).unwrap();
    let mut rows = sample_records(&meta, 1, 1);
    rows[0].audio.pop();
    let err = w.write(&rows).unwrap_err().to_string();
    assert!(err.contains("x.parquet") && err.contains("audio has 95 values"), "{err}");
    drop(w);
    assert_eq!(std::fs::read_dir(dir.path().join("train")).unwrap().count(), 0, "dropped writer leaves nothing");
}

#[test]
fn a_killed_writer_leaves_no_shard() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_slow_shard_writer")).arg(dir.path()).stdout(Stdio::piped()).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // Let it write a few row groups, so the temporary file has real content.
    for _ in 0..5 {
        lines.next().unwrap().unwrap();
    }
    child.kill().unwrap(); // SIGKILL: no destructor runs
    child.wait().unwrap();
    let names: Vec<String> = std::fs::read_dir(dir.path().join("train")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(!names.iter().any(|n| n == "train-00000-of-00001.parquet"), "final name must not exist: {names:?}");
    assert!(names.iter().all(|n| n.starts_with('.') && n.ends_with(".partial")), "only a hidden temp file: {names:?}");
    // A rerun writes the shard whole over the leftover temp file.
    let info = write_shard(dir.path(), 5, 4);
    assert!(ShardReader::open(&dir.path().join(info.file)).is_ok());
}
