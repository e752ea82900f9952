//! What can be wrong with a frame.

/// A malformed frame: the connection it came on is to be closed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    TooLarge { len: usize, max: usize },

    #[error("frame of {len} bytes is shorter than its {needed}-byte header")]
    Truncated { len: usize, needed: usize },

    #[error("unknown serialize type {0}")]
    SerializeType(u8),

    #[error("malformed JSON header: {0}")]
    Json(#[from] serde_json::Error),

    #[error("malformed header: {0}")]
    Header(&'static str),

    #[error("malformed message: {0}")]
    Message(&'static str),

    #[error("compressed body does not inflate: {0}")]
    Inflate(#[source] std::io::Error),
}

pub type Result<T> = std::result::Result<T, Error>;
