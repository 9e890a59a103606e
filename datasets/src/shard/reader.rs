//! The streaming shard reader: metadata first, then one row group at a time, with column
//! projection and random access by row group. Memory is bounded by one row group.

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
use parquet::arrow::ProjectionMask;

use super::record::{from_batch, ClipRecord};
use crate::error::io;
use crate::schema::{shard_meta, ShardMeta};
use crate::{Error, Result};

/// An open shard.
#[derive(Debug)]
pub struct ShardReader {
    path: PathBuf,
    file: File,
    metadata: ArrowReaderMetadata,
    meta: ShardMeta,
}

impl ShardReader {
    /// Opens a shard and reads its footer and self-description.
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(io(path))?;
        let metadata = no_panic(path, || ArrowReaderMetadata::load(&file, ArrowReaderOptions::new()))?
            .map_err(|source| Error::Parquet { path: path.to_owned(), source })?;
        let meta = shard_meta(metadata.schema()).map_err(|reason| Error::Shard { path: path.to_owned(), reason })?;
        Ok(Self { path: path.to_owned(), file, metadata, meta })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Dataset, split, preset, classes and audio shape of every row.
    pub fn meta(&self) -> &ShardMeta {
        &self.meta
    }

    pub fn num_rows(&self) -> usize {
        self.metadata.metadata().file_metadata().num_rows() as usize
    }

    pub fn num_row_groups(&self) -> usize {
        self.metadata.metadata().num_row_groups()
    }

    pub fn row_group_rows(&self, group: usize) -> usize {
        self.metadata.metadata().row_group(group).num_rows() as usize
    }

    /// Reads one row group; `columns` restricts it to those top-level columns (in schema order).
    pub fn read_row_group(&self, group: usize, columns: Option<&[&str]>) -> Result<RecordBatch> {
        if group >= self.num_row_groups() {
            return Err(self.err(format!("row group {group} out of range ({} groups)", self.num_row_groups())));
        }
        no_panic(&self.path, || self.read_row_group_unguarded(group, columns))?
    }

    fn read_row_group_unguarded(&self, group: usize, columns: Option<&[&str]>) -> Result<RecordBatch> {
        let file = self.file.try_clone().map_err(io(&self.path))?;
        let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(file, self.metadata.clone());
        let mask = match columns {
            None => ProjectionMask::all(),
            Some(names) => {
                let schema = self.metadata.schema();
                let mut roots = Vec::with_capacity(names.len());
                for name in names {
                    roots.push(schema.index_of(name).map_err(|_| self.err(format!("no column {name:?}")))?);
                }
                ProjectionMask::roots(builder.parquet_schema(), roots)
            }
        };
        let reader = builder
            .with_row_groups(vec![group])
            .with_projection(mask)
            .with_batch_size(self.row_group_rows(group).max(1))
            .build()
            .map_err(|source| Error::Parquet { path: self.path.clone(), source })?;
        let batches = reader.collect::<Result<Vec<_>, _>>().map_err(|source| Error::Arrow { path: self.path.clone(), source })?;
        match batches.len() {
            1 => Ok(batches.into_iter().next().expect("one batch")),
            _ => {
                let schema = batches.first().map(|b| b.schema()).ok_or_else(|| self.err("empty row group".into()))?;
                arrow::compute::concat_batches(&schema, &batches).map_err(|source| Error::Arrow { path: self.path.clone(), source })
            }
        }
    }

    /// Decodes one row group into full rows.
    pub fn read_records(&self, group: usize) -> Result<Vec<ClipRecord>> {
        let batch = self.read_row_group(group, None)?;
        from_batch(&batch).map_err(|reason| self.err(reason))
    }

    /// Every row of the shard, one row group at a time.
    pub fn records(&self) -> impl Iterator<Item = Result<Vec<ClipRecord>>> + '_ {
        (0..self.num_row_groups()).map(|g| self.read_records(g))
    }

    fn err(&self, reason: String) -> Error {
        Error::Shard { path: self.path.clone(), reason }
    }
}

/// Runs `f`, turning a panic into an error naming `path`. The Parquet decoder panics on some
/// corrupt files (parquet 60: a flipped bit in a page header's encoding reaches an `expect` in
/// `column/reader/decoder.rs`, found by `tests/shard_reader_properties.rs`): a damaged shard must
/// be a reported error, never a crash of the run that reads it.
fn no_panic<T>(path: &Path, f: impl FnOnce() -> T) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|payload| {
        let what = payload.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| payload.downcast_ref::<String>().cloned()).unwrap_or_default();
        Error::Shard { path: path.to_owned(), reason: format!("corrupt Parquet data (the decoder failed: {what})") }
    })
}
