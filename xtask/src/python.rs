//! The Python virtualenv (`.venv`) for interop tests, goldens and benchmarks. Python stays out of
//! the Rust build: only tests and scripts call it.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// Readers the interop tests check against; torch, torchvision and tensorboard for the Python
/// package's test (the reference programs' dataset classes, TensorBoard's event reader). torch is
/// pinned as in [`GOLDEN_PACKAGES`], torchvision to its pair.
pub const INTEROP_PACKAGES: &[&str] = &["pyarrow", "pandas", "datasets", "duckdb", "polars", "pillow", "numpy", TORCH, "torchvision==0.26.0", "tensorboard"];
/// The torch every part pins (the goldens, the Python package's test, the exporters, LibTorch builds).
pub const TORCH: &str = "torch==2.11.0";
/// References for the golden files (torch/torchaudio pinned as a pair, CPU wheels).
pub const GOLDEN_PACKAGES: &[&str] = &["librosa", "scipy", "soundfile", "numpy", TORCH, "torchaudio==2.11.0"];
/// `bench epoch`: OGM-GE's own program (its `main.py` imports librosa, scipy and tensorboard) and
/// the export that feeds it.
pub const EPOCH_PACKAGES: &[&str] = &["pyarrow", "numpy", "pillow", TORCH, "torchvision==0.26.0", "tensorboard", "librosa", "scipy"];
/// The Python reference pipeline of the preprocessing benchmark.
pub const BENCH_PACKAGES: &[&str] = &["librosa", "scipy", "soundfile", "numpy", "pillow"];

/// What the exporters need (torch too for BalanceBenchmark's CREMA-D `.pt` files, installed then).
pub const EXPORT_PACKAGES: &[&str] = &["pyarrow", "numpy", "pillow"];

/// `.venv` with the interop packages and the repository's Python package.
pub fn ensure_venv(root: &Path) -> Result<PathBuf> {
    let py = ensure_venv_with(root, INTEROP_PACKAGES)?;
    ensure_package(root, &py)?;
    Ok(py)
}

/// The repository's Python package (`python/`) in `.venv`, installed editable, so whatever imports
/// `ogmge` there runs the working tree's code.
pub fn ensure_package(root: &Path, py: &Path) -> Result<()> {
    let package = root.join("python");
    let probe = Command::new(py)
        .args(["-c", "import ogmge, os; print(os.path.dirname(os.path.dirname(os.path.realpath(ogmge.__file__))))"])
        .current_dir(root.join(".venv"))
        .output();
    let installed =
        probe.is_ok_and(|o| o.status.success() && Path::new(String::from_utf8_lossy(&o.stdout).trim()) == package.canonicalize().unwrap_or_default());
    if !installed {
        eprintln!("xtask: installing the repository's Python package (python/) into .venv, editable");
        crate::run_cmd(Command::new(py).args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--editable"]).arg(&package))?;
    }
    Ok(())
}

/// Creates `.venv` if needed and installs `packages` that are not importable yet.
pub fn ensure_venv_with(root: &Path, packages: &[&str]) -> Result<PathBuf> {
    let venv = root.join(".venv");
    let py = venv.join("bin/python");
    if !py.exists() {
        let base = ["python3", "python"].into_iter().find(|p| Command::new(p).arg("--version").output().is_ok());
        let Some(base) = base else { bail!("no python3 found; install python3 and python3-venv") };
        crate::run_cmd(Command::new(base).args(["-m", "venv"]).arg(&venv)).context("creating .venv (on Debian: apt-get install python3-venv)")?;
    }
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| {
            let module = import_name(p);
            // Probed from inside `.venv`: from the repository root, `import datasets` would find
            // the `datasets/` crate folder as an empty namespace package and pass.
            !Command::new(&py).args(["-c", &format!("import {module}")]).current_dir(&venv).output().is_ok_and(|o| o.status.success())
        })
        .collect();
    if !missing.is_empty() {
        eprintln!("xtask: installing into .venv: {}", missing.join(" "));
        crate::run_cmd(Command::new(&py).args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"]).args(&missing))?;
    }
    Ok(py)
}

fn import_name(package: &str) -> String {
    let name = package.split(['=', '<', '>']).next().unwrap_or(package);
    match name {
        "pillow" => "PIL".into(),
        other => other.replace('-', "_"),
    }
}

/// The torch wheel LibTorch builds (`--features tch`) link: `.venv/libtorch`, a link to the
/// wheel's `torch` folder (its `include/` and `lib/`), which `.cargo/config.toml` names as
/// `LIBTORCH`. Installs the pinned torch if `.venv` lacks it. The trainer's binaries keep the real
/// folder in their rpath and check its version at start.
pub fn ensure_libtorch(root: &Path) -> Result<PathBuf> {
    let py = ensure_venv_with(root, &[TORCH])?;
    let out = Command::new(&py)
        .args(["-c", "import os, torch; print(os.path.dirname(os.path.realpath(torch.__file__)))"])
        .current_dir(root.join(".venv"))
        .output()
        .context("asking .venv's Python where torch is")?;
    if !out.status.success() {
        bail!("torch in .venv does not import: {}", String::from_utf8_lossy(&out.stderr));
    }
    let torch = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let link = root.join(".venv/libtorch");
    if std::fs::read_link(&link).ok().as_deref() != Some(torch.as_path()) {
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&torch, &link).with_context(|| format!("linking {} to {}", link.display(), torch.display()))?;
    }
    Ok(link)
}
