//! Shard files: rows ([`ClipRecord`]), the atomic deterministic [`ShardWriter`], the streaming
//! [`ShardReader`], and the file naming `<split>/<split>-00000-of-00004.parquet`.

mod reader;
mod record;
mod writer;

pub use reader::ShardReader;
pub use record::{ClipRecord, Frame, Provenance};
pub use writer::{file_sha256, tmp_path_for, ShardInfo, ShardWriter, WriterOptions};

use crate::catalog::Split;

/// Path of shard `index` of `count`, relative to the dataset's output folder.
pub fn shard_file_name(split: Split, index: usize, count: usize) -> String {
    format!("{split}/{split}-{index:05}-of-{count:05}.parquet")
}

/// Temporary files are hidden and carry this suffix; nothing reads them and a rerun removes them.
pub const TMP_SUFFIX: &str = ".partial";

#[cfg(test)]
mod tests {
    #[test]
    fn names() {
        assert_eq!(super::shard_file_name(crate::Split::Train, 3, 12), "train/train-00003-of-00012.parquet");
    }
}
