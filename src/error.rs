//! The library's one error type. Binaries add file names and context with `anyhow`.

/// Everything that can go wrong in the inference library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A model or index file whose bytes do not follow the format.
    #[error("{what}: {reason}")]
    Format { what: &'static str, reason: String },

    /// A file written by a newer or older, incompatible version of the format.
    #[error("{what}: format version {found} is not supported (this build reads version {supported})")]
    Version { what: &'static str, found: u32, supported: u32 },

    /// An index built with a different model than the one used to query it.
    #[error(
        "the index was built with model {index} but the loaded model is {model}; rebuild the index with this model"
    )]
    ModelMismatch { index: String, model: String },

    /// The stored checksum does not match the bytes: the file is damaged.
    #[error(
        "{what}: checksum mismatch (stored {stored:08x}, computed {computed:08x}); the file is corrupt or truncated"
    )]
    Checksum { what: &'static str, stored: u32, computed: u32 },

    /// A query the engine refuses to answer, with the reason.
    #[error("invalid query: {0}")]
    Query(String),

    /// Bad arguments from a caller (dimensions, k, dtype names...).
    #[error("invalid argument: {0}")]
    Invalid(String),

    /// The GPU backend could not start or failed mid-way; callers fall back
    /// to the CPU with this message.
    #[error("gpu: {0}")]
    Gpu(String),

    #[error("tokenizer: {0}")]
    Tokenizer(String),

    #[cfg(feature = "encoder")]
    #[error("model: {0}")]
    Model(#[from] candle_core::Error),

    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn format(what: &'static str, reason: impl Into<String>) -> Self {
        Error::Format { what, reason: reason.into() }
    }
}
