//! The catalog on the real shipped manifests and on small raw roots laid out like real downloads.

use std::fs;
use std::path::Path;

use datasets::catalog::{segment_labels, DatasetKind, Split, AVE_BACKGROUND};

fn touch(root: &Path, rel: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, b"not really media").unwrap();
}

#[test]
fn shipped_manifests_give_the_real_counts() {
    // (dataset, train, val, test, classes) as the issue and SOURCES.md state them.
    let cases = [
        (DatasetKind::Cremad, 6698, 0, 744, 6),
        (DatasetKind::KineticsSounds, 14799, 0, 2597, 31),
        (DatasetKind::Vggsound, 0, 0, 15446, 309),
        (DatasetKind::Ave, 3339, 402, 402, 28),
    ];
    for (kind, train, val, test, classes) in cases {
        let m = kind.manifest(None).unwrap();
        assert_eq!(m.rejected, vec![], "{kind}: shipped lists must parse cleanly");
        assert_eq!((m.count(Split::Train), m.count(Split::Val), m.count(Split::Test), m.classes.len()), (train, val, test, classes), "{kind}");
        let mut ids: Vec<_> = m.entries.iter().map(|e| &e.clip_id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), m.entries.len(), "{kind}: clip ids are unique");
    }
}

#[test]
fn label_ids_follow_the_reference_orders() {
    let cremad = DatasetKind::Cremad.manifest(None).unwrap();
    assert_eq!(cremad.classes, ["NEU", "HAP", "SAD", "FEA", "DIS", "ANG"]);
    let first = &cremad.entries[0];
    assert_eq!((first.clip_id.as_str(), first.label), ("1088_IOM_NEU_XX", 0));

    for kind in [DatasetKind::KineticsSounds, DatasetKind::Vggsound, DatasetKind::Ave] {
        let classes = kind.manifest(None).unwrap().classes;
        let mut sorted = classes.clone();
        sorted.sort();
        assert_eq!(classes, sorted, "{kind}: alphabetical label ids");
    }
    let vgg = DatasetKind::Vggsound.manifest(None).unwrap();
    assert!(vgg.classes.contains(&"bird chirping, tweeting".to_owned()), "quoted label with a comma");
    let ks = DatasetKind::KineticsSounds.manifest(None).unwrap();
    let e = ks.entries.iter().find(|e| e.clip_id == "--4-0ihtnBU_000058_000068").unwrap();
    assert_eq!((e.label, ks.classes[4].as_str()), (4, "dribbling basketball"));
}

#[test]
fn ave_annotations_drive_the_per_second_labels() {
    let m = DatasetKind::Ave.manifest(None).unwrap();
    let label = |name: &str| m.classes.iter().position(|c| c == name).unwrap() as u32;
    // Annotations.txt line 2: `Church bell&MH3m4AwEcRY&good&6&8`.
    let e = m.entries.iter().find(|e| e.clip_id == "MH3m4AwEcRY").unwrap();
    let bell = label("Church bell");
    let b = AVE_BACKGROUND;
    assert_eq!(e.segment_labels.as_deref().unwrap(), [b, b, b, b, b, b, bell, bell, b, b]);
    // Annotations.txt line 28, `Church bell&K5AE5C5FUQk&good&5&10`: background x5 then the class x5.
    let e = m.entries.iter().find(|e| e.clip_id == "K5AE5C5FUQk").unwrap();
    assert_eq!(e.segment_labels.as_deref().unwrap(), [b, b, b, b, b, bell, bell, bell, bell, bell]);
    assert_eq!(segment_labels(9, 5, 10), [b, b, b, b, b, 9, 9, 9, 9, 9]);
    // The zero-length event row `Church bell&VWi2ENBuTbw&good&0&0` parses, all background.
    let zero = m.entries.iter().find(|e| e.clip_id == "VWi2ENBuTbw").unwrap();
    assert_eq!(zero.segment_labels.as_deref().unwrap(), [b; 10]);
    // A video with two events becomes two samples.
    let twins: Vec<_> = m.entries.iter().filter(|e| e.clip_id.starts_with("-1qyr-IzqKY")).collect();
    assert_eq!(twins.len(), 2);
    assert_ne!(twins[0].label, twins[1].label);
}

#[test]
fn scan_matches_disk_and_reports_missing() {
    let raw = tempfile::tempdir().unwrap();
    let root = raw.path().join("CREMA-D");
    touch(&root, "VideoFlash/1088_IOM_NEU_XX.flv");
    touch(&root, "AudioWAV/1088_IOM_NEU_XX.wav");
    touch(&root, "VideoFlash/1017_IWW_HAP_XX.flv");
    assert_eq!(DatasetKind::Cremad.find_root(raw.path()).as_deref(), Some(root.as_path()));
    let cat = DatasetKind::Cremad.scan(&root).unwrap();
    assert_eq!(cat.clips.len(), 2);
    assert_eq!(cat.missing.len(), 7442 - 2);
    let neu = cat.clips.iter().find(|c| c.clip_id == "1088_IOM_NEU_XX").unwrap();
    assert_eq!(neu.audio.as_deref(), Some(Path::new("AudioWAV/1088_IOM_NEU_XX.wav")));
    assert_eq!((neu.label, neu.label_name.as_str()), (0, "NEU"));
    let hap = cat.clips.iter().find(|c| c.clip_id == "1017_IWW_HAP_XX").unwrap();
    assert_eq!(hap.audio, None);
    assert!(cat.missing[0].reason.contains("no video file"), "{}", cat.missing[0].reason);
}

#[test]
fn youtube_datasets_accept_every_naming_scheme() {
    let raw = tempfile::tempdir().unwrap();
    let ks = raw.path().join("kinetics-sounds");
    // Per-class folder, 6-digit padded train name; test list names `<ytid>_<start>`.
    touch(&ks, "train/dribbling basketball/--4-0ihtnBU_000058_000068.mp4");
    touch(&ks, "-3Mwkq-7TV4_000002_000012.mp4");
    let cat = DatasetKind::KineticsSounds.scan(&ks).unwrap();
    let mut found: Vec<_> = cat.clips.iter().map(|c| (c.clip_id.as_str(), c.split)).collect();
    found.sort();
    assert_eq!(found, [("--4-0ihtnBU_000058_000068", Split::Train), ("-3Mwkq-7TV4_2", Split::Test)]);

    let vgg = raw.path().join("vggsound");
    touch(&vgg, "glLQrEijrKg_300.mp4"); // unpadded seconds
    touch(&vgg, "LDoXsip0BEQ_177000_187000.mp4"); // milliseconds
    touch(&vgg, "0_8-g2rof7E_000049.mp4"); // padded, label with a comma
    let cat = DatasetKind::Vggsound.scan(&vgg).unwrap();
    let mut found: Vec<_> = cat.clips.iter().map(|c| (c.clip_id.as_str(), c.label_name.as_str())).collect();
    found.sort();
    assert_eq!(
        found,
        [("0_8-g2rof7E_000049", "heart sounds, heartbeat"), ("LDoXsip0BEQ_000177", "parrot talking"), ("glLQrEijrKg_000300", "playing hammond organ")]
    );
}

#[test]
fn user_copies_of_manifests_win_and_are_parsed_robustly() {
    let raw = tempfile::tempdir().unwrap();
    // VGGSound: the user's vggsound.csv with CRLF, quotes, a bad split and an unknown label.
    let vgg = raw.path().join("vggsound");
    fs::create_dir_all(&vgg).unwrap();
    fs::write(
        vgg.join("vggsound.csv"),
        "---g-f_I2yQ,1,people marching,test\r\n\"--0PQM4-hqg\",30,\"bird chirping, tweeting\",train\r\nx1,2,people marching,holdout\r\nx2,3,no such label,train\r\n",
    )
    .unwrap();
    let m = DatasetKind::Vggsound.manifest(Some(&vgg)).unwrap();
    assert_eq!(m.entries.len(), 2);
    assert_eq!(m.entries[1].clip_id, "--0PQM4-hqg_000030");
    assert_eq!(m.rejected.len(), 2);
    assert!(m.rejected[0].source.ends_with("vggsound.csv:3"), "{:?}", m.rejected[0]);

    // AVE: the dataset zip's Annotations.txt has a header line; split files are the shipped ones.
    let ave = raw.path().join("AVE_Dataset");
    fs::create_dir_all(ave.join("AVE")).unwrap();
    let shipped = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests/ave/Annotations.txt")).unwrap();
    fs::write(ave.join("Annotations.txt"), format!("Category&VideoID&Quality&StartTime&EndTime\r\n{}", shipped.replace('\n', "\r\n"))).unwrap();
    touch(&ave, "AVE/RUhOCu3LNXM.mp4");
    assert_eq!(DatasetKind::Ave.find_root(raw.path()).as_deref(), Some(ave.as_path()));
    let cat = DatasetKind::Ave.scan(&ave).unwrap();
    assert_eq!((cat.clips.len(), cat.missing.len(), cat.rejected.len()), (1, 4142, 0));
}

#[test]
fn clip_ids_that_escape_the_root_are_rejected() {
    let raw = tempfile::tempdir().unwrap();
    let root = raw.path().join("synthetic");
    fs::create_dir_all(&root).unwrap();
    fs::write(root.join("classes.txt"), "beep\nboop\n").unwrap();
    fs::write(root.join("manifest.csv"), "clip_id,split,class\nok_1,train,beep\n../../etc/passwd,train,beep\n/abs,test,boop\nok_2,test,boop\n").unwrap();
    let m = DatasetKind::Synthetic.manifest(Some(&root)).unwrap();
    let ids: Vec<_> = m.entries.iter().map(|e| e.clip_id.as_str()).collect();
    assert_eq!(ids, ["ok_1", "ok_2"]);
    assert_eq!(m.rejected.len(), 2);
    assert!(m.rejected.iter().all(|r| r.reason.contains("invalid clip id")), "{:?}", m.rejected);
}

#[test]
fn actor_disjoint_split_keeps_every_actor_on_one_side() {
    use datasets::catalog::cremad::actor;
    use datasets::catalog::SplitRule;
    use std::collections::{BTreeMap, BTreeSet};
    let sides = |cat: &datasets::catalog::Catalog| {
        let mut by_actor: BTreeMap<u32, BTreeSet<Split>> = BTreeMap::new();
        let all = cat.clips.iter().map(|c| (&c.clip_id, c.split)).chain(cat.missing.iter().map(|m| (&m.clip_id, m.split)));
        for (id, split) in all {
            by_actor.entry(actor(id).unwrap()).or_default().insert(split);
        }
        by_actor
    };
    // Nothing on disk: every listed clip is reported missing, with the side the rule gives it.
    let raw = tempfile::tempdir().unwrap();
    let root = raw.path().join("CREMA-D");
    touch(&root, "VideoFlash/1010_DFA_ANG_XX.flv"); // published train, actor 1010: test
    touch(&root, "VideoFlash/1020_IEO_ANG_LO.flv"); // published test, actor 1020: test
    touch(&root, "VideoFlash/1041_TIE_NEU_XX.flv"); // published test, actor 1041: train
    touch(&root, "VideoFlash/1001_IOM_SAD_XX.flv"); // published train, actor 1001: train

    let published = DatasetKind::Cremad.scan(&root).unwrap();
    let both: Vec<u32> = sides(&published).into_iter().filter(|(_, s)| s.len() == 2).map(|(a, _)| a).collect();
    assert_eq!(both.len(), 91, "the OGM-GE lists put every actor on both sides");
    assert_eq!(published.split_rule, SplitRule::Published);
    assert_eq!(published.out_name(), "cremad");
    assert_eq!(published.split_record(), None);

    let disjoint = DatasetKind::Cremad.scan_with(&root, SplitRule::ActorDisjoint).unwrap();
    assert_eq!(disjoint.clips.len() + disjoint.missing.len(), 7442, "every clip of both lists is kept");
    let by_actor = sides(&disjoint);
    assert_eq!(by_actor.len(), 91);
    assert!(by_actor.values().all(|s| s.len() == 1), "no actor on both sides");
    let test_actors: Vec<u32> = by_actor.iter().filter(|(_, s)| s.contains(&Split::Test)).map(|(a, _)| *a).collect();
    assert_eq!(test_actors, (1..=9).map(|k| 1000 + 10 * k).collect::<Vec<_>>());
    let test_clips = disjoint.clips.iter().map(|c| c.split).chain(disjoint.missing.iter().map(|m| m.split)).filter(|s| *s == Split::Test).count();
    assert_eq!(test_clips, 738);

    let split_of = |id: &str| disjoint.clips.iter().find(|c| c.clip_id == id).unwrap().split;
    let expect = [("1010_DFA_ANG_XX", Split::Test), ("1020_IEO_ANG_LO", Split::Test), ("1041_TIE_NEU_XX", Split::Train), ("1001_IOM_SAD_XX", Split::Train)];
    for (id, split) in expect {
        assert_eq!(split_of(id), split, "{id}");
    }
    assert_eq!(disjoint.out_name(), "cremad-actor-disjoint", "never the published split's folder");
    let record = disjoint.split_record().unwrap();
    assert_eq!(record.rule, SplitRule::ActorDisjoint);
    assert_eq!(record.actors[&Split::Test], [1010, 1020]);
    assert_eq!(record.actors[&Split::Train], [1001, 1041]);
    assert!(record.description.contains("multiple of 10"), "{}", record.description);

    // Only CREMA-D's clip names carry the actor.
    let ks = raw.path().join("ks");
    touch(&ks, "train/x.mp4");
    let e = DatasetKind::KineticsSounds.scan_with(&ks, SplitRule::ActorDisjoint).unwrap_err().to_string();
    assert!(e.contains("CREMA-D only"), "{e}");
}
