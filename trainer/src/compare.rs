//! `trainer compare`: every combination of architectures x methods x optimisers x seeds trained
//! on one dataset under one template config, and the comparison table of their test metrics.
//!
//! - Each run is a plain `train` run in `<out>/<arm><optimiser>-seed<N>`: a finished run (its
//!   `summary.json` present) is read back, not retrained; a killed one resumes from its last
//!   checkpoint; so a killed comparison is resumed by running the same command again.
//! - `--part i/n` trains the runs whose position in the fixed order is `i` modulo `n` (one
//!   array-job task each); `--merge` trains nothing and tabulates what the parts left. A part's
//!   runs are exactly the full run's, so merging the parts equals one full comparison.
//! - `--jobs N` trains N runs at once, each in its own `trainer train` process with its share of
//!   the cores (`RAYON_NUM_THREADS`), its output in `<out>/logs/<run>.log`: a tiny model keeps two
//!   cores busier as two one-thread runs than as one two-thread run, and every run stays its own
//!   process with its own random generators, so the numbers are the same as with `--jobs 1`.
//! - `--probe` adds the paper's uni-modal protocol: linear probes on each run's frozen encoders
//!   (`probe.rs`), read back from `probe.json` when made with the same settings.
//! - It writes `compare.md` (mean ± sd per arm, and the paired per-seed differences against the
//!   baseline `none` on the same architecture under the same optimiser), `compare.csv` (one row per run) and `compare.png`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use burn::tensor::backend::AutodiffBackend;
use serde::{Deserialize, Serialize};

use crate::arch::Arch;
use crate::methods::Balance;
use crate::optim::OptimizerKind;
use crate::plot::{spread_chart, Spread};
use crate::probe::{probe, ProbeConfig, ProbeReport, Which};
use crate::train::{run_dir, train, RunSummary, TrainConfig, TrainHead};

/// One row of the table: a method on an architecture, or a uni-modal ceiling (one modality
/// trained alone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Arm {
    pub balance: Balance,
    pub head: TrainHead,
    #[serde(default)]
    pub arch: Arch,
}

impl Arm {
    pub fn method(balance: Balance) -> Self {
        Self::on(Arch::Plain, balance)
    }

    /// `balance` on `arch`.
    pub fn on(arch: Arch, balance: Balance) -> Self {
        Self { balance, head: TrainHead::Fused, arch }
    }

    /// The two uni-modal ceilings (the paper's "Audio-only" and "Visual-only" rows).
    pub fn ceilings(arch: Arch) -> [Arm; 2] {
        [TrainHead::Audio, TrainHead::Visual].map(|head| Self { balance: Balance::None, head, arch })
    }

    /// The row's name: the method (or ceiling), after the architecture unless it is `plain`.
    pub fn label(&self) -> String {
        let what = match self.head {
            TrainHead::Fused => self.balance.name(),
            TrainHead::Audio => "audio-only".into(),
            TrainHead::Visual => "visual-only".into(),
        };
        match self.arch {
            Arch::Plain => what,
            arch => format!("{}-{what}", arch.name()),
        }
    }
}

/// What a comparison trains.
#[derive(Debug, Clone)]
pub struct Plan {
    pub arms: Vec<Arm>,
    pub optimizers: Vec<OptimizerKind>,
    pub seeds: Vec<u64>,
    /// Every run's settings but the arm, optimiser, seed and name; `out` is the comparison folder.
    pub template: TrainConfig,
    /// The template of each method a recipe gives settings of its own (BalanceBenchmark's
    /// per-method windows and alphas); the others use `template`.
    pub per_method: BTreeMap<Balance, TrainConfig>,
}

/// One run of a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunKey {
    pub arm: Arm,
    pub optimizer: OptimizerKind,
    pub seed: u64,
}

/// A share of a plan's runs (`--part 0/2`).
pub use datasets::part::Part;

impl Plan {
    /// Every run, in a fixed order: optimiser, then arm, then seed.
    pub fn runs(&self) -> Vec<RunKey> {
        let mut v = Vec::new();
        for &optimizer in &self.optimizers {
            for &arm in &self.arms {
                for &seed in &self.seeds {
                    v.push(RunKey { arm, optimizer, seed });
                }
            }
        }
        v
    }

    /// The runs of `part` (all without one).
    pub fn share(&self, part: Option<Part>) -> Vec<RunKey> {
        self.runs().into_iter().enumerate().filter(|(i, _)| part.is_none_or(|p| p.keeps(*i))).map(|(_, r)| r).collect()
    }

    /// The full config of one run.
    pub fn config(&self, key: &RunKey) -> TrainConfig {
        let mut c = self.per_method.get(&key.arm.balance).unwrap_or(&self.template).clone();
        c.balance = key.arm.balance;
        c.arch = key.arm.arch;
        // A method or an architecture that needs its own head (MLA's shared one, AGM's concat,
        // TBN's binding) gets it.
        c.fusion = key.arm.arch.needs_fusion().or(key.arm.balance.needs_fusion()).unwrap_or(c.fusion);
        c.train_head = key.arm.head;
        c.optimizer = key.optimizer;
        c.seed = key.seed;
        c.name = format!("{}{}-seed{}", key.arm.label(), key.optimizer.name_suffix(), key.seed);
        c
    }

    /// Refuses a plan with nothing to run or a run that could not start.
    pub fn validate(&self) -> Result<()> {
        anyhow::ensure!(
            !self.arms.is_empty() && !self.optimizers.is_empty() && !self.seeds.is_empty(),
            "nothing to compare: give --methods, --seeds and --optimizers"
        );
        for key in self.runs() {
            self.config(&key).validate()?;
        }
        Ok(())
    }
}

/// The summary of `cfg`'s run if it finished with exactly this config; an error if its folder
/// holds a run of another config (a comparison never mixes runs of different settings).
pub fn finished(cfg: &TrainConfig) -> Result<Option<RunSummary>> {
    crate::run_folder::finished(&run_dir(cfg), cfg)
}

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

/// The summaries of every run of the plan, or an error naming the runs not finished yet (by
/// part, with the array's part count `parts`: what to re-run).
pub fn collect(plan: &Plan, parts: Option<usize>) -> Result<Vec<(RunKey, RunSummary)>> {
    let runs = plan.runs();
    let (mut rows, mut missing) = (Vec::new(), Vec::new());
    for (position, key) in runs.iter().enumerate() {
        let cfg = plan.config(key);
        match finished(&cfg)? {
            Some(s) => rows.push((*key, s)),
            None => missing.push((position, cfg.name)),
        }
    }
    let hint = if parts.is_some() { "re-run those parts" } else { "run the parts first; --parts N names them" };
    anyhow::ensure!(
        missing.is_empty(),
        "{} of {} runs have not finished in {}: {} ({hint})",
        missing.len(),
        runs.len(),
        plan.template.out.display(),
        datasets::part::describe_unfinished(parts, &missing)
    );
    Ok(rows)
}

/// How a metric is read off a run's summary.
pub type Metric = fn(&RunSummary) -> f64;

/// The metrics a comparison reports of a run (test split, at the selected epoch).
pub const METRICS: [(&str, Metric); 8] = [
    ("acc", |s| s.test.fused.accuracy),
    ("acc_audio", |s| s.test.audio.accuracy),
    ("acc_visual", |s| s.test.visual.accuracy),
    ("macro_f1", |s| s.test.fused.macro_f1),
    ("map", |s| s.test.fused.map),
    ("contribution_audio", |s| s.test.contribution.audio),
    ("contribution_visual", |s| s.test.contribution.visual),
    ("acc_last", |s| s.last.fused.accuracy),
];

/// Mean and sample standard deviation (0 for one value).
pub fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n.max(1.0);
    let sd = if v.len() > 1 { (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt() } else { 0.0 };
    (mean, sd)
}

/// One arm under one optimiser across its seeds.
#[derive(Debug, Clone)]
pub struct ArmSummary {
    pub arm: Arm,
    pub optimizer: OptimizerKind,
    pub seeds: usize,
    /// `(mean, sd)` per metric of [`METRICS`].
    pub metrics: Vec<(f64, f64)>,
    /// Paired differences of the fused accuracy against `none` (same optimiser and seed): mean,
    /// sd, and on how many seeds this arm is higher; absent for `none` and the ceilings, or
    /// without `none` in the plan.
    pub vs_baseline: Option<(f64, f64, usize)>,
    /// With `--probe`: `(mean, sd)` of the linear probes' test accuracy on the frozen audio and
    /// visual encoders.
    pub probes: Option<[(f64, f64); 2]>,
}

/// The table of a plan's finished runs.
pub fn summarise(plan: &Plan, rows: &[(RunKey, RunSummary)], probes: &[(RunKey, ProbeReport)]) -> Vec<ArmSummary> {
    let mut out = Vec::new();
    for &optimizer in &plan.optimizers {
        for &arm in &plan.arms {
            let mine: Vec<&(RunKey, RunSummary)> = rows.iter().filter(|(k, _)| k.arm == arm && k.optimizer == optimizer).collect();
            let metrics = METRICS.iter().map(|(_, f)| mean_sd(&mine.iter().map(|(_, s)| f(s)).collect::<Vec<_>>())).collect();
            // `none` on the same architecture.
            let baseline = Arm::on(arm.arch, Balance::None);
            let vs_baseline = (arm.head == TrainHead::Fused && arm != baseline)
                .then(|| {
                    let diffs: Vec<f64> = mine
                        .iter()
                        .filter_map(|(k, s)| {
                            rows.iter()
                                .find(|(b, _)| b.arm == baseline && b.optimizer == optimizer && b.seed == k.seed)
                                .map(|(_, b)| s.test.fused.accuracy - b.test.fused.accuracy)
                        })
                        .collect();
                    (!diffs.is_empty()).then(|| {
                        let (m, sd) = mean_sd(&diffs);
                        (m, sd, diffs.iter().filter(|&&d| d > 0.0).count())
                    })
                })
                .flatten();
            let theirs: Vec<&ProbeReport> = probes.iter().filter(|(k, _)| k.arm == arm && k.optimizer == optimizer).map(|(_, p)| p).collect();
            let probes = (!theirs.is_empty()).then(|| {
                [|p: &ProbeReport| p.audio.test.accuracy, |p: &ProbeReport| p.visual.test.accuracy]
                    .map(|f| mean_sd(&theirs.iter().map(|p| f(p)).collect::<Vec<_>>()))
            });
            out.push(ArmSummary { arm, optimizer, seeds: mine.len(), metrics, vs_baseline, probes });
        }
    }
    out
}

fn pct((m, sd): (f64, f64)) -> String {
    format!("{:.1} ± {:.1}", 100.0 * m, 100.0 * sd)
}

/// Where a config selects its epoch, said in words.
fn selection(t: &TrainConfig) -> String {
    if t.select_on_test {
        "on the test split itself".to_owned()
    } else {
        format!("on the validation hold-out ({}% of train)", 100.0 * t.val_fraction)
    }
}

/// The keys (`key value`) where `cfg` differs from `base`.
fn differences(base: &TrainConfig, cfg: &TrainConfig) -> Vec<String> {
    let (Ok(serde_json::Value::Object(a)), Ok(serde_json::Value::Object(b))) = (serde_json::to_value(base), serde_json::to_value(cfg)) else {
        return Vec::new();
    };
    b.iter().filter(|(k, v)| a.get(*k) != Some(v)).map(|(k, v)| format!("{k} {v}")).collect()
}

/// `compare.md`: the summary table and the per-seed runs.
pub fn markdown(plan: &Plan, table: &[ArmSummary], rows: &[(RunKey, RunSummary)]) -> String {
    let mut s = String::new();
    let t = &plan.template;
    let _ = writeln!(s, "# Comparison on `{}`\n", t.data.display());
    let _ = writeln!(
        s,
        "{} runs: {} arms x {} optimisers x seeds {:?}; model `{:?}`, fusion `{:?}`, {} epochs, batch {}, lr {}, alpha {}, modulation epochs {}..={}. \
         Test split, at the epoch selected {}; accuracies in %, mean ± sd over seeds; \
         contribution: each modality's Shapley value on the fused accuracy (points of accuracy).\n",
        rows.len(),
        plan.arms.len(),
        plan.optimizers.len(),
        plan.seeds,
        t.model,
        t.fusion,
        t.epochs,
        t.batch_size,
        t.lr,
        t.alpha,
        t.modulation_start,
        t.modulation_end,
        selection(t)
    );
    if let Some(recipe) = &t.recipe {
        let _ = writeln!(
            s,
            "Recipe `{recipe}`: optimiser {}, weight decay {}, StepLR {}/{}, drop_last {}.",
            t.optimizer.name(),
            t.weight_decay,
            t.lr_step,
            t.lr_gamma,
            t.drop_last
        );
        for (balance, cfg) in &plan.per_method {
            let own = differences(&TrainConfig { balance: *balance, ..t.clone() }, cfg);
            if !own.is_empty() {
                let _ = writeln!(s, "- `{}`: {}", balance.name(), own.join(", "));
            }
        }
        let _ = writeln!(s);
    }
    let probed = table.iter().any(|a| a.probes.is_some());
    let _ = writeln!(
        s,
        "| method | optimiser | seeds | fused acc | audio acc | visual acc | macro-F1 | mAP | contribution audio | contribution visual | fused acc, last epoch | fused vs none (paired) | higher than none |{}",
        if probed { " probe audio | probe visual |" } else { "" }
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|---|---|{}", if probed { "---|---|" } else { "" });
    for a in table {
        let m = |i: usize| pct(a.metrics[i]);
        let (vs, wins) = match a.vs_baseline {
            Some((d, sd, w)) => (format!("{:+.1} ± {:.1}", 100.0 * d, 100.0 * sd), format!("{w}/{}", a.seeds)),
            None => (String::new(), String::new()),
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |{}",
            a.arm.label(),
            a.optimizer.name(),
            a.seeds,
            m(0),
            m(1),
            m(2),
            m(3),
            m(4),
            m(5),
            m(6),
            m(7),
            vs,
            wins,
            match a.probes {
                Some([pa, pv]) => format!(" {} | {} |", pct(pa), pct(pv)),
                None if probed => " | |".into(),
                None => String::new(),
            }
        );
    }
    if probed {
        let _ = writeln!(
            s,
            "\nprobe audio / visual: test accuracy of a linear classifier fitted on the frozen encoder's features after the last epoch (`trainer probe`, the paper's uni-modal protocol)."
        );
    }
    if plan.arms.iter().any(|a| a.head != TrainHead::Fused) {
        let _ = writeln!(s, "\nThe `audio-only` / `visual-only` rows train one encoder with its share of the head: read their audio / visual column (their fused column is not a model).");
    }
    let _ = writeln!(s, "\n## Runs\n\n| run | selected epoch | fused | audio | visual | macro-F1 | mAP |\n|---|---|---|---|---|---|---|");
    for (k, r) in rows {
        let t = &r.test;
        let _ = writeln!(
            s,
            "| {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
            plan.config(k).name,
            r.best_epoch,
            100.0 * t.fused.accuracy,
            100.0 * t.audio.accuracy,
            100.0 * t.visual.accuracy,
            100.0 * t.fused.macro_f1,
            100.0 * t.fused.map
        );
    }
    s
}

/// `compare.csv`: one row per run, every metric.
pub fn csv(plan: &Plan, rows: &[(RunKey, RunSummary)], probes: &[(RunKey, ProbeReport)]) -> String {
    let mut s = String::from("run,method,optimizer,seed,selected_epoch");
    for (name, _) in METRICS {
        let _ = write!(s, ",{name}");
    }
    if !probes.is_empty() {
        s.push_str(",probe_audio,probe_visual");
    }
    s.push('\n');
    for (k, r) in rows {
        let _ = write!(s, "{},{},{},{},{}", plan.config(k).name, k.arm.label(), k.optimizer.name(), k.seed, r.best_epoch);
        for (_, f) in METRICS {
            let _ = write!(s, ",{:.6}", f(r));
        }
        if let Some((_, p)) = probes.iter().find(|(pk, _)| pk == k) {
            let _ = write!(s, ",{:.6},{:.6}", p.audio.test.accuracy, p.visual.test.accuracy);
        }
        s.push('\n');
    }
    s
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

/// Writes `compare.md`, `compare.csv` and `compare.png` into the comparison folder; returns the
/// table and the markdown path.
pub fn merge(plan: &Plan, probes: &[(RunKey, ProbeReport)]) -> Result<(Vec<ArmSummary>, PathBuf)> {
    let rows = collect(plan, None)?;
    let table = summarise(plan, &rows, probes);
    let dir: &Path = &plan.template.out;
    std::fs::create_dir_all(dir)?;
    let md = dir.join("compare.md");
    std::fs::write(&md, markdown(plan, &table, &rows)).with_context(|| format!("writing {}", md.display()))?;
    std::fs::write(dir.join("compare.csv"), csv(plan, &rows, probes))?;
    let arms: Vec<String> = table.iter().map(|a| format!("{}{}", a.arm.label(), a.optimizer.name_suffix())).collect();
    let series =
        [("fused", 0), ("audio", 1), ("visual", 2)].map(|(name, i)| Spread { name: name.into(), values: table.iter().map(|a| a.metrics[i]).collect() });
    spread_chart(&dir.join("compare.png"), "Test accuracy, mean ± sd over seeds", "accuracy", &arms, &series)?;
    Ok((table, md))
}

/// The probe settings of `compare --probe`: the last epoch's encoders, 100 epochs of Adam at 1e-3.
pub fn default_probe() -> ProbeConfig {
    ProbeConfig { run: PathBuf::new(), checkpoint: Which::Last, epochs: 100, lr: 1e-3, seed: 0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run_log::EvalMetrics;

    fn summary(fused: f64) -> RunSummary {
        let mut test = EvalMetrics::default();
        test.fused.accuracy = fused;
        RunSummary { best_epoch: 0, test, last: test, run_dir: PathBuf::new() }
    }

    #[test]
    fn paired_differences_are_taken_per_seed_and_optimiser() {
        let mut template: TrainConfig = serde_json::from_str(include_str!("../tests/data/train_config.json")).unwrap();
        template.out = PathBuf::from("x");
        let plan = Plan {
            arms: vec![Arm::method(Balance::None), Arm::method(Balance::OgmGe)],
            optimizers: vec![OptimizerKind::Sgd, OptimizerKind::Adam],
            seeds: vec![0, 1, 2],
            template,
            per_method: Default::default(),
        };
        // none: 0.5, 0.6, 0.7 under SGD; ogm-ge: +0.1, -0.05, +0.2; Adam: ogm-ge always +0.01.
        let fused = |k: &RunKey| match (k.arm.balance, k.optimizer) {
            (Balance::None, OptimizerKind::Sgd) => 0.5 + 0.1 * k.seed as f64,
            (_, OptimizerKind::Sgd) => 0.5 + 0.1 * k.seed as f64 + [0.1, -0.05, 0.2][k.seed as usize],
            (Balance::None, _) => 0.3,
            _ => 0.31,
        };
        let rows: Vec<(RunKey, RunSummary)> = plan.runs().into_iter().map(|k| (k, summary(fused(&k)))).collect();
        let table = summarise(&plan, &rows, &[]);
        assert_eq!(table.len(), 4);
        let sgd = table.iter().find(|a| a.arm.balance == Balance::OgmGe && a.optimizer == OptimizerKind::Sgd).unwrap();
        let (m, sd, wins) = sgd.vs_baseline.unwrap();
        assert!((m - 0.25 / 3.0).abs() < 1e-12 && wins == 2, "{m} {wins}");
        assert!((sd - mean_sd(&[0.1, -0.05, 0.2]).1).abs() < 1e-12);
        let adam = table.iter().find(|a| a.arm.balance == Balance::OgmGe && a.optimizer == OptimizerKind::Adam).unwrap();
        assert!((adam.vs_baseline.unwrap().0 - 0.01).abs() < 1e-12 && adam.vs_baseline.unwrap().2 == 3);
        assert!(table.iter().filter(|a| a.arm.balance == Balance::None).all(|a| a.vs_baseline.is_none()));
        assert_eq!(plan.share(Some(Part { index: 1, count: 4 })).len(), 3, "12 runs, every 4th from the second");
        assert_eq!(mean_sd(&[1.0]), (1.0, 0.0));
    }

    /// Each architecture's method is paired with `none` on the same architecture, its runs are
    /// named after both, and TBN gets its binding head.
    #[test]
    fn architectures_are_rows_paired_with_their_own_baseline() {
        let mut template: TrainConfig = serde_json::from_str(include_str!("../tests/data/train_config.json")).unwrap();
        template.out = PathBuf::from("x");
        let arms = [Arch::Plain, Arch::Tbn].into_iter().flat_map(|a| [Balance::None, Balance::OgmGe].map(|b| Arm::on(a, b))).collect();
        let plan = Plan { arms, optimizers: vec![OptimizerKind::Sgd], seeds: vec![0, 1], template, per_method: Default::default() };
        plan.validate().unwrap();
        let tbn = RunKey { arm: Arm::on(Arch::Tbn, Balance::OgmGe), optimizer: OptimizerKind::Sgd, seed: 1 };
        let c = plan.config(&tbn);
        assert_eq!((c.name.as_str(), c.arch, c.fusion), ("tbn-ogm-ge-seed1", Arch::Tbn, crate::model::FusionKind::Binding));
        // plain none 0.5, plain ogm-ge 0.6; tbn none 0.7, tbn ogm-ge 0.65.
        let fused = |k: &RunKey| match (k.arm.arch, k.arm.balance) {
            (Arch::Plain, Balance::None) => 0.5,
            (Arch::Plain, _) => 0.6,
            (_, Balance::None) => 0.7,
            _ => 0.65,
        };
        let rows: Vec<(RunKey, RunSummary)> = plan.runs().into_iter().map(|k| (k, summary(fused(&k)))).collect();
        let table = summarise(&plan, &rows, &[]);
        let vs = |arch| table.iter().find(|a| a.arm == Arm::on(arch, Balance::OgmGe)).unwrap().vs_baseline.unwrap();
        assert!((vs(Arch::Plain).0 - 0.1).abs() < 1e-12 && vs(Arch::Plain).2 == 2);
        assert!((vs(Arch::Tbn).0 + 0.05).abs() < 1e-12 && vs(Arch::Tbn).2 == 0);
        // A method on clip features cannot run on TBN.
        let bad = Plan { arms: vec![Arm::on(Arch::Tbn, Balance::Pmr)], ..plan };
        assert!(bad.validate().unwrap_err().to_string().contains("--arch tbn"));
    }
}
