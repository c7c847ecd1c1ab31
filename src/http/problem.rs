//! RFC 9457 problem details: every error answer of the server, in one `IntoResponse`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// An error answer. `kind` is stable and becomes the problem `type`
/// (`https://veza.stream/problems/<kind>`); `detail` explains this occurrence.
#[derive(Debug, Clone)]
pub struct Problem {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable kind.
    pub kind: &'static str,
    /// Short human-readable summary of the kind.
    pub title: &'static str,
    /// What happened this time.
    pub detail: String,
    /// Seconds for a `Retry-After` header (429, 503).
    pub retry_after: Option<u64>,
}

impl Problem {
    /// A problem of `kind`.
    pub fn new(
        status: StatusCode,
        kind: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Problem {
        Problem {
            status,
            kind,
            title,
            detail: detail.into(),
            retry_after: None,
        }
    }

    /// Adds `Retry-After`.
    pub fn retry_after(mut self, secs: u64) -> Problem {
        self.retry_after = Some(secs);
        self
    }

    /// 403: the caller is known but may not do this.
    pub fn forbidden(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden", detail)
    }

    /// 409.
    pub fn conflict(kind: &'static str, title: &'static str, detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::CONFLICT, kind, title, detail)
    }

    /// 422: well-formed, but not something this server can do.
    pub fn unprocessable(kind: &'static str, detail: impl Into<String>) -> Problem {
        Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            kind,
            "Unprocessable request",
            detail,
        )
    }

    /// 412: `If-Match` named another version.
    pub fn precondition_failed(detail: impl Into<String>) -> Problem {
        Problem::new(
            StatusCode::PRECONDITION_FAILED,
            "precondition-failed",
            "Precondition failed",
            detail,
        )
    }

    /// 404.
    pub fn not_found(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::NOT_FOUND, "not-found", "Not found", detail)
    }

    /// 400.
    pub fn bad_request(detail: impl Into<String>) -> Problem {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "bad-request",
            "Bad request",
            detail,
        )
    }

    /// 401.
    pub fn unauthorized() -> Problem {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Unauthorized",
            "send Authorization: Bearer <API key or JWT>",
        )
    }

    /// 503 with `Retry-After: 5`: a dependency failed; logged, not shown in detail.
    pub fn unavailable(what: &str, error: &dyn std::fmt::Display) -> Problem {
        tracing::error!(%error, "{what} failed");
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Service unavailable",
            format!("the {what} is unavailable; retry later"),
        )
        .retry_after(5)
    }
}

impl From<crate::store::Error> for Problem {
    fn from(e: crate::store::Error) -> Problem {
        match e {
            crate::store::Error::SlugTaken => Problem::conflict(
                "slug-taken",
                "Slug taken",
                "another channel has this slug: choose another",
            ),
            e => Problem::unavailable("metadata store", &e),
        }
    }
}

impl From<crate::storage::Error> for Problem {
    fn from(e: crate::storage::Error) -> Problem {
        match e {
            crate::storage::Error::NotFound { .. } => Problem::not_found("no such object"),
            e => Problem::unavailable("object storage", &e),
        }
    }
}

impl From<crate::catalog::Error> for Problem {
    fn from(e: crate::catalog::Error) -> Problem {
        match e {
            crate::catalog::Error::Store(e) => e.into(),
            crate::catalog::Error::Storage(e) => e.into(),
            crate::catalog::Error::Incomplete(e) => Problem::unavailable("upload store", &e),
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body =
            crate::util::problem_json(self.kind, self.title, self.status.as_u16(), &self.detail);
        let mut r = (self.status, body).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(secs) = self.retry_after {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        r
    }
}

/// A problem answer built from static parts, for the delivery path's hot refusals (unknown id, bad
/// token): it allocates no body.
pub fn static_problem(status: StatusCode, body: &'static str) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    r
}
