//! Property tests of the shard reader on damaged and foreign files: a real shard truncated
//! anywhere, a real shard with bits flipped anywhere (footer, page headers, compressed pages,
//! the self-description), and Parquet files from other tools. Opening and reading every row
//! group never panics; every error names the file. (A flip inside a data page can decode to other
//! values: Parquet pages carry no checksum here. `index.json`'s SHA-256 is what catches those.)

use std::sync::{Arc, OnceLock};

use arrow::array::{ArrayRef, Int32Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use datasets::catalog::DatasetKind;
use datasets::schema::ShardMeta;
use datasets::shard::{ClipRecord, Frame, Provenance, ShardReader, ShardWriter, WriterOptions};
use datasets::{AudioPreset, FramePreset, Preset, Split};
use proptest::prelude::*;

/// The bytes of a real shard: 12 rows in 3 row groups, spectrogram, JPEG-like frames, labels.
fn shard() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let meta = ShardMeta {
            dataset: DatasetKind::Synthetic,
            split: Split::Train,
            preset: Preset { audio: AudioPreset::synthetic_stft(), frames: FramePreset::default() },
            classes: vec!["a".into(), "b".into(), "c".into()],
            audio_shape: [3, 4],
            audio_dims: ["freq".into(), "time".into()],
        };
        let mut w = ShardWriter::create(dir.path(), "s.parquet", &meta, WriterOptions { rows_per_group: 4, zstd_level: 1 }).unwrap();
        let rows: Vec<ClipRecord> = (0..12)
            .map(|i| ClipRecord {
                clip_id: format!("clip{i}"),
                split: Split::Train,
                label: (i % 3) as u32,
                label_name: ["a", "b", "c"][i % 3].into(),
                audio: (0..12).map(|k| (i * 12 + k) as f32 * 0.25).collect(),
                frames: (0..2).map(|f| Frame { jpeg: vec![0xFF, 0xD8, i as u8, f as u8, 0xFF, 0xD9], path: String::new() }).collect(),
                frame_times: vec![0.5, 1.5],
                segment_labels: None,
                provenance: Provenance::default(),
            })
            .collect();
        w.write(&rows).unwrap();
        w.finish().unwrap();
        std::fs::read(dir.path().join("s.parquet")).unwrap()
    })
}

/// Opens `bytes` as a shard and reads everything; any error must name the file.
fn read_all(bytes: &[u8]) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("damaged.parquet");
    std::fs::write(&path, bytes).unwrap();
    let named = |e: datasets::Error| -> Result<(), TestCaseError> {
        prop_assert!(e.to_string().contains(&path.display().to_string()), "error without the file: {e}");
        Ok(())
    };
    let reader = match ShardReader::open(&path) {
        Ok(r) => r,
        Err(e) => return named(e),
    };
    for g in 0..reader.num_row_groups() {
        if let Err(e) = reader.read_records(g) {
            named(e)?;
        }
        if let Err(e) = reader.read_row_group(g, Some(&["clip_id", "label", "audio"])) {
            named(e)?;
        }
    }
    Ok(())
}

fn foreign_parquet(columns: usize, rows: usize, with_label: bool) -> Vec<u8> {
    let mut fields = Vec::new();
    let mut arrays: Vec<ArrayRef> = Vec::new();
    for c in 0..columns {
        if c % 2 == 0 {
            fields.push(Field::new(format!("c{c}"), DataType::Int32, true));
            arrays.push(Arc::new(Int32Array::from_iter_values((0..rows as i32).map(|r| r * c as i32))));
        } else {
            fields.push(Field::new(format!("c{c}"), DataType::Utf8, true));
            arrays.push(Arc::new(StringArray::from_iter_values((0..rows).map(|r| format!("v{r}")))));
        }
    }
    if with_label {
        // Column names of a shard, without its self-description.
        fields.push(Field::new("label", DataType::Int32, true));
        arrays.push(Arc::new(Int32Array::from_iter_values(0..rows as i32)));
    }
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).unwrap();
    let mut out = Vec::new();
    let mut w = parquet::arrow::ArrowWriter::try_new(&mut out, batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    out
}

#[test]
fn the_intact_shard_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.parquet");
    std::fs::write(&path, shard()).unwrap();
    let r = ShardReader::open(&path).unwrap();
    assert_eq!((r.num_rows(), r.num_row_groups()), (12, 3));
    assert_eq!(r.records().map(|g| g.unwrap().len()).sum::<usize>(), 12);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, ..ProptestConfig::default() })]

    #[test]
    fn a_truncated_shard_never_panics(keep in any::<prop::sample::Index>()) {
        let bytes = shard();
        let n = keep.index(bytes.len());
        read_all(&bytes[..n])?;
        // Cut anywhere, a shard has lost its footer: it must not open.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cut.parquet");
        std::fs::write(&path, &bytes[..n]).unwrap();
        prop_assert!(ShardReader::open(&path).is_err());
    }

    #[test]
    fn a_shard_with_flipped_bits_never_panics(flips in prop::collection::vec((any::<prop::sample::Index>(), 0u8..8), 1..4), tail in any::<bool>()) {
        let mut bytes = shard().to_vec();
        // Half the cases flip bits in the footer (metadata, schema, self-description).
        let (start, len) = if tail { (bytes.len().saturating_sub(2048), bytes.len().min(2048)) } else { (0, bytes.len()) };
        for (at, bit) in flips {
            bytes[start + at.index(len)] ^= 1 << bit;
        }
        read_all(&bytes)?;
    }

    #[test]
    fn a_foreign_parquet_file_is_refused_with_its_name(columns in 1usize..5, rows in 0usize..20, with_label in any::<bool>()) {
        let bytes = foreign_parquet(columns, rows, with_label);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("foreign.parquet");
        std::fs::write(&path, &bytes).unwrap();
        let e = ShardReader::open(&path).expect_err("no self-description");
        prop_assert!(e.to_string().contains(&path.display().to_string()), "{}", e);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..4096), magic in any::<bool>()) {
        let mut bytes = bytes;
        if magic {
            // With Parquet's magic at both ends the footer parser gets to run on garbage.
            bytes.splice(0..0, *b"PAR1");
            bytes.extend_from_slice(&(bytes.len() as u32 / 2).to_le_bytes());
            bytes.extend_from_slice(b"PAR1");
        }
        read_all(&bytes)?;
    }
}

/// Cases the properties found, kept as they failed: (byte offset as a fraction of the shard's
/// length, in proptest's `Index` units, and the bit flipped).
#[test]
fn flipped_bits_that_once_crashed_the_reader() {
    // parquet 60 panicked ("Decoder for dict should have been set", column/reader/decoder.rs):
    // a data page header whose encoding a flip turned into a dictionary encoding.
    let cases: [(u64, u8); 1] = [(1_813_126_014_714_915_630, 2)];
    for (index, bit) in cases {
        let mut bytes = shard().to_vec();
        let at = ((bytes.len() as u128 * u128::from(index)) >> 64) as usize;
        bytes[at] ^= 1 << bit;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flipped.parquet");
        std::fs::write(&path, &bytes).unwrap();
        let reader = ShardReader::open(&path).expect("the footer is intact");
        let errors: Vec<String> = (0..reader.num_row_groups()).filter_map(|g| reader.read_records(g).err()).map(|e| e.to_string()).collect();
        assert!(!errors.is_empty(), "byte {at} bit {bit}: the damage is reported");
        assert!(errors.iter().all(|e| e.contains(&path.display().to_string())), "{errors:?}");
    }
}
