//! `cargo xtask bench preprocess`: on the same clips in one run, (a) this pipeline over `--jobs`
//! workers (default: every core), (b) the reference Python pipeline (`bench/reference_pipeline.py`:
//! ffmpeg CLI + librosa + PIL, as the original scripts) one clip at a time, as the original
//! scripts run, (b') the same reference over a pool of as many workers as (a) has, (c) a bare
//! `ffmpeg -i clip -f null -` full decode as the floor. Reports wall and CPU time (user + system,
//! children included) and the ratios: throughput against (b) and against (b'), CPU time against
//! the reference's, and against the floor.
//!
//! Usage: bench-preprocess preprocess [--media DIR] [--copies N] [--jobs N] [--runs N]
//!        [--reshape N [--seconds S]] [--ours-only] [--breakdown] [--memory]
//!
//! `--runs N` (default 3): N rounds of (a), (b), (c), one after the other; the ratios are taken per
//! round and their median reported.
//! `--reshape N [--seconds S]`: the same clips made like a dataset's first (S seconds, default 10,
//! H.264 + AAC in MP4, 25 fps, short side N; see `reshape`): the shared media are a deliberately
//! odd mix (a 1080p clip, 720p VP8 and VP9), and the ratio depends on the clips' size and length.
//! `--ours-only` times this pipeline alone (for profiling it, e.g. under `perf record`);
//! `--breakdown` first prints where one clip's time goes, per file, on one thread.
//! `--memory`: peak RSS of this pipeline alone on `--copies` copies (default 20 here) and on four
//! times as many.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use datasets::{AudioPreset, DatasetKind, Preset};
use preprocess::decode::{decode_audio, decode_audio_prefix, sample_frames, FramePlan};
use preprocess::pipeline::{prepare, PrepareOptions};
use preprocess::spectrogram::compute;

/// CPU seconds (user, system) of this process and of its waited-for children, from /proc/self/stat.
fn cpu_times() -> Result<[f64; 4]> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    let fields: Vec<&str> = stat.rsplit_once(')').context("stat")?.1.split_whitespace().collect();
    let tick = 100.0; // USER_HZ on Linux
    let f = |i: usize| fields[i - 3].parse::<f64>().map(|v| v / tick);
    Ok([f(14)?, f(15)?, f(16)?, f(17)?])
}

struct Measure {
    wall: f64,
    cpu: f64,
    system: f64,
}

fn measure(children: bool, f: impl FnOnce() -> Result<()>) -> Result<Measure> {
    let t0 = cpu_times()?;
    let t = Instant::now();
    f()?;
    let wall = t.elapsed().as_secs_f64();
    let t1 = cpu_times()?;
    let d = |i: usize| t1[i] - t0[i];
    let (user, system) = if children { (d(2), d(3)) } else { (d(0), d(1)) };
    Ok(Measure { wall, cpu: user + system, system })
}

/// Per file, one thread: the stages of `process_clip` timed apart (ms). The pipeline decodes audio
/// and frames in one pass (`decode_audio_video`); here they are decoded apart to time each.
fn breakdown(clips: &[PathBuf], preset: &Preset) -> Result<()> {
    let ms = |t: Instant| t.elapsed().as_secs_f64() * 1e3;
    let fp = &preset.frames;
    let plan = FramePlan { fps: fp.fps, phase: fp.phase, max_frames: fp.max_frames.unwrap_or(u32::MAX) as usize, skip_unneeded: true, threads: 1 };
    println!("| file | open + audio | spectrogram | frames (open, decode, scale) | JPEG |\n|---|---|---|---|---|");
    let mut total = [0.0; 4];
    for p in clips {
        let t = Instant::now();
        let audio = decode_audio_prefix(p, preset.audio.sample_rate, preset.audio.fixed_samples())?;
        let a = ms(t);
        let t = Instant::now();
        let _ = compute(&preset.audio, audio.samples, audio.rate);
        let s = ms(t);
        let t = Instant::now();
        let (_, frames) = sample_frames(p, &plan, fp.short_side)?;
        let v = ms(t);
        let t = Instant::now();
        for f in &frames {
            preprocess::jpeg::encode(&f.image, fp.jpeg_quality)?;
        }
        let j = ms(t);
        for (x, y) in total.iter_mut().zip([a, s, v, j]) {
            *x += y;
        }
        println!("| {} | {a:.1} | {s:.1} | {v:.1} | {j:.1} |", p.file_name().unwrap().to_string_lossy());
    }
    println!("| total | {:.0} | {:.0} | {:.0} | {:.0} |\n", total[0], total[1], total[2], total[3]);
    Ok(())
}

/// `--reshape N [--seconds S]`: each clip as a dataset's clips are (Kinetics-Sounds, VGGSound,
/// AVE: 10-s downloads, H.264 + AAC in MP4; CREMA-D: 2-3 s at 480x360): its first S seconds
/// (default 10), at 25 fps, short side N (rotation applied), libx264 and AAC at their defaults
/// (CRF 23, 250-frame GOPs, B-pyramid), made once with the ffmpeg CLI, untimed.
fn reshape(clips: &[PathBuf], short: u32, seconds: f64, dir: &std::path::Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let scale = format!("scale='if(lt(iw,ih),{short},-2)':'if(lt(iw,ih),-2,{short})'");
    clips
        .iter()
        .map(|p| {
            let out = dir.join(p.file_stem().context("file name")?).with_extension("mp4");
            let s = Command::new("ffmpeg")
                .args(["-v", "error", "-y", "-i"])
                .arg(p)
                .args(["-t", &seconds.to_string(), "-vf", &scale, "-r", "25", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-ar", "44100"])
                .arg(&out)
                .status()
                .context("running ffmpeg")?;
            anyhow::ensure!(s.success(), "ffmpeg could not reshape {}", p.display());
            Ok(out)
        })
        .collect()
}

/// The process's peak resident set (VmHWM), in kB.
fn peak_rss_kb() -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status.lines().find_map(|l| l.strip_prefix("VmHWM:")).context("VmHWM in /proc/self/status")?;
    Ok(line.trim().trim_end_matches("kB").trim().parse()?)
}

/// `--memory`: this pipeline alone, in a child process each, on `--copies` (here 20 by default:
/// 280 clips, more than a 256-clip shard) and four times as many copies of the clips; their peak
/// RSS should be the same (bounded memory whatever the corpus).
fn memory(args: &[String], copies: usize) -> Result<()> {
    // The child's flags: this run's, less those the child sets itself or has no use for.
    let mut child_args: Vec<String> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--memory" | "--breakdown" => {}
            "--copies" | "--runs" => {
                it.next();
            }
            _ => child_args.push(a.clone()),
        }
    }
    let mut rows = Vec::new();
    for n in [copies, copies * 4] {
        let out = Command::new(std::env::current_exe()?)
            .args(&child_args)
            .args(["--ours-only", "--copies", &n.to_string()])
            .output()
            .context("running the pipeline in a child process")?;
        anyhow::ensure!(out.status.success(), "child run failed: {}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8_lossy(&out.stdout);
        let kb: u64 = text
            .lines()
            .find_map(|l| l.strip_prefix("peak RSS: "))
            .and_then(|v| v.trim_end_matches(" kB").parse().ok())
            .with_context(|| format!("no peak RSS in: {text}"))?;
        let clips = text.lines().find(|l| l.contains(" clips (")).unwrap_or_default().to_owned();
        let run = text.lines().find(|l| l.starts_with("ours: ")).unwrap_or_default().to_owned();
        rows.push((n, kb, clips, run));
    }
    println!("| copies | peak RSS MiB | clips | run |\n|---|---|---|---|");
    for (n, kb, clips, run) in &rows {
        println!("| {n} | {:.1} | {clips} | {run} |", *kb as f64 / 1024.0);
    }
    println!("\npeak RSS with 4x the clips: {:.2}x (bounded memory: about 1x)", rows[1].1 as f64 / rows[0].1 as f64);
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let get = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).cloned();
    let media = PathBuf::from(get("--media").unwrap_or_else(|| "tests/media".into()));
    let memory_mode = args.iter().any(|a| a == "--memory");
    let copies: usize = get("--copies").map_or(Ok(if memory_mode { 20 } else { 3 }), |v| v.parse())?;
    let runs: usize = get("--runs").map_or(Ok(3), |v| v.parse())?;
    anyhow::ensure!(runs > 0, "--runs must be at least 1");
    let jobs: usize = get("--jobs").map_or_else(|| Ok(std::thread::available_parallelism().map_or(1, |n| n.get())), |v| v.parse())?;
    if memory_mode {
        return memory(&args, copies);
    }
    let python = std::env::var("OGMGE_PYTHON").unwrap_or_else(|_| ".venv/bin/python".into());

    // The clips: every file of the media folder that has both streams and decodes cleanly.
    let mut clips: Vec<PathBuf> = Vec::new();
    let mut names: Vec<_> = std::fs::read_dir(&media)
        .with_context(|| media.display().to_string())?
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_none_or(|e| e != "tsv"))
        .collect();
    names.sort();
    let probe = FramePlan { fps: 1.0, phase: 0.5, max_frames: 1, skip_unneeded: true, threads: 1 };
    let mut left_out = Vec::new();
    for p in names {
        // Clean: it decodes, and without undecodable packets.
        let clean = |what: &str, errors: Result<usize, preprocess::decode::DecodeError>| match errors {
            Ok(0) => Ok(()),
            Ok(n) => Err(format!("{what}: {n} undecodable packets")),
            Err(e) => Err(format!("{what}: {e}")),
        };
        let audio = clean("audio", decode_audio(&p, None).map(|a| a.packet_errors));
        match audio.and_then(|()| clean("video", sample_frames(&p, &probe, 64).map(|(i, _)| i.packet_errors))) {
            Ok(()) => clips.push(p.canonicalize()?),
            Err(why) => left_out.push(format!("{} ({why})", p.file_name().unwrap_or_default().to_string_lossy())),
        }
    }
    // Said every time: a decoder change that loses a file must not pass for a speed-up.
    println!("left out (not clean audio-visual clips): {}", left_out.join(", "));
    if clips.is_empty() {
        bail!("no audio-visual clips in {}", media.display());
    }
    let tmp = tempfile::tempdir()?;
    if let Some(short) = get("--reshape") {
        let short: u32 = short.parse().context("--reshape takes a short side in pixels")?;
        let seconds: f64 = get("--seconds").map_or(Ok(10.0), |v| v.parse()).context("--seconds")?;
        clips = reshape(&clips, short, seconds, &tmp.path().join("reshaped"))?;
        println!("reshaped like a dataset's clips: first {seconds} s, H.264 (libx264 defaults) + AAC in MP4, 25 fps, short side {short}");
    }
    let root = tmp.path().join("raw/synthetic");
    std::fs::create_dir_all(root.join("train"))?;
    let mut manifest = String::from("clip_id,split,class\n");
    let mut list = String::new();
    for c in 0..copies {
        for p in &clips {
            let id = format!("c{c}_{}", p.file_stem().unwrap().to_string_lossy());
            let ext = p.extension().unwrap().to_string_lossy();
            std::os::unix::fs::symlink(p, root.join("train").join(format!("{id}.{ext}")))?;
            manifest += &format!("{id},train,real\n");
            list += &format!("{}\n", p.display());
        }
    }
    std::fs::write(root.join("manifest.csv"), manifest)?;
    std::fs::write(root.join("classes.txt"), "real\n")?;
    std::fs::write(tmp.path().join("list.txt"), &list)?;
    let n = clips.len() * copies;
    let media_s: f64 = clips.iter().map(|p| decode_audio(p, Some(16000)).map_or(0.0, |a| a.duration_s)).sum::<f64>() * copies as f64;
    println!("{n} clips ({} distinct files x {copies}), {media_s:.0} s of media, {jobs} jobs", clips.len());

    // (a) this pipeline, in process, the reference's preset (cremad-stft, 1 fps, short side 256).
    let catalog = DatasetKind::Synthetic.scan(&root)?;
    let preset = Preset { audio: AudioPreset::cremad_stft(), frames: DatasetKind::Cremad.default_preset().frames };
    let ours = |run: usize| {
        let opts = PrepareOptions {
            out: tmp.path().join(format!("out{run}")),
            jobs,
            part: None,
            merge_only: false,
            parts: None,
            clips_per_shard: 256,
            writer: Default::default(),
            clip: Default::default(),
            progress: false,
        };
        measure(false, || {
            let s = prepare(&catalog, &preset, &opts)?;
            anyhow::ensure!(s.clips_failed_now == 0, "{} clips failed", s.clips_failed_now);
            Ok(())
        })
    };

    if args.iter().any(|a| a == "--breakdown") {
        breakdown(&clips, &preset)?;
    }
    if args.iter().any(|a| a == "--ours-only") {
        // The peak from here on: the clip selection above decoded whole files.
        std::fs::write("/proc/self/clear_refs", "5").context("resetting the peak RSS")?;
        let m = ours(0)?;
        println!("ours: wall {:.2} s, CPU {:.2} s (system {:.2} s)", m.wall, m.cpu, m.system);
        println!("peak RSS: {} kB", peak_rss_kb()?);
        return Ok(());
    }

    // (b) the Python reference, sequential as the original scripts, in steady state: it times
    // itself after one untimed clip (Python's start, librosa's lazy imports and numba: 1.5 s
    // here, 10 s on a first run ever; a real dataset amortises them over thousands of clips,
    // and this pipeline's own start is not timed either).
    let reference = |work: &str, workers: usize| -> Result<Measure> {
        let out = Command::new(&python)
            .arg("preprocess/bench/reference_pipeline.py")
            .arg(tmp.path().join("list.txt"))
            .arg(tmp.path().join(work))
            .args(["--workers", &workers.to_string()])
            .output()
            .with_context(|| format!("running {python} (cargo xtask bench installs it)"))?;
        anyhow::ensure!(out.status.success(), "reference pipeline: {}", String::from_utf8_lossy(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).context("the reference pipeline's JSON line")?;
        let get = |k: &str| v[k].as_f64().with_context(|| format!("{k} in {v}"));
        anyhow::ensure!(get("ok")? as usize == n, "reference pipeline: {v}");
        Ok(Measure { wall: get("wall_s")?, cpu: get("cpu_s")?, system: get("system_s")? })
    };

    // (c) the floor: a bare full decode of each file.
    let bare = || {
        measure(true, || {
            for p in list.lines() {
                let s = Command::new("ffmpeg").args(["-v", "fatal", "-i", p, "-f", "null", "-"]).status()?;
                anyhow::ensure!(s.success(), "ffmpeg -f null {p}");
            }
            Ok(())
        })
    };

    // Interleaved, so that a drift of the machine's speed (a few percent over minutes here)
    // reaches both sides of each ratio alike; the ratios are per run, then their median.
    let row = |name: String, m: &Measure| {
        println!("| {name} | {:.2} | {:.2} | {:.2} | {:.1} | {:.1} |", m.wall, m.cpu, m.system, n as f64 / m.wall, media_s / m.wall);
    };
    println!("\n| run | wall s | CPU s | of which system | clips/s | media s per wall s |\n|---|---|---|---|---|---|");
    let (mut speedups, mut parallel_speedups, mut cpu_vs_reference, mut cpu_ratios) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for run in 0..runs {
        let o = ours(run)?;
        let r = reference(&format!("py{run}"), 1)?;
        let p = reference(&format!("pool{run}"), jobs)?;
        let b = bare()?;
        row(format!("{}: ours (Rust, FFmpeg libs, {jobs} jobs)", run + 1), &o);
        row(format!("{}: reference (Python + ffmpeg CLI), one clip at a time", run + 1), &r);
        row(format!("{}: reference over a pool of {jobs} workers", run + 1), &p);
        row(format!("{}: bare ffmpeg -f null, one clip at a time", run + 1), &b);
        speedups.push(r.wall / o.wall);
        parallel_speedups.push(p.wall / o.wall);
        cpu_vs_reference.push(p.cpu / o.cpu);
        cpu_ratios.push(o.cpu / b.cpu);
    }
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        let k = v.len() / 2;
        if v.len() % 2 == 1 {
            v[k]
        } else {
            (v[k - 1] + v[k]) / 2.0
        }
    };
    let list_of = |v: &[f64], digits: usize| v.iter().map(|x| format!("{x:.digits$}")).collect::<Vec<_>>().join(", ");
    println!(
        "\nthroughput vs the reference one clip at a time (as the original scripts run): {:.1}x median of {runs} runs ({}; target >= 10x)",
        median(&speedups),
        list_of(&speedups, 1)
    );
    println!(
        "throughput vs the reference over {jobs} workers (the same cores): {:.1}x median ({})",
        median(&parallel_speedups),
        list_of(&parallel_speedups, 1)
    );
    println!("CPU time, reference over {jobs} workers / ours: {:.1}x median ({})", median(&cpu_vs_reference), list_of(&cpu_vs_reference, 1));
    println!("CPU vs bare full decode: {:.2}x median ({}; target <= 1.0x)", median(&cpu_ratios), list_of(&cpu_ratios, 2));
    Ok(())
}
