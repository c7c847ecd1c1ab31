//! oEmbed 1.0 (<https://oembed.com>): `GET /oembed?url=<share link>&format=json` describes a
//! public track, playlist or channel as a `rich` item whose HTML is an iframe of its embed
//! player (`/embed/{kind}/{id}`), for WordPress, Discord, Slack and other consumers.

use super::public::card;
use super::search::owner_name;
use crate::app::App;
use crate::http::openapi::{ProblemDoc, JSON_PROBLEM, PUBLIC};
use crate::http::problem::Problem;
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The routes.
pub fn routes() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::new().routes(routes!(oembed))
}

/// What a consumer asks (oEmbed 1.0, section 2.2).
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OembedQuery {
    /// A share link: `{public_url}/play/{track|playlist|channel}/{id}` (or its `/embed/` page).
    pub url: Option<String>,
    /// `json` (the default); `xml` is not offered (501, as section 2.2 says); anything else is
    /// refused (400).
    pub format: Option<String>,
    /// The widest the consumer can show, in pixels.
    pub maxwidth: Option<u32>,
    /// The tallest the consumer can show, in pixels.
    pub maxheight: Option<u32>,
}

/// A `rich` oEmbed response (section 2.3.4).
#[derive(Serialize, ToSchema)]
pub struct Oembed {
    /// `rich`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// `1.0`.
    pub version: &'static str,
    /// The item's title.
    pub title: String,
    /// Its artist's name, when it has an account.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub author_name: Option<String>,
    /// Veza Stream.
    pub provider_name: &'static str,
    /// This server.
    pub provider_url: String,
    /// An iframe of the embed player.
    pub html: String,
    /// The iframe's width.
    pub width: u32,
    /// The iframe's height.
    pub height: u32,
    /// The cover, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thumbnail_url: Option<String>,
    /// The cover's width.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thumbnail_width: Option<u32>,
    /// The cover's height.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thumbnail_height: Option<u32>,
    /// Seconds the consumer may keep this.
    pub cache_age: u32,
}

/// The kind and id a share link names, if it is one of this server's.
pub fn share_target<'a>(public_url: &str, url: &'a str) -> Option<(&'a str, &'a str)> {
    let rest = url.strip_prefix(public_url)?;
    let rest = rest.split(['?', '#']).next()?;
    let rest = rest
        .strip_prefix("/play/")
        .or_else(|| rest.strip_prefix("/embed/"))?;
    let (kind, id) = rest.split_once('/')?;
    let id = id.trim_end_matches('/');
    (matches!(kind, "track" | "playlist" | "channel") && !id.is_empty() && !id.contains('/'))
        .then_some((kind, id))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The oEmbed description of a public track, playlist or channel.
#[utoipa::path(
    get, path = "/oembed", tag = PUBLIC, params(OembedQuery),
    responses(
        (status = 200, description = "The item as a rich oEmbed", body = Oembed),
        (status = 400, description = "No url, or an unknown format", body = ProblemDoc, content_type = JSON_PROBLEM),
        (status = 404, description = "Not a share link of this server's, or not public", body = ProblemDoc, content_type = JSON_PROBLEM),
        (status = 501, description = "A format other than json", body = ProblemDoc, content_type = JSON_PROBLEM),
    ),
    security(())
)]
async fn oembed(
    State(app): State<Arc<App>>,
    Query(q): Query<OembedQuery>,
) -> Result<Response, Problem> {
    match q.format.as_deref() {
        None | Some("" | "json") => {}
        // The one other format the specification names: not offered (section 2.2 says 501).
        Some("xml") => {
            return Err(Problem::new(
                StatusCode::NOT_IMPLEMENTED,
                "format-not-offered",
                "Not implemented",
                "only format=json is offered",
            ))
        }
        Some(_) => return Err(Problem::bad_request("format is json")),
    }
    let url = q
        .url
        .filter(|u| !u.is_empty())
        .ok_or_else(|| Problem::bad_request("url names the share link to describe"))?;
    let (kind, id) = share_target(&app.public_url, &url).ok_or_else(|| {
        Problem::not_found(format!(
            "not a share link of this server: {}/play/{{track|playlist|channel}}/{{id}}",
            app.public_url
        ))
    })?;
    let c = card(&app, kind, id)
        .await
        .ok_or_else(|| Problem::not_found(format!("no public {kind} {id}")))?;
    let tall = if kind == "track" { 160 } else { 360 };
    let width = q.maxwidth.unwrap_or(600).clamp(200, 900);
    let height = q.maxheight.map_or(tall, |h| h.clamp(120, tall));
    let src = format!("{}/embed/{kind}/{id}", app.public_url);
    let html = format!(
        "<iframe src=\"{}\" width=\"{width}\" height=\"{height}\" style=\"border:0;\
         border-radius:8px\" allow=\"autoplay; encrypted-media\" loading=\"lazy\" \
         title=\"{}\"></iframe>",
        escape(&src),
        escape(&c.title)
    );
    let author = owner_name(&app, &c.owner).await;
    let doc = Oembed {
        kind: "rich",
        version: "1.0",
        author_name: (!author.is_empty()).then_some(author),
        provider_name: "Veza Stream",
        provider_url: app.public_url.clone(),
        html,
        width,
        height,
        thumbnail_width: c.image.as_ref().map(|_| 600),
        thumbnail_height: c.image.as_ref().map(|_| 600),
        thumbnail_url: c.image,
        cache_age: 3600,
        title: c.title,
    };
    let mut r = Json(doc).into_response();
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_this_servers_share_links_are_described() {
        let base = "https://radio.example";
        assert_eq!(
            share_target(base, "https://radio.example/play/track/0190abcd"),
            Some(("track", "0190abcd"))
        );
        assert_eq!(
            share_target(base, "https://radio.example/embed/channel/x?autoplay=1"),
            Some(("channel", "x"))
        );
        for bad in [
            "https://evil.example/play/track/x",
            "https://radio.example.evil/play/track/x",
            "https://radio.example/play/user/x",
            "https://radio.example/play/track/",
            "https://radio.example/play/track/a/b",
            "https://radio.example/v1/tracks/x",
        ] {
            assert_eq!(share_target(base, bad), None, "{bad}");
        }
    }
}
