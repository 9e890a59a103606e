//! System packages: FFmpeg's development files, libjpeg-turbo's TurboJPEG and libclang (bindgen)
//! for `preprocess`; a Vulkan driver (Mesa's, lavapipe on a machine without a GPU) for the test
//! that runs the trainer's GPU kernels through CubeCL's WebGPU runtime; the `ffmpeg`/`ffprobe`
//! CLIs the tests and benchmarks compare with; Python's venv for `.venv`; Slurm and munge for the
//! array-job test. Whatever a command's tests run, the command installs: CI adds nothing to
//! `cargo xtask test`.

use std::process::{Command, Stdio};

use anyhow::{bail, Result};

/// A set of apt packages and how to tell they are installed.
pub struct Packages {
    what: &'static str,
    apt: &'static [&'static str],
    present: fn() -> bool,
}

/// What building `preprocess` needs (every command that builds the workspace).
pub const BUILD: Packages = Packages {
    what: "FFmpeg, libjpeg-turbo and libclang development files",
    apt: &["libavcodec-dev", "libavformat-dev", "libavutil-dev", "libswscale-dev", "libswresample-dev", "libturbojpeg0-dev", "libclang-dev", "pkg-config"],
    present: build_present,
};

/// What the GPU-kernel test needs: a Vulkan loader and a driver (lavapipe without a GPU).
pub const VULKAN: Packages = Packages { what: "a Vulkan loader and driver", apt: &["mesa-vulkan-drivers", "libvulkan1"], present: vulkan_present };

/// The programs tests and benchmarks run as references: the `ffmpeg` and `ffprobe` CLIs (rotation,
/// frame rates, the benchmark's reference pipeline and bare decode).
pub const FFMPEG_CLI: Packages = Packages { what: "the ffmpeg and ffprobe programs", apt: &["ffmpeg"], present: ffmpeg_cli_present };

/// What `.venv` is made with: Python's `venv` and `ensurepip` (Debian splits them off `python3`).
pub const PYTHON_VENV: Packages = Packages { what: "Python 3 with venv and ensurepip", apt: &["python3", "python3-venv"], present: python_venv_present };

/// The scheduler the array-job test submits to: Slurm's controller, node daemon and clients, and
/// munge (its authentication). The test runs its own throwaway cluster; nothing is started here.
pub const SLURM: Packages =
    Packages { what: "Slurm (slurmctld, slurmd, the clients) and munge", apt: &["slurmctld", "slurmd", "slurm-client", "munge"], present: slurm_present };

fn slurm_present() -> bool {
    sh_succeeds("PATH=$PATH:/usr/sbin; for p in munged slurmctld slurmd sbatch squeue scancel scontrol sinfo; do command -v $p >/dev/null || exit 1; done")
}

fn sh_succeeds(script: &str) -> bool {
    Command::new("sh").args(["-c", script]).status().is_ok_and(|s| s.success())
}

fn build_present() -> bool {
    let pkg = Command::new("pkg-config")
        .args(["--exists", "libavcodec", "libavformat", "libavutil", "libswscale", "libswresample", "libturbojpeg"])
        .status()
        .is_ok_and(|s| s.success());
    pkg && sh_succeeds("ls /usr/lib/llvm-*/lib/libclang*.so* /usr/lib/x86_64-linux-gnu/libclang*.so* >/dev/null 2>&1")
}

fn vulkan_present() -> bool {
    // The loader and at least one driver's ICD manifest.
    sh_succeeds("ls /usr/lib/x86_64-linux-gnu/libvulkan.so.1 /usr/share/vulkan/icd.d/*.json >/dev/null 2>&1")
}

fn ffmpeg_cli_present() -> bool {
    sh_succeeds("command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null")
}

fn python_venv_present() -> bool {
    // A venv already made needs nothing more.
    std::path::Path::new(".venv/bin/python").exists() || sh_succeeds("python3 -c 'import venv, ensurepip' >/dev/null 2>&1")
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0"))
}

fn sudo_works() -> bool {
    Command::new("sudo").args(["-n", "true"]).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

/// Installs the sets of `sets` that are missing, in one `apt-get` run, when we may (root or
/// password-less sudo); otherwise stops with the exact command to run.
pub fn ensure_all(sets: &[&Packages]) -> Result<()> {
    let missing: Vec<&&Packages> = sets.iter().filter(|p| !(p.present)()).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let what = missing.iter().map(|p| p.what).collect::<Vec<_>>().join("; ");
    let list = missing.iter().flat_map(|p| p.apt.iter().copied()).collect::<Vec<_>>().join(" ");
    let install = format!("apt-get update && apt-get install -y --no-install-recommends {list}");
    let prefix = if is_root() {
        ""
    } else if sudo_works() {
        "sudo "
    } else {
        bail!("missing: {what}; this user cannot install them.\nRun:\n  sudo sh -c '{install}'");
    };
    eprintln!("xtask: installing {what}: {list}");
    let script = format!("{prefix}sh -c 'export DEBIAN_FRONTEND=noninteractive; {install}'");
    crate::run_cmd(Command::new("sh").args(["-c", &script]))?;
    if let Some(still) = missing.iter().find(|p| !(p.present)()) {
        bail!("installed {list} but {} are still not found", still.what);
    }
    Ok(())
}

/// [`ensure_all`] for one set.
pub fn ensure(packages: &Packages) -> Result<()> {
    ensure_all(&[packages])
}
