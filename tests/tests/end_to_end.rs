//! The product path on CPU: synthetic corpus (real MP4 files) -> preprocess -> shards -> trainer
//! (`tiny`, Flex) -> well above chance, on every architecture (plain, TSN, TSM, TBN), with and
//! without OGM-GE.

use datasets::DatasetKind;
use preprocess::pipeline::prepare;
use preprocess::synthetic::{generate, SyntheticConfig};
use trainer::arch::Arch;
use trainer::methods::Balance;
use trainer::model::FusionKind;
use trainer::train::{train, TrainConfig};

#[test]
fn synthetic_corpus_trains_well_above_chance() {
    let tmp = tempfile::tempdir().unwrap();
    let raw = tmp.path().join("raw/synthetic");
    let cfg = SyntheticConfig { train_per_class: 30, test_per_class: 10, ..SyntheticConfig::default() };
    generate(&raw, &cfg).unwrap();
    let catalog = DatasetKind::Synthetic.scan(&raw).unwrap();
    let out = tmp.path().join("out");
    let opts = tests::prepare_options(out.clone());
    let s = prepare(&catalog, &DatasetKind::Synthetic.default_preset(), &opts).unwrap();
    assert_eq!(s.index.unwrap().total_clips(), cfg.classes * 40);

    let archs = [(Arch::Plain, FusionKind::Concat), (Arch::Tsn, FusionKind::Concat), (Arch::Tsm, FusionKind::Concat), (Arch::Tbn, FusionKind::Binding)];
    for ((arch, fusion), balance) in archs.into_iter().flat_map(|a| [Balance::None, Balance::OgmGe].map(|b| (a, b))) {
        let run = TrainConfig {
            name: format!("{arch:?}-{balance:?}"),
            fusion,
            arch,
            balance,
            epochs: 6,
            batch_size: 16,
            ..tests::tiny_run(&out.join("synthetic"), &tmp.path().join("runs"))
        };
        let summary = train::<trainer::Backend>(&run, &Default::default(), false, false).unwrap();
        let chance = 1.0 / cfg.classes as f64;
        println!(
            "{arch:?} {balance:?}: test fused {:.3} audio {:.3} visual {:.3}",
            summary.test.fused.accuracy, summary.test.audio.accuracy, summary.test.visual.accuracy
        );
        assert!(summary.test.fused.accuracy > 2.5 * chance, "{arch:?} {balance:?}: fused accuracy {} vs chance {chance}", summary.test.fused.accuracy);
        let dir = summary.run_dir;
        for f in ["config.json", "epochs.jsonl", "steps.jsonl", "summary.json", "checkpoint/progress.json", trainer::tensorboard::EVENT_FILE] {
            assert!(dir.join(f).is_file(), "{f} in the run folder");
        }
        let steps = std::fs::read_to_string(dir.join("steps.jsonl")).unwrap();
        let first: serde_json::Value = serde_json::from_str(steps.lines().next().unwrap()).unwrap();
        assert_eq!(first["modulated"], serde_json::json!(balance == Balance::OgmGe));
        assert!(first["k_a"].as_f64().unwrap() <= 1.0 && first["k_v"].as_f64().unwrap() <= 1.0);
    }
}
