//! AVE event localization end to end on CPU: the AVE-shaped synthetic corpus (real MP4 files in
//! AVE's raw layout, with its Annotations.txt and split files) -> the real AVE catalog ->
//! preprocess (psd-1004, 10 frames) -> shards -> `trainer::localize` (`tiny`), with and without
//! OGM-GE.

use std::collections::HashMap;

use datasets::catalog::{segment_labels, AVE_BACKGROUND, AVE_SEGMENTS};
use datasets::shard::ShardReader;
use datasets::DatasetKind;
use preprocess::pipeline::prepare;
use preprocess::synthetic::{generate_ave, plan_ave, SyntheticAveConfig, AVE_CATEGORIES};
use trainer::localize::data::segment_ranges;
use trainer::localize::model::LocalizerHead;
use trainer::localize::{localize, LocalizeConfig};
use trainer::methods::Balance;
use trainer::model::ModelPreset;

fn shards(dir: &std::path::Path) -> Vec<ShardReader> {
    let mut files: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "parquet")).collect();
    files.sort();
    files.iter().map(|f| ShardReader::open(f).unwrap()).collect()
}

#[test]
fn synthetic_ave_localizes_well_above_chance_with_and_without_ogm_ge() {
    let tmp = tempfile::tempdir().unwrap();
    let raw = tmp.path().join("raw/AVE_Dataset");
    let cfg = SyntheticAveConfig { train_per_class: 24, val_per_class: 4, test_per_class: 8, ..SyntheticAveConfig::default() };
    generate_ave(&raw, &cfg).unwrap();

    // The real AVE catalog reads the corpus's Annotations.txt: per-second labels follow the events.
    assert_eq!(DatasetKind::Ave.find_root(&tmp.path().join("raw")).as_deref(), Some(raw.as_path()));
    let catalog = DatasetKind::Ave.scan(&raw).unwrap();
    assert!(catalog.missing.is_empty() && catalog.rejected.is_empty(), "{:?} {:?}", catalog.missing, catalog.rejected);
    let planned = plan_ave(&cfg);
    assert_eq!(catalog.clips.len(), planned.len());
    let by_id: HashMap<_, _> = catalog.clips.iter().map(|c| (c.clip_id.clone(), c)).collect();
    for p in &planned {
        let c = by_id[&p.video_id];
        assert_eq!(c.label_name, AVE_CATEGORIES[p.class]);
        assert_eq!(c.split.name(), p.split);
        assert_eq!(c.segment_labels.as_deref(), Some(segment_labels(c.label, p.start, p.end).as_slice()), "{}", p.video_id);
    }

    let out = tmp.path().join("out");
    let opts = tests::prepare_options(out.clone());
    let mut preset = DatasetKind::Ave.default_preset();
    preset.frames.short_side = cfg.size;
    let s = prepare(&catalog, &preset, &opts).unwrap();
    let index = s.index.unwrap();
    assert_eq!(index.total_clips(), planned.len());
    assert!(index.failed.is_empty(), "{:?}", index.failed);

    // The spectrogram's seconds line up with the annotation: the loudest band of every event
    // second is louder than that of every background second of the same clip.
    let data = out.join("ave");
    let (mut clean, mut clips) = (0, 0);
    for reader in shards(&data.join("test")) {
        let [f, t] = reader.meta().audio_shape;
        assert_eq!([f, t], [257, 1004]);
        let ranges = segment_ranges(&reader.meta().preset.audio, t, AVE_SEGMENTS);
        for g in 0..reader.num_row_groups() {
            for r in reader.read_records(g).unwrap() {
                assert_eq!(r.frames.len(), AVE_SEGMENTS, "{}: one frame per second", r.clip_id);
                let labels = r.segment_labels.clone().unwrap();
                let loudness: Vec<f32> = ranges
                    .iter()
                    .map(|rg| (0..f).map(|fi| rg.clone().map(|ti| r.audio[fi * t + ti]).sum::<f32>() / rg.len() as f32).fold(f32::MIN, f32::max))
                    .collect();
                let ev = (0..AVE_SEGMENTS).filter(|&s| labels[s] != AVE_BACKGROUND).map(|s| loudness[s]).fold(f32::MAX, f32::min);
                let bg = (0..AVE_SEGMENTS).filter(|&s| labels[s] == AVE_BACKGROUND).map(|s| loudness[s]).fold(f32::MIN, f32::max);
                clips += 1;
                clean += usize::from(ev > bg);
            }
        }
    }
    assert!(clips > 0 && clean == clips, "{clean} of {clips} test clips have every event second louder than every background second");

    // Localization, tiny preset, AVGA and PSP, with and without OGM-GE.
    for (head, balance) in [LocalizerHead::Avga, LocalizerHead::Psp].into_iter().flat_map(|h| [Balance::None, Balance::OgmGe].map(|b| (h, b))) {
        let (lr_step, lr_gamma, lr_decays) = LocalizeConfig::head_schedule(head);
        let run = LocalizeConfig {
            data: data.clone(),
            out: tmp.path().join("runs"),
            name: format!("{head:?}-{balance:?}"),
            model: ModelPreset::Tiny,
            balance,
            alpha: 0.8,
            modulation_start: 0,
            modulation_end: 50,
            epochs: 6,
            batch_size: 8,
            lr: 3e-3,
            lr_step,
            lr_gamma,
            seed: 0,
            shuffle_buffer: 256,
            optimizer: trainer::optim::OptimizerKind::Adam,
            weight_decay: 0.0,
            momentum: 0.0,
            head,
            lr_decays,
            psp_threshold: trainer::localize::psp::PSP_THRESHOLD,
            avps_weight: trainer::localize::psp::AVPS_WEIGHT,
        };
        let s = localize::<trainer::Backend>(&run, &Default::default(), false, false).unwrap();
        let t = s.test;
        println!(
            "{head:?} {balance:?}: test segment acc {:.3} (event {:.3}, background {:.3}; audio {:.3}, visual {:.3}), best epoch {}",
            t.fused.all, t.fused.event, t.fused.background, t.audio.all, t.visual.all, s.best_epoch
        );
        assert_eq!(t.segments, cfg.classes * cfg.test_per_class * AVE_SEGMENTS);
        // Chance: 1/29 per segment; always answering "background" scores the background share
        // (about half); random event classes score 1/4 of event segments.
        let background_share = 1.0 - index_event_share(&planned, "test");
        assert!(t.fused.all > background_share + 0.15, "{head:?} {balance:?}: {:.3} vs background share {background_share:.3}", t.fused.all);
        assert!(t.fused.event > 0.5 && t.fused.background > 0.5, "{head:?} {balance:?}: event {:.3}, background {:.3}", t.fused.event, t.fused.background);
        for f in [
            "config.json",
            "epochs.jsonl",
            "epochs.csv",
            "steps.jsonl",
            "summary.json",
            "accuracy.png",
            "coefficients.png",
            "ratio.png",
            "model-best.bin",
            trainer::tensorboard::EVENT_FILE,
        ] {
            assert!(s.run_dir.join(f).is_file(), "{f} in the run folder");
        }
        let steps = std::fs::read_to_string(s.run_dir.join("steps.jsonl")).unwrap();
        let first: serde_json::Value = serde_json::from_str(steps.lines().next().unwrap()).unwrap();
        assert_eq!(first["modulated"], serde_json::json!(balance == Balance::OgmGe));
    }
}

/// Fraction of event seconds among the test clips' seconds.
fn index_event_share(planned: &[preprocess::synthetic::AveClip], split: &str) -> f64 {
    let clips: Vec<_> = planned.iter().filter(|c| c.split == split).collect();
    clips.iter().map(|c| f64::from(c.end - c.start)).sum::<f64>() / (clips.len() * AVE_SEGMENTS) as f64
}
