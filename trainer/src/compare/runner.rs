//! Training a comparison's runs: in this process, or as a pool of `trainer train` processes that
//! exit with their parent; and the linear probes of finished runs.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use burn::tensor::backend::AutodiffBackend;

use super::plan::{collect, finished, Part, Plan, RunKey};
use crate::probe::{probe, ProbeConfig, ProbeReport, Which};
use crate::train::{run_dir, train, RunSummary, TrainConfig};

/// Trains the runs of `part` in this process (finished ones are read back, killed ones resumed).
pub fn run_share<B: AutodiffBackend>(plan: &Plan, part: Option<Part>, device: &B::Device, progress: bool) -> Result<Vec<(RunKey, RunSummary)>> {
    plan.validate()?;
    let mut done = Vec::new();
    for key in plan.share(part) {
        let cfg = plan.config(&key);
        let s = match finished(&cfg)? {
            Some(s) => {
                if progress {
                    eprintln!("{}: finished earlier with the same settings, read back (delete {} to train it again)", cfg.name, run_dir(&cfg).display());
                }
                s
            }
            None => train::<B>(&cfg, device, progress, true).with_context(|| format!("run {}", cfg.name))?,
        };
        done.push((key, s));
    }
    Ok(done)
}

/// Trains the runs of `part` with `jobs` `exe train` processes at once (`exe`: this trainer's
/// binary), `threads` compute threads each; finished runs are read back, killed ones resumed.
/// A failed run does not stop the others; the error names each failed run and its log.
pub fn run_share_in_processes(plan: &Plan, part: Option<Part>, jobs: usize, threads: usize, exe: &Path, progress: bool) -> Result<()> {
    use std::collections::VecDeque;
    use std::sync::Mutex;
    plan.validate()?;
    let logs = plan.template.out.join("logs");
    std::fs::create_dir_all(&logs).with_context(|| logs.display().to_string())?;
    let mut todo = VecDeque::new();
    for key in plan.share(part) {
        let cfg = plan.config(&key);
        if finished(&cfg)?.is_some() {
            if progress {
                eprintln!("{}: finished earlier with the same settings, read back (delete {} to train it again)", cfg.name, run_dir(&cfg).display());
            }
        } else {
            todo.push_back(cfg);
        }
    }
    let queue: Mutex<VecDeque<TrainConfig>> = Mutex::new(todo);
    let total = queue.lock().expect("not poisoned").len();
    let bar = if progress { indicatif::ProgressBar::new(total as u64) } else { indicatif::ProgressBar::hidden() };
    bar.set_style(
        indicatif::ProgressStyle::with_template("compare [{bar:30}] {pos}/{len} runs, {msg} (elapsed {elapsed}, ETA {eta})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(format!("{jobs} at a time, logs in {}", logs.display()));
    let failed: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let train_one = |cfg: &TrainConfig| -> Result<()> {
        let config = logs.join(format!("{}.config.json", cfg.name));
        std::fs::write(&config, serde_json::to_string_pretty(cfg)?)?;
        let log = std::fs::File::create(logs.join(format!("{}.log", cfg.name)))?;
        let status = std::process::Command::new(exe)
            .arg("train")
            .arg("--config")
            .arg(&config)
            .arg("--resume")
            .env("RAYON_NUM_THREADS", threads.to_string())
            .env(EXIT_WITH_PARENT, "1")
            .stdout(log.try_clone()?)
            .stderr(log)
            .status()
            .with_context(|| format!("starting {}", exe.display()))?;
        anyhow::ensure!(status.success(), "{} ({status})", cfg.name);
        Ok(())
    };
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| loop {
                let Some(cfg) = queue.lock().expect("not poisoned").pop_front() else { break };
                match train_one(&cfg) {
                    Ok(()) => bar.println(format!("{}: done", cfg.name)),
                    Err(e) => {
                        bar.println(format!("{}: failed: {e:#}", cfg.name));
                        failed.lock().expect("not poisoned").push(format!("{} (see {})", cfg.name, logs.join(format!("{}.log", cfg.name)).display()));
                    }
                }
                bar.inc(1);
            });
        }
    });
    bar.finish_and_clear();
    let failed = failed.into_inner().expect("not poisoned");
    anyhow::ensure!(failed.is_empty(), "{} of {total} runs failed: {}", failed.len(), failed.join(", "));
    Ok(())
}

/// The environment variable that makes a `trainer` process exit when its parent does (set for
/// the processes of `run_share_in_processes`, so a killed comparison leaves no run behind).
pub const EXIT_WITH_PARENT: &str = "TRAINER_EXIT_WITH_PARENT";

/// With [`EXIT_WITH_PARENT`] set, watches the parent process and exits when it is gone (as a
/// SIGKILL would: every checkpoint on disk is a committed one).
pub fn exit_with_parent() {
    #[cfg(unix)]
    if std::env::var_os(EXIT_WITH_PARENT).is_some() {
        let parent = std::os::unix::process::parent_id();
        std::thread::spawn(move || loop {
            std::thread::sleep(std::time::Duration::from_millis(200));
            if std::os::unix::process::parent_id() != parent {
                std::process::exit(137);
            }
        });
    }
}

/// The linear probes of every run of the plan (`trainer probe` on the last epoch's encoders): read
/// back from a run's `probe.json` when it was made with `settings`, else computed.
pub fn probe_runs<B: AutodiffBackend>(plan: &Plan, settings: &ProbeConfig, device: &B::Device, progress: bool) -> Result<Vec<(RunKey, ProbeReport)>> {
    collect(plan, None)?;
    let mut out = Vec::new();
    for key in plan.runs() {
        let run = run_dir(&plan.config(&key));
        let cfg = ProbeConfig { run: run.clone(), ..settings.clone() };
        let saved: Option<ProbeReport> = std::fs::read(run.join("probe.json")).ok().and_then(|b| serde_json::from_slice(&b).ok());
        let report = match saved {
            Some(r) if serde_json::to_string(&r.config)? == serde_json::to_string(&cfg)? => r,
            _ => {
                if progress {
                    eprintln!("{}: linear probes", run.display());
                }
                probe::<B>(&cfg, device)?
            }
        };
        out.push((key, report));
    }
    Ok(out)
}

/// The probe settings of `compare --probe`: the last epoch's encoders, 100 epochs of Adam at 1e-3.
pub fn default_probe() -> ProbeConfig {
    ProbeConfig { run: PathBuf::new(), checkpoint: Which::Last, epochs: 100, lr: 1e-3, seed: 0 }
}
