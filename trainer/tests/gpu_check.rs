//! `trainer/bench/gpu_check.sh`, dry run: the script a GPU machine runs, with CubeCL's Vulkan
//! runtime (lavapipe here) in CUDA's place, the tiny model, PyTorch on the CPU and fixture shards.
//! It must give every row of its table and exit 0, and, with a planted fault in the GPU-vs-Flex
//! comparison, stop there with exit 2 before measuring anything else. Built with
//! `--features wgpu-runtime` (`cargo xtask test`); needs the test Python with torch.
#![cfg(feature = "wgpu-runtime")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use datasets::Split;

fn python() -> PathBuf {
    std::env::var_os("OGMGE_PYTHON").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv/bin/python")))
}

/// The script's exit code and its stdout (its rows and the table).
fn dry_run(tmp: &Path, out: &str, plant_fault: bool) -> (i32, String) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut cmd = Command::new("bash");
    cmd.arg(repo.join("trainer/bench/gpu_check.sh"))
        .current_dir(repo)
        .env("DRY_RUN", "1")
        .env("BIN", tmp.join("bin"))
        .env("DATA", tmp.join("data"))
        .env("OUT", tmp.join(out))
        .env("PYTHON", python())
        .env("BATCH", "4")
        .env("STEPS", "2")
        // The other models' steps are `tests/cubecl_backend.rs`'s.
        .env("CHECK_MODELS", "classifier")
        .env_remove(trainer::kernel_cache::ENV)
        .env_remove("MESA_SHADER_CACHE_DIR");
    if plant_fault {
        cmd.env("PLANT_FAULT", "1");
    }
    let o = cmd.output().expect("bash runs");
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    eprintln!("{stdout}\n{}", String::from_utf8_lossy(&o.stderr));
    (o.status.code().unwrap_or(-1), stdout)
}

#[test]
fn the_gpu_check_gives_its_table_and_stops_at_a_failed_comparison() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    common::shards(&t.join("data"), Split::Train, 16);
    common::shards(&t.join("data"), Split::Test, 4);
    std::fs::create_dir_all(t.join("bin/wgpu")).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_bench-trainer"), t.join("bin/wgpu/bench-trainer")).unwrap();

    let (code, out) = dry_run(t, "faulty", true);
    assert_eq!(code, 2, "a failed comparison exits 2");
    let table = &out[out.find("== the table").expect("the table is printed")..];
    assert!(table.contains("| CUDA vs Flex | FAILED") && table.contains("fused logits"), "{table}");
    assert!(!table.contains("Burn step"), "nothing is measured after a failed comparison: {table}");

    let (code, out) = dry_run(t, "good", false);
    assert_eq!(code, 0, "a dry run with nothing wrong exits 0");
    let table = &out[out.find("== the table").expect("the table is printed")..];
    assert!(!table.contains("FAILED"), "{table}");
    for row in [
        "| smoke",
        "| CUDA vs Flex (classifier: OGM step) | 8 comparisons within bounds",
        "| GE noise / std(g) on the GPU",
        "| Burn step, ogm-ge | first step",
        "| Burn step, none | first step",
        "| PyTorch step, ogm-ge | first step",
        "| PyTorch step, none | first step",
        "| 2 epochs through the loader |",
        "| loader alone |",
    ] {
        assert!(table.contains(row), "no row {row:?} in {table}");
    }
    assert!(table.contains("parts: forward") && table.contains("backward") && table.contains("optimiser"), "the step's parts: {table}");
    assert!(t.join("good/kernel-cache/cubecl").read_dir().unwrap().next().is_some(), "the kernel cache comes back under OUT");
}
