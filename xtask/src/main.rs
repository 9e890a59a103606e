//! `cargo xtask`: the one place for automation. Thin glue: it checks and installs what the machine
//! needs, then runs the real binaries (`preprocess`, `trainer`) and `cargo test` with cargo.
//! It links neither FFmpeg nor Burn, so it builds on a machine that has neither yet.

mod bench_backends;
mod bench_epoch;
mod python;
mod system;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Automation for the OGM-GE toolkit")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Install what the machine lacks: FFmpeg and libjpeg-turbo development packages, a Vulkan
    /// driver, Slurm and munge (apt), and the Python venv used by interop tests and goldens (its
    /// torch is also the libtorch that `--features tch` builds link: `.venv/libtorch`).
    Setup,
    /// Turn raw datasets into shards (no --raw: generate the synthetic corpus). Arguments are
    /// passed to the `preprocess` binary; `cargo xtask prepare-datasets -- --help` lists them.
    PrepareDatasets {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// The main job on the embedded default: synthetic corpus -> shards -> `trainer compare` (the
    /// OGM-GE demo table; arguments go to `trainer compare`, e.g. `--methods none,ogm,ogm-ge`).
    Demo {
        /// The trainer's backend: `flex` (Burn's CPU backend: nothing beyond the Rust build; the
        /// faster from cold, docs/speed.md) or `tch` (LibTorch: installs the pinned torch wheel
        /// into `.venv` first, 4.6 GB from PyPI; its training is a tenth faster). Put it before
        /// `trainer compare`'s arguments.
        #[arg(long, value_enum, default_value_t = DemoBackend::Flex)]
        backend: DemoBackend,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Set up (system packages, the ffmpeg CLI, `.venv`), then run the whole test suite:
    /// `cargo test --workspace --features trainer/wgpu-runtime` (the trainer's GPU-kernel test
    /// runs CubeCL's WebGPU runtime on Mesa's Vulkan driver; training stays on Flex), then the
    /// trainer's goldens, PyTorch parity and a resumed run again on LibTorch (`--features tch`).
    Test {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Export a dataset's shards to the layout a reference program reads, through the repository's
    /// Python package (installed into `.venv`): `cargo xtask export ogm-ge out/ks data/KineticSound`,
    /// `cargo xtask export balancebenchmark out/cremad bb/cremad [--flavour ks|cremad|vggsound]`.
    Export {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Build and pack what `trainer/bench/gpu_check.sh` needs on a CUDA machine (which has no Rust
    /// toolchain) into one folder to carry there: `bench-trainer` for `--features cuda`,
    /// `cuda-fusion` and `tch-cuda` (LibTorch, loading that machine's own torch), built for the
    /// target's CUDA version, stripped and xz-compressed, and a
    /// small synthetic shard set. A kernel cache brought back from an earlier check (`kernel-cache`
    /// in the folder) is kept, so the next check starts warm. Prints the folder's size.
    GpuBundle {
        /// The folder (ignored by git).
        #[arg(long, default_value = ".gpu/dev")]
        out: PathBuf,
        /// `CUDARC_CUDA_VERSION` of the target's driver (13000: CUDA 13).
        #[arg(long, default_value = "13000")]
        cuda_version: String,
        /// Only the plain CUDA build (the fused one takes as long again to build).
        #[arg(long)]
        no_fusion: bool,
    },
    /// Regenerate the golden files from the Python references (librosa, scipy, torchaudio, PyTorch).
    Goldens,
    /// Benchmarks: `preprocess` (vs a Python reference pipeline and a bare ffmpeg decode);
    /// `trainer`: with no arguments (or only `--models tiny,paper --batches 16,64 --steps 3
    /// --backends flex,tch,torch --rounds 1`; also `flex-burn`, `tch-burn`, `flex-next`), the same
    /// OGM-GE step on Flex, LibTorch and PyTorch, one after another (N rounds: in turn, steps
    /// pooled), with ratios; with `bench-trainer`'s flags, that program on Flex (loader samples/s,
    /// ms per step, methods); `epoch --ogm-ge PATH` (a checkout of OGM-GE's code): one training
    /// epoch end to end, loading included, of `trainer train` on Flex and LibTorch against OGM-GE's
    /// own `train_epoch` over its `AVDataset` on the same clips (`[--train-per-class 24] [--batch 16]
    /// [--backends flex,tch,ogm-ge] [--corpora 2,10]`).
    Bench {
        #[arg(value_parser = ["preprocess", "trainer", "epoch"])]
        what: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

/// The backends `cargo xtask demo` can train on.
#[derive(Clone, Copy, clap::ValueEnum)]
enum DemoBackend {
    Flex,
    Tch,
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let cli = Cli::parse();
    let root = project_root();
    std::env::set_current_dir(&root).with_context(|| format!("cd {}", root.display()))?;
    match cli.command {
        Cmd::Setup => {
            system::ensure_all(&[&system::BUILD, &system::VULKAN, &system::FFMPEG_CLI, &system::PYTHON_VENV, &system::SLURM])?;
            python::ensure_venv(&root)?;
            python::ensure_libtorch(&root)?;
            Ok(())
        }
        Cmd::PrepareDatasets { args } => {
            system::ensure(&system::BUILD)?;
            cargo(&["run", "--release", "--quiet", "-p", "preprocess", "--bin", "preprocess", "--"], &args, &[])
        }
        Cmd::Demo { backend, args } => {
            let features = match backend {
                DemoBackend::Flex => {
                    system::ensure(&system::BUILD)?;
                    None
                }
                DemoBackend::Tch => {
                    system::ensure_all(&[&system::BUILD, &system::PYTHON_VENV])?;
                    python::ensure_libtorch(&root)?;
                    Some("--features=tch")
                }
            };
            cargo(&["run", "--release", "--quiet", "-p", "preprocess", "--bin", "preprocess", "--"], &[], &[])?;
            let mut trainer = vec!["run", "--release", "--quiet", "-p", "trainer"];
            trainer.extend(features);
            trainer.extend(["--bin", "trainer", "--", "compare"]);
            cargo(&trainer, &args, &[])
        }
        Cmd::Test { args } => {
            system::ensure_all(&[&system::BUILD, &system::VULKAN, &system::FFMPEG_CLI, &system::PYTHON_VENV, &system::SLURM])?;
            let py = python::ensure_venv(&root)?;
            let py = py.to_string_lossy().into_owned();
            // One build for every test: the kernels CUDA runs are checked on whatever Vulkan
            // device is there (lavapipe on a CPU) by the same build, so features unify once.
            cargo(&["test", "--workspace", "--features", "trainer/wgpu-runtime"], &args, &[("OGMGE_PYTHON", &py)])?;
            // The same goldens, PyTorch parity and an end-to-end run again with LibTorch as the
            // trainer's backend (a second build of the trainer: the backend is a build choice).
            python::ensure_libtorch(&root)?;
            let mut tch = vec!["test", "-p", "trainer", "--features", "tch", "--lib"];
            for t in TCH_TESTS {
                tch.extend(["--test", t]);
            }
            cargo(&tch, &args, &[("OGMGE_PYTHON", &py)])
        }
        Cmd::Export { args } => {
            system::ensure(&system::PYTHON_VENV)?;
            let mut packages = python::EXPORT_PACKAGES.to_vec();
            if args.iter().any(|a| a.contains("crema")) {
                packages.push(python::TORCH);
            }
            let py = python::ensure_venv_with(&root, &packages)?;
            python::ensure_package(&root, &py)?;
            run_cmd(Command::new(&py).args(["-m", "ogmge", "export"]).args(&args))
        }
        Cmd::GpuBundle { out, cuda_version, no_fusion } => gpu_bundle(&out, &cuda_version, no_fusion),
        Cmd::Goldens => {
            system::ensure(&system::PYTHON_VENV)?;
            let py = python::ensure_venv_with(&root, python::GOLDEN_PACKAGES)?;
            for script in [
                "preprocess/goldens/make_goldens.py",
                "trainer/goldens/make_ogm_goldens.py",
                "trainer/goldens/make_batchnorm_goldens.py",
                "trainer/goldens/make_step_goldens.py",
                "trainer/goldens/make_optimizer_goldens.py",
                "trainer/goldens/make_method_goldens.py",
                "trainer/goldens/make_successor_goldens.py",
                "trainer/goldens/make_architecture_goldens.py",
            ] {
                run_cmd(Command::new(&py).arg(script))?;
            }
            Ok(())
        }
        Cmd::Bench { what, args } if what == "epoch" => {
            let plan = bench_epoch::Plan::parse(&args)?;
            system::ensure_all(&[&system::BUILD, &system::PYTHON_VENV])?;
            python::ensure_libtorch(&root)?;
            let py = python::ensure_venv_with(&root, python::EPOCH_PACKAGES)?;
            python::ensure_package(&root, &py)?;
            bench_epoch::run(&plan, &py)
        }
        Cmd::Bench { what, args } if what == "trainer" => match bench_backends::Plan::parse(&args)? {
            Some(plan) => {
                system::ensure_all(&[&system::BUILD, &system::PYTHON_VENV])?;
                python::ensure_libtorch(&root)?;
                bench_backends::run(&plan, &root.join(".venv/bin/python"))
            }
            None => cargo(&["run", "--release", "--quiet", "-p", "trainer", "--bin", "bench-trainer", "--"], &args, &[]),
        },
        Cmd::Bench { what, args } => {
            system::ensure_all(&[&system::BUILD, &system::FFMPEG_CLI, &system::PYTHON_VENV])?;
            let py = python::ensure_venv_with(&root, python::BENCH_PACKAGES)?;
            let py = py.to_string_lossy().into_owned();
            let mut all = vec![what];
            all.extend(args);
            cargo(&["run", "--release", "--quiet", "-p", "preprocess", "--bin", "bench-preprocess", "--"], &all, &[("OGMGE_PYTHON", &py)])
        }
    }
}

/// The trainer's tests `cargo xtask test` runs a second time on LibTorch: every golden of a rule
/// or layer, the PyTorch step parity, the optimisers, and a whole run killed and resumed.
const TCH_TESTS: &[&str] = &["pytorch_steps", "optimizers", "methods", "successors", "balance", "batch_norm", "architectures", "fusion", "resume"];

fn project_root() -> std::path::PathBuf {
    let manifest_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

/// `cargo xtask gpu-bundle`: see its help.
fn gpu_bundle(out: &Path, cuda_version: &str, no_fusion: bool) -> Result<()> {
    system::ensure(&system::BUILD)?;
    // LibTorch with CUDA, linked against `.venv`'s torch (PyPI's CUDA build, the GPU machine's
    // version): the bundle holds only our binary; there it loads that machine's libtorch.
    python::ensure_libtorch(&project_root())?;
    let builds: &[&str] = if no_fusion { &["cuda", "tch-cuda"] } else { &["cuda", "cuda-fusion", "tch-cuda"] };
    for feature in builds {
        cargo(&["build", "--release", "-p", "trainer", "--features", feature, "--bin", "bench-trainer"], &[], &[("CUDARC_CUDA_VERSION", cuda_version)])?;
        let dir = out.join("bin").join(feature);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let bin = dir.join("bench-trainer");
        std::fs::copy("target/release/bench-trainer", &bin).context("copying bench-trainer")?;
        run_cmd(Command::new("strip").arg(&bin))?;
        std::fs::remove_file(dir.join("bench-trainer.xz")).ok();
        run_cmd(Command::new("xz").args(["-9", "-T0"]).arg(&bin))?;
    }
    let data = out.join("out");
    if !data.join("synthetic").is_dir() {
        let out_arg = data.to_string_lossy().into_owned();
        let raw = out.join("raw-synthetic").to_string_lossy().into_owned();
        let args = ["--out", &out_arg, "--synthetic-raw", &raw, "--synthetic-train-per-class", "40", "--synthetic-test-per-class", "8"].map(String::from);
        // The test build's preprocess will do (288 clips): no release build of it just for this.
        cargo(&["run", "--quiet", "-p", "preprocess", "--bin", "preprocess", "--"], &args, &[])?;
        std::fs::remove_dir_all(out.join("raw-synthetic")).ok();
    }
    let size = folder_bytes(out)?;
    println!(
        "{}: {:.1} MiB (the device tool carries 64 MiB). Carry it and run, from the repository root:\n  BIN={0}/bin DATA={0}/out/synthetic KERNEL_CACHE_FROM={0}/kernel-cache OUT=$OUT bash trainer/bench/gpu_check.sh\n(copy $OUT/kernel-cache back to {0}/kernel-cache to start the next check warm)",
        out.display(),
        size as f64 / (1u64 << 20) as f64
    );
    Ok(())
}

fn folder_bytes(dir: &Path) -> Result<u64> {
    let mut n = 0;
    for e in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let e = e?;
        n += if e.file_type()?.is_dir() { folder_bytes(&e.path())? } else { e.metadata()?.len() };
    }
    Ok(n)
}

/// The allocator setting the trainer's binaries start with (`trainer::device::keep_heap`), given to
/// the PyTorch programs the benchmarks compare them with, so that both sides allocate alike.
const KEEP_HEAP: [(&str, &str); 2] = [("MALLOC_MMAP_THRESHOLD_", "17179869184"), ("MALLOC_TRIM_THRESHOLD_", "17179869184")];

/// Builds the trainer's binary `bin` (release) with `feature` and keeps a copy under `dir`
/// named `<bin>-<name>`, so that builds for several backends can run one after another.
fn build_release(bin: &str, name: &str, feature: Option<&str>, dir: &Path) -> Result<PathBuf> {
    let mut args = vec!["build", "--release", "--quiet", "-p", "trainer", "--bin", bin];
    if let Some(f) = feature {
        args.extend(["--features", f]);
    }
    eprintln!("xtask: building {bin} for {name}");
    cargo(&args, &[], &[])?;
    let target = target_dir();
    let to = dir.join(format!("{bin}-{name}"));
    std::fs::copy(target.join("release").join(bin), &to).with_context(|| format!("copying {bin} to {}", to.display()))?;
    Ok(to)
}

/// Cargo's target directory: `CARGO_TARGET_DIR`, else `target`.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from)
}

fn cargo(base: &[&str], extra: &[String], env: &[(&str, &str)]) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(base).args(extra);
    for (k, v) in env {
        cmd.env(k, v);
    }
    run_cmd(&mut cmd)
}

pub(crate) fn run_cmd(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("could not start {cmd:?}"))?;
    if !status.success() {
        bail!("{:?} failed with {status}", cmd.get_program());
    }
    Ok(())
}
