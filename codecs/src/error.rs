//! The crate's one error type.

/// What went wrong while decoding, processing or encoding audio.
///
/// Every variant says what the caller should do next. None of them is a bug in the input handling:
/// input never panics, it ends in one of these.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input holds no bytes, or no audio samples at all. Reject the upload.
    #[error("empty input: {0}")]
    Empty(String),
    /// The container or codec is not one we decode. Reject the upload; naming the format helps
    /// the artist convert it.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The data is damaged beyond what skipping packets can repair. Reject the upload.
    #[error("corrupt data{}: {detail}", at_seconds.map(|s| format!(" at {s:.3} s")).unwrap_or_default())]
    Corrupt {
        /// Where in the media the damage was found, when known.
        at_seconds: Option<f64>,
        /// What the decoder reported.
        detail: String,
    },
    /// The input exceeds a configured limit (duration, channels, tag size). Reject the upload.
    #[error("limit exceeded: {0}")]
    Limit(String),
    /// An encoder refused its configuration or its input. A bug or an unsupported parameter:
    /// report it, do not retry with the same input.
    #[error("encoder: {0}")]
    Encoder(String),
    /// Reading the source failed. Retry if the source is transient (network storage).
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// Whether the error is a verdict on the input's bytes (not audio, nothing decodable, over a
    /// limit), so retrying the same bytes cannot succeed. I/O and encoder errors are not: they may
    /// pass on another attempt or another build.
    pub fn is_input_fault(&self) -> bool {
        matches!(
            self,
            Error::Empty(_) | Error::Unsupported(_) | Error::Corrupt { .. } | Error::Limit(_)
        )
    }
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, Error>;
