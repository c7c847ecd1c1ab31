//! The store's one error type.

/// Store errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The database failed or is unreachable. Retry later; answer 503.
    #[error("metadata store: {0}")]
    Database(#[from] sqlx::Error),
    /// Migrations failed at start-up. Fix the database.
    #[error("metadata store migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored value is malformed: a bug or a hand-edited row.
    #[error("metadata store: corrupt row: {0}")]
    Corrupt(String),
    /// Another channel has this slug. Choose another; answer 409.
    #[error("the slug is taken by another channel")]
    SlugTaken,
}

/// A unique violation (the one unique column a channel write can break is its slug) as
/// [`Error::SlugTaken`].
pub(crate) fn slug_taken(e: sqlx::Error) -> Error {
    match e.as_database_error() {
        Some(d) if d.is_unique_violation() => Error::SlugTaken,
        _ => Error::Database(e),
    }
}

/// The result type of the store.
pub type Result<T> = std::result::Result<T, Error>;
