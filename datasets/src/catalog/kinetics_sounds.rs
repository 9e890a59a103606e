//! Kinetics-Sounds: `<ytid>_<s:06d>_<e:06d>.mp4` flat or in per-class folders; the OGM-GE lists
//! `name,10,label_id` (test names `<ytid>_<start>`); 31 classes, alphabetical.

use super::labels::Collector;
use super::{parse_youtube_name, Manifest, Split};
use crate::manifest_text::{lines, split_csv};
use crate::{Error, Result};

const CLASSES: &str = include_str!("../../manifests/kinetics-sounds/class_index.txt");
const LISTS: [(Split, &str, &str); 2] = [
    (Split::Train, "kinetics-sounds/ogm-ge_my_train.txt", include_str!("../../manifests/kinetics-sounds/ogm-ge_my_train.txt")),
    (Split::Test, "kinetics-sounds/ogm-ge_my_test.txt", include_str!("../../manifests/kinetics-sounds/ogm-ge_my_test.txt")),
];

pub(super) fn manifest() -> Result<Manifest> {
    parse(CLASSES, &LISTS)
}

/// The manifest from `class_index.txt` and the `(split, file name, text)` lists.
pub(super) fn parse(class_index: &str, lists: &[(Split, &str, &str)]) -> Result<Manifest> {
    let mut classes = Vec::new();
    for line in lines(class_index) {
        let (idx, name) = line.text.split_once(',').ok_or_else(|| bad(line.number, "expected `idx,name`"))?;
        if idx.trim().parse::<usize>().ok() != Some(classes.len()) {
            return Err(bad(line.number, "class indices must run 0, 1, 2, ..."));
        }
        classes.push(name.trim().to_owned());
    }
    let mut out = Collector::default();
    for &(split, file, text) in lists {
        for line in lines(text) {
            let fields = match split_csv(line.text) {
                Ok(f) if f.len() == 3 => f,
                _ => {
                    out.reject(file, line.number, "expected 3 fields `name,10,label_id`");
                    continue;
                }
            };
            let name = fields[0].trim();
            let label = match fields[2].trim().parse::<u32>() {
                Ok(l) if (l as usize) < classes.len() => l,
                _ => {
                    out.reject(file, line.number, format!("label {:?} is not a class index", fields[2]));
                    continue;
                }
            };
            let Some(key) = parse_youtube_name(name) else {
                out.reject(file, line.number, format!("{name:?} is not `<youtube id>_<start>[_<end>]`"));
                continue;
            };
            out.push(file, line.number, name.to_owned(), split, label, None, key);
        }
    }
    Ok(Manifest { classes, entries: out.entries, rejected: out.rejected })
}

fn bad(line: usize, reason: &str) -> Error {
    Error::Manifest { file: "kinetics-sounds/class_index.txt".into(), line, reason: reason.into() }
}
