//! The shard writer. A shard becomes visible only whole: rows go to a hidden temporary file in the
//! same folder, which is fsynced and renamed onto the final name by [`ShardWriter::finish`]. A
//! writer dropped (or a process killed) before that leaves no file under the final name.
//! Output is deterministic: no timestamps, fixed compression, rows in the order given.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use arrow::datatypes::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::record::{to_batch, ClipRecord};
use super::TMP_SUFFIX;
use crate::error::io;
use crate::schema::{arrow_schema, col, ShardMeta};
use crate::{Error, Result};

/// Knobs of the Parquet encoding.
#[derive(Debug, Clone, Copy)]
pub struct WriterOptions {
    /// Rows per row group: the unit the reader streams and seeks by.
    pub rows_per_group: usize,
    /// zstd level.
    pub zstd_level: i32,
}

impl Default for WriterOptions {
    /// zstd 1: on the spectrogram floats (most of a shard's bytes besides the JPEGs, which no
    /// level shrinks) stored byte-stream-split, level 3 is 0.8% smaller and takes half again
    /// the time (measured on the preprocessing benchmark's shard).
    fn default() -> Self {
        Self { rows_per_group: 16, zstd_level: 1 }
    }
}

/// What a finished shard is, as `index.json` records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardInfo {
    /// Path relative to the dataset's output folder.
    pub file: String,
    pub rows: usize,
    pub bytes: u64,
    pub sha256: String,
}

struct HashingWriter {
    inner: BufWriter<File>,
    hasher: Sha256,
    bytes: u64,
}

impl Write for HashingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Writes one shard; see the module documentation for the guarantees.
pub struct ShardWriter {
    writer: Option<ArrowWriter<HashingWriter>>,
    schema: SchemaRef,
    audio_len: usize,
    rows: usize,
    tmp_path: PathBuf,
    final_path: PathBuf,
    relative_name: String,
}

impl std::fmt::Debug for ShardWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardWriter").field("final_path", &self.final_path).field("rows", &self.rows).finish()
    }
}

/// The hidden temporary name used while `final_path` is being written.
pub fn tmp_path_for(final_path: &Path) -> PathBuf {
    let name = final_path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    final_path.with_file_name(format!(".{name}{TMP_SUFFIX}"))
}

impl ShardWriter {
    /// Starts `out_dir/relative_name` (e.g. `train/train-00000-of-00004.parquet`).
    pub fn create(out_dir: &Path, relative_name: &str, meta: &ShardMeta, options: WriterOptions) -> Result<Self> {
        let final_path = out_dir.join(relative_name);
        if let Some(parent) = final_path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        let tmp_path = tmp_path_for(&final_path);
        let file = File::create(&tmp_path).map_err(io(&tmp_path))?;
        let schema = arrow_schema(meta);
        let level = ZstdLevel::try_new(options.zstd_level).map_err(|e| Error::Invalid(format!("zstd level {}: {e}", options.zstd_level)))?;
        // Dictionary encoding only where values repeat: on the spectrogram floats and JPEG bytes
        // the dictionary page fills up and is then abandoned, and still stored (+50% size).
        // The spectrogram floats byte-stream-split (each float's 4 bytes go to 4 streams: signs
        // and exponents then compress): 5% smaller shards than plain floats at the same level.
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(level))
            .set_dictionary_enabled(false)
            .set_column_dictionary_enabled(ColumnPath::from(col::SPLIT), true)
            .set_column_dictionary_enabled(ColumnPath::from(col::LABEL_NAME), true)
            .set_column_encoding(audio_leaf(), Encoding::BYTE_STREAM_SPLIT)
            .set_max_row_group_row_count(Some(options.rows_per_group.max(1)))
            .build();
        let sink = HashingWriter { inner: BufWriter::with_capacity(1 << 20, file), hasher: Sha256::new(), bytes: 0 };
        let writer = ArrowWriter::try_new(sink, schema.clone(), Some(props)).map_err(|source| Error::Parquet { path: tmp_path.clone(), source })?;
        Ok(Self { writer: Some(writer), schema, audio_len: meta.audio_len(), rows: 0, tmp_path, final_path, relative_name: relative_name.to_owned() })
    }

    /// Appends rows.
    pub fn write(&mut self, rows: &[ClipRecord]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let batch = to_batch(&self.schema, rows, self.audio_len).map_err(|reason| Error::Shard { path: self.final_path.clone(), reason })?;
        let writer = self.writer.as_mut().expect("writer is open until finish");
        writer.write(&batch).map_err(|source| Error::Parquet { path: self.tmp_path.clone(), source })?;
        self.rows += rows.len();
        Ok(())
    }

    /// Closes the file, makes it durable and moves it onto its final name. If any of that fails
    /// (a full disk shows here, when the last pages are flushed), the temporary file is removed:
    /// no half shard stays behind, under either name.
    pub fn finish(mut self) -> Result<ShardInfo> {
        let writer = self.writer.take().expect("finish is called once");
        let finished = Self::close(writer, &self.tmp_path, &self.final_path);
        if finished.is_err() {
            let _ = std::fs::remove_file(&self.tmp_path);
        }
        let (bytes, sha256) = finished?;
        Ok(ShardInfo { file: self.relative_name.clone(), rows: self.rows, bytes, sha256 })
    }

    /// Flushes, syncs and renames; the shard's size and SHA-256.
    fn close(writer: ArrowWriter<HashingWriter>, tmp_path: &Path, final_path: &Path) -> Result<(u64, String)> {
        let sink = writer.into_inner().map_err(|source| Error::Parquet { path: tmp_path.to_owned(), source })?;
        let HashingWriter { inner, hasher, bytes } = sink;
        let file = inner.into_inner().map_err(|e| Error::Io { path: tmp_path.to_owned(), source: e.into_error() })?;
        file.sync_all().map_err(io(tmp_path))?;
        drop(file);
        std::fs::rename(tmp_path, final_path).map_err(io(final_path))?;
        if let Some(parent) = final_path.parent() {
            // Make the rename itself durable.
            File::open(parent).and_then(|d| d.sync_all()).map_err(io(parent))?;
        }
        Ok((bytes, hex::encode(hasher.finalize())))
    }
}

impl Drop for ShardWriter {
    fn drop(&mut self) {
        if self.writer.is_some() {
            let _ = std::fs::remove_file(&self.tmp_path);
        }
    }
}

/// The Parquet leaf of the `audio` column (a fixed-size list of floats).
fn audio_leaf() -> ColumnPath {
    ColumnPath::from(vec![col::AUDIO.to_owned(), "list".to_owned(), "item".to_owned()])
}

/// SHA-256 of a file's bytes, hex.
pub fn file_sha256(path: &Path) -> Result<String> {
    let mut file = File::open(path).map_err(io(path))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(io(path))?;
    Ok(hex::encode(hasher.finalize()))
}
