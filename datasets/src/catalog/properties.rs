//! Property tests of every manifest parser: whatever text a user's file holds (random tokens of
//! the formats, real lines of each format, line endings, BOMs, quotes, control characters, ids
//! that try to escape the root), parsing never panics; an error names the file; every rejected
//! line names its file and line; every accepted entry has a safe clip id and a label in range.
//! Failing cases proptest finds are kept in `proptest-regressions/` and replayed first.

use std::path::Path;

use proptest::prelude::*;

use super::{ave, cremad, kinetics_sounds, DatasetKind, Manifest, Split};
use crate::clip_id;

/// Pieces of manifest text: separators, numbers, names of the real formats, odd characters.
fn token() -> impl Strategy<Value = String> {
    let fixed = prop::sample::select(vec![
        ",",
        "&",
        "\"",
        "\"\"",
        "_",
        "\r\n",
        "\n",
        "\r",
        "\u{feff}",
        " ",
        "\t",
        "..",
        "/",
        "\\",
        "\0",
        ".mp4",
        "-",
        "10",
        "000058",
        "-1",
        "99999999999999999999",
        "NEU",
        "HAP",
        "ANG",
        "XX",
        "train",
        "test",
        "val",
        "Church bell",
        "good",
        "dribbling basketball",
        "bird chirping, tweeting",
        "category",
        "clip_id,split,class",
        "é",
        "\u{202e}",
    ])
    .prop_map(String::from);
    let id = prop::collection::vec(prop::sample::select("abcXYZ019_-".chars().collect::<Vec<_>>()), 1..14).prop_map(String::from_iter);
    prop_oneof![4 => fixed, 2 => id, 1 => (0u64..100_000).prop_map(|n| n.to_string()), 1 => any::<char>().prop_map(String::from)]
}

/// A manifest: lines that are real lines of the format (`real`), real lines with a token
/// inserted, or runs of tokens.
fn text(real: &'static [&'static str]) -> impl Strategy<Value = String> {
    let line = prop_oneof![
        3 => prop::sample::select(real).prop_map(String::from),
        2 => (prop::sample::select(real), any::<prop::sample::Index>(), token()).prop_map(|(l, at, t)| {
            let mut l = l.to_owned();
            let cut = (0..=l.len()).filter(|&i| l.is_char_boundary(i)).nth(at.index(l.len() + 1)).unwrap_or(0);
            l.insert_str(cut, &t);
            l
        }),
        2 => prop::collection::vec(token(), 0..12).prop_map(|t| t.concat()),
    ];
    prop::collection::vec(line, 0..30).prop_map(|lines| lines.join("\n"))
}

/// What every parse must satisfy, `files` being the names its errors and rejections may cite.
fn check(result: crate::Result<Manifest>, files: &[&str]) -> Result<(), TestCaseError> {
    match result {
        Ok(m) => {
            for r in &m.rejected {
                prop_assert!(files.iter().any(|f| r.source.starts_with(&format!("{f}:"))), "rejection without its file: {r:?}");
            }
            for e in &m.entries {
                prop_assert!(clip_id::validate(&e.clip_id).is_ok(), "unsafe clip id accepted: {:?}", e.clip_id);
                prop_assert!((e.label as usize) < m.classes.len(), "label {} of {} classes", e.label, m.classes.len());
                if let Some(s) = &e.segment_labels {
                    prop_assert_eq!(s.len(), super::AVE_SEGMENTS);
                }
            }
        }
        Err(e) => {
            let e = e.to_string();
            prop_assert!(files.iter().any(|f| e.contains(f)), "error without its file: {}", e);
        }
    }
    Ok(())
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

const CREMAD: &[&str] = &["1001_DFA_ANG_XX,ANG\r", "1088_IOM_NEU_XX,NEU", "1002_IEO_HAP_HI,HAP", "\u{feff}1003_TIE_SAD_LO,SAD"];
const KS_CLASSES: &[&str] = &["0,blowing nose", "1,bowling", "2,chopping wood", "4,dribbling basketball"];
const KS: &[&str] = &["--4-0ihtnBU_000058_000068,10,4", "-3Mwkq-7TV4_2,10,1", "glLQrEijrKg_000300,10,0\r"];
const VGG: &[&str] = &["---g-f_I2yQ,1,people marching,test", "--0PQM4-hqg,30,waterfall burbling,train", "\"-9_5_2i4igQ\",0,\"bird chirping, tweeting\",train"];
const AVE: &[&str] =
    &["Church bell&MH3m4AwEcRY&good&6&8", "Male speech, man speaking&-0A9suni5YA&good&0&10", "Category&VideoID&Quality&StartTime&EndTime", "Dog&x&good&0&0"];
const SYNTHETIC: &[&str] = &["clip_id,split,class", "c0001,train,tone-a", "c0002,test,tone-b", "../escape,train,tone-a"];

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn cremad_lists_never_panic(stat in text(&["NEU", "HAP", "SAD", "FEA", "DIS", "ANG"]), train in text(CREMAD), test in text(CREMAD)) {
        let files = ["cremad/train.csv", "cremad/test.csv"];
        check(cremad::parse(&stat, &[(Split::Train, files[0], &train), (Split::Test, files[1], &test)]), &files)?;
    }

    #[test]
    fn kinetics_sounds_lists_never_panic(classes in text(KS_CLASSES), train in text(KS)) {
        let files = ["kinetics-sounds/class_index.txt", "ks/train.txt"];
        check(kinetics_sounds::parse(&classes, &[(Split::Train, files[1], &train)]), &files)?;
    }

    #[test]
    fn a_users_vggsound_csv_never_panics(csv in text(VGG)) {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), "vggsound.csv", &csv);
        check(DatasetKind::Vggsound.manifest(Some(dir.path())), &[&file])?;
    }

    #[test]
    fn a_users_ave_files_never_panic(annotations in text(AVE), split in text(AVE), which in 0usize..3) {
        let dir = tempfile::tempdir().unwrap();
        let a = write(dir.path(), "Annotations.txt", &annotations);
        let s = write(dir.path(), ["trainSet.txt", "valSet.txt", "testSet.txt"][which], &split);
        check(ave::manifest(Some(dir.path())), &[&a, &s, "ave/"])?;
    }

    #[test]
    fn the_synthetic_manifest_never_panics(classes in text(&["tone-a", "tone-b"]), manifest in text(SYNTHETIC)) {
        let dir = tempfile::tempdir().unwrap();
        let c = write(dir.path(), "classes.txt", &classes);
        let m = write(dir.path(), "manifest.csv", &manifest);
        check(DatasetKind::Synthetic.manifest(Some(dir.path())), &[&c, &m])?;
    }

    #[test]
    fn clip_ids_are_accepted_only_when_they_stay_under_the_root(id in prop_oneof![text(SYNTHETIC), any::<String>()]) {
        let root = Path::new("/raw/root");
        if clip_id::validate(&id).is_ok() {
            let joined = clip_id::join_under(root, Path::new(&id)).unwrap();
            prop_assert!(joined.starts_with(root) && joined != root, "{:?} escapes to {:?}", id, joined);
            prop_assert_eq!(joined.parent(), Some(root), "one component: {:?}", id);
        }
    }

    #[test]
    fn youtube_names_never_panic(name in prop_oneof![text(KS), any::<String>()]) {
        if let Some(super::MediaKey::YouTube { id, .. }) = super::parse_youtube_name(&name) {
            prop_assert!(name.starts_with(&id));
        }
    }
}
