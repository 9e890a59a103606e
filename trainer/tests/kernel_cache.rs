//! No cold start: a second process finds the kernels the first one compiled in the kernel cache
//! (`trainer::kernel_cache`), on CubeCL's Vulkan runtime (on CI, Mesa's lavapipe: CubeCL keeps
//! SPIR-V, Mesa the machine code it made of it), so its first training step costs about what a
//! steady one does. Each process is `bench-trainer --device wgpu`: the `tiny` classifier's OGM-GE
//! step, timed step by step. Built with `--features wgpu-runtime` (`cargo xtask test`).
#![cfg(feature = "wgpu-runtime")]

use std::path::Path;
use std::process::Command;

/// Every step's ms (the first included) of one `bench-trainer` process using `cache`.
fn steps(cache: &Path, json: &Path) -> Vec<f64> {
    let out = Command::new(env!("CARGO_BIN_EXE_bench-trainer"))
        .args(["--device", "wgpu", "--model", "tiny", "--batch", "12", "--frames", "2", "--audio", "96x64", "--steps", "4"])
        .arg("--kernel-cache")
        .arg(cache)
        .arg("--json")
        .arg(json)
        // Only the folder under test caches anything.
        .env_remove("MESA_SHADER_CACHE_DIR")
        .env_remove("CUDA_CACHE_PATH")
        .env_remove(trainer::kernel_cache::ENV)
        .output()
        .expect("bench-trainer starts");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench-trainer failed: {stderr}");
    eprint!("{stderr}");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(json).expect("timings written")).expect("timings are JSON");
    v["steps_ms"].as_array().expect("steps_ms").iter().map(|x| x.as_f64().expect("ms")).collect()
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn files_under(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |entries| entries.flatten().map(|e| if e.path().is_dir() { files_under(&e.path()) } else { 1 }).sum())
}

#[test]
fn a_second_process_s_first_step_costs_about_a_steady_step() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("kernel-cache");
    let cold = steps(&cache, &tmp.path().join("cold.json"));
    assert!(files_under(&cache.join("cubecl")) > 0, "CubeCL kept no kernel in {}", cache.display());
    let warm = steps(&cache, &tmp.path().join("warm.json"));
    let steady = median(&warm[1..]);
    eprintln!("first step: {:.0} ms in a fresh cache, {:.0} ms in the second process; steady step {steady:.0} ms ({:.2}x)", cold[0], warm[0], warm[0] / steady);
    assert!(warm[0] <= 1.5 * steady, "the second process's first step took {:.0} ms, {:.2}x a steady step ({steady:.0} ms)", warm[0], warm[0] / steady);
    // What the cache spared: compiling is most of a first step in a fresh cache.
    assert!(cold[0] >= 2.0 * warm[0], "a fresh cache's first step ({:.0} ms) should pay for compiling", cold[0]);
}

/// CubeCL reads its configuration once: a cache set after that would be ignored, so it is refused.
#[test]
fn a_kernel_cache_set_twice_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let first = trainer::kernel_cache::configure(&tmp.path().join("a")).expect("first configuration");
    assert!(first.join("cubecl").is_dir() && first.join("driver").is_dir());
    let e = trainer::kernel_cache::configure(&tmp.path().join("b")).expect_err("second configuration");
    assert!(e.to_string().contains("before the first tensor"), "{e}");
}
