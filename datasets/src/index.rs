//! `<out>/<dataset>/index.json`: what was made (shards with rows, bytes, hash), per-split counts,
//! and every clip that was missing, failed or filtered, with the reason. Deterministic (no
//! timestamps) and written atomically.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

pub use crate::catalog::SplitRecord;
use crate::catalog::{DatasetKind, Missing, Rejected, Split};
use crate::error::io;
use crate::preset::Preset;
use crate::shard::ShardInfo;
use crate::{Error, Result, SCHEMA_VERSION, TOOL_VERSION};

pub const INDEX_FILE: &str = "index.json";

/// A clip that was found but could not be processed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failed {
    pub clip_id: String,
    pub split: Split,
    pub source_path: String,
    pub reason: String,
}

/// A clip left out on purpose (a filter, not an error).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Filtered {
    pub clip_id: String,
    pub split: Split,
    pub reason: String,
}

/// A shard as the index lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexedShard {
    pub split: Split,
    #[serde(flatten)]
    pub info: ShardInfo,
}

/// Counts of one split.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitCounts {
    pub clips: usize,
    pub shards: usize,
    pub missing: usize,
    pub failed: usize,
    pub filtered: usize,
}

/// The whole index of one dataset's output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetIndex {
    pub schema_version: u32,
    pub tool_version: String,
    pub dataset: DatasetKind,
    pub preset: Preset,
    pub classes: Vec<String>,
    pub splits: BTreeMap<Split, SplitCounts>,
    pub shards: Vec<IndexedShard>,
    pub missing: Vec<Missing>,
    pub failed: Vec<Failed>,
    pub filtered: Vec<Filtered>,
    /// Manifest lines that could not be used at all.
    pub rejected: Vec<Rejected>,
    /// The split, when it is not the published one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<SplitRecord>,
}

impl DatasetIndex {
    pub fn new(dataset: DatasetKind, preset: Preset, classes: Vec<String>) -> Self {
        Self {
            schema_version: SCHEMA_VERSION,
            tool_version: TOOL_VERSION.to_owned(),
            dataset,
            preset,
            classes,
            splits: BTreeMap::new(),
            shards: Vec::new(),
            missing: Vec::new(),
            failed: Vec::new(),
            filtered: Vec::new(),
            rejected: Vec::new(),
            split: None,
        }
    }

    /// Sorts every list (shards by name, clips by split then id) and recomputes the per-split
    /// counts, so equal content gives equal bytes whatever order the work finished in.
    pub fn normalise(&mut self) {
        self.shards.sort_by(|a, b| a.info.file.cmp(&b.info.file));
        self.missing.sort_by(|a, b| (a.split, &a.clip_id).cmp(&(b.split, &b.clip_id)));
        self.failed.sort_by(|a, b| (a.split, &a.clip_id).cmp(&(b.split, &b.clip_id)));
        self.filtered.sort_by(|a, b| (a.split, &a.clip_id).cmp(&(b.split, &b.clip_id)));
        let mut splits: BTreeMap<Split, SplitCounts> = BTreeMap::new();
        for s in &self.shards {
            let c = splits.entry(s.split).or_default();
            c.clips += s.info.rows;
            c.shards += 1;
        }
        for m in &self.missing {
            splits.entry(m.split).or_default().missing += 1;
        }
        for f in &self.failed {
            splits.entry(f.split).or_default().failed += 1;
        }
        for f in &self.filtered {
            splits.entry(f.split).or_default().filtered += 1;
        }
        self.splits = splits;
    }

    pub fn total_clips(&self) -> usize {
        self.splits.values().map(|c| c.clips).sum()
    }

    /// Writes the index atomically (temporary file, fsync, rename).
    pub fn write(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(|source| Error::Json { path: path.to_owned(), source })?;
        crate::durable::write_atomic(path, &json)
    }

    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(io(path))?;
        serde_json::from_slice(&bytes).map_err(|source| Error::Json { path: path.to_owned(), source })
    }
}
