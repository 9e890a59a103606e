//! The dataset catalog: for each dataset, how to find clips, labels and splits under a raw root.
//!
//! Each dataset module turns the manifests (the shipped split/class lists, or the user's own copy
//! found in the raw root) into [`ManifestEntry`]s, then [`locate`] matches them against the files
//! on disk. What the manifest lists but the disk lacks is reported, never silently dropped.

mod ave;
pub mod cremad;
mod kinetics_sounds;
mod labels;
mod media_files;
#[cfg(test)]
mod properties;
pub mod synthetic;
mod vggsound;

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use ave::{segment_labels, AVE_BACKGROUND, AVE_SEGMENTS};
pub use media_files::MediaFiles;

use crate::preset::{AudioPreset, FramePreset, Preset};
use crate::Result;

/// The datasets the toolkit knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetKind {
    Cremad,
    KineticsSounds,
    Vggsound,
    Ave,
    Synthetic,
}

impl DatasetKind {
    pub const ALL: [DatasetKind; 5] = [Self::Cremad, Self::KineticsSounds, Self::Vggsound, Self::Ave, Self::Synthetic];

    /// The name used on the command line and as the output folder.
    pub fn name(self) -> &'static str {
        match self {
            Self::Cremad => "cremad",
            Self::KineticsSounds => "kinetics-sounds",
            Self::Vggsound => "vggsound",
            Self::Ave => "ave",
            Self::Synthetic => "synthetic",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Folder names under a raw root that hold this dataset (first match wins).
    fn folder_names(self) -> &'static [&'static str] {
        match self {
            Self::Cremad => &["CREMA-D", "crema-d", "cremad", "CREMAD"],
            Self::KineticsSounds => &["kinetics-sounds", "Kinetics-Sounds", "KineticsSounds", "kinetics_sounds", "KS"],
            Self::Vggsound => &["vggsound", "VGGSound", "VGGSOUND"],
            Self::Ave => &["AVE_Dataset", "ave", "AVE"],
            Self::Synthetic => &["synthetic"],
        }
    }

    /// The default preprocessing preset (design.md's table).
    pub fn default_preset(self) -> Preset {
        let audio = match self {
            Self::Cremad => AudioPreset::cremad_stft(),
            Self::KineticsSounds => AudioPreset::kaldi_fbank(),
            Self::Vggsound => AudioPreset::vggsound_stft(),
            Self::Ave => AudioPreset::psd_1004(),
            Self::Synthetic => AudioPreset::synthetic_stft(),
        };
        let frames = match self {
            Self::Ave => FramePreset { exact_frames: Some(AVE_SEGMENTS as u32), ..FramePreset::default() },
            Self::Synthetic => FramePreset { short_side: 64, ..FramePreset::default() },
            _ => FramePreset::default(),
        };
        Preset { audio, frames }
    }

    /// Where this dataset lives under `raw_root`, if it is there: a known folder name, or the
    /// raw root itself when it has the dataset's signature.
    pub fn find_root(self, raw_root: &Path) -> Option<PathBuf> {
        let named = self.folder_names().iter().map(|n| raw_root.join(n)).find(|p| p.is_dir());
        named.or_else(|| self.has_signature(raw_root).then(|| raw_root.to_path_buf()))
    }

    fn has_signature(self, dir: &Path) -> bool {
        match self {
            Self::Cremad => dir.join("VideoFlash").is_dir(),
            Self::Ave => dir.join("Annotations.txt").is_file() && dir.join("AVE").is_dir(),
            Self::Vggsound => dir.join("vggsound.csv").is_file(),
            Self::Synthetic => dir.join(synthetic::MANIFEST).is_file(),
            Self::KineticsSounds => false,
        }
    }

    /// Reads the manifests for this dataset: the user's copy in `dataset_root` where the dataset
    /// accepts one, else the lists shipped in this crate.
    pub fn manifest(self, dataset_root: Option<&Path>) -> Result<Manifest> {
        match self {
            Self::Cremad => cremad::manifest(),
            Self::KineticsSounds => kinetics_sounds::manifest(),
            Self::Vggsound => vggsound::manifest(dataset_root),
            Self::Ave => ave::manifest(dataset_root),
            Self::Synthetic => synthetic::manifest(
                dataset_root.ok_or_else(|| crate::Error::Invalid("the synthetic corpus has no shipped manifest; generate it first".into()))?,
            ),
        }
    }

    /// Manifest plus disk: the clips found, what is missing, what was rejected.
    pub fn scan(self, dataset_root: &Path) -> Result<Catalog> {
        self.scan_with(dataset_root, SplitRule::Published)
    }

    /// [`DatasetKind::scan`] with the clips split by `rule`.
    pub fn scan_with(self, dataset_root: &Path, rule: SplitRule) -> Result<Catalog> {
        let manifest = match (rule, self) {
            (SplitRule::Published, _) => self.manifest(Some(dataset_root))?,
            (SplitRule::ActorDisjoint, Self::Cremad) => cremad::actor_disjoint(self.manifest(Some(dataset_root))?),
            (SplitRule::ActorDisjoint, _) => {
                return Err(crate::Error::Invalid(format!("--split actor-disjoint is defined for CREMA-D only (its clip names carry the actor), not {self}")))
            }
        };
        let files = MediaFiles::scan(dataset_root)?;
        let mut catalog = locate(self, dataset_root, manifest, &files);
        catalog.split_rule = rule;
        Ok(catalog)
    }
}

impl fmt::Display for DatasetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A split of a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Val,
    Test,
}

impl Split {
    pub const ALL: [Split; 3] = [Split::Train, Split::Val, Split::Test];

    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
            Split::Test => "test",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "train" | "training" => Some(Split::Train),
            "val" | "valid" | "validation" => Some(Split::Val),
            "test" | "testing" => Some(Split::Test),
            _ => None,
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One clip as a manifest lists it, before looking at the disk.
#[derive(Debug, Clone, PartialEq)]
pub struct ManifestEntry {
    pub clip_id: String,
    pub split: Split,
    pub label: u32,
    /// Per-second labels (AVE only): `AVE_SEGMENTS` values, background = `AVE_BACKGROUND`.
    pub segment_labels: Option<Vec<u32>>,
    /// How to recognise this clip's files on disk.
    pub key: MediaKey,
}

/// How a manifest entry is matched to files on disk.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MediaKey {
    /// A file whose stem is exactly this (CREMA-D, AVE, synthetic).
    Stem(String),
    /// A YouTube clip: id plus start second (Kinetics-Sounds, VGGSound file naming varies).
    YouTube { id: String, start_s: u64 },
}

/// A manifest line that could not be used, with where it is and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rejected {
    pub source: String,
    pub reason: String,
}

/// The parsed manifests of one dataset.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub classes: Vec<String>,
    pub entries: Vec<ManifestEntry>,
    pub rejected: Vec<Rejected>,
}

impl Manifest {
    /// Number of entries per split.
    pub fn count(&self, split: Split) -> usize {
        self.entries.iter().filter(|e| e.split == split).count()
    }
}

/// A clip found on disk, ready to preprocess.
#[derive(Debug, Clone, PartialEq)]
pub struct ClipEntry {
    pub clip_id: String,
    pub split: Split,
    pub label: u32,
    pub label_name: String,
    /// Video file, relative to the dataset root.
    pub video: PathBuf,
    /// Separate audio file (CREMA-D `AudioWAV/`), relative to the dataset root.
    pub audio: Option<PathBuf>,
    pub segment_labels: Option<Vec<u32>>,
}

/// A clip the manifest lists but the disk lacks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Missing {
    pub clip_id: String,
    pub split: Split,
    pub reason: String,
}

/// Which train/test split a dataset's shards follow (`prepare-datasets --split`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SplitRule {
    /// The lists the dataset's reference code uses.
    #[default]
    Published,
    /// CREMA-D's clips split so that every actor is on one side ([`cremad::ACTOR_DISJOINT_RULE`]).
    ActorDisjoint,
}

impl SplitRule {
    pub fn name(self) -> &'static str {
        match self {
            Self::Published => "published",
            Self::ActorDisjoint => "actor-disjoint",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Published, Self::ActorDisjoint].into_iter().find(|r| r.name() == name)
    }
}

/// A split other than the published one: its rule, in words, and who is on each side (recorded
/// in `index.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitRecord {
    pub rule: SplitRule,
    pub description: String,
    /// The actors of each split's clips found on disk (CREMA-D).
    pub actors: std::collections::BTreeMap<Split, Vec<u32>>,
}

/// The result of scanning one dataset.
#[derive(Debug, Clone)]
pub struct Catalog {
    pub dataset: DatasetKind,
    pub root: PathBuf,
    pub classes: Vec<String>,
    pub clips: Vec<ClipEntry>,
    pub missing: Vec<Missing>,
    pub rejected: Vec<Rejected>,
    pub split_rule: SplitRule,
}

impl Catalog {
    /// The output folder's name: the dataset's, with the split rule's after it when it is not
    /// the published one (`cremad-actor-disjoint`), so the two never mix.
    pub fn out_name(&self) -> String {
        match self.split_rule {
            SplitRule::Published => self.dataset.name().to_owned(),
            rule => format!("{}-{}", self.dataset.name(), rule.name()),
        }
    }

    /// What the index records of a split other than the published one: the rule in words and
    /// the actors on each side (CREMA-D).
    pub fn split_record(&self) -> Option<SplitRecord> {
        if self.split_rule == SplitRule::Published {
            return None;
        }
        let mut actors: std::collections::BTreeMap<Split, Vec<u32>> = Default::default();
        for c in &self.clips {
            if let Some(a) = cremad::actor(&c.clip_id) {
                actors.entry(c.split).or_default().push(a);
            }
        }
        for v in actors.values_mut() {
            v.sort_unstable();
            v.dedup();
        }
        Some(SplitRecord { rule: self.split_rule, description: cremad::ACTOR_DISJOINT_RULE.to_owned(), actors })
    }
}

/// Matches manifest entries with files on disk.
pub fn locate(dataset: DatasetKind, root: &Path, manifest: Manifest, files: &MediaFiles) -> Catalog {
    let mut clips = Vec::new();
    let mut missing = Vec::new();
    for e in manifest.entries {
        let video = files.video(&e.key);
        let audio = match dataset {
            DatasetKind::Cremad => files.audio(&e.key),
            _ => None,
        };
        match video {
            Some(video) => clips.push(ClipEntry {
                label_name: manifest.classes[e.label as usize].clone(),
                clip_id: e.clip_id,
                split: e.split,
                label: e.label,
                video: video.to_path_buf(),
                audio: audio.map(Path::to_path_buf),
                segment_labels: e.segment_labels,
            }),
            None => missing.push(Missing { reason: format!("no video file for {} under {}", e.key, root.display()), clip_id: e.clip_id, split: e.split }),
        }
    }
    Catalog { dataset, root: root.to_path_buf(), classes: manifest.classes, clips, missing, rejected: manifest.rejected, split_rule: SplitRule::Published }
}

impl fmt::Display for MediaKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MediaKey::Stem(s) => write!(f, "'{s}'"),
            MediaKey::YouTube { id, start_s } => write!(f, "YouTube id '{id}' starting at {start_s} s"),
        }
    }
}

/// Parses `<ytid>_<start>`, `<ytid>_<start>_<end>` (seconds, any zero padding) and
/// `<ytid>_<start_ms>_<end_ms>` (VGGSound/SpecVQGAN) into a [`MediaKey::YouTube`].
/// YouTube ids are 11 characters and may themselves contain `_` and `-`.
pub fn parse_youtube_name(name: &str) -> Option<MediaKey> {
    let (id, rest) = if name.len() > 12 && name.as_bytes()[11] == b'_' && name.is_char_boundary(11) {
        (&name[..11], &name[12..])
    } else {
        let (id, rest) = name.split_once('_')?;
        (id, rest)
    };
    let nums: Vec<u64> = rest.split('_').map(|n| n.parse().ok()).collect::<Option<_>>()?;
    let start_s = match nums.as_slice() {
        [start] => *start,
        // A span of a minute or more cannot be a clip length in seconds: it is milliseconds.
        [start, end] if end.saturating_sub(*start) >= 60 => start / 1000,
        [start, _] => *start,
        _ => return None,
    };
    Some(MediaKey::YouTube { id: id.to_owned(), start_s })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn youtube_names() {
        let yt = |id: &str, s| Some(MediaKey::YouTube { id: id.into(), start_s: s });
        let cases = [
            ("--4-0ihtnBU_000058_000068", yt("--4-0ihtnBU", 58)),
            ("-3Mwkq-7TV4_2", yt("-3Mwkq-7TV4", 2)),
            ("glLQrEijrKg_000300", yt("glLQrEijrKg", 300)),
            ("---g-f_I2yQ_1000_11000", yt("---g-f_I2yQ", 1)),
            ("-9_5_2i4igQ_000030", yt("-9_5_2i4igQ", 30)),
            ("noyoutubeid", None),
            ("abcdefghijk_x", None),
        ];
        for (name, want) in cases {
            assert_eq!(parse_youtube_name(name), want, "{name}");
        }
    }

    #[test]
    fn kinds_round_trip_names() {
        for k in DatasetKind::ALL {
            assert_eq!(DatasetKind::from_name(k.name()), Some(k));
        }
    }
}
