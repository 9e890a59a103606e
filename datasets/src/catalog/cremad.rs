//! CREMA-D: `VideoFlash/<clip>.flv` (+ `AudioWAV/<clip>.wav`, preferred for audio), the OGM-GE
//! train/test lists, classes in the reference order NEU, HAP, SAD, FEA, DIS, ANG; or the same
//! clips split by actor (`prepare-datasets --split actor-disjoint`, [`ACTOR_DISJOINT_RULE`]).

use super::labels::{class_id, Collector};
use super::{Manifest, MediaKey, Split};
use crate::manifest_text::{lines, split_csv};
use crate::Result;

const STAT: &str = include_str!("../../manifests/cremad/ogm-ge_stat.csv");
const LISTS: [(Split, &str, &str); 2] = [
    (Split::Train, "cremad/ogm-ge_train.csv", include_str!("../../manifests/cremad/ogm-ge_train.csv")),
    (Split::Test, "cremad/ogm-ge_test.csv", include_str!("../../manifests/cremad/ogm-ge_test.csv")),
];

pub(super) fn manifest() -> Result<Manifest> {
    parse(STAT, &LISTS)
}

/// The actor-disjoint split, in words (the index and the dataset card say it).
pub const ACTOR_DISJOINT_RULE: &str = "every clip of both OGM-GE lists (7,442), split by actor: the actors whose ID is a multiple of 10 \
     (1010, 1020, ..., 1090: 4 female, 5 male; 738 clips) are test, the other 82 train. The OGM-GE lists put every one of the 91 \
     actors on both sides.";

/// The actor of a CREMA-D clip (`ActorID_Sentence_Emotion_Level`).
pub fn actor(clip_id: &str) -> Option<u32> {
    clip_id.split('_').next()?.parse().ok()
}

/// Whether an actor is on the test side of the actor-disjoint split.
pub fn is_test_actor(actor: u32) -> bool {
    actor.is_multiple_of(10)
}

/// The published manifest with every clip moved to its actor's side.
pub(super) fn actor_disjoint(mut m: Manifest) -> Manifest {
    for e in &mut m.entries {
        e.split = if actor(&e.clip_id).is_some_and(is_test_actor) { Split::Test } else { Split::Train };
    }
    m
}

/// The manifest from the class order (`stat.csv`) and the `(split, file name, text)` lists.
pub(super) fn parse(stat: &str, lists: &[(Split, &str, &str)]) -> Result<Manifest> {
    let classes: Vec<String> = lines(stat).map(|l| l.text.trim().to_owned()).collect();
    let mut out = Collector::default();
    for &(split, file, text) in lists {
        for line in lines(text) {
            let fields = match split_csv(line.text) {
                Ok(f) if f.len() == 2 => f,
                Ok(f) => {
                    out.reject(file, line.number, format!("expected 2 fields `clip,EMO`, found {}", f.len()));
                    continue;
                }
                Err(e) => {
                    out.reject(file, line.number, e);
                    continue;
                }
            };
            let (clip, emotion) = (fields[0].trim(), fields[1].trim());
            let Some(label) = class_id(&classes, emotion) else {
                out.reject(file, line.number, format!("unknown emotion {emotion:?}"));
                continue;
            };
            // ActorID_Sentence_Emotion_Level: the name carries the label too; they must agree.
            if clip.split('_').nth(2) != Some(emotion) {
                out.reject(file, line.number, format!("clip name {clip:?} disagrees with label {emotion:?}"));
                continue;
            }
            out.push(file, line.number, clip.to_owned(), split, label, None, MediaKey::Stem(clip.to_owned()));
        }
    }
    Ok(Manifest { classes, entries: out.entries, rejected: out.rejected })
}
