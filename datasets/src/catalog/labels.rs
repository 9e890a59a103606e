//! Shared helpers for turning manifest text into entries.

use super::{ManifestEntry, MediaKey, Rejected, Split};
use crate::clip_id;

/// Collects entries and rejections while parsing one dataset's manifests.
#[derive(Debug, Default)]
pub(crate) struct Collector {
    pub entries: Vec<ManifestEntry>,
    pub rejected: Vec<Rejected>,
}

impl Collector {
    pub fn reject(&mut self, file: &str, line: usize, reason: impl Into<String>) {
        self.rejected.push(Rejected { source: format!("{file}:{line}"), reason: reason.into() });
    }

    /// Adds an entry after checking its clip id; a bad id becomes a rejection.
    #[allow(clippy::too_many_arguments)]
    pub fn push(&mut self, file: &str, line: usize, clip_id: String, split: Split, label: u32, segment_labels: Option<Vec<u32>>, key: MediaKey) {
        match clip_id::validate(&clip_id) {
            Ok(()) => self.entries.push(ManifestEntry { clip_id, split, label, segment_labels, key }),
            Err(e) => self.reject(file, line, e.to_string()),
        }
    }
}

/// Index of `name` in `classes`.
pub(crate) fn class_id(classes: &[String], name: &str) -> Option<u32> {
    classes.iter().position(|c| c == name).map(|i| i as u32)
}
