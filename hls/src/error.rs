//! The crate's one error type.

/// What can go wrong while packaging.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A value does not fit the field the format gives it (a sample larger than 4 GiB, more
    /// samples than a `trun` can list, a codec configuration of the wrong size). The caller passed
    /// inconsistent data: fix the input, do not retry.
    #[error("does not fit the format: {0}")]
    Overflow(String),
    /// Stored boxes do not parse (a box runs past its parent, a required box is missing). The
    /// object is damaged or not ours: do not serve it.
    #[error("malformed ISO BMFF: {0}")]
    Malformed(String),
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, Error>;
