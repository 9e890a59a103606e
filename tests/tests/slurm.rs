//! Array jobs on a real Slurm (a throwaway single-node cluster, `tests::slurm`): the repository's
//! own job files (`examples/slurm/*.sbatch`) prepare a synthetic corpus in 4 parts, one task
//! killed mid-way and resubmitted, and train a `trainer compare` grid in 2 parts, one submitted
//! late; each merge first names the missing part and fails, then gives exactly the bytes of a
//! single-machine run. Every daemon started is stopped, every file removed.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use preprocess::synthetic::{generate, SyntheticConfig};
use tests::slurm::Cluster;

const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/slurm");

/// Every non-hidden file under `dir`, by relative path, with its bytes.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if e.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.insert(p.strip_prefix(root).unwrap().to_owned(), std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{cmd:?}:\n{text}");
    text
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| format!("<{}: {e}>", path.display()))
}

#[test]
fn array_jobs_on_a_real_slurm_give_the_bytes_of_one_machine() {
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path().canonicalize().unwrap();
    let (preprocess, trainer) = (tests::workspace_bin("preprocess"), tests::workspace_bin("trainer"));
    let raw = t.join("raw");
    generate(&raw.join("synthetic"), &SyntheticConfig { train_per_class: 20, test_per_class: 5, ..SyntheticConfig::default() }).unwrap();
    // 50 shards of 3 clips: 12-13 per part, so a part takes long enough to be killed mid-way.
    let shard_args = ["--clips-per-shard", "3"];
    let single = t.join("single");
    run(Command::new(&preprocess).arg("--raw").arg(&raw).arg("--out").arg(&single).args(shard_args).args(["--jobs", "2", "--quiet"]));

    let cluster = Cluster::start(&t.join("slurm"));
    let logs = t.join("logs");
    std::fs::create_dir(&logs).unwrap();
    let out = t.join("out");
    let env: [(&str, &dyn AsRef<std::ffi::OsStr>); 4] = [("PARTS", &"4"), ("RAW", &raw), ("OUT", &out), ("PREPROCESS", &preprocess)];
    let prepare = Path::new(EXAMPLES).join("prepare.sbatch");
    let merge = Path::new(EXAMPLES).join("prepare-merge.sbatch");
    // The job files ask for a real cluster's resources; one CPU and a little memory here.
    let small = ["--cpus-per-task=1", "--mem=200M"];
    let task_log = logs.join("prepare-%A_%a.out");
    let output = format!("--output={}", task_log.display());

    // 1. Four array tasks; task 1 killed once its first shard is written.
    let job = cluster.sbatch(&[&small[0], &small[1], &output, &prepare, &shard_args[0], &shard_args[1]], &env);
    let plan: Vec<String> = {
        // The plan's fixed order: splits train, val, test, shards by name (as the single run's).
        let mut v = Vec::new();
        for split in ["train", "val", "test"] {
            let mut names: Vec<String> = std::fs::read_dir(single.join("synthetic").join(split))
                .map(|d| d.flatten().map(|e| format!("{split}/{}", e.file_name().to_string_lossy())).collect())
                .unwrap_or_default();
            names.sort();
            v.extend(names);
        }
        v
    };
    assert_eq!(plan.len(), 50);
    let state = |name: &String| out.join("synthetic/.state").join(format!("{}.json", name.replace('/', "__")));
    let part1: Vec<&String> = plan.iter().enumerate().filter(|(k, _)| k % 4 == 1).map(|(_, n)| n).collect();
    cluster.wait_for("part 1's first shard", Duration::from_secs(120), || part1.iter().any(|n| state(n).exists()));
    run(cluster.cmd("scancel").args(["--full", "--signal=KILL"]).arg(format!("{job}_1")));
    let refused = cluster.sbatch(
        &[&format!("--dependency=afterany:{job}"), &format!("--output={}", logs.join("merge-1.out").display()), &merge, &shard_args[0], &shard_args[1]],
        &env,
    );
    cluster.wait_idle(Duration::from_secs(120));
    let killed = cluster.job_state(&format!("{job}_1"));
    assert!(killed == "CANCELLED" || killed == "FAILED", "task 1 was killed: {killed}\n{}", cluster.logs());
    assert_eq!(cluster.job_state(&refused), "FAILED", "a merge with a part missing fails");
    let said = read(&logs.join("merge-1.out"));
    assert!(said.contains("part 1/4 (") && !said.contains("part 0/4") && !said.contains("part 2/4"), "the merge names the missing part:\n{said}");
    let unfinished: Vec<&&String> = part1.iter().filter(|n| !state(n).exists()).collect();
    assert!(!unfinished.is_empty() && unfinished.len() < part1.len(), "task 1 killed mid-way: {} of {} shards unfinished", unfinished.len(), part1.len());
    // Finished = its state recorded (a kill between a shard's rename and its state leaves the
    // shard visible but unfinished: it is redone, and counted so above).
    let finished_before: BTreeMap<&String, (u64, i64)> = plan
        .iter()
        .filter(|n| state(n).exists())
        .map(|n| {
            let m = std::fs::metadata(out.join("synthetic").join(n)).unwrap();
            (n, (m.ino(), m.mtime_nsec()))
        })
        .collect();
    assert_eq!(finished_before.len(), plan.len() - unfinished.len());

    // 2. Task 1 resubmitted alone: it writes only its unfinished shards; the merge then passes.
    let again = cluster.sbatch(&[&"--array=1", &small[0], &small[1], &output, &prepare, &shard_args[0], &shard_args[1]], &env);
    cluster.sbatch(
        &[
            &"--wait",
            &format!("--dependency=afterok:{again}"),
            &format!("--output={}", logs.join("merge-2.out").display()),
            &merge,
            &shard_args[0],
            &shard_args[1],
        ],
        &env,
    );
    let task = read(&logs.join(format!("prepare-{again}_1.out")));
    assert!(task.contains(&format!("50 shards ({} written,", unfinished.len())), "only part 1's unfinished shards are written:\n{task}");
    for (p, before) in &finished_before {
        let m = std::fs::metadata(out.join("synthetic").join(p)).unwrap();
        assert_eq!((m.ino(), m.mtime_nsec()), *before, "{p} was rewritten");
    }
    let (ours, theirs) = (files(&out.join("synthetic")), files(&single.join("synthetic")));
    assert_eq!(ours.keys().collect::<Vec<_>>(), theirs.keys().collect::<Vec<_>>());
    for (p, bytes) in &ours {
        assert!(bytes == &theirs[p], "{} differs from the single-machine run", p.display());
    }
    let prepared = started.elapsed();

    // 3. A compare grid in two parts, part 1 submitted only after a merge has refused.
    let grid = ["--methods", "none,ogm-ge", "--seeds", "0,1", "--epochs", "1", "--batch-size", "32"];
    let data = single.join("synthetic");
    let reference = t.join("compare-single");
    run(Command::new(&trainer).args(["compare", "--data"]).arg(&data).arg("--out").arg(&reference).args(grid).args(["--jobs", "1"]));
    let runs = t.join("compare");
    let env: [(&str, &dyn AsRef<std::ffi::OsStr>); 4] = [("PARTS", &"2"), ("DATA", &data), ("OUT", &runs), ("TRAINER", &trainer)];
    let (compare, compare_merge) = (Path::new(EXAMPLES).join("compare.sbatch"), Path::new(EXAMPLES).join("compare-merge.sbatch"));
    let grid_args: Vec<&dyn AsRef<std::ffi::OsStr>> = grid.iter().map(|a| a as &dyn AsRef<std::ffi::OsStr>).collect();
    let submit = |array: &str, extra: &[&dyn AsRef<std::ffi::OsStr>]| {
        let output = format!("--output={}", logs.join("compare-%A_%a.out").display());
        let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&array, &small[0], &small[1], &output, &compare];
        args.extend(extra);
        cluster.sbatch(&args, &env)
    };
    let first = submit("--array=0", &grid_args);
    let merge_after = |job: &str, log: &str, wait: bool| {
        let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = Vec::new();
        let (dep, output) = (format!("--dependency=afterany:{job}"), format!("--output={}", logs.join(log).display()));
        if wait {
            args.push(&"--wait");
        }
        args.extend([&dep as &dyn AsRef<std::ffi::OsStr>, &output, &compare_merge]);
        args.extend(grid_args.iter().copied());
        cluster.sbatch(&args, &env)
    };
    let refused = merge_after(&first, "compare-merge-1.out", false);
    cluster.wait_idle(Duration::from_secs(300));
    assert_eq!(cluster.job_state(&refused), "FAILED");
    let said = read(&logs.join("compare-merge-1.out"));
    assert!(said.contains("part 1/2 (") && !said.contains("part 0/2"), "the merge names the missing part:\n{said}");
    let second = submit("--array=1", &grid_args);
    merge_after(&second, "compare-merge-2.out", true);
    for f in ["compare.csv", "compare.md"] {
        let text = |dir: &Path| read(&dir.join(f)).replace(&dir.display().to_string(), "OUT");
        assert_eq!(text(&runs), text(&reference), "{f}: the array's table is the single machine's");
    }

    // 4. Nothing left running.
    let killed = cluster.stop();
    assert!(killed.is_empty(), "{killed:?} did not stop on SIGTERM");
    let left = cluster.leftovers();
    assert!(left.is_empty(), "processes of the cluster still run: {left:?}");
    println!(
        "slurm: prepare (4 parts; task 1 killed with {} of its {} shards unfinished, resubmitted) in {:.0} s, all in {:.0} s",
        unfinished.len(),
        part1.len(),
        prepared.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}
