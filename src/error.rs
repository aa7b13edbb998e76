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

/// `x` written for an error message without core's float formatting, which
/// is 15 KB of the light wasm (7 KB gzip) when any message formats a float:
/// up to 6 decimals, trailing zeros dropped; NaN, inf, and beyond +-1e9 a bound.
pub(crate) fn show_f32(x: f32) -> String {
    let sign = if x.is_sign_negative() { "-" } else { "" };
    match x.abs() {
        a if a.is_nan() => "NaN".into(),
        a if a.is_infinite() => format!("{sign}inf"),
        a if a >= 1e9 => format!("{sign}1e9 or beyond"),
        a => {
            let micro = (a as f64 * 1e6 + 0.5) as u64;
            let frac = format!("{:06}", micro % 1_000_000);
            let frac = frac.trim_end_matches('0');
            let sign = if micro == 0 { "" } else { sign };
            match frac {
                "" => format!("{sign}{}", micro / 1_000_000),
                f => format!("{sign}{}.{f}", micro / 1_000_000),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::show_f32;

    #[test]
    fn floats_read_as_rust_writes_them_within_six_decimals() {
        for (x, want) in [
            (0.0, "0"),
            (-0.0, "0"),
            (1.0, "1"),
            (1.5, "1.5"),
            (-0.25, "-0.25"),
            (0.1, "0.1"),
            (1.2345678, "1.234568"),
            (123456.5, "123456.5"),
            (-3e-7, "0"),
            (2e9, "1e9 or beyond"),
            (-2e9, "-1e9 or beyond"),
            (f32::INFINITY, "inf"),
            (f32::NEG_INFINITY, "-inf"),
            (f32::NAN, "NaN"),
        ] {
            assert_eq!(show_f32(x), want, "{x}");
        }
    }
}
