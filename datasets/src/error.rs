use std::path::PathBuf;

/// Every failure of this crate names the file (or manifest line) and the reason.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{file}:{line}: {reason}")]
    Manifest { file: String, line: usize, reason: String },
    #[error("invalid clip id {id:?}: {reason}")]
    ClipId { id: String, reason: &'static str },
    #[error("{}: {source}", path.display())]
    Parquet { path: PathBuf, source: parquet::errors::ParquetError },
    #[error("{}: {source}", path.display())]
    Arrow { path: PathBuf, source: arrow::error::ArrowError },
    #[error("{}: {reason}", path.display())]
    Shard { path: PathBuf, reason: String },
    #[error("{}: {source}", path.display())]
    Json { path: PathBuf, source: serde_json::Error },
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { path, source }
}
