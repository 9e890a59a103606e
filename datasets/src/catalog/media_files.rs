//! One walk over a dataset root, indexing media files by stem and by YouTube key.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::{parse_youtube_name, MediaKey};
use crate::error::io;
use crate::Result;

const VIDEO_EXTENSIONS: &[&str] = &["mp4", "flv", "mkv", "webm", "avi", "mov", "m4v"];
const AUDIO_EXTENSIONS: &[&str] = &["wav", "flac", "mp3", "m4a", "ogg"];
/// Deep enough for `<root>/<split>/<class>/<clip>.mp4`.
const MAX_DEPTH: usize = 4;

/// The media files under a dataset root, relative to it.
#[derive(Debug, Default)]
pub struct MediaFiles {
    videos: HashMap<MediaKey, PathBuf>,
    audios: HashMap<MediaKey, PathBuf>,
}

impl MediaFiles {
    /// Walks `root` (hidden entries skipped, sorted so the first of two equal stems is stable).
    pub fn scan(root: &Path) -> Result<Self> {
        let mut files = Self::default();
        files.walk(root, Path::new(""), 0)?;
        Ok(files)
    }

    fn walk(&mut self, root: &Path, rel: &Path, depth: usize) -> Result<()> {
        let dir = root.join(rel);
        let mut entries: Vec<_> = std::fs::read_dir(&dir)
            .map_err(io(&dir))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name())
            .filter(|n| !n.to_string_lossy().starts_with('.'))
            .collect();
        entries.sort();
        for name in entries {
            let rel_path = rel.join(&name);
            let path = root.join(&rel_path);
            if path.is_dir() {
                if depth < MAX_DEPTH {
                    self.walk(root, &rel_path, depth + 1)?;
                }
            } else {
                self.add(rel_path);
            }
        }
        Ok(())
    }

    /// Adds one file (path relative to the root).
    pub fn add(&mut self, rel_path: PathBuf) {
        let ext = rel_path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        let Some(stem) = rel_path.file_stem().and_then(|s| s.to_str()).map(str::to_owned) else { return };
        let map = match ext.as_deref() {
            Some(e) if VIDEO_EXTENSIONS.contains(&e) => &mut self.videos,
            Some(e) if AUDIO_EXTENSIONS.contains(&e) => &mut self.audios,
            _ => return,
        };
        if let Some(yt) = parse_youtube_name(&stem) {
            map.entry(yt).or_insert_with(|| rel_path.clone());
        }
        map.entry(MediaKey::Stem(stem)).or_insert(rel_path);
    }

    pub fn video(&self, key: &MediaKey) -> Option<&Path> {
        self.videos.get(key).map(PathBuf::as_path)
    }

    pub fn audio(&self, key: &MediaKey) -> Option<&Path> {
        self.audios.get(key).map(PathBuf::as_path)
    }

    pub fn video_count(&self) -> usize {
        self.videos.keys().filter(|k| matches!(k, MediaKey::Stem(_))).count()
    }
}
