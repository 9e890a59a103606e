//! System packages: FFmpeg's development files, libjpeg-turbo's TurboJPEG and libclang (bindgen)
//! for `preprocess`; a Vulkan driver (Mesa's, lavapipe on a machine without a GPU) for the test
//! that runs the trainer's GPU kernels through CubeCL's WebGPU runtime.

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

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0"))
}

fn sudo_works() -> bool {
    Command::new("sudo").args(["-n", "true"]).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

/// Installs `packages` when they are missing and we may (root or password-less sudo); otherwise
/// stops with the exact command to run.
pub fn ensure(packages: &Packages) -> Result<()> {
    if (packages.present)() {
        return Ok(());
    }
    let list = packages.apt.join(" ");
    let install = format!("apt-get update && apt-get install -y --no-install-recommends {list}");
    let prefix = if is_root() {
        ""
    } else if sudo_works() {
        "sudo "
    } else {
        bail!("{} are missing and this user cannot install them.\nRun:\n  sudo sh -c '{install}'", packages.what);
    };
    eprintln!("xtask: installing {}: {list}", packages.what);
    let script = format!("{prefix}sh -c 'export DEBIAN_FRONTEND=noninteractive; {install}'");
    crate::run_cmd(Command::new("sh").args(["-c", &script]))?;
    if !(packages.present)() {
        bail!("installed {list} but {} are still not found", packages.what);
    }
    Ok(())
}
