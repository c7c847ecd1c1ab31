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
}

/// The result type of the store.
pub type Result<T> = std::result::Result<T, Error>;
