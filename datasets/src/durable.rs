//! Writing files so that a failure (a full disk, a read-only folder, a kill) never leaves half of
//! one visible: a whole file is written aside and renamed; a log line is appended in one write and
//! cut back off if that write fails. Every error names the file and the system's reason ("No space
//! left on device", "Read-only file system").

use std::io::Write;
use std::path::Path;

use crate::error::{io, Result};

/// Writes `bytes` to `path` so that readers see the old file or the new one, never a mix: a
/// temporary file beside it (removed again if anything fails), synced, then renamed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    let tmp = crate::shard::tmp_path_for(path);
    let written = std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(bytes).and_then(|_| f.sync_all()))
        .map_err(io(&tmp))
        .and_then(|_| std::fs::rename(&tmp, path).map_err(io(path)));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Appends `bytes` (one or more whole lines) to `path`, creating it, in one write: when the write
/// fails (or is cut short) the file is truncated back to its length before, so a reader never
/// sees part of a line.
pub fn append_whole(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(io(path))?;
    let before = f.metadata().map_err(io(path))?.len();
    f.write_all(bytes).map_err(io(path)).inspect_err(|_| {
        let _ = f.set_len(before);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_whole_adds_lines_and_write_atomic_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("a.jsonl");
        append_whole(&log, b"{\"epoch\":0}\n").unwrap();
        append_whole(&log, b"{\"epoch\":1}\n").unwrap();
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "{\"epoch\":0}\n{\"epoch\":1}\n");
        write_atomic(&log, b"new").unwrap();
        assert_eq!(std::fs::read(&log).unwrap(), b"new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file left");
        let missing = dir.path().join("no/such/dir/x");
        let err = append_whole(&missing, b"x").unwrap_err().to_string();
        assert!(err.contains("no/such/dir/x"), "{err}");
    }
}
