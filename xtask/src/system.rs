//! System packages: FFmpeg's development files, libjpeg-turbo's TurboJPEG and libclang (bindgen)
//! for `preprocess`; a Vulkan driver (Mesa's, lavapipe on a machine without a GPU) for the test
//! that runs the trainer's GPU kernels through CubeCL's WebGPU runtime.

use std::process::{Command, Stdio};

use anyhow::{bail, Result};

pub const APT_PACKAGES: &[&str] = &[
    "libavcodec-dev",
    "libavformat-dev",
    "libavutil-dev",
    "libswscale-dev",
    "libswresample-dev",
    "libturbojpeg0-dev",
    "libclang-dev",
    "pkg-config",
    "mesa-vulkan-drivers",
    "libvulkan1",
];

fn ffmpeg_dev_present() -> bool {
    let pkg = Command::new("pkg-config")
        .args(["--exists", "libavcodec", "libavformat", "libavutil", "libswscale", "libswresample", "libturbojpeg"])
        .status()
        .is_ok_and(|s| s.success());
    let clang = Command::new("sh")
        .args(["-c", "ls /usr/lib/llvm-*/lib/libclang*.so* /usr/lib/x86_64-linux-gnu/libclang*.so* >/dev/null 2>&1"])
        .status()
        .is_ok_and(|s| s.success());
    // A Vulkan loader and at least one driver (an ICD manifest).
    let vulkan = Command::new("sh")
        .args(["-c", "ls /usr/lib/x86_64-linux-gnu/libvulkan.so.1 /usr/share/vulkan/icd.d/*.json >/dev/null 2>&1"])
        .status()
        .is_ok_and(|s| s.success());
    pkg && clang && vulkan
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0"))
}

fn sudo_works() -> bool {
    Command::new("sudo").args(["-n", "true"]).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

/// Installs FFmpeg's development packages when they are missing and we may (root or password-less
/// sudo); otherwise stops with the exact command to run.
pub fn ensure_ffmpeg_dev() -> Result<()> {
    if ffmpeg_dev_present() {
        return Ok(());
    }
    let install = format!("apt-get update && apt-get install -y --no-install-recommends {}", APT_PACKAGES.join(" "));
    let prefix = if is_root() {
        ""
    } else if sudo_works() {
        "sudo "
    } else {
        bail!(
            "System packages (FFmpeg and libjpeg-turbo development files, a Vulkan driver) are missing and this user cannot install them.\nRun:\n  sudo sh -c '{install}'"
        );
    };
    eprintln!("xtask: installing system packages: {}", APT_PACKAGES.join(" "));
    let script = format!("{prefix}sh -c 'export DEBIAN_FRONTEND=noninteractive; {install}'");
    crate::run_cmd(Command::new("sh").args(["-c", &script]))?;
    if !ffmpeg_dev_present() {
        bail!("installed {} but FFmpeg, libjpeg-turbo, libclang or a Vulkan driver is still not found", APT_PACKAGES.join(" "));
    }
    Ok(())
}
