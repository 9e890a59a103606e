//! AVE: `AVE/<VideoID>.mp4`, `Annotations.txt` (`Category&VideoID&Quality&StartTime&EndTime`,
//! with or without a header line) and `{train,val,test}Set.txt` in the same format. The user's
//! copies in the dataset root win over the shipped ones. 28 classes, alphabetical; background is
//! 28. Every sample is 10 one-second segments; the event covers segments [start, end).

use std::collections::{HashMap, HashSet};
use std::path::Path;

use super::labels::{class_id, Collector};
use super::{Manifest, MediaKey, Split};
use crate::error::io;
use crate::manifest_text::lines;
use crate::{Error, Result};

/// Label id of the background (no event) segment class.
pub const AVE_BACKGROUND: u32 = 28;
/// Segments (seconds) per AVE sample.
pub const AVE_SEGMENTS: usize = 10;

const CATEGORIES: &str = include_str!("../../manifests/ave/categories.txt");
const SHIPPED: [(&str, &str); 4] = [
    ("Annotations.txt", include_str!("../../manifests/ave/Annotations.txt")),
    ("trainSet.txt", include_str!("../../manifests/ave/trainSet.txt")),
    ("valSet.txt", include_str!("../../manifests/ave/valSet.txt")),
    ("testSet.txt", include_str!("../../manifests/ave/testSet.txt")),
];

/// Per-second labels of an event of class `label` over seconds [start, end).
pub fn segment_labels(label: u32, start: u32, end: u32) -> Vec<u32> {
    (0..AVE_SEGMENTS as u32).map(|s| if s >= start && s < end { label } else { AVE_BACKGROUND }).collect()
}

/// One parsed annotation row.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Row {
    category: String,
    video_id: String,
    start: u32,
    end: u32,
}

fn parse_rows(file: &str, text: &str, out: &mut Collector) -> Vec<(usize, Row)> {
    let mut rows = Vec::new();
    for line in lines(text) {
        let f: Vec<&str> = line.text.split('&').map(str::trim).collect();
        if line.number == 1 && f.first().is_some_and(|c| c.eq_ignore_ascii_case("category")) {
            continue; // the header of the dataset zip's copy
        }
        if f.len() != 5 {
            out.reject(file, line.number, "expected `Category&VideoID&Quality&StartTime&EndTime`");
            continue;
        }
        match (f[3].parse::<u32>(), f[4].parse::<u32>()) {
            (Ok(start), Ok(end)) if start <= end && end as usize <= AVE_SEGMENTS => {
                rows.push((line.number, Row { category: f[0].into(), video_id: f[1].into(), start, end }))
            }
            _ => out.reject(file, line.number, format!("bad event span {:?}..{:?} (need 0 <= start <= end <= 10)", f[3], f[4])),
        }
    }
    rows
}

fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_owned()
}

pub(super) fn manifest(root: Option<&Path>) -> Result<Manifest> {
    let mut classes: Vec<String> = lines(CATEGORIES).map(|l| l.text.trim().to_owned()).collect();
    classes.sort();
    let mut texts = Vec::new();
    for (name, shipped) in SHIPPED {
        let user = root.map(|r| r.join(name)).filter(|p| p.is_file());
        texts.push(match user {
            Some(p) => (p.display().to_string(), std::fs::read_to_string(&p).map_err(io(&p))?),
            None => (format!("ave/{name}"), shipped.to_owned()),
        });
    }
    let mut out = Collector::default();
    let annotations = parse_rows(&texts[0].0, &texts[0].1, &mut out);
    let mut per_video: HashMap<String, usize> = HashMap::new();
    for (_, r) in &annotations {
        *per_video.entry(r.video_id.clone()).or_default() += 1;
    }
    let mut split_of: HashMap<Row, Split> = HashMap::new();
    for ((file, text), split) in texts[1..].iter().zip([Split::Train, Split::Val, Split::Test]) {
        for (_, row) in parse_rows(file, text, &mut out) {
            split_of.insert(row, split);
        }
    }
    let mut seen = HashSet::new();
    let file = texts[0].0.clone();
    for (line, row) in annotations {
        let Some(&split) = split_of.get(&row) else {
            out.reject(&file, line, format!("{} is in no split file", row.video_id));
            continue;
        };
        let Some(label) = class_id(&classes, &row.category) else {
            out.reject(&file, line, format!("unknown category {:?}", row.category));
            continue;
        };
        // A video with two annotated events becomes two samples with distinct ids.
        let clip_id = if per_video[&row.video_id] > 1 { format!("{}__{}", row.video_id, slug(&row.category)) } else { row.video_id.clone() };
        if !seen.insert(clip_id.clone()) {
            out.reject(&file, line, format!("duplicate annotation {clip_id}"));
            continue;
        }
        let segments = segment_labels(label, row.start, row.end);
        out.push(&file, line, clip_id, split, label, Some(segments), MediaKey::Stem(row.video_id));
    }
    if out.entries.is_empty() {
        return Err(Error::Manifest { file, line: 0, reason: "no usable annotation".into() });
    }
    Ok(Manifest { classes, entries: out.entries, rejected: out.rejected })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments() {
        let cases = [
            ((3, 5, 10), vec![28, 28, 28, 28, 28, 3, 3, 3, 3, 3]),
            ((0, 0, 10), vec![0; 10]),
            ((7, 6, 8), vec![28, 28, 28, 28, 28, 28, 7, 7, 28, 28]),
            ((7, 0, 0), vec![28; 10]),
        ];
        for ((label, s, e), want) in cases {
            assert_eq!(segment_labels(label, s, e), want);
        }
    }

    #[test]
    fn slugs() {
        assert_eq!(slug("Male speech, man speaking"), "male-speech-man-speaking");
        assert_eq!(slug("Frying (food)"), "frying-food");
    }
}
