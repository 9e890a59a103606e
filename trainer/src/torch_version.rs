//! The version of a libtorch tree: `version.py` beside its `lib/` (a PyPI wheel's `torch/`), or
//! `build-version` (a libtorch zip). One reader for the build script, which records the version a
//! LibTorch build links (`build.rs`), and for the binary, which checks the one it loaded
//! (`device::prepare`).

use std::path::Path;

/// The version of the libtorch whose `lib/` folder is `lib`, if its tree says.
pub fn of_lib_dir(lib: &Path) -> Option<String> {
    let root = lib.parent()?;
    std::fs::read_to_string(root.join("version.py"))
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("__version__ = ").map(|v| v.trim_matches(['\'', '"']).to_owned())))
        .or_else(|| std::fs::read_to_string(root.join("build-version")).ok().map(|s| s.trim().to_owned()))
}
