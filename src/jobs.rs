//! `jobs`: transcode workers over the durable queue in the metadata store.
//!
//! A worker claims a job with a lease and heart-beats it. One attempt: remove what an earlier,
//! interrupted attempt left under its staging prefix; record a fresh staging prefix; download the
//! original; package it on a blocking thread; upload the package under the staging prefix; then
//! publish in one transaction, conditional on the lease. An attempt that cannot publish (lease
//! lost, track deleted) removes its staging prefix. Only a verdict on the bytes (not audio, nothing
//! decodable, over a limit) fails the track at once and removes its original. Everything else
//! (storage, I/O, an encoder refusal, a panic) keeps the original and is retried with exponential
//! backoff up to `jobs.max_attempts`; a failed track can be queued again by the retry endpoint. At
//! shutdown a running job is given back, not counted as an attempt.

use crate::catalog::Catalog;
use crate::config;
use crate::metrics::Metrics;
use crate::queue::Queue;
use crate::storage::Storage;
use crate::store::{Failure, Found, Job, MetadataStore, Rendition, TrackMeta};
use crate::util;
use futures::{StreamExt, TryStreamExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// What a worker needs: the queue in the store and on this node, storage, the catalog to refresh
/// when a track is published, and the packaging options. No HTTP router: it runs alone in tests.
pub struct Worker {
    /// The metadata store (the durable queue).
    pub store: Arc<dyn MetadataStore>,
    /// Originals in, packages out.
    pub storage: Storage,
    /// Wakes and running-job handles.
    pub queue: Arc<Queue>,
    /// Told when a track is published.
    pub catalog: Arc<Catalog>,
    /// Job metrics.
    pub metrics: Arc<Metrics>,
    /// `[jobs]`: leases, attempts, backoff.
    pub config: config::Jobs,
    /// Renditions and options of every package.
    pub options: crate::package::Options,
    /// Cancelled at shutdown.
    pub shutdown: CancellationToken,
}

/// How an attempt ended, when it did not publish.
enum Stop {
    /// The input cannot be packaged: fail the track.
    Reject(String),
    /// Something transient failed: retry.
    Retry(String),
    /// Cancelled (track deleted, lease lost): drop the work.
    Abandon,
    /// Shutting down: give the job back.
    Shutdown,
}

/// One worker: claims and runs jobs until shutdown.
pub async fn worker(app: Arc<Worker>, n: usize) {
    let lease = Duration::from_secs(app.config.lease_seconds);
    loop {
        if app.shutdown.is_cancelled() {
            return;
        }
        let lease_id = uuid::Uuid::new_v4().to_string();
        let now = util::now_ms();
        let claimed = app
            .store
            .claim(&lease_id, now + lease.as_millis() as i64, now)
            .await;
        match claimed {
            Ok(Some(job)) => {
                // One trace per attempt, linked to the request that queued the job.
                let span = tracing::info_span!(
                    "job",
                    otel.name = "package track",
                    otel.kind = "consumer",
                    otel.status_code = tracing::field::Empty,
                    job.id = %job.id,
                    track.id = %job.track_id,
                    job.attempt = job.attempts,
                );
                crate::telemetry::link(&span, job.traceparent.as_deref());
                tracing::Instrument::instrument(
                    async {
                        tracing::info!(worker = n, job = %job.id, track = %job.track_id, attempt = job.attempts, "job claimed");
                        run(&app, job).await;
                    },
                    span,
                )
                .await;
                continue;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(worker = n, error = %e, "claiming a job failed"),
        }
        // Sleep until woken by an upload, or poll: retries come due and leases expire on their own.
        tokio::select! {
            _ = app.queue.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = app.shutdown.cancelled() => return,
        }
    }
}

async fn run(app: &Arc<Worker>, job: Job) {
    let started = Instant::now();
    let cancel = app.queue.start(job.track_id);
    let beat = tokio::spawn(heartbeat(app.clone(), job.clone(), cancel.clone()));
    let staging = crate::layout::staging(job.track_id);
    let outcome = attempt(app, &job, &staging, &cancel).await;
    beat.abort();
    app.queue.finish(job.track_id);
    let now = util::now_ms();
    let stop = match outcome {
        Ok(seconds) => {
            let took = started.elapsed().as_secs_f64();
            app.metrics.job_duration.observe(took);
            if took > 0.0 {
                app.metrics.job_realtime.observe(seconds / took);
            }
            app.catalog.invalidate(job.track_id);
            tracing::info!(track = %job.track_id, seconds = took, "track ready");
            return;
        }
        Err(stop) => stop,
    };
    if matches!(stop, Stop::Reject(_) | Stop::Retry(_)) {
        tracing::Span::current().record("otel.status_code", "error");
    }
    // The attempt did not publish: its staging prefix must go, whatever happens next.
    if let Err(e) = app.storage.delete_prefix(&staging).await {
        tracing::warn!(track = %job.track_id, error = %e, "removing a staging prefix failed; the next attempt removes it");
    }
    let result = match stop {
        Stop::Shutdown => app.store.release(&job, now).await.map(|_| ()),
        Stop::Abandon => Ok(()),
        Stop::Reject(reason) => {
            app.metrics.job_attempts_failed.inc();
            tracing::info!(track = %job.track_id, %reason, "track rejected");
            let r = app.store.fail(&job, &Failure::Final(reason), now).await;
            if let Ok(true) = r {
                if let Ok(Some(t)) = app.store.track(job.track_id).await {
                    let _ = app.storage.delete(&t.original_key).await;
                }
            }
            r.map(|_| ())
        }
        Stop::Retry(error) => {
            app.metrics.job_attempts_failed.inc();
            let failure = if job.attempts >= app.config.max_attempts as i64 {
                tracing::warn!(track = %job.track_id, %error, "job failed for good");
                Failure::Final(format!("gave up after {} attempts: {error}", job.attempts))
            } else {
                let backoff =
                    app.config.retry_backoff_seconds * (1 << (job.attempts - 1).clamp(0, 16));
                tracing::warn!(track = %job.track_id, %error, backoff, "job attempt failed; will retry");
                Failure::Retry {
                    at: now + backoff as i64 * 1000,
                    error,
                }
            };
            app.store.fail(&job, &failure, now).await.map(|_| ())
        }
    };
    if let Err(e) = result {
        tracing::warn!(track = %job.track_id, error = %e, "recording a job's end failed; its lease will expire");
    }
}

/// Extends the lease every third of its length; cancels the attempt if the lease is lost.
async fn heartbeat(app: Arc<Worker>, job: Job, cancel: CancellationToken) {
    let lease = Duration::from_secs(app.config.lease_seconds);
    let mut tick = tokio::time::interval(lease / 3);
    tick.tick().await;
    loop {
        tick.tick().await;
        let until = util::now_ms() + lease.as_millis() as i64;
        match app.store.heartbeat(&job, until).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(track = %job.track_id, "lease lost");
                cancel.cancel();
                return;
            }
            Err(e) => tracing::warn!(track = %job.track_id, error = %e, "heartbeat failed"),
        }
    }
}

/// One attempt. Returns the seconds of audio published.
async fn attempt(
    app: &Arc<Worker>,
    job: &Job,
    staging: &str,
    cancel: &CancellationToken,
) -> Result<f64, Stop> {
    let retry = |what: &str, e: &dyn std::fmt::Display| Stop::Retry(format!("{what}: {e}"));
    let started = std::time::Instant::now();
    if let Some(stale) = &job.stale_staging {
        app.storage
            .delete_prefix(stale)
            .await
            .map_err(|e| retry("removing an interrupted attempt", &e))?;
    }
    match app.store.set_staging(job, staging).await {
        Ok(true) => {}
        Ok(false) => return Err(Stop::Abandon),
        Err(e) => return Err(retry("metadata store", &e)),
    }
    let track = match app.store.track(job.track_id).await {
        Ok(Some(t)) => t,
        Ok(None) => return Err(Stop::Abandon),
        Err(e) => return Err(retry("metadata store", &e)),
    };
    let _ = app.store.set_progress(job, 0.0, util::now_ms()).await;
    let tmp = tempfile::Builder::new()
        .prefix("veza-job-")
        .tempdir()
        .map_err(|e| retry("temporary directory", &e))?;
    let ext = Path::new(&track.filename)
        .extension()
        .and_then(|e| e.to_str())
        .filter(|e| e.len() <= 8 && e.bytes().all(|b| b.is_ascii_alphanumeric()))
        .unwrap_or("bin")
        .to_ascii_lowercase();
    let input = tmp.path().join(format!("original.{ext}"));
    use tracing::Instrument;
    let fetch = tracing::info_span!("fetch", otel.name = "fetch original");
    tokio::select! {
        r = app.storage.download(&track.original_key, &input).instrument(fetch) => {
            r.map_err(|e| retry("downloading the original", &e))?;
            tracing::debug!(track = %job.track_id, seconds = started.elapsed().as_secs_f64(), "original downloaded");
        }
        _ = cancel.cancelled() => return Err(Stop::Abandon),
        _ = app.shutdown.cancelled() => return Err(Stop::Shutdown),
    }

    // Package on a blocking thread. It owns the temporary directory, so the files go when the
    // thread finishes. Cancelling sets its flag, which every pass checks between pieces of the
    // source, and waits for it to stop: a deleted track or a shutdown stops the CPU work too.
    let progress = Arc::new(AtomicU32::new(0));
    let out = tmp.path().join("out");
    let opts = app.options.clone();
    let p = progress.clone();
    let stop_flag = Arc::new(AtomicBool::new(false));
    let flag = stop_flag.clone();
    let span = tracing::Span::current();
    let mut task = tokio::task::spawn_blocking(move || {
        let _job = span.enter();
        let report = |stage: crate::package::Stage, f: f32| {
            p.store(stage.overall(f).to_bits(), Ordering::Relaxed)
        };
        let r = crate::package::package_cancellable(&input, &out, &opts, &report, &flag);
        (tmp, out, r)
    });
    let reporter = tokio::spawn(report_progress(app.clone(), job.clone(), progress));
    let stopped = tokio::select! {
        r = &mut task => Ok(r),
        _ = cancel.cancelled() => Err(Stop::Abandon),
        _ = app.shutdown.cancelled() => Err(Stop::Shutdown),
    };
    reporter.abort();
    let joined = match stopped {
        Ok(r) => r,
        Err(stop) => {
            stop_flag.store(true, Ordering::Relaxed);
            let _ = task.await;
            return Err(stop);
        }
    };
    let (tmp, out, packaged) = joined.map_err(|e| retry("packaging thread", &e))?;
    tracing::debug!(track = %job.track_id, seconds = started.elapsed().as_secs_f64(), "packaged");
    let summary = match packaged {
        Ok(s) => s,
        // Only a verdict on the bytes fails the track for good; I/O, an encoder refusal or a
        // panic is ours, not the input's, and is retried with the original kept.
        Err(crate::package::Error::Input(e)) if e.is_input_fault() => {
            return Err(Stop::Reject(e.to_string()))
        }
        Err(e) => return Err(retry("packaging", &e)),
    };

    let files = walk(&out).map_err(|e| retry("reading the package", &e))?;
    let uploads = futures::stream::iter(files.into_iter().map(|path| {
        let rel = path
            .strip_prefix(&out)
            .map(|p| p.to_string_lossy().replace('\\', "/"))
            .unwrap_or_default();
        let key = format!("{staging}/{rel}");
        async move {
            let data = tokio::fs::read(&path)
                .await
                .map_err(|e| retry("reading the package", &e))?;
            app.storage
                .put(&key, data.into())
                .await
                .map_err(|e| retry("uploading the package", &e))
        }
    }))
    .buffer_unordered(8)
    .try_collect::<Vec<()>>()
    .instrument(tracing::info_span!("store", otel.name = "store package"));
    // Uploads are not cut short: a dropped put may still land after the staging prefix has been
    // removed. They take a fraction of a second; cancellation is honoured once they are done.
    uploads.await?;
    if cancel.is_cancelled() {
        return Err(Stop::Abandon);
    }
    if app.shutdown.is_cancelled() {
        return Err(Stop::Shutdown);
    }
    let publishing = tracing::info_span!("publish", otel.name = "publish track");
    let found = found(app, job.track_id, &summary.analysis, &out)
        .instrument(publishing.clone())
        .await?;
    drop(tmp);
    tracing::debug!(track = %job.track_id, seconds = started.elapsed().as_secs_f64(), "package uploaded");

    let renditions: Vec<Rendition> = summary
        .analysis
        .renditions
        .iter()
        .map(|r| Rendition {
            name: r.name.clone(),
            codecs: r.codecs.clone(),
            sample_rate: r.sample_rate as i64,
            channels: r.channels as i64,
            bandwidth: r.peak_bitrate as i64,
            average_bandwidth: r.average_bitrate as i64,
            segments: r.segments as i64,
        })
        .collect();
    let analysis = serde_json::to_string(&summary.analysis).map_err(|e| retry("analysis", &e))?;
    match app
        .store
        .publish(job, staging, &analysis, &renditions, &found, util::now_ms())
        .instrument(publishing)
        .await
    {
        Ok(true) => Ok(summary.analysis.duration_seconds),
        Ok(false) => Err(Stop::Abandon),
        Err(e) => Err(retry("publishing", &e)),
    }
}

/// What the package says about its track: the tags, made storable, and the embedded art stored
/// as its cover. Art that does not decode is skipped: it never stops a track from playing.
async fn found(
    app: &Worker,
    track: crate::store::TrackId,
    analysis: &crate::package::Analysis,
    out: &Path,
) -> Result<Found, Stop> {
    let tags = &analysis.source.tags;
    let text = |v: &Option<String>| {
        v.as_deref()
            .map(|s| crate::store::printable(s.trim(), 200))
            .filter(|s| !s.is_empty())
    };
    let mut found = Found {
        title: text(&tags.title),
        meta: TrackMeta {
            artist: text(&tags.artist),
            album: text(&tags.album),
            year: tags.year.map(i64::from),
            genre: text(&tags.genre),
            track_number: tags
                .track_number
                .and_then(|n| i64::try_from(n).ok())
                .filter(|n| (1..=9999).contains(n)),
        },
        cover: None,
        duration_ms: Some((analysis.duration_seconds * 1000.0).round() as i64),
    };
    let Some(name) = &analysis.cover else {
        return Ok(found);
    };
    let retry = |what: &str, e: &dyn std::fmt::Display| Stop::Retry(format!("{what}: {e}"));
    let bytes = tokio::fs::read(out.join(name))
        .await
        .map_err(|e| retry("reading the cover", &e))?;
    let cover = tokio::task::spawn_blocking(move || crate::cover::normalise(&bytes))
        .await
        .map_err(|e| retry("cover thread", &e))?;
    match cover {
        Ok(c) => {
            app.storage
                .put(&crate::layout::cover(track, &c.digest), c.jpeg.into())
                .await
                .map_err(|e| retry("storing the cover", &e))?;
            found.cover = Some(c.digest);
        }
        Err(e) => tracing::info!(track = %track, error = %e, "embedded cover art skipped"),
    }
    Ok(found)
}

/// Writes progress to the store at most four times a second.
async fn report_progress(app: Arc<Worker>, job: Job, progress: Arc<AtomicU32>) {
    let mut last = -1.0f32;
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let p = f32::from_bits(progress.load(Ordering::Relaxed));
        if (p - last).abs() >= 0.005 {
            last = p;
            let _ = app.store.set_progress(&job, p as f64, util::now_ms()).await;
        }
    }
}

/// Every file under `dir`.
fn walk(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(d)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                stack.push(entry.path());
            } else {
                out.push(entry.path());
            }
        }
    }
    Ok(out)
}
