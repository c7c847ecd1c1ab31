//! The control API for playlists: CRUD, track order, duplication and playback as one stream.
//!
//! Who may do what: artists create playlists and manage their own, admins manage all, and every
//! role reads public playlists (and their own). Another caller's private playlist answers 404, so
//! its existence is not revealed. Every change bumps the playlist's version; its `ETag` is made
//! from it, and a change sent with a stale `If-Match` answers 412.

use super::access::{authenticate, require};
use super::control::{rfc3339, ListQuery};
use super::idempotency;
use super::openapi::{ProblemDoc, Refusals, PLAYLISTS};
use super::Problem;
use crate::auth::{Identity, Role};
use crate::server::App;
use crate::store::{Entry, Playlist, PlaylistFilter, PlaylistId, Status, Track, TrackId};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Entries a playlist may hold.
const MAX_ENTRIES: usize = 1000;

pub(super) fn routes() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(show, update, remove))
        .routes(routes!(replace_tracks, append_track))
        .routes(routes!(move_entry, remove_entry))
        .routes(routes!(duplicate))
        .routes(routes!(playback))
}

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
    fn of(public: bool) -> Visibility {
        if public {
            Visibility::Public
        } else {
            Visibility::Private
        }
    }
}

/// One entry as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct EntryView {
    /// Stable id of this entry (a track may appear twice).
    pub entry_id: String,
    /// The track.
    pub track_id: String,
    /// The track's title; null once it is deleted.
    pub title: Option<String>,
    /// `queued`, `processing`, `ready`, `failed`, or `deleted`.
    pub status: String,
    /// Whether playback includes it (ready tracks only).
    pub playable: bool,
    /// Length of a ready track.
    pub duration_seconds: Option<f64>,
}

/// A playlist as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlaylistView {
    /// Playlist id (UUIDv7).
    pub id: String,
    /// Subject of the owner.
    pub owner: String,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Who may read it.
    pub visibility: Visibility,
    /// Bumped by every change; `ETag` is `"v<version>"`.
    pub version: i64,
    /// The entries in order.
    pub entries: Vec<EntryView>,
    /// Entries that playback plays.
    pub playable_count: u64,
    /// Total length of the playable entries.
    pub duration_seconds: f64,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

/// A playlist in a listing.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlaylistSummary {
    /// Playlist id.
    pub id: String,
    /// Owner.
    pub owner: String,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Who may read it.
    pub visibility: Visibility,
    /// Version.
    pub version: i64,
    /// RFC 3339.
    pub updated_at: String,
}

/// A page of playlists.
#[derive(Serialize, ToSchema)]
pub struct PlaylistPage {
    /// Newest first.
    pub items: Vec<PlaylistSummary>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// A new playlist.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPlaylist {
    /// 1 to 200 characters.
    pub title: String,
    /// Up to 5000 characters.
    #[serde(default)]
    pub description: String,
    /// Default `private`.
    pub visibility: Option<Visibility>,
    /// Initial entries, in order.
    #[serde(default)]
    pub track_ids: Vec<String>,
}

/// Changes to a playlist's fields; absent fields stay as they are.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaylistPatch {
    /// 1 to 200 characters.
    pub title: Option<String>,
    /// Up to 5000 characters.
    pub description: Option<String>,
    /// Who may read it.
    pub visibility: Option<Visibility>,
}

/// The whole new order.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrackOrder {
    /// Track ids in order. Entries whose track stays keep their entry ids, first come first.
    pub track_ids: Vec<String>,
}

/// A track to add.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEntry {
    /// The track.
    pub track_id: String,
    /// Where, counted from 0; default: at the end.
    #[schema(minimum = 0)]
    pub position: Option<u64>,
}

/// Where an entry goes.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Move {
    /// The new position, counted from 0; past the end means last.
    #[schema(minimum = 0)]
    pub position: u64,
}

/// Options of a copy.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct DuplicateOptions {
    /// Title of the copy; default: the original's with " (copy)".
    pub title: Option<String>,
}

/// Which playlists to list.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListScope {
    /// `mine` (default for artists and admins), `public` (default for listeners) or `all`
    /// (admins).
    scope: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

fn etag(version: i64) -> String {
    format!("\"v{version}\"")
}

fn parse_id(id: &str) -> Result<PlaylistId, Problem> {
    id.parse()
        .map_err(|_| Problem::not_found(format!("no playlist {id}")))
}

/// Reads a JSON body, or a 400 that names the field and what it must be, in the request's own
/// terms (axum's `Json` would answer in plain text and in serde's words).
fn body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
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
fn describe(message: &str, path: &str) -> String {
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

fn check_title(t: &str) -> Result<String, Problem> {
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

fn check_description(d: &str) -> Result<String, Problem> {
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

/// A playlist the caller may see, with its entries; 404 when it may not.
async fn visible(app: &App, who: &Identity, id: &str) -> Result<(Playlist, Vec<Entry>), Problem> {
    let id = parse_id(id)?;
    match app.store.playlist(id).await? {
        Some((p, e)) if p.public || who.role == Role::Admin || who.subject == p.owner => Ok((p, e)),
        _ => Err(Problem::not_found(format!("no playlist {id}"))),
    }
}

/// A playlist the caller may change, checked against `If-Match`. Returns the version to
/// compare-and-set against.
async fn writable(
    app: &App,
    who: &Identity,
    headers: &HeaderMap,
    id: &str,
) -> Result<(Playlist, Vec<Entry>), Problem> {
    let (p, e) = visible(app, who, id).await?;
    if !who.manages(&p.owner) {
        return Err(Problem::forbidden(format!(
            "playlist {} belongs to {}",
            p.id, p.owner
        )));
    }
    if let Some(want) = headers.get(header::IF_MATCH) {
        let want = want.to_str().unwrap_or("");
        let current = etag(p.version);
        let ok = want.trim() == "*"
            || want
                .split(',')
                .map(|t| t.trim().trim_start_matches("W/"))
                .any(|t| t == current);
        if !ok {
            return Err(Problem::precondition_failed(format!(
                "the playlist is at {current}; fetch it again and retry"
            )));
        }
    }
    Ok((p, e))
}

/// Stores a change made against `expected`; 412 when another change won meanwhile.
async fn save(
    app: &App,
    mut p: Playlist,
    entries: Option<&[Entry]>,
    expected: i64,
) -> Result<Playlist, Problem> {
    let now = App::now_ms();
    p.version = expected + 1;
    p.updated_at = now;
    if !app
        .store
        .update_playlist(&p, entries, expected, now)
        .await?
    {
        return Err(Problem::precondition_failed(
            "the playlist changed while this request ran; fetch it again and retry",
        ));
    }
    app.stitched.invalidate(&p.id);
    app.events_wake.notify_one();
    Ok(p)
}

/// Resolves track ids a caller adds: each must exist and be ready or the caller's own.
async fn resolve(app: &App, who: &Identity, ids: &[String]) -> Result<Vec<TrackId>, Problem> {
    let mut out = Vec::with_capacity(ids.len());
    let mut seen: HashMap<TrackId, ()> = HashMap::new();
    for raw in ids {
        let id: TrackId = raw.parse().map_err(|_| {
            Problem::unprocessable("unknown-track", format!("{raw} is not a track id"))
        })?;
        if seen.insert(id, ()).is_none() {
            match app.store.track(id).await? {
                Some(t) if t.status == Status::Ready || who.manages(&t.owner) => {}
                _ => {
                    return Err(Problem::unprocessable(
                        "unknown-track",
                        format!("no track {id} that this caller may add"),
                    ))
                }
            }
        }
        out.push(id);
    }
    Ok(out)
}

fn too_many() -> Problem {
    Problem::unprocessable(
        "playlist-too-long",
        format!("a playlist holds at most {MAX_ENTRIES} entries"),
    )
}

/// The tracks of some entries, by id (`None`: deleted).
pub(super) async fn tracks_of(
    app: &App,
    entries: &[Entry],
) -> Result<HashMap<TrackId, Option<Track>>, Problem> {
    let mut map = HashMap::new();
    for e in entries {
        if let std::collections::hash_map::Entry::Vacant(slot) = map.entry(e.track_id) {
            slot.insert(app.store.track(e.track_id).await?);
        }
    }
    Ok(map)
}

/// A track's length from its analysis.
pub(super) fn duration_of(t: &Track) -> Option<f64> {
    let a: serde_json::Value = serde_json::from_str(t.analysis.as_deref()?).ok()?;
    a.get("duration_seconds")?.as_f64()
}

async fn view(app: &App, p: &Playlist, entries: &[Entry]) -> Result<PlaylistView, Problem> {
    let tracks = tracks_of(app, entries).await?;
    let mut views = Vec::with_capacity(entries.len());
    let (mut playable_count, mut duration) = (0u64, 0.0);
    for e in entries {
        let t = tracks.get(&e.track_id).and_then(Option::as_ref);
        let playable = t.is_some_and(|t| t.status == Status::Ready);
        let secs = t.filter(|_| playable).and_then(duration_of);
        if playable {
            playable_count += 1;
            duration += secs.unwrap_or(0.0);
        }
        views.push(EntryView {
            entry_id: e.id.to_string(),
            track_id: e.track_id.to_string(),
            title: t.map(|t| t.title.clone()),
            status: t.map_or("deleted", |t| t.status.as_str()).to_owned(),
            playable,
            duration_seconds: secs,
        });
    }
    Ok(PlaylistView {
        id: p.id.to_string(),
        owner: p.owner.clone(),
        title: p.title.clone(),
        description: p.description.clone(),
        visibility: Visibility::of(p.public),
        version: p.version,
        entries: views,
        playable_count,
        duration_seconds: (duration * 1e6).round() / 1e6,
        created_at: rfc3339(p.created_at),
        updated_at: rfc3339(p.updated_at),
    })
}

/// A playlist response with its `ETag`.
async fn respond(
    app: &App,
    status: StatusCode,
    p: &Playlist,
    entries: &[Entry],
) -> Result<Response, Problem> {
    let v = view(app, p, entries).await?;
    let mut r = (status, Json(v)).into_response();
    r.headers_mut().insert(
        header::ETAG,
        HeaderValue::from_str(&etag(p.version)).expect("digits in quotes"),
    );
    if status == StatusCode::CREATED {
        r.headers_mut().insert(
            header::LOCATION,
            HeaderValue::from_str(&format!("/v1/playlists/{}", p.id)).expect("uuid path"),
        );
    }
    Ok(r)
}

/// Runs a create under `Idempotency-Key`, when one was sent.
async fn idempotent_create<F>(
    app: &App,
    who: &Identity,
    headers: &HeaderMap,
    path: &str,
    raw: &[u8],
    create: F,
) -> Result<Response, Problem>
where
    F: std::future::Future<Output = Result<Response, Problem>>,
{
    let Some(key) = idempotency::key(headers)? else {
        return create.await;
    };
    let fp = idempotency::fingerprint("POST", path, &Sha256::digest(raw));
    if let Some(r) = idempotency::replay(app, who, &key, &fp).await? {
        return Ok(r);
    }
    let r = create.await?;
    let status = r.status();
    let keep: Vec<(String, String)> = [header::LOCATION, header::ETAG]
        .iter()
        .filter_map(|h| {
            r.headers()
                .get(h)
                .and_then(|v| v.to_str().ok())
                .map(|v| (h.as_str().to_owned(), v.to_owned()))
        })
        .collect();
    let (parts, b) = r.into_parts();
    let bytes = axum::body::to_bytes(b, 1 << 24)
        .await
        .map_err(|e| Problem::bad_request(e.to_string()))?;
    let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    idempotency::remember(app, who, &key, &fp, status, &keep, Some(&json)).await;
    Ok(Response::from_parts(parts, axum::body::Body::from(bytes)))
}

const JSON_PROBLEM: &str = "application/problem+json";

/// Create a playlist (artists and admins).
#[utoipa::path(
    post, path = "/v1/playlists", tag = PLAYLISTS, request_body = NewPlaylist,
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for the same key and body")),
    responses(
        (status = 201, description = "Created", body = PlaylistView, headers(("ETag" = String), ("Location" = String))),
        (status = 400, description = "Malformed body", body = ProblemDoc, content_type = JSON_PROBLEM),
        (status = 403, description = "Listeners cannot create playlists", body = ProblemDoc, content_type = JSON_PROBLEM),
        (status = 422, description = "Bad field, unknown track, or Idempotency-Key reused", body = ProblemDoc, content_type = JSON_PROBLEM),
        Refusals,
    ),
    security(("bearer" = []))
)]
async fn create(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    raw: Bytes,
) -> Result<Response, Problem> {
    let who = authenticate(&app, &headers)?;
    require(&who, Role::Artist, "creating a playlist")?;
    let new: NewPlaylist = body(&raw)?;
    idempotent_create(&app, &who, &headers, "/v1/playlists", &raw, async {
        if new.track_ids.len() > MAX_ENTRIES {
            return Err(too_many());
        }
        let title = check_title(&new.title)?;
        let description = check_description(&new.description)?;
        let ids = resolve(&app, &who, &new.track_ids).await?;
        let now = App::now_ms();
        let p = Playlist {
            id: PlaylistId::new(),
            owner: who.subject.clone(),
            title,
            description,
            public: new.visibility == Some(Visibility::Public),
            version: 1,
            created_at: now,
            updated_at: now,
        };
        let entries: Vec<Entry> = ids
            .into_iter()
            .map(|track_id| Entry {
                id: uuid::Uuid::new_v4(),
                track_id,
            })
            .collect();
        app.store.create_playlist(&p, &entries, now).await?;
        app.events_wake.notify_one();
        respond(&app, StatusCode::CREATED, &p, &entries).await
    })
    .await
}

/// Playlists, newest first.
#[utoipa::path(
    get, path = "/v1/playlists", tag = PLAYLISTS, params(ListScope),
    responses(
        (status = 200, description = "A page of playlists", body = PlaylistPage),
        (status = 400, description = "Bad scope, limit or cursor", body = ProblemDoc, content_type = JSON_PROBLEM),
        (status = 403, description = "scope=all is for admins", body = ProblemDoc, content_type = JSON_PROBLEM),
        Refusals,
    ),
    security(("bearer" = []))
)]
async fn list(
    State(app): State<Arc<App>>,
    Query(q): Query<ListScope>,
    headers: HeaderMap,
) -> Result<Json<PlaylistPage>, Problem> {
    let who = authenticate(&app, &headers)?;
    let scope = q.scope.as_deref().unwrap_or(if who.role == Role::Listener {
        "public"
    } else {
        "mine"
    });
    let filter = match scope {
        "mine" => PlaylistFilter::Owner(&who.subject),
        "public" => PlaylistFilter::Public,
        "all" => {
            require(&who, Role::Admin, "listing every playlist")?;
            PlaylistFilter::All
        }
        _ => return Err(Problem::bad_request("scope is mine, public or all")),
    };
    let page = ListQuery {
        limit: q.limit,
        cursor: q.cursor,
    };
    let limit = page.limit()?;
    let before = page.cursor::<PlaylistId>()?;
    let rows = app.store.playlists(filter, before, limit + 1).await?;
    let (rows, next_cursor) = ListQuery::page(rows, limit, |p| p.id.to_string());
    let items = rows
        .into_iter()
        .map(|p| PlaylistSummary {
            id: p.id.to_string(),
            visibility: Visibility::of(p.public),
            owner: p.owner,
            title: p.title,
            description: p.description,
            version: p.version,
            updated_at: rfc3339(p.updated_at),
        })
        .collect();
    Ok(Json(PlaylistPage { items, next_cursor }))
}

/// One playlist with its entries. Public ones are readable by every role.
#[utoipa::path(
    get, path = "/v1/playlists/{id}", tag = PLAYLISTS, params(("id" = String, Path, description = "Playlist id")),
    responses(
        (status = 200, description = "The playlist", body = PlaylistView, headers(("ETag" = String))),
        (status = 404, description = "No such playlist visible to this caller", body = ProblemDoc, content_type = JSON_PROBLEM),
        Refusals,
    ),
    security(("bearer" = []))
)]
async fn show(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let who = authenticate(&app, &headers)?;
    let (p, e) = visible(&app, &who, &id).await?;
    respond(&app, StatusCode::OK, &p, &e).await
}

/// Change the title, description or visibility.
#[utoipa::path(
    patch, path = "/v1/playlists/{id}", tag = PLAYLISTS, request_body = PlaylistPatch,
    params(("id" = String, Path, description = "Playlist id"), ("If-Match" = Option<String>, Header, description = "The ETag this change is based on")),
    responses(
        (status = 200, description = "Updated", body = PlaylistView, headers(("ETag" = String))),
        (status = 400, description = "Malformed body", body = ProblemDoc, content_type = JSON_PROBLEM),
        (status = 403, description = "Not the owner", body = ProblemDoc, content_type = JSON_PROBLEM),
        (status = 404, description = "No such playlist", body = ProblemDoc, content_type = JSON_PROBLEM),
        (status = 412, description = "If-Match names an older version", body = ProblemDoc, content_type = JSON_PROBLEM),
        (status = 422, description = "Bad field", body = ProblemDoc, content_type = JSON_PROBLEM),
        Refusals,
    ),
    security(("bearer" = []))
)]
async fn update(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    raw: Bytes,
) -> Result<Response, Problem> {
    let who = authenticate(&app, &headers)?;
    let (mut p, e) = writable(&app, &who, &headers, &id).await?;
    let patch: PlaylistPatch = body(&raw)?;
    if let Some(t) = &patch.title {
        p.title = check_title(t)?;
    }
    if let Some(d) = &patch.description {
        p.description = check_description(d)?;
    }
    if let Some(v) = patch.visibility {
        p.public = v == Visibility::Public;
    }
    let expected = p.version;
    let p = save(&app, p, None, expected).await?;
    respond(&app, StatusCode::OK, &p, &e).await
}

/// Delete a playlist.
#[utoipa::path(
    delete, path = "/v1/playlists/{id}", tag = PLAYLISTS,
    params(("id" = String, Path, description = "Playlist id"), ("If-Match" = Option<String>, Header, description = "The ETag this change is based on")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Not the owner", body = ProblemDoc, content_type = JSON_PROBLEM),
        (status = 404, description = "No such playlist", body = ProblemDoc, content_type = JSON_PROBLEM),
        (status = 412, description = "If-Match names an older version", body = ProblemDoc, content_type = JSON_PROBLEM),
        Refusals,
    ),
    security(("bearer" = []))
)]
async fn remove(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, Problem> {
    let who = authenticate(&app, &headers)?;
    let (p, _) = writable(&app, &who, &headers, &id).await?;
    let expected = headers.contains_key(header::IF_MATCH).then_some(p.version);
    if !app
        .store
        .delete_playlist(p.id, expected, App::now_ms())
        .await?
    {
        return Err(Problem::precondition_failed(
            "the playlist changed while this request ran; fetch it again and retry",
        ));
    }
    app.stitched.invalidate(&p.id);
    app.events_wake.notify_one();
    Ok(StatusCode::NO_CONTENT)
}

/// Replace the whole track order.
#[utoipa::path(
    put, path = "/v1/playlists/{id}/tracks", tag = PLAYLISTS, request_body = TrackOrder,
    params(("id" = String, Path, description = "Playlist id"), ("If-Match" = Option<String>, Header, description = "The ETag this change is based on")),
    responses(
        (status = 200, description = "Updated", body = PlaylistView, headers(("ETag" = String))),
        (status = 400, description = "Malformed body", body = ProblemDoc, content_type = JSON_PROBLEM),
        (status = 403, description = "Not the owner", body = ProblemDoc, content_type = JSON_PROBLEM),
        (status = 404, description = "No such playlist", body = ProblemDoc, content_type = JSON_PROBLEM),
        (status = 412, description = "If-Match names an older version", body = ProblemDoc, content_type = JSON_PROBLEM),
        (status = 422, description = "Unknown track or too many entries", body = ProblemDoc, content_type = JSON_PROBLEM),
        Refusals,
    ),
    security(("bearer" = []))
)]
async fn replace_tracks(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    raw: Bytes,
) -> Result<Response, Problem> {
    let who = authenticate(&app, &headers)?;
    let (p, old) = writable(&app, &who, &headers, &id).await?;
    let order: TrackOrder = body(&raw)?;
    if order.track_ids.len() > MAX_ENTRIES {
        return Err(too_many());
    }
    let ids = resolve(&app, &who, &order.track_ids).await?;
    // Entries of tracks that stay keep their ids, first come first.
    let mut pool: Vec<Option<&Entry>> = old.iter().map(Some).collect();
    let entries: Vec<Entry> = ids
        .into_iter()
        .map(|track_id| {
            let reused = pool
                .iter_mut()
                .find(|e| e.is_some_and(|e| e.track_id == track_id))
                .and_then(Option::take);
            Entry {
                id: reused.map_or_else(uuid::Uuid::new_v4, |e| e.id),
                track_id,
            }
        })
        .collect();
    let expected = p.version;
    let p = save(&app, p, Some(&entries), expected).await?;
    respond(&app, StatusCode::OK, &p, &entries).await
}

/// Add one track, at the end or at a position.
#[utoipa::path(
    post, path = "/v1/playlists/{id}/tracks", tag = PLAYLISTS, request_body = NewEntry,
    params(("id" = String, Path, description = "Playlist id"), ("If-Match" = Option<String>, Header, description = "The ETag this change is based on"),
        ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for the same key and body")),
    responses(
        (status = 201, description = "Added", body = PlaylistView, headers(("ETag" = String))),
        (status = 400, description = "Malformed body", body = ProblemDoc, content_type = JSON_PROBLEM),
        (status = 403, description = "Not the owner", body = ProblemDoc, content_type = JSON_PROBLEM),
        (status = 404, description = "No such playlist", body = ProblemDoc, content_type = JSON_PROBLEM),
        (status = 412, description = "If-Match names an older version", body = ProblemDoc, content_type = JSON_PROBLEM),
        (status = 422, description = "Unknown track, too many entries, or Idempotency-Key reused", body = ProblemDoc, content_type = JSON_PROBLEM),
        Refusals,
    ),
    security(("bearer" = []))
)]
async fn append_track(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    raw: Bytes,
) -> Result<Response, Problem> {
    let who = authenticate(&app, &headers)?;
    let path = format!("/v1/playlists/{id}/tracks");
    idempotent_create(&app, &who, &headers, &path, &raw, async {
        let (p, mut entries) = writable(&app, &who, &headers, &id).await?;
        let add: NewEntry = body(&raw)?;
        if entries.len() >= MAX_ENTRIES {
            return Err(too_many());
        }
        let track_id = resolve(&app, &who, std::slice::from_ref(&add.track_id)).await?[0];
        let at = add
            .position
            .map_or(entries.len(), |n| (n.min(entries.len() as u64)) as usize);
        entries.insert(
            at,
            Entry {
                id: uuid::Uuid::new_v4(),
                track_id,
            },
        );
        let expected = p.version;
        let p = save(&app, p, Some(&entries), expected).await?;
        respond(&app, StatusCode::CREATED, &p, &entries).await
    })
    .await
}

fn find_entry(entries: &[Entry], entry: &str) -> Result<usize, Problem> {
    entries
        .iter()
        .position(|e| e.id.to_string() == entry)
        .ok_or_else(|| Problem::not_found(format!("no entry {entry} in this playlist")))
}

/// Move one entry.
#[utoipa::path(
    patch, path = "/v1/playlists/{id}/tracks/{entry_id}", tag = PLAYLISTS, request_body = Move,
    params(("id" = String, Path, description = "Playlist id"), ("entry_id" = String, Path, description = "Entry id"),
        ("If-Match" = Option<String>, Header, description = "The ETag this change is based on")),
    responses(
        (status = 200, description = "Moved", body = PlaylistView, headers(("ETag" = String))),
        (status = 400, description = "Malformed body", body = ProblemDoc, content_type = JSON_PROBLEM),
        (status = 403, description = "Not the owner", body = ProblemDoc, content_type = JSON_PROBLEM),
        (status = 404, description = "No such playlist or entry", body = ProblemDoc, content_type = JSON_PROBLEM),
        (status = 412, description = "If-Match names an older version", body = ProblemDoc, content_type = JSON_PROBLEM),
        Refusals,
    ),
    security(("bearer" = []))
)]
async fn move_entry(
    State(app): State<Arc<App>>,
    Path((id, entry)): Path<(String, String)>,
    headers: HeaderMap,
    raw: Bytes,
) -> Result<Response, Problem> {
    let who = authenticate(&app, &headers)?;
    let (p, mut entries) = writable(&app, &who, &headers, &id).await?;
    let to: Move = body(&raw)?;
    let from = find_entry(&entries, &entry)?;
    let e = entries.remove(from);
    let at = (to.position.min(entries.len() as u64)) as usize;
    entries.insert(at, e);
    let expected = p.version;
    let p = save(&app, p, Some(&entries), expected).await?;
    respond(&app, StatusCode::OK, &p, &entries).await
}

/// Remove one entry.
#[utoipa::path(
    delete, path = "/v1/playlists/{id}/tracks/{entry_id}", tag = PLAYLISTS,
    params(("id" = String, Path, description = "Playlist id"), ("entry_id" = String, Path, description = "Entry id"),
        ("If-Match" = Option<String>, Header, description = "The ETag this change is based on")),
    responses(
        (status = 200, description = "Removed", body = PlaylistView, headers(("ETag" = String))),
        (status = 403, description = "Not the owner", body = ProblemDoc, content_type = JSON_PROBLEM),
        (status = 404, description = "No such playlist or entry", body = ProblemDoc, content_type = JSON_PROBLEM),
        (status = 412, description = "If-Match names an older version", body = ProblemDoc, content_type = JSON_PROBLEM),
        Refusals,
    ),
    security(("bearer" = []))
)]
async fn remove_entry(
    State(app): State<Arc<App>>,
    Path((id, entry)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let who = authenticate(&app, &headers)?;
    let (p, mut entries) = writable(&app, &who, &headers, &id).await?;
    let at = find_entry(&entries, &entry)?;
    entries.remove(at);
    let expected = p.version;
    let p = save(&app, p, Some(&entries), expected).await?;
    respond(&app, StatusCode::OK, &p, &entries).await
}

/// Copy a playlist the caller can see into a new private one it owns, in one transaction.
#[utoipa::path(
    post, path = "/v1/playlists/{id}/duplicate", tag = PLAYLISTS, request_body(content = Option<DuplicateOptions>),
    params(("id" = String, Path, description = "Playlist id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for the same key and body")),
    responses(
        (status = 201, description = "The copy", body = PlaylistView, headers(("ETag" = String), ("Location" = String))),
        (status = 400, description = "Malformed body", body = ProblemDoc, content_type = JSON_PROBLEM),
        (status = 403, description = "Listeners cannot own playlists", body = ProblemDoc, content_type = JSON_PROBLEM),
        (status = 404, description = "No such playlist visible to this caller", body = ProblemDoc, content_type = JSON_PROBLEM),
        (status = 422, description = "Bad title or Idempotency-Key reused", body = ProblemDoc, content_type = JSON_PROBLEM),
        Refusals,
    ),
    security(("bearer" = []))
)]
async fn duplicate(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    raw: Bytes,
) -> Result<Response, Problem> {
    let who = authenticate(&app, &headers)?;
    require(&who, Role::Artist, "duplicating a playlist")?;
    let path = format!("/v1/playlists/{id}/duplicate");
    idempotent_create(&app, &who, &headers, &path, &raw, async {
        let (src, entries) = visible(&app, &who, &id).await?;
        let opts: DuplicateOptions = body(&raw)?;
        let title = match opts.title {
            Some(t) => check_title(&t)?,
            None => check_title(&format!(
                "{} (copy)",
                src.title.chars().take(193).collect::<String>()
            ))?,
        };
        let now = App::now_ms();
        let p = Playlist {
            id: PlaylistId::new(),
            owner: who.subject.clone(),
            title,
            description: src.description.clone(),
            public: false,
            version: 1,
            created_at: now,
            updated_at: now,
        };
        let copy: Vec<Entry> = entries
            .iter()
            .map(|e| Entry {
                id: uuid::Uuid::new_v4(),
                track_id: e.track_id,
            })
            .collect();
        app.store.create_playlist(&p, &copy, now).await?;
        app.events_wake.notify_one();
        respond(&app, StatusCode::CREATED, &p, &copy).await
    })
    .await
}

/// Where each track starts in the stitched stream.
#[derive(Serialize, ToSchema)]
pub struct Chapter {
    /// The entry.
    pub entry_id: String,
    /// Its track.
    pub track_id: String,
    /// Start in the stream.
    pub start_seconds: f64,
    /// Length.
    pub duration_seconds: f64,
}

/// An entry playback leaves out.
#[derive(Serialize, ToSchema)]
pub struct Skipped {
    /// The entry.
    pub entry_id: String,
    /// Its track.
    pub track_id: String,
    /// `deleted`, `failed`, `queued` or `processing`.
    pub status: String,
}

/// A signed URL that plays a whole playlist as one HLS stream.
#[derive(Serialize, ToSchema)]
pub struct PlaylistPlayback {
    /// The multivariant playlist (AAC when every track has it).
    pub master_url: String,
    /// One multivariant playlist per codec family every track has.
    #[schema(value_type = Object)]
    pub masters: serde_json::Map<String, serde_json::Value>,
    /// The playback token in the URLs.
    pub token: String,
    /// RFC 3339.
    pub expires_at: String,
    /// Sum of the played tracks' lengths.
    pub duration_seconds: f64,
    /// The tracks played, in order.
    pub chapters: Vec<Chapter>,
    /// Entries left out because their track is not playable.
    pub skipped: Vec<Skipped>,
}

/// Play a playlist as one gapless HLS stream. Entries whose track is deleted, failed or not ready
/// yet are left out and listed in `skipped`.
#[utoipa::path(
    post, path = "/v1/playlists/{id}/playback", tag = PLAYLISTS, params(("id" = String, Path, description = "Playlist id")),
    responses(
        (status = 200, description = "Signed URL", body = PlaylistPlayback),
        (status = 404, description = "No such playlist visible to this caller", body = ProblemDoc, content_type = JSON_PROBLEM),
        (status = 409, description = "No entry is playable", body = ProblemDoc, content_type = JSON_PROBLEM),
        Refusals,
    ),
    security(("bearer" = []))
)]
async fn playback(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<PlaylistPlayback>, Problem> {
    let who = authenticate(&app, &headers)?;
    let (p, entries) = visible(&app, &who, &id).await?;
    let tracks = tracks_of(&app, &entries).await?;
    let (mut chapters, mut skipped, mut start) = (Vec::new(), Vec::new(), 0.0);
    for e in &entries {
        match tracks.get(&e.track_id).and_then(Option::as_ref) {
            Some(t) if t.status == Status::Ready => {
                let d = duration_of(t).unwrap_or(0.0);
                chapters.push(Chapter {
                    entry_id: e.id.to_string(),
                    track_id: e.track_id.to_string(),
                    start_seconds: (start * 1e6_f64).round() / 1e6,
                    duration_seconds: d,
                });
                start += d;
            }
            t => skipped.push(Skipped {
                entry_id: e.id.to_string(),
                track_id: e.track_id.to_string(),
                status: t.map_or("deleted", |t| t.status.as_str()).to_owned(),
            }),
        }
    }
    if chapters.is_empty() {
        return Err(Problem::conflict(
            "playlist-not-playable",
            "Nothing to play",
            format!("no entry of playlist {} is a ready track", p.id),
        ));
    }
    let families = super::stitch::families(&app, p.id).await?;
    let expires = App::now_secs() + app.config.auth.playback_ttl_seconds;
    let session = u128::from_be_bytes(rand::random());
    let token = app.tokens.sign(p.id, session, expires);
    let base = format!("{}/hls/playlists/{}", app.public_url, p.id);
    let mut masters = serde_json::Map::new();
    for f in &families {
        masters.insert(
            f.to_string(),
            serde_json::Value::String(format!("{base}/master_{f}.m3u8?token={token}")),
        );
    }
    Ok(Json(PlaylistPlayback {
        master_url: format!("{base}/master.m3u8?token={token}"),
        masters,
        token,
        expires_at: rfc3339(expires as i64 * 1000),
        duration_seconds: (start * 1e6).round() / 1e6,
        chapters,
        skipped,
    }))
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
        body::<Sample>(json.as_bytes()).unwrap_err().detail
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
