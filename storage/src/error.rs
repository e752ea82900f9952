use object_store::path::Path;

/// Errors of the storage layer. Every variant names the object it concerns.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid store url {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },

    #[error("object store request failed for {path}: {source}")]
    Store {
        path: String,
        #[source]
        source: object_store::Error,
    },

    #[error("object {path} is not in the store")]
    Missing { path: String },

    #[error("corrupt object {path} at byte {offset}: {reason}")]
    Corrupt { path: String, offset: u64, reason: String },

    #[error("cache error: {0}")]
    Cache(String),
}

impl Error {
    pub(crate) fn store(path: &Path, source: object_store::Error) -> Self {
        match source {
            object_store::Error::NotFound { .. } => Error::Missing { path: path.to_string() },
            source => Error::Store {
                path: path.to_string(),
                source,
            },
        }
    }

    pub(crate) fn corrupt(path: &Path, offset: u64, reason: impl Into<String>) -> Self {
        Error::Corrupt {
            path: path.to_string(),
            offset,
            reason: reason.into(),
        }
    }

    /// True when the object is not in the store (deleted, or never written): retrying will
    /// not bring it back.
    pub fn is_missing(&self) -> bool {
        matches!(self, Error::Missing { .. })
    }

    /// True when the error says the bytes we read are not what we wrote (as opposed to an
    /// unavailable store): retrying will not help.
    pub fn is_corrupt(&self) -> bool {
        matches!(self, Error::Corrupt { .. })
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
