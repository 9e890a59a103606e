//! A comparison's report: the mean ± sd table (`compare.md`), one row per run (`compare.csv`)
//! and the plot (`compare.png`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Result;

use super::plan::{collect, Arm, Plan, RunKey};
use crate::methods::Balance;
use crate::optim::OptimizerKind;
use crate::plot::{spread_chart, Spread};
use crate::probe::ProbeReport;
use crate::train::{RunSummary, TrainConfig, TrainHead};

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

/// Writes `compare.md`, `compare.csv` and `compare.png` into the comparison folder; returns the
/// table and the markdown path.
pub fn merge(plan: &Plan, probes: &[(RunKey, ProbeReport)]) -> Result<(Vec<ArmSummary>, PathBuf)> {
    let rows = collect(plan, None)?;
    let table = summarise(plan, &rows, probes);
    let dir: &Path = &plan.template.out;
    std::fs::create_dir_all(dir)?;
    let md = dir.join("compare.md");
    datasets::durable::write_atomic(&md, markdown(plan, &table, &rows).as_bytes())?;
    datasets::durable::write_atomic(&dir.join("compare.csv"), csv(plan, &rows, probes).as_bytes())?;
    let arms: Vec<String> = table.iter().map(|a| format!("{}{}", a.arm.label(), a.optimizer.name_suffix())).collect();
    let series =
        [("fused", 0), ("audio", 1), ("visual", 2)].map(|(name, i)| Spread { name: name.into(), values: table.iter().map(|a| a.metrics[i]).collect() });
    spread_chart(&dir.join("compare.png"), "Test accuracy, mean ± sd over seeds", "accuracy", &arms, &series)?;
    Ok((table, md))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::Arch;
    use crate::compare::plan::Part;
    use crate::run_log::EvalMetrics;

    fn summary(fused: f64) -> RunSummary {
        let mut test = EvalMetrics::default();
        test.fused.accuracy = fused;
        RunSummary { best_epoch: 0, test, last: test, run_dir: PathBuf::new() }
    }

    #[test]
    fn paired_differences_are_taken_per_seed_and_optimiser() {
        let mut template: TrainConfig = serde_json::from_str(include_str!("../../tests/data/train_config.json")).unwrap();
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
        let mut template: TrainConfig = serde_json::from_str(include_str!("../../tests/data/train_config.json")).unwrap();
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
