//! Writing an upload: one object per PATCH, the offset moved with a compare-and-set, and the
//! pieces joined into a queued track when the last byte lands.

use super::protocol::*;
use crate::app::App;
use crate::auth::{Identity, Role};
use crate::http::body::drain;
use crate::http::problem::Problem;
use crate::storage::PutError;
use crate::store::{Track, TrackId, Upload};
use crate::util;
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use sha2::{Digest, Sha256};

/// An upload the caller owns (or any, for admins); 404 otherwise, 410 once expired.
pub(crate) async fn owned(app: &App, who: &Identity, id: &str) -> Result<Upload, Problem> {
    let gone = || Problem::not_found(format!("no upload {id}"));
    if uuid::Uuid::try_parse(id).is_err() {
        return Err(gone());
    }
    let u = app.store.upload(id).await?.ok_or_else(gone)?;
    if !(who.role == Role::Admin || who.subject == u.owner) {
        return Err(gone());
    }
    if u.track_id.is_none() && u.expires_at < util::now_ms() {
        return Err(Problem::new(
            StatusCode::GONE,
            "upload-expired",
            "Upload expired",
            format!("upload {id} expired; start a new one"),
        ));
    }
    Ok(u)
}

/// What a PATCH body left behind.
pub(crate) struct Piece {
    pub(crate) bytes: u64,
    /// The client went away before the end.
    pub(crate) cut: bool,
}

/// Streams a PATCH body into one object of at most `room` bytes. A body cut short is kept when
/// `keep_partial`; otherwise nothing remains.
pub(crate) async fn store_piece(
    app: &App,
    key: &str,
    body: Body,
    room: u64,
    keep_partial: bool,
    digest: &mut Sha256,
) -> Result<Piece, Problem> {
    let mut stream = body.into_data_stream();
    let metrics = &app.metrics;
    let put = app
        .storage
        .put_stream(key, &mut stream, room, keep_partial, &mut |c| {
            metrics.upload_bytes.inc_by(c.len() as u64);
            digest.update(c);
        })
        .await;
    match put {
        Ok(p) => Ok(Piece {
            bytes: p.bytes,
            cut: p.cut.is_some(),
        }),
        Err(PutError::TooLarge) => {
            drain(&mut stream).await;
            Err(Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "upload-overflow",
                "Past Upload-Length",
                "the body runs past the declared Upload-Length",
            ))
        }
        Err(PutError::Storage(e)) => Err(e.into()),
    }
}

/// Writes a PATCH (or creation-with-upload) body at `u.offset` and moves the offset. Returns the
/// new offset.
pub(crate) async fn append(
    app: &App,
    u: &Upload,
    headers: &HeaderMap,
    body: Body,
) -> Result<i64, Problem> {
    let checksum = match headers.get("upload-checksum") {
        None => None,
        Some(v) => {
            let v = v.to_str().unwrap_or("");
            let (alg, sum) = v.split_once(' ').unwrap_or((v, ""));
            if alg != "sha256" {
                return Err(Problem::bad_request(
                    "Upload-Checksum: only sha256 is supported (Tus-Checksum-Algorithm)",
                ));
            }
            Some(
                B64.decode(sum.trim())
                    .map_err(|_| Problem::bad_request("Upload-Checksum is not base64"))?,
            )
        }
    };
    let key = crate::layout::upload_piece(&u.id, u.offset);
    let mut digest = Sha256::new();
    let room = (u.length - u.offset) as u64;
    let piece = store_piece(app, &key, body, room, checksum.is_none(), &mut digest).await?;
    if let Some(want) = checksum {
        if piece.cut || digest.finalize().as_slice() != want.as_slice() {
            let _ = app.storage.delete(&key).await;
            return Err(Problem::new(
                StatusCode::from_u16(460).expect("460 is a valid status"),
                "checksum-mismatch",
                "Checksum mismatch",
                "the body does not match Upload-Checksum; it was discarded",
            ));
        }
    }
    if piece.bytes == 0 {
        return Ok(u.offset);
    }
    let to = u.offset + piece.bytes as i64;
    if !app.store.advance_upload(&u.id, u.offset, to).await? {
        let _ = app.storage.delete(&key).await;
        return Err(Problem::conflict(
            "offset-mismatch",
            "Offset mismatch",
            "another request moved this upload meanwhile; HEAD it and resume",
        ));
    }
    if piece.cut {
        tracing::info!(upload = %u.id, offset = to, "upload cut off; kept what arrived");
    }
    Ok(to)
}

/// Joins a complete upload's pieces into a track and queues it. Returns the track id.
pub(crate) async fn complete(app: &App, u: &Upload) -> Result<TrackId, Problem> {
    let filename = metadata_value(&u.metadata, "filename")
        .filter(|f| !f.is_empty())
        .unwrap_or_else(|| "upload".into());
    let title = metadata_value(&u.metadata, "title");
    let content_type = metadata_value(&u.metadata, "filetype")
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "application/octet-stream".into());
    let now = util::now_ms();
    let describe = |id, original| {
        Track::queued(
            id,
            &u.owner,
            original,
            &filename,
            &content_type,
            title.as_deref(),
            u.length,
            now,
        )
    };
    Ok(app
        .catalog
        .complete_upload(u, describe, &app.queue, now)
        .await?)
}
