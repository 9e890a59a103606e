//! The AVE-shaped synthetic corpus: 10-s clips with one audio-visual event of a known class over
//! known seconds, written in AVE's own raw layout (`AVE/<VideoID>.mp4`, `Annotations.txt` with
//! its header, `trainSet.txt` / `valSet.txt` / `testSet.txt`), so the real AVE catalog parses it
//! and drives the per-second labels, exactly as for a real download.
//!
//! Inside the event, the audio is the class's tone (another class's with probability
//! `1 - audio_reliability`: the easy but unreliable modality) and the frames show the class's
//! coloured square; outside it, the audio is quiet noise and the frames grey noise. Event classes
//! are real AVE categories, so label ids are the real ones (background = 28).

use std::path::Path;

use datasets::rng::Rng;
use image::{Rgb, RgbImage};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::{tone_hz, write_mp4, Generated, COLOURS};

/// Generator parameters; recorded in `generator.json` next to the corpus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyntheticAveConfig {
    pub seed: u64,
    /// Event classes used (the first n of [`CATEGORIES`]).
    pub classes: usize,
    pub train_per_class: usize,
    pub val_per_class: usize,
    pub test_per_class: usize,
    pub fps: i32,
    pub size: u32,
    pub sample_rate: u32,
    /// Probability that the event's tone is its own class's.
    pub audio_reliability: f64,
    /// Shortest and longest event, seconds (inclusive).
    pub min_event: u32,
    pub max_event: u32,
    pub square: u32,
    pub visual_noise: f64,
}

impl Default for SyntheticAveConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            classes: 4,
            train_per_class: 40,
            val_per_class: 8,
            test_per_class: 12,
            fps: 4,
            size: 64,
            sample_rate: 16000,
            audio_reliability: 0.8,
            min_event: 2,
            max_event: 8,
            square: 20,
            visual_noise: 30.0,
        }
    }
}

/// Real AVE categories used as event classes, in generation order.
pub const CATEGORIES: [&str; 6] = ["Bark", "Church bell", "Helicopter", "Violin, fiddle", "Clock", "Goat"];
/// Seconds per clip (AVE's 10 one-second segments).
pub const SECONDS: u32 = 10;
const HEADER: &str = "Category&VideoID&Quality&StartTime&EndTime";

/// One generated clip: what `Annotations.txt` says of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AveClip {
    pub video_id: String,
    pub split: &'static str,
    pub class: usize,
    pub start: u32,
    pub end: u32,
    seed: u64,
}

impl AveClip {
    fn annotation(&self) -> String {
        format!("{}&{}&good&{}&{}\n", CATEGORIES[self.class], self.video_id, self.start, self.end)
    }
}

/// The clips `cfg` describes, with their events (deterministic from the seed).
pub fn plan(cfg: &SyntheticAveConfig) -> Vec<AveClip> {
    let mut clips = Vec::new();
    for (split, per_class) in [("train", cfg.train_per_class), ("val", cfg.val_per_class), ("test", cfg.test_per_class)] {
        for class in 0..cfg.classes {
            for _ in 0..per_class {
                let seed = cfg.seed.wrapping_mul(1_000_003).wrapping_add((clips.len() as u64) << 1 | 1);
                let mut rng = Rng::new(seed);
                let len = cfg.min_event + rng.below((cfg.max_event - cfg.min_event + 1) as usize) as u32;
                let start = rng.below((SECONDS - len + 1) as usize) as u32;
                let video_id = format!("syn{:08}", clips.len());
                clips.push(AveClip { video_id, split, class, start, end: start + len, seed });
            }
        }
    }
    clips
}

fn render(cfg: &SyntheticAveConfig, clip: &AveClip) -> (Vec<RgbImage>, Vec<f32>) {
    let mut rng = Rng::new(clip.seed ^ 0x5eed);
    let tone_class = if rng.uniform() < cfg.audio_reliability { clip.class } else { (clip.class + 1 + rng.below(cfg.classes - 1)) % cfg.classes };
    let rate = f64::from(cfg.sample_rate);
    let (f, phase) = (tone_hz(tone_class), rng.uniform() * std::f64::consts::TAU);
    let in_event = |t: f64| t >= f64::from(clip.start) && t < f64::from(clip.end);
    let audio: Vec<f32> = (0..(f64::from(SECONDS) * rate) as usize)
        .map(|i| {
            let t = i as f64 / rate;
            let tone = if in_event(t) { 0.3 * (std::f64::consts::TAU * f * t + phase).sin() } else { 0.0 };
            (tone + 0.02 * rng.normal()) as f32
        })
        .collect();
    let s = cfg.square.min(cfg.size);
    let (x0, y0) = (rng.below((cfg.size - s + 1) as usize) as u32, rng.below((cfg.size - s + 1) as usize) as u32);
    let colour = COLOURS[clip.class % COLOURS.len()];
    let frames = (0..SECONDS as usize * cfg.fps as usize)
        .map(|i| {
            let visible = in_event(i as f64 / f64::from(cfg.fps));
            RgbImage::from_fn(cfg.size, cfg.size, |x, y| {
                let inside = visible && x >= x0 && x < x0 + s && y >= y0 && y < y0 + s;
                let base = if inside { colour } else { [110, 110, 110] };
                Rgb(base.map(|c| (f64::from(c) + cfg.visual_noise * rng.normal()).clamp(0.0, 255.0) as u8))
            })
        })
        .collect();
    (frames, audio)
}

/// Generates the corpus into `root` (e.g. `<raw>/AVE_Dataset`), in parallel. A corpus already
/// there with the same `generator.json` is kept as it is.
pub fn generate_ave(root: &Path, cfg: &SyntheticAveConfig) -> Result<Generated, String> {
    if cfg.classes < 2 || cfg.classes > CATEGORIES.len() {
        return Err(format!("synthetic AVE classes must be 2..={}", CATEGORIES.len()));
    }
    if cfg.min_event == 0 || cfg.min_event > cfg.max_event || cfg.max_event > SECONDS {
        return Err(format!("synthetic AVE events must satisfy 1 <= min_event <= max_event <= {SECONDS}"));
    }
    let stamp_path = root.join("generator.json");
    let stamp = serde_json::to_string_pretty(cfg).expect("config serialises");
    let clips = plan(cfg);
    if std::fs::read_to_string(&stamp_path).is_ok_and(|s| s == stamp) {
        return Ok(Generated { clips: clips.len(), written: false });
    }
    let io = |p: &Path, e: std::io::Error| format!("{}: {e}", p.display());
    let videos = root.join("AVE");
    std::fs::create_dir_all(&videos).map_err(|e| io(&videos, e))?;
    let _ = std::fs::remove_file(&stamp_path);
    clips.par_iter().try_for_each(|clip| {
        let (frames, audio) = render(cfg, clip);
        let path = videos.join(format!("{}.mp4", clip.video_id));
        write_mp4(&path, &frames, cfg.fps, &audio, cfg.sample_rate).map_err(|e| format!("{}: {e}", path.display()))
    })?;
    let list = |split: Option<&str>| -> String {
        std::iter::once(format!("{HEADER}\n")).chain(clips.iter().filter(|c| split.is_none_or(|s| c.split == s)).map(AveClip::annotation)).collect()
    };
    let files = [
        ("Annotations.txt", list(None)),
        ("trainSet.txt", list(Some("train"))),
        ("valSet.txt", list(Some("val"))),
        ("testSet.txt", list(Some("test"))),
        ("generator.json", stamp),
    ];
    for (name, text) in files {
        let p = root.join(name);
        std::fs::write(&p, text).map_err(|e| io(&p, e))?;
    }
    Ok(Generated { clips: clips.len(), written: true })
}
