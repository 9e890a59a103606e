//! The `preprocess` binary end to end: synthetic corpus, kill -9 and resume, hash-verified resume,
//! and the real odd files of tests/media laid out as a dataset.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use datasets::index::DatasetIndex;
use datasets::shard::ShardReader;

const BIN: &str = env!("CARGO_BIN_EXE_preprocess");

fn preprocess(raw_or_synth: &[&str], out: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(raw_or_synth).arg("--out").arg(out).args(["--quiet"]).args(extra);
    cmd
}

fn small_synthetic(synth: &Path) -> Vec<String> {
    let s = synth.to_string_lossy().into_owned();
    ["--synthetic-raw", &s, "--synthetic-train-per-class", "8", "--synthetic-test-per-class", "4"].map(String::from).to_vec()
}

fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{:?}\n{}", cmd, String::from_utf8_lossy(&out.stderr));
    out
}

/// Every visible file under `dir` with its bytes.
fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.file_name().unwrap().to_string_lossy().starts_with('.') {
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

/// State files of finished shards (hidden temporaries excluded).
fn finished_states(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.filter(|e| !e.as_ref().unwrap().file_name().to_string_lossy().starts_with('.')).count()).unwrap_or(0)
}

const SHARDING: [&str; 6] = ["--clips-per-shard", "3", "--rows-per-group", "2", "--jobs", "1"];

#[test]
fn killed_run_resumes_to_the_same_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let synth = tmp.path().join("raw");
    let args = small_synthetic(&synth);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // Reference: one uninterrupted run.
    let reference = tmp.path().join("reference");
    run_ok(&mut preprocess(&args, &reference, &SHARDING));
    let want = tree(&reference.join("synthetic"));
    let shards = want.keys().filter(|p| p.extension().is_some_and(|e| e == "parquet")).count();
    assert_eq!(shards, 16 + 8, "48 train + 24 test clips in shards of 3");

    // Interrupted: SIGKILL once a few shards are finished, then rerun.
    let out = tmp.path().join("interrupted");
    let mut child = preprocess(&args, &out, &SHARDING).spawn().unwrap();
    let state = out.join("synthetic/.state");
    let t = Instant::now();
    loop {
        let done = finished_states(&state);
        if done >= 3 {
            break;
        }
        assert!(child.try_wait().unwrap().is_none(), "the run ended before it could be killed");
        assert!(t.elapsed() < Duration::from_secs(120), "no shard finished in time");
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(child.try_wait().unwrap().is_none(), "still running when killed");
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!out.join("synthetic/index.json").exists(), "no index before every shard is done");
    let partial = tree(&out.join("synthetic"));
    assert!(partial.len() < shards, "killed mid-run: {} of {shards} shards", partial.len());
    for (path, bytes) in &partial {
        assert_eq!(Some(bytes), want.get(path), "{}: a visible shard is always whole", path.display());
    }

    // Shards with a state file are verified and kept; a shard renamed just before the kill but
    // without its state yet is redone (to the same bytes).
    let finished = finished_states(&state);
    let resumed = run_ok(&mut preprocess(&args, &out, &SHARDING));
    let log = String::from_utf8_lossy(&resumed.stderr);
    assert!(log.contains(&format!("({} written, {finished} already done and verified)", shards - finished)), "{log}");
    assert_eq!(tree(&out.join("synthetic")), want, "resumed output is byte-identical");
}

#[test]
fn finished_shards_are_verified_by_hash_not_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let args = small_synthetic(&tmp.path().join("raw"));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = tmp.path().join("out");
    run_ok(&mut preprocess(&args, &out, &SHARDING));
    let want = tree(&out.join("synthetic"));
    // Damage one finished shard in place, keeping its name and size.
    let victim = out.join("synthetic/train/train-00002-of-00016.parquet");
    let mut bytes = std::fs::read(&victim).unwrap();
    bytes[100] ^= 0xff;
    std::fs::write(&victim, bytes).unwrap();
    let rerun = run_ok(&mut preprocess(&args, &out, &SHARDING));
    let log = String::from_utf8_lossy(&rerun.stderr);
    assert!(log.contains("(1 written, 23 already done and verified)"), "{log}");
    assert_eq!(tree(&out.join("synthetic")), want);
}

/// The bytes do not depend on how many clips run at once, on which finishes first, or on how
/// many threads a decoder gets (with 3 jobs, a shard's last clips get frame-threaded decoders).
#[test]
fn output_does_not_depend_on_jobs() {
    let tmp = tempfile::tempdir().unwrap();
    let args = small_synthetic(&tmp.path().join("raw"));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = |jobs: &str| {
        let out = tmp.path().join(format!("jobs{jobs}"));
        run_ok(&mut preprocess(&args, &out, &["--clips-per-shard", "20", "--rows-per-group", "3", "--jobs", jobs]));
        tree(&out.join("synthetic"))
    };
    let one = run("1");
    assert_eq!(one.keys().filter(|p| p.extension().is_some_and(|e| e == "parquet")).count(), 3 + 2);
    assert_eq!(run("3"), one);
}

#[test]
fn array_job_parts_then_merge() {
    let tmp = tempfile::tempdir().unwrap();
    let args = small_synthetic(&tmp.path().join("raw"));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let whole = tmp.path().join("whole");
    run_ok(&mut preprocess(&args, &whole, &SHARDING));
    let out = tmp.path().join("parts");
    run_ok(&mut preprocess(&args, &out, &[&SHARDING[..], &["--part", "0/2"]].concat()));
    assert!(!out.join("synthetic/index.json").exists());
    let early = preprocess(&args, &out, &[&SHARDING[..], &["--merge"]].concat()).output().unwrap();
    assert_eq!(early.status.code(), Some(1), "merge refuses while a part is missing");
    assert!(String::from_utf8_lossy(&early.stderr).contains("12 of 24 shards are not finished"));
    run_ok(&mut preprocess(&args, &out, &[&SHARDING[..], &["--part", "1/2"]].concat()));
    run_ok(&mut preprocess(&args, &out, &[&SHARDING[..], &["--merge"]].concat()));
    assert_eq!(tree(&out.join("synthetic")), tree(&whole.join("synthetic")));
}

#[test]
fn shared_media_as_a_dataset_records_every_failure_and_goes_on() {
    let media = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/media").canonicalize().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("raw/synthetic");
    std::fs::create_dir_all(root.join("train")).unwrap();
    let mut manifest = String::from("clip_id,split,class\n");
    let mut files: Vec<String> =
        std::fs::read_dir(&media).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).filter(|n| !n.ends_with(".tsv")).collect();
    files.sort();
    for f in &files {
        std::os::unix::fs::symlink(media.join(f), root.join("train").join(f)).unwrap();
        manifest += &format!("{},train,real\n", Path::new(f).file_stem().unwrap().to_string_lossy());
    }
    // What a broken download also contains: an empty file and a file that is not media.
    std::fs::write(root.join("train/zero_bytes.mp4"), b"").unwrap();
    std::fs::write(root.join("train/not_media.mp4"), b"<html>404 not found</html>\n".repeat(50)).unwrap();
    manifest += "zero_bytes,train,real\nnot_media,train,real\nnever_downloaded,train,real\n";
    std::fs::write(root.join("manifest.csv"), manifest).unwrap();
    std::fs::write(root.join("classes.txt"), "real\n").unwrap();

    let out = tmp.path().join("out");
    let raw = tmp.path().join("raw");
    let output = preprocess(&["--raw", raw.to_str().unwrap()], &out, &["--jobs", "2"]).output().unwrap();
    let log = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "exit 2 = finished, some clips failed\n{log}");

    let index = DatasetIndex::read(&out.join("synthetic/index.json")).unwrap();
    let failed: BTreeMap<&str, &str> = index.failed.iter().map(|f| (f.clip_id.as_str(), f.reason.as_str())).collect();
    let expect_failed = [
        ("av1_video", "no audio stream"),
        ("clip1024", "no audio stream"),
        ("corrupted", "no audio stream"),
        ("kinetics_demo_noaudio", "no audio stream"),
        ("sorenson_noaudio", "no audio stream"),
        ("video_90", "no audio stream"),
        ("zero_bytes", "empty file (0 bytes)"),
        ("not_media", "cannot open as media"),
    ];
    for (clip, reason) in expect_failed {
        let got = failed.get(clip).unwrap_or_else(|| panic!("{clip} should have failed: {failed:?}"));
        assert!(got.contains(reason), "{clip}: {got}");
        assert!(got.contains(clip), "the reason names the file: {got}");
        assert!(log.contains(&format!("FAILED {clip}")), "the summary names {clip}");
    }
    assert_eq!(failed.len(), expect_failed.len(), "{failed:?}");
    // A .wav is no video file: those clips are missing (no video), like the undownloaded one.
    let missing: Vec<_> = index.missing.iter().map(|m| m.clip_id.as_str()).collect();
    assert_eq!(missing, ["never_downloaded", "speech24k_clean", "speech24k_noisy", "stereo16k"]);
    assert!(index.missing.iter().all(|m| m.reason.contains("no video file")));

    let processed = files.len() - 3 - 6;
    assert_eq!(index.splits[&datasets::Split::Train].clips, processed);
    let shard = ShardReader::open(&out.join("synthetic").join(&index.shards[0].info.file)).unwrap();
    let rows: Vec<_> = shard.records().collect::<Result<Vec<_>, _>>().unwrap().concat();
    let by_id: BTreeMap<_, _> = rows.iter().map(|r| (r.clip_id.as_str(), r)).collect();
    // Rotation honoured: video_90 failed for audio, but fire2 (180) and the others have frames
    // with their display size; the 1-s webm has its one frame; nasa_13013 took the best streams.
    assert_eq!(by_id["big_buck_bunny_432_433"].frames.len(), 1);
    assert_eq!(by_id["nasa_13013"].provenance.orig_width, Some(480), "the best of two video streams");
    assert!(by_id["big_buck_bunny_432_433"].provenance.audio_tiled, "1 s of audio tiled to the preset's 2 s");
    assert!(!by_id["chaplin"].provenance.audio_tiled);
    assert_eq!(by_id["mpeg4_mp3"].frames.len(), 7);
    assert_eq!(by_id["no_duration"].frames.len(), 5);
}

#[test]
fn cremad_actor_disjoint_split_goes_to_its_own_folder_with_its_record() {
    let media = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/media").canonicalize().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let flash = tmp.path().join("raw/CREMA-D/VideoFlash");
    std::fs::create_dir_all(&flash).unwrap();
    // Real FLV files (video and audio) under CREMA-D clip names: two on each side of each split.
    let clips = [
        ("1010_DFA_ANG_XX", "bbb.flv"),    // published train, actor 1010: test
        ("1020_IEO_ANG_LO", "avatar.flv"), // published test, actor 1020: test
        ("1041_TIE_NEU_XX", "bbb.flv"),    // published test: train
        ("1001_IOM_SAD_XX", "avatar.flv"), // published train: train
    ];
    for (clip, file) in clips {
        std::os::unix::fs::symlink(media.join(file), flash.join(format!("{clip}.flv"))).unwrap();
    }
    let out = tmp.path().join("out");
    let raw = tmp.path().join("raw");
    run_ok(&mut preprocess(&["--raw", raw.to_str().unwrap()], &out, &["--split", "actor-disjoint", "--jobs", "2"]));
    assert!(!out.join("cremad").exists(), "the published split's folder is left alone");
    let index = DatasetIndex::read(&out.join("cremad-actor-disjoint/index.json")).unwrap();
    let split = index.split.as_ref().expect("the index records the split");
    assert_eq!(split.rule.name(), "actor-disjoint");
    assert_eq!(split.actors[&datasets::Split::Test], [1010, 1020]);
    assert_eq!(split.actors[&datasets::Split::Train], [1001, 1041]);
    assert_eq!((index.splits[&datasets::Split::Train].clips, index.splits[&datasets::Split::Test].clips), (2, 2));
    let missing_test = index.missing.iter().filter(|m| m.split == datasets::Split::Test).count();
    assert_eq!((index.missing.len(), missing_test), (7442 - 4, 738 - 2), "the missing clips are listed on their actor's side");
    let card = std::fs::read_to_string(out.join("cremad-actor-disjoint/README.md")).unwrap();
    assert!(card.contains("Split: actor-disjoint"), "{card}");

    let e = preprocess(&["--raw", raw.to_str().unwrap()], &out, &["--split", "by-speaker"]).output().unwrap();
    assert!(String::from_utf8_lossy(&e.stderr).contains("unknown split \"by-speaker\""), "{}", String::from_utf8_lossy(&e.stderr));
}
