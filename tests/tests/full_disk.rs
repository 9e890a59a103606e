//! A full disk or a read-only output folder loses nothing. On a real filesystem (a small tmpfs
//! mounted for the test, which needs root, as CI runs it): `prepare-datasets` and a training
//! run's checkpoint stop with the path and the system's reason, leave no half-written shard,
//! checkpoint or log line in view, and once space is back (or the folder writable) the same
//! command (`--resume` for training) ends byte-identical to an uninterrupted run, without redoing
//! the shards it had finished.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use datasets::DatasetKind;
use preprocess::pipeline::{prepare, PrepareOptions};
use preprocess::synthetic::{generate, SyntheticConfig};
use trainer::train::{train, TrainConfig};

/// A tmpfs mounted on a temporary folder for the test's life.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// `None` (the test says why it skips) when this process is not root; a mount that fails as
    /// root fails the test.
    fn mount(bytes: u64) -> Option<Self> {
        let uid = Command::new("id").arg("-u").output().expect("id runs");
        if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
            eprintln!("full_disk: SKIPPED: mounting a small tmpfs needs root (CI runs the tests as root)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        mount(&["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"], dir.path());
        Some(Self { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn set_read_only(&self, read_only: bool) {
        mount(&["-o", if read_only { "remount,ro" } else { "remount,rw" }], self.path());
    }

    /// Fills the filesystem so that `free` bytes (whole pages) are left; the filler's path.
    fn fill_leaving(&self, free: u64) -> PathBuf {
        let filler = self.path().join("filler");
        let stat = Command::new("stat").args(["-f", "-c", "%a %S"]).arg(self.path()).output().unwrap();
        let stat = String::from_utf8_lossy(&stat.stdout);
        let [available, block]: [u64; 2] = stat.split_whitespace().map(|x| x.parse().unwrap()).collect::<Vec<_>>().try_into().unwrap();
        let fill = (available * block).checked_sub(free).expect("the tmpfs is larger than what must stay free");
        std::fs::write(&filler, vec![1u8; fill as usize]).unwrap();
        filler
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.path()).status();
    }
}

fn mount(args: &[&str], at: &Path) {
    let out = Command::new("mount").args(args).arg(at).output().expect("mount runs");
    assert!(out.status.success(), "mount {args:?} {}: {}", at.display(), String::from_utf8_lossy(&out.stderr));
}

/// Every file under `dir`, by relative path, with its bytes.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.insert(p.strip_prefix(root).unwrap().to_owned(), std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    if dir.exists() {
        walk(dir, dir, &mut out);
    }
    out
}

/// What `files` would take on a tmpfs: each file in whole pages.
fn pages(files: &BTreeMap<PathBuf, Vec<u8>>) -> u64 {
    files.values().map(|b| (b.len() as u64).div_ceil(4096) * 4096).sum()
}

fn no_temporary_file(files: &BTreeMap<PathBuf, Vec<u8>>) {
    for name in files.keys() {
        let hidden = name.file_name().unwrap().to_string_lossy().starts_with('.') && !name.ends_with(".lock");
        assert!(!hidden, "a temporary file is left in view: {}", name.display());
    }
}

/// The message of an error, with its chain, as the binaries print it.
fn message(e: impl Into<anyhow::Error>) -> String {
    format!("{:#}", e.into())
}

/// Every float tensor of a saved classifier (weights, running statistics), as bits.
fn weights(file: &Path, cfg: &TrainConfig) -> Vec<Vec<u32>> {
    use burn::module::{Module, ModuleVisitor, Param};
    use burn::record::{BinFileRecorder, FullPrecisionSettings};
    use burn::tensor::backend::Backend;
    use burn::tensor::Tensor;
    struct Collect(Vec<Vec<u32>>);
    impl<B: Backend> ModuleVisitor<B> for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            self.0.push(param.val().into_data().to_vec::<f32>().unwrap().into_iter().map(f32::to_bits).collect());
        }
    }
    let device = Default::default();
    let classes = SyntheticConfig::default().classes;
    let model = trainer::model::AvClassifier::<trainer::Backend>::with_arch(cfg.model, cfg.arch, cfg.frames, cfg.fusion, classes, &device)
        .load_file(file, &BinFileRecorder::<FullPrecisionSettings>::new(), &device)
        .unwrap();
    let mut all = Collect(Vec::new());
    model.visit(&mut all);
    all.0
}

fn options(out: PathBuf) -> PrepareOptions {
    PrepareOptions { clips_per_shard: 8, ..tests::prepare_options(out) }
}

#[test]
fn a_full_or_read_only_disk_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let raw = tmp.path().join("raw/synthetic");
    generate(&raw, &SyntheticConfig { train_per_class: 4, test_per_class: 2, ..SyntheticConfig::default() }).unwrap();
    let catalog = DatasetKind::Synthetic.scan(&raw).unwrap();
    let preset = DatasetKind::Synthetic.default_preset();

    // The uninterrupted runs, on the ordinary disk.
    let reference = tmp.path().join("reference");
    prepare(&catalog, &preset, &options(reference.join("out"))).unwrap();
    let shards_ref = files(&reference.join("out"));
    let run = |out: &Path| TrainConfig { name: "run".into(), epochs: 3, batch_size: 8, ..tests::tiny_run(&reference.join("out/synthetic"), out) };
    let summary_ref = train::<trainer::Backend>(&run(&reference.join("runs")), &Default::default(), false, false).unwrap();
    let run_ref = files(&summary_ref.run_dir);
    let checkpoint: u64 =
        run_ref.iter().filter(|(p, _)| p.starts_with("checkpoint") && p.extension().is_some_and(|e| e == "bin")).map(|(_, b)| b.len() as u64).sum();

    let Some(fs) = Tmpfs::mount(4 * (pages(&shards_ref) + pages(&run_ref)) + (1 << 20)) else { return };

    // prepare-datasets: the disk fills when about half the shards are written.
    let out = fs.path().join("out");
    let filler = fs.fill_leaving(pages(&shards_ref) / 2);
    let err = message(prepare(&catalog, &preset, &options(out.clone())).unwrap_err());
    assert!(err.contains("No space left on device") && err.contains(&out.display().to_string()), "{err}");
    let partial = files(&out);
    no_temporary_file(&partial);
    let finished: Vec<_> = partial.keys().filter(|p| p.extension().is_some_and(|e| e == "parquet")).collect();
    assert!(
        !finished.is_empty() && finished.len() < shards_ref.keys().filter(|p| p.extension().is_some_and(|e| e == "parquet")).count(),
        "mid-way: {finished:?}"
    );
    for (name, bytes) in &partial {
        assert!(shards_ref.get(name) == Some(bytes), "{} is not the uninterrupted run's", name.display());
    }
    assert!(!out.join("synthetic/index.json").exists(), "no index before every shard is there");

    // Space back, but the folder read-only: the same clear stop, nothing changed.
    std::fs::remove_file(&filler).unwrap();
    fs.set_read_only(true);
    let err = message(prepare(&catalog, &preset, &options(out.clone())).unwrap_err());
    assert!(err.contains("Read-only file system") && err.contains(&out.display().to_string()), "{err}");
    assert_eq!(files(&out), partial);

    // Writable again: the same command ends as the uninterrupted run, keeping the finished shards.
    fs.set_read_only(false);
    let summary = prepare(&catalog, &preset, &options(out.clone())).unwrap();
    assert_eq!(summary.shards_verified, finished.len(), "finished shards are kept, not redone");
    assert_eq!(files(&out), shards_ref, "byte-identical to the uninterrupted run");

    // Training: the disk fills in the checkpoint of the second epoch. What the finished run
    // holds fits, plus 3/4 of a checkpoint (model and optimiser, about half each): room for the
    // selected model's rewrite (written aside, then the old one goes) and for the new model file,
    // not for the optimiser's beside the previous checkpoint.
    let runs = fs.path().join("runs");
    let filler = fs.fill_leaving(pages(&run_ref) + checkpoint * 3 / 4);
    let err = message(train::<trainer::Backend>(&run(&runs), &Default::default(), false, false).unwrap_err());
    let dir = runs.join("run");
    assert!(err.contains("No space left on device") && err.contains(&dir.join("checkpoint").display().to_string()), "{err}");
    let partial = files(&dir);
    no_temporary_file(&partial);
    let progress: serde_json::Value = serde_json::from_slice(&partial[Path::new("checkpoint/progress.json")]).unwrap();
    let committed = progress["next_epoch"].as_u64().unwrap();
    assert!((1..3).contains(&committed), "stopped mid-way: {progress}");
    let in_checkpoint: Vec<_> = partial.keys().filter(|p| p.starts_with("checkpoint")).map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    let last = committed - 1;
    assert_eq!(in_checkpoint, [format!("model-e{last:04}.bin"), format!("optim-e{last:04}.bin"), "progress.json".into()], "only the committed checkpoint");
    for log in ["epochs.jsonl", "steps.jsonl"] {
        let text = std::str::from_utf8(&partial[Path::new(log)]).unwrap();
        assert!(text.ends_with('\n'), "{log}: a line cut short");
        assert!(text.lines().all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()), "{log}: a half line");
    }

    // Read-only: a clear stop; then writable, `--resume` ends as the uninterrupted run.
    std::fs::remove_file(&filler).unwrap();
    fs.set_read_only(true);
    let err = message(train::<trainer::Backend>(&run(&runs), &Default::default(), false, true).unwrap_err());
    assert!(err.contains("Read-only file system") && err.contains(&dir.display().to_string()), "{err}");
    fs.set_read_only(false);
    let summary = train::<trainer::Backend>(&run(&runs), &Default::default(), false, true).unwrap();
    assert_eq!(summary.test.fused.accuracy, summary_ref.test.fused.accuracy);
    let resumed = files(&dir);
    // Files that hold timings or the run's own path are compared without them below; model
    // files by their weights and running statistics, bit for bit (a Burn record also holds
    // each parameter's id, drawn at random when a model is built, and the optimiser's record is
    // keyed by those ids).
    let timed = ["epochs.jsonl", "epochs.csv", "summary.json", "config.json", trainer::tensorboard::EVENT_FILE];
    assert_eq!(resumed.keys().collect::<Vec<_>>(), run_ref.keys().collect::<Vec<_>>(), "the same files");
    for (name, bytes) in &run_ref {
        let file = name.file_name().unwrap().to_string_lossy();
        if file.starts_with("model") {
            assert!(weights(&dir.join(name), &run(&runs)) == weights(&summary_ref.run_dir.join(name), &run(&runs)), "{}: other weights", name.display());
        } else if !file.starts_with("optim") && !timed.iter().any(|t| name == Path::new(t)) {
            assert!(&resumed[name] == bytes, "{} differs from the uninterrupted run's", name.display());
        }
    }
    let config = |files: &BTreeMap<PathBuf, Vec<u8>>| {
        let mut v: serde_json::Value = serde_json::from_slice(&files[Path::new("config.json")]).unwrap();
        v.as_object_mut().unwrap().remove("out");
        v
    };
    assert_eq!(config(&resumed), config(&run_ref));
    let without_time = |files: &BTreeMap<PathBuf, Vec<u8>>| -> Vec<serde_json::Value> {
        let text = std::str::from_utf8(&files[Path::new("epochs.jsonl")]).unwrap();
        text.lines()
            .map(|l| {
                let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                v.as_object_mut().unwrap().retain(|k, _| !k.ends_with("seconds"));
                v
            })
            .collect()
    };
    assert_eq!(without_time(&resumed), without_time(&run_ref), "the same epochs, timings aside");
}
