//! `cargo xtask`: the one place for automation. Thin glue: it checks and installs what the machine
//! needs, then runs the real binaries (`preprocess`, `trainer`) and `cargo test` with cargo.
//! It links neither FFmpeg nor Burn, so it builds on a machine that has neither yet.

mod python;
mod system;

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
    /// driver, Slurm and munge (apt), and the Python venv used by interop tests and goldens.
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
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Set up (system packages, the ffmpeg CLI, `.venv`), then run the whole test suite in one
    /// build: `cargo test --workspace --features trainer/wgpu-runtime` (the trainer's GPU-kernel
    /// test runs CubeCL's WebGPU runtime on Mesa's Vulkan driver; training stays on Flex).
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
    /// Regenerate the golden files from the Python references (librosa, scipy, torchaudio, PyTorch).
    Goldens,
    /// Benchmarks: `preprocess` (vs a Python reference pipeline and a bare ffmpeg decode);
    /// `trainer` (loader samples/s, ms per training step).
    Bench {
        #[arg(value_parser = ["preprocess", "trainer"])]
        what: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
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
            Ok(())
        }
        Cmd::PrepareDatasets { args } => {
            system::ensure(&system::BUILD)?;
            cargo(&["run", "--release", "--quiet", "-p", "preprocess", "--bin", "preprocess", "--"], &args, &[])
        }
        Cmd::Demo { args } => {
            system::ensure(&system::BUILD)?;
            cargo(&["run", "--release", "--quiet", "-p", "preprocess", "--bin", "preprocess", "--"], &[], &[])?;
            cargo(&["run", "--release", "--quiet", "-p", "trainer", "--bin", "trainer", "--", "compare"], &args, &[])
        }
        Cmd::Test { args } => {
            system::ensure_all(&[&system::BUILD, &system::VULKAN, &system::FFMPEG_CLI, &system::PYTHON_VENV, &system::SLURM])?;
            let py = python::ensure_venv(&root)?;
            let py = py.to_string_lossy().into_owned();
            // One build for every test: the kernels CUDA runs are checked on whatever Vulkan
            // device is there (lavapipe on a CPU) by the same build, so features unify once.
            cargo(&["test", "--workspace", "--features", "trainer/wgpu-runtime"], &args, &[("OGMGE_PYTHON", &py)])
        }
        Cmd::Export { args } => {
            system::ensure(&system::PYTHON_VENV)?;
            let mut packages = python::EXPORT_PACKAGES.to_vec();
            if args.iter().any(|a| a.contains("crema")) {
                packages.push("torch==2.11.0");
            }
            let py = python::ensure_venv_with(&root, &packages)?;
            python::ensure_package(&root, &py)?;
            run_cmd(Command::new(&py).args(["-m", "ogmge", "export"]).args(&args))
        }
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
        Cmd::Bench { what, args } if what == "trainer" => cargo(&["run", "--release", "--quiet", "-p", "trainer", "--bin", "bench-trainer", "--"], &args, &[]),
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

fn project_root() -> std::path::PathBuf {
    let manifest_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
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
