//! Clip ids come from manifests a user may have edited; they are joined onto the raw root, so an
//! id that could name anything outside it is rejected.

use std::path::{Component, Path, PathBuf};

use crate::{Error, Result};

/// Accepts ids that are a single, plain path component: no separators, no `..`, not absolute,
/// no control characters.
pub fn validate(id: &str) -> Result<()> {
    let reason = if id.is_empty() {
        Some("empty")
    } else if id.contains(['/', '\\']) {
        Some("contains a path separator")
    } else if id == "." || id == ".." || id.contains("..") {
        Some("contains '..'")
    } else if id.chars().any(|c| c.is_control()) {
        Some("contains a control character")
    } else if id.len() > 255 {
        Some("longer than 255 bytes")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::ClipId { id: id.to_owned(), reason }),
        None => Ok(()),
    }
}

/// Joins a relative path onto `root`, refusing absolute paths and any `..` component.
pub fn join_under(root: &Path, relative: &Path) -> Result<PathBuf> {
    for c in relative.components() {
        match c {
            Component::Normal(_) | Component::CurDir => {}
            _ => return Err(Error::ClipId { id: relative.display().to_string(), reason: "path escapes the raw root" }),
        }
    }
    Ok(root.join(relative))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        let cases = [
            ("1001_DFA_ANG_XX", true),
            ("--4-0ihtnBU_000058_000068", true),
            ("-1qyr-IzqKY__accordion", true),
            ("", false),
            ("..", false),
            ("a/../../etc", false),
            ("/etc/passwd", false),
            ("..\\windows", false),
            ("a\u{0}b", false),
        ];
        for (id, ok) in cases {
            assert_eq!(validate(id).is_ok(), ok, "{id:?}");
        }
    }

    #[test]
    fn join() {
        let root = Path::new("/raw");
        assert_eq!(join_under(root, Path::new("AVE/x.mp4")).unwrap(), Path::new("/raw/AVE/x.mp4"));
        assert!(join_under(root, Path::new("../x.mp4")).is_err());
        assert!(join_under(root, Path::new("/etc/passwd")).is_err());
    }
}
