//! The fields several resources share, checked the same way everywhere: titles, descriptions,
//! visibility, and the ETag of a versioned record.

use crate::http::problem::Problem;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Public or private.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    /// Anyone with an account may read and play it.
    Public,
    /// Its owner and admins only.
    Private,
}

impl Visibility {
    /// The visibility of a playlist whose `public` flag is this.
    pub(crate) fn of(public: bool) -> Visibility {
        if public {
            Visibility::Public
        } else {
            Visibility::Private
        }
    }
}

/// The strong ETag of a record at `version`.
pub(crate) fn etag(version: i64) -> String {
    format!("\"v{version}\"")
}

/// A title: trimmed, 1 to 200 characters, no control characters.
pub(crate) fn check_title(t: &str) -> Result<String, Problem> {
    let t = t.trim();
    if t.chars().any(char::is_control) {
        return Err(Problem::unprocessable(
            "invalid-field",
            "title must not contain control characters",
        ));
    }
    if t.is_empty() || t.chars().count() > 200 {
        return Err(Problem::unprocessable(
            "invalid-field",
            "title must be 1 to 200 characters",
        ));
    }
    Ok(t.to_owned())
}

/// A description: at most 5 000 characters, no NUL.
pub(crate) fn check_description(d: &str) -> Result<String, Problem> {
    if d.contains('\0') {
        return Err(Problem::unprocessable(
            "invalid-field",
            "description must not contain NUL characters",
        ));
    }
    if d.chars().count() > 5000 {
        return Err(Problem::unprocessable(
            "invalid-field",
            "description must be at most 5000 characters",
        ));
    }
    Ok(d.to_owned())
}
