//! VGGSound: `<ytid>_<start:06d>.mp4`, `<ytid>_<start>.mp4` or `<ytid>_<ms>_<ms>.mp4`; labels and
//! splits from the user's `vggsound.csv` (`ytid,start,label,split`, no header) when the dataset
//! root has one, else the shipped test list (`<ytid>_<start:06d>.mp4,label`, 15,446 rows).
//! 309 classes, alphabetical.

use std::path::Path;

use super::labels::{class_id, Collector};
use super::{Manifest, MediaKey, Split};
use crate::error::io;
use crate::manifest_text::{lines, split_csv};
use crate::Result;

const STAT: &str = include_str!("../../manifests/vggsound/stat.csv");
const TEST: &str = include_str!("../../manifests/vggsound/test.csv");
pub(super) const USER_CSV: &str = "vggsound.csv";

pub(super) fn classes() -> Vec<String> {
    let mut classes: Vec<String> =
        lines(STAT).filter_map(|l| split_csv(l.text).ok()).filter_map(|f| f.into_iter().next()).map(|s| s.trim().to_owned()).collect();
    classes.sort();
    classes.dedup();
    classes
}

pub(super) fn manifest(root: Option<&Path>) -> Result<Manifest> {
    let classes = classes();
    let mut out = Collector::default();
    let user_csv = root.map(|r| r.join(USER_CSV)).filter(|p| p.is_file());
    if let Some(path) = user_csv {
        let text = std::fs::read_to_string(&path).map_err(io(&path))?;
        let file = path.display().to_string();
        for line in lines(&text) {
            let f = match split_csv(line.text) {
                Ok(f) if f.len() == 4 => f,
                _ => {
                    out.reject(&file, line.number, "expected 4 fields `ytid,start_seconds,label,split`");
                    continue;
                }
            };
            let (id, label_name) = (f[0].trim(), f[2].trim());
            let (Ok(start), Some(split)) = (f[1].trim().parse::<u64>(), Split::from_name(&f[3])) else {
                out.reject(&file, line.number, "start must be whole seconds and split train/test");
                continue;
            };
            let Some(label) = class_id(&classes, label_name) else {
                out.reject(&file, line.number, format!("unknown label {label_name:?}"));
                continue;
            };
            let key = MediaKey::YouTube { id: id.to_owned(), start_s: start };
            out.push(&file, line.number, format!("{id}_{start:06}"), split, label, None, key);
        }
    } else {
        let file = "vggsound/test.csv";
        for line in lines(TEST) {
            let f = match split_csv(line.text) {
                Ok(f) if f.len() == 2 => f,
                _ => {
                    out.reject(file, line.number, "expected 2 fields `<ytid>_<start>.mp4,label`");
                    continue;
                }
            };
            let stem = f[0].trim().trim_end_matches(".mp4");
            let Some(key @ MediaKey::YouTube { .. }) = super::parse_youtube_name(stem) else {
                out.reject(file, line.number, format!("{stem:?} is not `<youtube id>_<start>`"));
                continue;
            };
            let Some(label) = class_id(&classes, f[1].trim()) else {
                out.reject(file, line.number, format!("unknown label {:?}", f[1]));
                continue;
            };
            out.push(file, line.number, stem.to_owned(), Split::Test, label, None, key);
        }
    }
    Ok(Manifest { classes, entries: out.entries, rejected: out.rejected })
}
