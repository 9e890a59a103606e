//! Every audio preset against its Python reference (librosa / scipy / torchaudio), on real audio
//! from tests/media. The goldens and the waveforms fed to the references come from
//! `preprocess/goldens/make_goldens.py`; this test feeds the same waveform to our preset.
//!
//! Tolerance: max |ours - reference| <= 1e-3 over every value of the log matrices. Our transforms
//! run in f64; the references in float32, which is what the remaining difference measures.

use std::path::Path;

use datasets::AudioPreset;
use preprocess::spectrogram::compute;

const TOLERANCE: f32 = 1e-3;

fn read_f32(path: &Path) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

#[test]
fn presets_match_their_python_references() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("goldens");
    let cases: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("cases.json")).unwrap()).unwrap();
    let cases = cases["cases"].as_array().unwrap();
    assert!(cases.len() >= 4, "one case per preset at least");
    let mut presets_seen = std::collections::BTreeSet::new();
    for case in cases {
        let name = case["case"].as_str().unwrap();
        let preset = AudioPreset::by_name(case["preset"].as_str().unwrap()).unwrap();
        presets_seen.insert(preset.name.clone());
        let rate = case["rate"].as_u64().unwrap() as u32;
        let input = read_f32(&dir.join(format!("{name}.input.f32")));
        let golden = read_f32(&dir.join(format!("{name}.golden.f32")));
        let (ours, _) = compute(&preset, input, rate);
        let shape: Vec<usize> = case["shape"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
        assert_eq!(ours.shape.to_vec(), shape, "{name}: shape");
        let mut diffs: Vec<f32> = ours.values.iter().zip(&golden).map(|(a, b)| (a - b).abs()).collect();
        diffs.sort_by(f32::total_cmp);
        let max = *diffs.last().unwrap();
        let p999 = diffs[diffs.len() * 999 / 1000];
        println!("{name:24} max |diff| {max:.2e}  p99.9 {p999:.2e}  over {} values", diffs.len());
        assert!(max <= TOLERANCE, "{name}: max |diff| {max} > {TOLERANCE}");
    }
    assert_eq!(presets_seen.len(), 4, "all four dataset presets are covered: {presets_seen:?}");
}
