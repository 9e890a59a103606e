//! Decoding every real file in tests/media: odd containers and codecs, rotation, several
//! streams, no duration, no audio, corrupt data. Each case says what must come out.

use std::path::{Path, PathBuf};

use preprocess::decode::{decode_audio, decode_audio_prefix, decode_audio_video, sample_frames, FramePlan};

fn media(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/media").join(name)
}

/// Tracks that are digital near-silence (max -91 dB by ffmpeg's volumedetect).
const SILENT: &[&str] = &["h264_aac_small.mp4", "no_duration.webm", "transparent.webm"];

const PLAN: FramePlan = FramePlan { fps: 1.0, phase: 0.5, max_frames: 10, skip_unneeded: true, threads: 1 };

/// (file, audio decodes, source channels, video frames at 1 fps mid-second: one per i + 0.5 s
///  inside the duration ffprobe reports, at most 10 (None = fails),
///  output size (w, h) for short side 64)
type Case = (&'static str, bool, u32, Option<usize>, (u32, u32));
const CASES: &[Case] = &[
    ("h264_aac_small.mp4", true, 2, Some(7), (85, 64)),
    ("mpeg4_mp3.avi", true, 2, Some(7), (85, 64)),
    ("flipping_a_pancake.mkv", true, 1, Some(10), (114, 64)),
    ("big_buck_bunny_432_433.webm", true, 2, Some(1), (114, 64)),
    ("big_buck_bunny_0_30.webm", true, 2, Some(10), (114, 64)),
    ("no_duration.webm", true, 2, Some(5), (114, 64)),
    ("transparent.webm", true, 2, Some(5), (64, 64)),
    ("chaplin.mp4", true, 2, Some(10), (114, 64)),
    ("fire2.mp4", true, 1, Some(2), (114, 64)),
    ("smpte-2997.mp4", true, 2, Some(10), (114, 64)),
    ("avatar.flv", true, 2, Some(10), (154, 64)),
    ("bbb.flv", true, 2, Some(10), (114, 64)),
    ("nasa_13013.mp4", true, 2, Some(10), (114, 64)),
    ("av1_video.mkv", false, 0, Some(5), (114, 64)),
    ("kinetics_demo_noaudio.mp4", false, 0, Some(10), (85, 64)),
    ("sorenson_noaudio.flv", false, 0, Some(10), (114, 64)),
    ("clip1024.flv", false, 0, Some(10), (90, 64)),
    // Rotated 90 degrees by its display matrix: 568x320 stored, 320x568 shown.
    ("video_90.mov", false, 0, Some(1), (64, 114)),
    // 49 of its 50 frames decode; the broken packet is counted (the pipeline fails such clips).
    ("corrupted.mp4", false, 0, Some(5), (114, 64)),
    ("speech24k_clean.wav", true, 1, None, (0, 0)),
];

#[test]
fn every_shared_media_file_decodes_as_expected() {
    let mut report = Vec::new();
    for &(name, audio_ok, channels, frames, size) in CASES {
        let path = media(name);
        let audio = decode_audio(&path, Some(16000));
        match (&audio, audio_ok) {
            (Ok(a), true) => {
                assert_eq!(a.source_channels, channels, "{name}: channels");
                assert!(a.samples.len() > 8000, "{name}: {} samples", a.samples.len());
                let loud = a.samples.iter().any(|s| s.abs() > 1e-3);
                assert_eq!(loud, !SILENT.contains(&name), "{name}: audible");
            }
            (Err(_), false) => {}
            (r, _) => panic!("{name}: audio {:?}", r.as_ref().map(|a| a.samples.len())),
        }
        let video = sample_frames(&path, &PLAN, 64);
        match (&video, frames) {
            (Ok((info, got)), Some(n)) => {
                assert_eq!(got.len(), n, "{name}: frames (info {info:?})");
                let dims = (got[0].image.width(), got[0].image.height());
                assert_eq!(dims, size, "{name}: output size");
                for (i, f) in got.iter().enumerate() {
                    // The frame shown at i + 0.5 s has a timestamp at most 0.5 s + one frame before.
                    assert!(f.time_s <= i as f64 + 0.5 + 1e-6, "{name}: frame {i} at {}", f.time_s);
                }
                assert!(got.windows(2).all(|w| w[0].time_s <= w[1].time_s), "{name}: times increase");
            }
            (Err(_), None) => {}
            (r, _) => panic!("{name}: video {:?}", r.as_ref().map(|(i, f)| (i.clone(), f.len()))),
        }
        report.push(format!(
            "{name}: audio {} / video {}",
            audio.as_ref().map_or_else(|e| e.to_string(), |a| format!("{:.2}s", a.duration_s)),
            video.as_ref().map_or_else(|e| e.to_string(), |(i, f)| format!("{} frames, rot {}", f.len(), i.rotation))
        ));
    }
    println!("{}", report.join("\n"));
}

#[test]
fn errors_name_the_reason() {
    let (info, _) = sample_frames(&media("corrupted.mp4"), &PLAN, 64).unwrap();
    assert!(info.packet_errors > 0, "corrupt packets are counted: {info:?}");
    let (info, _) = sample_frames(&media("chaplin.mp4"), &PLAN, 64).unwrap();
    assert_eq!(info.packet_errors, 0);
    let err = decode_audio(&media("kinetics_demo_noaudio.mp4"), None).unwrap_err().to_string();
    assert_eq!(err, "no audio stream");
    let err = sample_frames(&media("speech24k_clean.wav"), &PLAN, 64).unwrap_err().to_string();
    assert_eq!(err, "no video stream");
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.mp4");
    std::fs::write(&empty, b"").unwrap();
    let text = dir.path().join("notes.mp4");
    std::fs::write(&text, b"this is not a video at all, just some text\n".repeat(100)).unwrap();
    for p in [empty, text] {
        let err = decode_audio(&p, None).unwrap_err().to_string();
        assert!(err.starts_with("cannot open as media"), "{}: {err}", p.display());
    }
}

#[test]
fn downmix_is_the_mean_of_the_channels() {
    // stereo16k.wav at its native rate: no resampling, so mono must equal (L + R) / 2 exactly
    // as soundfile reads it (int16 / 32768).
    let a = decode_audio(&media("stereo16k.wav"), None).unwrap();
    assert_eq!((a.source_rate, a.source_channels), (16000, 2));
    let bytes = std::fs::read(media("stereo16k.wav")).unwrap();
    let data_at = bytes.windows(4).position(|w| w == b"data").unwrap() + 8;
    let pcm: Vec<i16> = bytes[data_at..].chunks_exact(2).map(|c| i16::from_le_bytes([c[0], c[1]])).collect();
    let want: Vec<f32> = pcm.chunks_exact(2).map(|lr| (f32::from(lr[0]) + f32::from(lr[1])) / 2.0 / 32768.0).collect();
    assert_eq!(a.samples.len(), want.len());
    let max = a.samples.iter().zip(&want).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
    assert!(max < 1e-6, "max diff {max}");
}

/// Our rotated frames against the `ffmpeg` CLI's autorotate (an independent reference): the
/// first frame of each rotated file, scaled to our size, must match far better than any other
/// orientation would.
#[test]
fn rotation_matches_ffmpeg_autorotate() {
    let first = FramePlan { fps: 1.0, phase: 0.0, max_frames: 1, skip_unneeded: true, threads: 1 };
    for name in ["video_90.mov", "fire2.mp4"] {
        let (info, frames) = sample_frames(&media(name), &first, 64).unwrap();
        assert_ne!(info.rotation, 0, "{name} carries a display matrix");
        let ours = &frames[0].image;
        let (w, h) = ours.dimensions();
        let out = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-i"])
            .arg(media(name))
            .args(["-frames:v", "1", "-vf", &format!("scale={w}:{h}:flags=bilinear"), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
            .output()
            .expect("the ffmpeg CLI (apt install ffmpeg) is the reference here");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.stdout.len(), (w * h * 3) as usize, "{name}: ffmpeg's autorotated frame is {w}x{h} too");
        let reference = image::RgbImage::from_raw(w, h, out.stdout).unwrap();
        let mad = |a: &image::RgbImage, b: &image::RgbImage| {
            a.as_raw().iter().zip(b.as_raw()).map(|(x, y)| f64::from(x.abs_diff(*y))).sum::<f64>() / a.as_raw().len() as f64
        };
        let same = mad(ours, &reference);
        let flipped = mad(&image::imageops::rotate180(ours), &reference);
        println!("{name}: rotation {} mean |diff| {same:.2} vs {flipped:.2} rotated 180", info.rotation);
        assert!(same < 6.0 && same * 3.0 < flipped, "{name}: {same} vs {flipped}");
    }
}

/// Skipping non-reference frames far from every target changes nothing that is selected, and
/// neither does decoding on several threads (the pipeline gives a shard's last clips more).
#[test]
fn skipping_unneeded_frames_and_threads_select_the_same_frames() {
    let (mut compared, mut corrupt) = (0usize, Vec::new());
    for (name, frames, full) in CASES
        .iter()
        .flat_map(|&(name, _, _, frames, _)| [FramePlan { skip_unneeded: false, ..PLAN }, FramePlan { threads: 3, ..PLAN }].map(|full| (name, frames, full)))
    {
        if frames.is_none() {
            continue;
        }
        let (info, a) = sample_frames(&media(name), &PLAN, 64).unwrap();
        let (_, b) = sample_frames(&media(name), &full, 64).unwrap();
        if info.packet_errors > 0 {
            // Corrupt data (corrupted.mp4): error concealment depends on which frames were
            // decoded. The pipeline fails such clips unless told to tolerate them.
            corrupt.push(name);
            continue;
        }
        assert_eq!(a.len(), b.len(), "{name} {full:?}");
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.time_s, y.time_s, "{name} {full:?}");
            assert!(x.image == y.image, "{name} {full:?}: frame at {} differs", x.time_s);
        }
        compared += 1;
    }
    // What was left out, said: the one file with packet errors, under both plans; every other
    // file with video compared under both.
    assert_eq!(corrupt, ["corrupted.mp4", "corrupted.mp4"]);
    let with_video = CASES.iter().filter(|c| c.3.is_some()).count();
    assert_eq!(compared, 2 * (with_video - 1), "files compared");
}

/// Decoding only the prefix a preset needs gives exactly the first samples of a full decode.
#[test]
fn audio_prefix_equals_the_start_of_the_full_decode() {
    for name in ["big_buck_bunny_0_30.webm", "chaplin.mp4", "nasa_13013.mp4", "stereo16k.wav"] {
        let full = decode_audio(&media(name), Some(22050)).unwrap();
        let prefix = decode_audio_prefix(&media(name), Some(22050), Some(66150)).unwrap();
        assert_eq!(prefix.samples.len(), 66150, "{name}");
        assert_eq!(prefix.samples[..], full.samples[..66150], "{name}");
    }
}

/// One pass over a file for both streams gives what the two separate decodes give: the same
/// samples, the same frames at the same times, the same stream facts; and the same errors.
#[test]
fn one_pass_for_audio_and_video_equals_two_separate_decodes() {
    let (mut compared, mut no_audio) = (0usize, 0usize);
    for &(name, audio_ok, _, frames, _) in CASES {
        for max_samples in [None, Some(66150)] {
            let both = decode_audio_video(&media(name), Some(22050), max_samples, &PLAN, 64);
            let audio = decode_audio_prefix(&media(name), Some(22050), max_samples);
            let (audio_both, video_both) = match (both, audio) {
                (Ok((a, v)), Ok(b)) => {
                    assert!(a.samples == b.samples, "{name}: samples differ");
                    assert_eq!((a.source_rate, a.source_channels, a.packet_errors), (b.source_rate, b.source_channels, b.packet_errors), "{name}");
                    (a, v)
                }
                (Err(a), Err(b)) => {
                    assert!(!audio_ok, "{name}: {a}");
                    assert_eq!(a.to_string(), b.to_string(), "{name}");
                    no_audio += 1;
                    continue;
                }
                (a, b) => panic!("{name}: one pass {:?}, separate {:?}", a.map(|_| ()), b.map(|_| ())),
            };
            assert!(audio_both.duration_s > 0.0, "{name}");
            match (video_both, sample_frames(&media(name), &PLAN, 64)) {
                (Ok((ia, a)), Ok((ib, b))) => {
                    assert_eq!(ia, ib, "{name}");
                    assert_eq!(a.len(), b.len(), "{name}");
                    for (x, y) in a.iter().zip(&b) {
                        assert_eq!(x.time_s, y.time_s, "{name}");
                        assert!(x.image == y.image, "{name}: frame at {} differs", x.time_s);
                    }
                }
                (Err(a), Err(b)) => {
                    assert!(frames.is_none(), "{name}: {a}");
                    assert_eq!(a.to_string(), b.to_string(), "{name}");
                }
                (a, b) => panic!("{name}: one pass {:?}, separate {:?}", a.map(|_| ()), b.map(|_| ())),
            }
            compared += 1;
        }
    }
    // Every file was compared twice (whole and prefix): with audio in one pass, or as the same
    // error for the files without decodable audio.
    let without_audio = CASES.iter().filter(|c| !c.1).count();
    assert_eq!((compared, no_audio), (2 * (CASES.len() - without_audio), 2 * without_audio), "files compared");
}

/// The frame rate recorded in provenance against ffprobe's (the `ffmpeg` CLI's prober, full
/// probing): within 1%, also where the container states no rate (no_duration.webm: estimated from
/// the packets instead of decoding frames at open).
#[test]
fn frame_rates_match_ffprobe() {
    let mut compared = 0usize;
    for &(name, _, _, frames, _) in CASES {
        if frames.is_none() || name == "video_90.mov" {
            continue; // no video, or a single frame (no rate to speak of)
        }
        compared += 1;
        let (info, _) = sample_frames(&media(name), &PLAN, 64).unwrap();
        let got = info.fps.unwrap_or_else(|| panic!("{name}: no frame rate"));
        // ffprobe lists every video stream; ours is the one of our width (nasa_13013 has two).
        let out = std::process::Command::new("ffprobe")
            .args(["-v", "error", "-select_streams", "v", "-show_entries", "stream=width,avg_frame_rate", "-of", "csv=p=0"])
            .arg(media(name))
            .output()
            .expect("ffprobe (apt install ffmpeg) is the reference here");
        let text = String::from_utf8_lossy(&out.stdout);
        let rate = text.lines().find_map(|l| {
            let mut f = l.trim().split(',');
            let (w, r) = (f.next()?, f.next()?);
            (w.parse::<u32>().ok()? == info.width).then(|| r.to_owned())
        });
        let rate = rate.unwrap_or_else(|| panic!("{name}: ffprobe said {text:?}"));
        let (n, d) = rate.split_once('/').unwrap();
        let want = n.parse::<f64>().unwrap() / d.parse::<f64>().unwrap();
        assert!((got - want).abs() <= 0.01 * want, "{name}: {got} fps, ffprobe {want}");
    }
    // Left out: the audio-only file and the single-frame one.
    assert_eq!(compared, CASES.iter().filter(|c| c.3.is_some()).count() - 1, "files compared");
}
