//! Listener statistics: a channel's per-minute figures summed into steps of a minute, an hour
//! or a day, and a track's on-demand plays by day.

use super::owned;
use crate::app::App;
use crate::http::api::lookup::find_track;
use crate::http::openapi::{NoChannel, ProblemDoc, Refusals, CHANNELS, JSON_PROBLEM, TRACKS};
use crate::http::problem::Problem;
use crate::store::ListenerMinute;
use crate::util::{self, rfc3339};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::Json;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};

/// Steps a window may hold at most.
const MAX_STEPS: i64 = 2_000;

/// A window of time.
#[derive(Deserialize, IntoParams)]
pub struct Window {
    /// RFC 3339; default `to` minus a day.
    pub from: Option<String>,
    /// RFC 3339; default now.
    pub to: Option<String>,
    /// Seconds per step: 60, 3600 or 86400 (default 3600).
    pub step: Option<i64>,
}

fn instant(s: Option<&str>, name: &str, default: i64) -> Result<i64, Problem> {
    match s {
        None => Ok(default),
        Some(s) => chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| t.timestamp_millis())
            .map_err(|_| Problem::bad_request(format!("{name} must be an RFC 3339 date-time"))),
    }
}

impl Window {
    /// [from, to) in Unix ms, and the step in ms.
    fn bounds(&self, step_default: i64) -> Result<(i64, i64, i64), Problem> {
        let to = instant(self.to.as_deref(), "to", util::now_ms())?;
        let from = instant(self.from.as_deref(), "from", to - 86_400_000)?;
        let step = self.step.unwrap_or(step_default);
        if ![60, 3600, 86400].contains(&step) {
            return Err(Problem::bad_request("step must be 60, 3600 or 86400"));
        }
        let step = step * 1000;
        let from = from - from.rem_euclid(step);
        if to <= from || (to - from) / step > MAX_STEPS {
            return Err(Problem::bad_request(format!(
                "from must be before to, and the window at most {MAX_STEPS} steps"
            )));
        }
        Ok((from, to, step))
    }
}

/// One protocol's or one player family's figures in a step.
#[derive(Serialize, ToSchema, Default, Clone)]
pub struct Figures {
    /// Most listeners at once.
    pub peak: i64,
    /// Mean listeners over the step.
    pub mean: f64,
    /// Sessions started.
    pub sessions: i64,
    /// Hours listened.
    pub listening_hours: f64,
}

/// One step of a channel's statistics.
#[derive(Serialize, ToSchema)]
pub struct Step {
    /// RFC 3339, the step's start.
    pub start: String,
    /// Every protocol together (the peak is the highest sum of a minute).
    pub total: Figures,
    /// By protocol: `hls` (LL-HLS and HLS), `webrtc`, `progressive` (the Icecast mounts).
    #[schema(value_type = Object)]
    pub protocols: BTreeMap<String, Figures>,
    /// By player family (`VLC`, `Chrome`, `Sonos`…).
    #[schema(value_type = Object)]
    pub families: BTreeMap<String, Figures>,
}

/// A channel's statistics.
#[derive(Serialize, ToSchema)]
pub struct ChannelStats {
    /// Seconds per step.
    pub step: i64,
    /// By start, steps with no listener data left out.
    pub steps: Vec<Step>,
}

/// Sums minutes into steps of `step` ms.
fn steps(minutes: Vec<ListenerMinute>, step: i64) -> Vec<Step> {
    let per_step = (step / 60_000) as f64;
    let mut by_step: BTreeMap<i64, Vec<ListenerMinute>> = BTreeMap::new();
    for m in minutes {
        by_step
            .entry(m.minute - m.minute.rem_euclid(step))
            .or_default()
            .push(m);
    }
    by_step
        .into_iter()
        .map(|(start, rows)| {
            let mut protocols: BTreeMap<String, Figures> = BTreeMap::new();
            let mut families: BTreeMap<String, Figures> = BTreeMap::new();
            let mut minute_totals: BTreeMap<i64, i64> = BTreeMap::new();
            let mut total = Figures::default();
            for r in rows {
                let into = if r.dimension == "protocol" {
                    *minute_totals.entry(r.minute).or_default() += r.peak;
                    total.mean += r.mean / per_step;
                    total.sessions += r.sessions;
                    total.listening_hours += r.mean / 60.0;
                    &mut protocols
                } else {
                    &mut families
                };
                let f = into.entry(r.name).or_default();
                f.peak = f.peak.max(r.peak);
                f.mean += r.mean / per_step;
                f.sessions += r.sessions;
                f.listening_hours += r.mean / 60.0;
            }
            total.peak = minute_totals.values().copied().max().unwrap_or(0);
            Step {
                start: rfc3339(start),
                total,
                protocols,
                families,
            }
        })
        .collect()
}

/// A channel's listeners per step: peak, mean, sessions started and hours listened, in all and
/// by protocol and player family. Counted every second by the node running the channel, stored
/// by the minute (its owner and admins).
#[utoipa::path(
    get, path = "/v1/channels/{id}/stats", tag = CHANNELS,
    params(("id" = String, Path, description = "Channel id"), Window),
    responses(
        (status = 200, description = "The statistics", body = ChannelStats),
        (status = 400, description = "Bad from, to or step", body = ProblemDoc, content_type = JSON_PROBLEM),
        (status = 403, description = "Another artist's channel", body = ProblemDoc, content_type = JSON_PROBLEM),
        NoChannel,
        Refusals,
    ),
    security(("bearer" = []))
)]
pub(super) async fn channel(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Query(w): Query<Window>,
    headers: HeaderMap,
) -> Result<Json<ChannelStats>, Problem> {
    let c = owned(&app, &headers, &id).await?;
    let (from, to, step) = w.bounds(3600)?;
    let minutes = app.store.listener_minutes(c.id, from, to).await?;
    Ok(Json(ChannelStats {
        step: step / 1000,
        steps: steps(minutes, step),
    }))
}

/// A track's plays on one day.
#[derive(Serialize, ToSchema)]
pub struct PlaysDay {
    /// The UTC day, `YYYY-MM-DD`.
    pub day: String,
    /// Plays.
    pub plays: i64,
}

/// A track's plays.
#[derive(Serialize, ToSchema)]
pub struct TrackStats {
    /// Plays in the window.
    pub plays: i64,
    /// By UTC day.
    pub days: Vec<PlaysDay>,
}

/// A track's on-demand plays by day: playback sessions that fetched at least 30 s of its media
/// (its owner and admins).
#[utoipa::path(
    get, path = "/v1/tracks/{id}/stats", tag = TRACKS,
    params(("id" = String, Path, description = "Track id"), Window),
    responses(
        (status = 200, description = "The plays", body = TrackStats),
        (status = 400, description = "Bad from or to", body = ProblemDoc, content_type = JSON_PROBLEM),
        (status = 403, description = "Another artist's track", body = ProblemDoc, content_type = JSON_PROBLEM),
        (status = 404, description = "No such track", body = ProblemDoc, content_type = JSON_PROBLEM),
        Refusals,
    ),
    security(("bearer" = []))
)]
pub(super) async fn track(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Query(w): Query<Window>,
    headers: HeaderMap,
) -> Result<Json<TrackStats>, Problem> {
    let (t, _) = find_track(&app, &headers, &id, true).await?;
    let window = Window {
        step: Some(86400),
        from: w
            .from
            .clone()
            .or_else(|| Some(rfc3339(util::now_ms() - 30 * 86_400_000))),
        to: w.to.clone(),
    };
    let (from, to, _) = window.bounds(86400)?;
    let days: Vec<PlaysDay> = app
        .store
        .plays(t.id, from, to)
        .await?
        .into_iter()
        .map(|(day, plays)| PlaysDay {
            day: rfc3339(day)[..10].to_string(),
            plays,
        })
        .collect();
    Ok(Json(TrackStats {
        plays: days.iter().map(|d| d.plays).sum(),
        days,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ChannelId;

    #[test]
    fn minutes_sum_into_hours() {
        let ch = ChannelId::new();
        let m = |minute: i64, dimension: &str, name: &str, peak, mean, sessions| ListenerMinute {
            channel_id: ch,
            minute: minute * 60_000,
            dimension: dimension.into(),
            name: name.into(),
            peak,
            mean,
            sessions,
        };
        let rows = vec![
            m(0, "protocol", "hls", 4, 3.0, 5),
            m(0, "protocol", "progressive", 2, 2.0, 2),
            m(1, "protocol", "hls", 1, 1.0, 0),
            m(0, "family", "VLC", 2, 2.0, 0),
            m(61, "protocol", "hls", 1, 1.0, 1),
        ];
        let s = steps(rows, 3_600_000);
        assert_eq!(s.len(), 2);
        let h = &s[0];
        assert_eq!(h.total.peak, 6);
        assert_eq!(h.total.sessions, 7);
        assert!((h.total.listening_hours - 6.0 / 60.0).abs() < 1e-9);
        assert!((h.protocols["hls"].mean - 4.0 / 60.0).abs() < 1e-9);
        assert_eq!(h.families["VLC"].peak, 2);
        assert_eq!(s[1].protocols["hls"].sessions, 1);
    }
}
