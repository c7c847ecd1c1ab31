//! Request-body helpers shared by the control API: the 413 and the lingering drain for refused
//! bodies, JSON bodies read with errors in the request's own terms, and pagination.

use super::problem::Problem;
use axum::http::StatusCode;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::time::Duration;
use utoipa::IntoParams;

pub(super) fn too_large(limit: u64) -> Problem {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "upload-too-large",
        "Upload too large",
        format!("uploads are limited to {limit} bytes"),
    )
}

/// How much of an over-limit body is read and discarded before answering 413.
pub(super) const DRAIN_BYTES: u64 = 16 << 20;

/// Reads and discards up to [`DRAIN_BYTES`] of a refused body, for at most five seconds. Closing a
/// socket with unread data makes the kernel send a reset, which can destroy the 413 before the
/// client reads it (the reason for nginx's lingering close).
pub(super) async fn drain<E>(body: impl Stream<Item = Result<Bytes, E>> + Unpin) {
    let mut body = body;
    let mut read = 0u64;
    let deadline = tokio::time::sleep(Duration::from_secs(5));
    tokio::pin!(deadline);
    while read <= DRAIN_BYTES {
        tokio::select! {
            chunk = body.next() => match chunk {
                Some(Ok(c)) => read += c.len() as u64,
                _ => return,
            },
            _ = &mut deadline => return,
        }
    }
}

/// Pagination.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct ListQuery {
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl ListQuery {
    /// The page size, checked.
    pub fn limit(&self) -> Result<i64, Problem> {
        let limit = self.limit.unwrap_or(50);
        if !(1..=200).contains(&limit) {
            return Err(Problem::bad_request("limit must be between 1 and 200"));
        }
        Ok(limit)
    }

    /// Cuts the `limit + 1` rows a query fetched down to one page, with the cursor of the next
    /// page when there is one.
    pub fn page<T>(
        mut rows: Vec<T>,
        limit: i64,
        id: impl Fn(&T) -> String,
    ) -> (Vec<T>, Option<String>) {
        let more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        let next = if more { rows.last().map(id) } else { None };
        (rows, next)
    }

    /// The order a list asks for: `sort` among `allowed` (`date` when absent), and `order`
    /// (descending by default, but ascending by title).
    pub fn order(
        sort: Option<&str>,
        order: Option<&str>,
        allowed: &[crate::store::TrackSort],
    ) -> Result<(crate::store::TrackSort, bool), Problem> {
        use crate::store::TrackSort;
        let name = |s: &TrackSort| match s {
            TrackSort::Date => "date",
            TrackSort::Title => "title",
            TrackSort::Duration => "duration",
            TrackSort::Plays => "plays",
        };
        let asked = sort.unwrap_or("date");
        let Some(&sort) = allowed.iter().find(|s| name(s) == asked) else {
            let names: Vec<&str> = allowed.iter().map(name).collect();
            let (last, first) = names.split_last().unwrap_or((&"date", &[]));
            return Err(Problem::bad_request(format!(
                "sort is {} or {last}",
                first.join(", ")
            )));
        };
        let descending = match order {
            None => sort != TrackSort::Title,
            Some("desc") => true,
            Some("asc") => false,
            Some(_) => return Err(Problem::bad_request("order is asc or desc")),
        };
        Ok((sort, descending))
    }

    /// A page of rows read by position from `offset`, one more than `limit` asked for to learn
    /// whether another page exists; its next cursor is `o<offset>`.
    pub fn page_at<T>(mut rows: Vec<T>, limit: i64, offset: i64) -> (Vec<T>, Option<String>) {
        let more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        (rows, more.then(|| format!("o{}", offset + limit)))
    }

    /// The position a cursor of an order other than newest first names: `o<offset>`.
    pub fn offset(&self) -> Result<i64, Problem> {
        match self.cursor.as_deref() {
            None | Some("") => Ok(0),
            Some(c) => c
                .strip_prefix('o')
                .and_then(|n| n.parse::<i64>().ok())
                .filter(|n| *n >= 0)
                .ok_or_else(|| Problem::bad_request("cursor is not one this server gave")),
        }
    }

    /// The cursor, parsed as the id type it was made from.
    pub fn cursor<T: std::str::FromStr>(&self) -> Result<Option<T>, Problem> {
        self.cursor
            .as_deref()
            .map(|c| {
                c.parse::<T>()
                    .map_err(|_| Problem::bad_request("cursor is not one this server issued"))
            })
            .transpose()
    }
}

/// Reads a JSON body, or a 400 that names the field and what it must be, in the request's own
/// terms (axum's `Json` would answer in plain text and in serde's words).
pub(super) fn json_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    let bytes = if bytes.is_empty() { b"{}" } else { bytes };
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        Problem::bad_request(match inner.classify() {
            serde_json::error::Category::Data => describe(&inner.to_string(), &path),
            _ => format!(
                "the body is not valid JSON (line {}, column {})",
                inner.line(),
                inner.column()
            ),
        })
    })
}

/// serde's message about a field, said in the request's terms: which field, and what it must be.
pub(super) fn describe(message: &str, path: &str) -> String {
    // serde_json appends the position; the field's name says more.
    let message = message.rsplit_once(" at line ").map_or(message, |(m, _)| m);
    let field = if path.is_empty() || path == "." {
        "the body".to_string()
    } else {
        format!("`{path}`")
    };
    if let Some(rest) = message.strip_prefix("unknown field ") {
        let (name, expected) = rest.split_once(", expected ").unwrap_or((rest, ""));
        return if expected.is_empty() {
            format!("{name} is not a field of this request")
        } else {
            format!("{name} is not a field of this request (it takes {expected})")
        };
    }
    if let Some(name) = message.strip_prefix("missing field ") {
        return format!("{name} is required");
    }
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = message.strip_prefix(prefix) {
            if let Some((found, expected)) = rest.split_once(", expected ") {
                return format!("{field} must be {expected}, not {found}");
            }
        }
    }
    format!("{field}: {message}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Sample {
        title: String,
        track_ids: Option<Vec<String>>,
    }

    fn detail(json: &str) -> String {
        json_body::<Sample>(json.as_bytes()).unwrap_err().detail
    }

    #[test]
    fn body_errors_name_the_field_in_the_requests_terms() {
        assert_eq!(
            detail(r#"{"title": 5}"#),
            "`title` must be a string, not integer `5`"
        );
        assert_eq!(
            detail(r#"{"title": "a", "track_ids": ["x", 7]}"#),
            "`track_ids[1]` must be a string, not integer `7`"
        );
        assert_eq!(detail(r#"{}"#), "`title` is required");
        assert_eq!(
            detail(r#"{"title": "a", "colour": 1}"#),
            "`colour` is not a field of this request (it takes `title` or `track_ids`)"
        );
        assert_eq!(
            detail(r#"{"title": "#),
            "the body is not valid JSON (line 1, column 10)"
        );
    }
}
