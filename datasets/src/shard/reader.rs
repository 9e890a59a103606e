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
        let metadata = ArrowReaderMetadata::load(&file, ArrowReaderOptions::new()).map_err(|source| Error::Parquet { path: path.to_owned(), source })?;
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
