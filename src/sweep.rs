//! `sweep`: the housekeeping driver. Every five seconds it drops idle listener sessions, forgets
//! full rate-limit buckets, expired idempotency keys and expired resumable uploads, and stores the
//! tracks' plays counted since; at start and every ten minutes it removes what interrupted writes
//! left in storage, and statistics past their retention.

use crate::auth::Auth;
use crate::catalog::Catalog;
use crate::config;
use crate::layout;
use crate::metrics::Metrics;
use crate::storage::Storage;
use crate::store::MetadataStore;
use crate::util;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio_util::sync::CancellationToken;

/// What the sweeper needs.
pub struct Sweeper {
    /// The metadata store.
    pub store: Arc<dyn MetadataStore>,
    /// Object storage.
    pub storage: Storage,
    /// Listener sessions to sweep.
    pub catalog: Arc<Catalog>,
    /// Rate limiters to sweep.
    pub auth: Arc<Auth>,
    /// The listener gauge.
    pub metrics: Arc<Metrics>,
    /// `[limits]`: idempotency and upload expiry.
    pub limits: config::Limits,
    /// `live.stats_retention_days`.
    pub stats_retention_days: u64,
    /// Cancelled at shutdown.
    pub shutdown: CancellationToken,
}

/// Runs until shutdown.
pub async fn sweeper(s: Sweeper) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    let mut last_leftovers: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = s.shutdown.cancelled() => return,
        }
        if last_leftovers.is_none_or(|t| t.elapsed() >= Duration::from_secs(600)) {
            last_leftovers = Some(Instant::now());
            let expiry = Duration::from_secs(s.limits.upload_expiration_seconds);
            leftovers(&*s.store, &s.storage, expiry).await;
            let keep = s.stats_retention_days.saturating_mul(86_400_000) as i64;
            if let Err(e) = s.store.forget_stats(util::now_ms() - keep).await {
                tracing::warn!(error = %e, "forgetting old statistics and history");
            }
            if let Err(e) = s.store.forget_sessions(util::now_ms()).await {
                tracing::warn!(error = %e, "forgetting expired sessions and invitations");
            }
        }
        let n = s.catalog.listeners.sweep(Instant::now());
        let day = util::now_ms() - util::now_ms().rem_euclid(86_400_000);
        for (track, plays) in s.catalog.listeners.take_plays() {
            if let Err(e) = s.store.add_plays(track, day, plays).await {
                tracing::warn!(track = %track, error = %e, "storing a track's plays failed");
            }
        }
        s.metrics.listeners.set(n as i64);
        s.auth.limits.sweep();
        s.auth.guard.sweep();
        let now = util::now_ms();
        let ttl = s.limits.idempotency_ttl_seconds as i64 * 1000;
        if let Err(e) = s.store.forget_idempotency(now - ttl).await {
            tracing::warn!(error = %e, "forgetting old idempotency keys");
        }
        expire_uploads(&*s.store, &s.storage, now).await;
    }
}

/// Removes resumable uploads past their expiry, with their pieces.
pub async fn expire_uploads(store: &dyn MetadataStore, storage: &Storage, now: i64) {
    let expired = match store.expired_uploads(now).await {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(error = %e, "listing expired uploads");
            return;
        }
    };
    for u in expired {
        if u.track_id.is_none() {
            if let Err(e) = storage.delete_prefix(&layout::upload(&u.id)).await {
                tracing::warn!(upload = %u.id, error = %e, "removing an expired upload");
                continue;
            }
        }
        let _ = store.delete_upload(&u.id).await;
        tracing::info!(upload = %u.id, "upload expired");
    }
}

/// Removes what a killed process left in storage, once older than `expiry` (so nothing still
/// being written is touched): object_store's partial multipart files (`<key>#<n>`), upload pieces
/// whose upload row is gone, and originals whose track row was never written.
pub async fn leftovers(store: &dyn MetadataStore, storage: &Storage, expiry: Duration) {
    let Some(before) = SystemTime::now().checked_sub(expiry) else {
        return;
    };
    let local = storage.clone();
    let partials = tokio::task::spawn_blocking(move || local.sweep_partials(before))
        .await
        .unwrap_or(0);
    let mut pieces = 0;
    let mut originals = 0;
    match storage.older_than(layout::UPLOADS, before).await {
        Ok(keys) => {
            let mut ids: Vec<String> = keys
                .iter()
                .filter_map(|k| layout::upload_of(k).map(String::from))
                .collect();
            ids.dedup();
            for id in ids {
                if let Ok(None) = store.upload(&id).await {
                    if let Ok(n) = storage.delete_prefix(&layout::upload(&id)).await {
                        pieces += n;
                    }
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "listing upload pieces"),
    }
    match storage.older_than(layout::ORIGINALS, before).await {
        Ok(keys) => {
            for key in keys {
                let Some(id) = layout::original_track(&key) else {
                    continue;
                };
                if let Ok(None) = store.track(id).await {
                    if storage.delete(&key).await.is_ok() {
                        originals += 1;
                    }
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "listing originals"),
    }
    if partials + pieces + originals > 0 {
        tracing::info!(
            partials,
            pieces,
            originals,
            "removed what interrupted uploads left"
        );
    }
}
