//! Recorded shows: every live source session of a channel with `record_live`, as the source's
//! decoded PCM (before any crossfade), becomes a FLAC track of the channel's owner, packaged
//! into the ladder like any upload and listed at `GET /v1/channels/{id}/recordings`.
//!
//! While the show runs its PCM goes to a spool file (`data_dir/recordings/{id}.pcm`, 16-bit
//! stereo at 48 kHz) with a sidecar of its titles and their times (`{id}.json`), so a node
//! killed mid-show keeps what it received: [`Recorders::recover`] publishes it at the next
//! start. When the session ends (or reaches `live.record_max_seconds`, when a new recording
//! starts), the spool is encoded to FLAC with the titles as chapters (`CHAPTERxxx` Vorbis
//! comments), stored as the original of a new track, and its packaging is queued. A full disk or
//! a failing object store fails the recording with its reason; the channel never notices.

use super::core::Pcm48;
use crate::queue::Queue;
use crate::storage::Storage;
use crate::store::{ChannelId, MetadataStore, Recording, Track, TrackId};
use crate::util;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use veza_codecs::{CodecConfig, Encoder, FlacEncoder, SampleRate};

/// What a recording takes.
#[derive(Debug)]
pub enum Rec {
    /// The source's PCM.
    Pcm(Pcm48),
    /// A title the source sent.
    Title(String),
}

/// Blocks the recorder may have queued before it loses some (20 s of 20 ms blocks): a slow disk
/// loses recording, never slows the channel.
const QUEUE: usize = 1000;

/// FLAC bytes per stored part of the original, joined by the object store at the end.
const PART: usize = 32 << 20;

/// A recording's sidecar: what it needs to be published, even after a crash.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Meta {
    id: String,
    channel_id: String,
    owner: String,
    title: String,
    started_at: i64,
    /// (seconds from the start, title)
    chapters: Vec<(f64, String)>,
}

/// This node's recorders.
pub struct Recorders {
    store: Arc<dyn MetadataStore>,
    storage: Storage,
    queue: Arc<Queue>,
    spool: PathBuf,
    max_frames: u64,
}

impl Recorders {
    /// Recorders spooling under `spool`, each recording at most `max_seconds`.
    pub fn new(
        store: Arc<dyn MetadataStore>,
        storage: Storage,
        queue: Arc<Queue>,
        spool: PathBuf,
        max_seconds: u64,
    ) -> Recorders {
        Recorders {
            store,
            storage,
            queue,
            spool,
            max_frames: max_seconds.saturating_mul(48_000),
        }
    }

    /// A source session of `channel` went on air, named `name` (its `ice-name`): what to send
    /// its PCM and titles to. Recording starts only when the channel has `record_live`.
    pub fn start(self: &Arc<Self>, channel: ChannelId, name: Option<String>) -> mpsc::Sender<Rec> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let this = self.clone();
        tokio::spawn(async move { this.run(channel, name, rx).await });
        tx
    }

    async fn run(
        self: Arc<Self>,
        channel: ChannelId,
        name: Option<String>,
        mut rx: mpsc::Receiver<Rec>,
    ) {
        let row = match self.store.channel(channel).await {
            Ok(Some(c)) if c.station.record_live => c,
            _ => {
                while rx.recv().await.is_some() {}
                return;
            }
        };
        let show = name
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| row.title.clone());
        let mut title: Option<String> = None;
        'recordings: loop {
            let now = util::now_ms();
            let meta = Meta {
                id: uuid::Uuid::now_v7().to_string(),
                channel_id: channel.to_string(),
                owner: row.owner.clone(),
                title: format!("{show} — {}", show_date(now)),
                started_at: now,
                chapters: title.iter().map(|t| (0.0, t.clone())).collect(),
            };
            let mut rec = match Spool::create(&self.spool, meta).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(channel = %channel, error = %e, "a live show cannot be recorded");
                    while rx.recv().await.is_some() {}
                    return;
                }
            };
            let r = rec.row();
            if let Err(e) = self.store.create_recording(&r).await {
                tracing::warn!(channel = %channel, error = %e, "recording a live show without its row");
            }
            let mut failed: Option<String> = None;
            while let Some(m) = rx.recv().await {
                if failed.is_some() {
                    continue;
                }
                let done = match m {
                    Rec::Pcm(pcm) => rec.write(&pcm).await,
                    Rec::Title(t) => {
                        title = Some(t.clone());
                        rec.chapter(t).await
                    }
                };
                if let Err(e) = done {
                    failed = Some(format!("writing the spool: {e}"));
                }
                if rec.frames >= self.max_frames {
                    // A new recording goes on from here; this one is published meanwhile.
                    let this = self.clone();
                    tokio::spawn(async move { this.publish(rec, None).await });
                    continue 'recordings;
                }
            }
            self.publish(rec, failed).await;
            return;
        }
    }

    /// Publishes what a crash left in the spool, once.
    pub async fn recover(self: &Arc<Self>) {
        let Ok(mut dir) = tokio::fs::read_dir(&self.spool).await else {
            return;
        };
        while let Ok(Some(e)) = dir.next_entry().await {
            let path = e.path();
            if path.extension().and_then(|x| x.to_str()) != Some("json") {
                continue;
            }
            match Spool::open(&path).await {
                Ok(s) => {
                    tracing::info!(recording = %s.meta.id, "publishing a recording a restart interrupted");
                    self.publish(s, None).await;
                }
                Err(err) => {
                    tracing::warn!(path = %path.display(), error = %err, "an unreadable recording spool is removed");
                    let _ = tokio::fs::remove_file(&path).await;
                    let _ = tokio::fs::remove_file(path.with_extension("pcm")).await;
                }
            }
        }
    }

    /// Encodes a spool to FLAC, stores it as a new track's original and queues its packaging;
    /// or records why it failed. The spool goes either way.
    async fn publish(&self, s: Spool, failed: Option<String>) {
        let mut row = s.row();
        row.ended_at = Some(util::now_ms());
        let outcome = match failed {
            Some(why) => Err(why),
            None if s.frames == 0 => Err("the source sent no audio".into()),
            None => self.store_track(&s).await,
        };
        match outcome {
            Ok(track) => {
                row.state = "published".into();
                row.track_id = Some(track);
            }
            Err(why) => {
                tracing::warn!(recording = %row.id, reason = %why, "a recording failed");
                row.state = "failed".into();
                row.reason = Some(why);
            }
        }
        if let Err(e) = self.store.update_recording(&row).await {
            tracing::warn!(recording = %row.id, error = %e, "writing a recording's outcome failed");
        }
        let _ = tokio::fs::remove_file(s.pcm_path()).await;
        let _ = tokio::fs::remove_file(s.meta_path()).await;
    }

    async fn store_track(&self, s: &Spool) -> Result<TrackId, String> {
        // The track takes the recording's id, so a node killed while publishing publishes again
        // at its restart without a second track: the row is written last, once the original is
        // whole.
        let track: TrackId = s.meta.id.parse().unwrap_or_default();
        if let Ok(Some(_)) = self.store.track(track).await {
            return Ok(track);
        }
        let parts_prefix = crate::layout::upload(&format!("rec-{}", s.meta.id));
        let result = self.encode_parts(s, &parts_prefix).await;
        let outcome = async {
            let (parts, size) = result?;
            let key = crate::layout::original(track);
            self.storage
                .concat(&parts, &key)
                .await
                .map_err(|e| format!("storing the FLAC original: {e}"))?;
            let now = util::now_ms();
            let t = Track::queued(
                track,
                &s.meta.owner,
                key.clone(),
                &format!("{}.flac", s.meta.title),
                "audio/flac",
                Some(&s.meta.title),
                size as i64,
                now,
            );
            if let Err(e) = self
                .store
                .create_track(&t, &uuid::Uuid::new_v4().to_string(), now)
                .await
            {
                let _ = self.storage.delete(&key).await;
                return Err(format!("recording the track: {e}"));
            }
            self.queue.notify();
            Ok(track)
        }
        .await;
        let _ = self.storage.delete_prefix(&parts_prefix).await;
        outcome
    }

    /// The FLAC file in parts under `prefix`, with its size: the header (with the chapters)
    /// first, then the frames.
    async fn encode_parts(&self, s: &Spool, prefix: &str) -> Result<(Vec<String>, u64), String> {
        let mut enc =
            FlacEncoder::new(SampleRate::LOSSY, 2, 16, Vec::new()).map_err(|e| e.to_string())?;
        let mut file = tokio::fs::File::open(s.pcm_path())
            .await
            .map_err(|e| format!("reading the spool: {e}"))?;
        let mut parts = Vec::new();
        let mut size = 0u64;
        let mut out: Vec<u8> = Vec::new();
        let mut chunk = vec![0u8; 48_000 * 4];
        loop {
            let n = read_full(&mut file, &mut chunk)
                .await
                .map_err(|e| format!("reading the spool: {e}"))?;
            // A crash can leave half a frame at the end.
            let whole = n - n % 4;
            if whole > 0 {
                let planes = deinterleave(&chunk[..whole]);
                for p in enc
                    .push(&[&planes[0], &planes[1]])
                    .map_err(|e| e.to_string())?
                {
                    out.extend_from_slice(&p.data);
                }
            }
            if n < chunk.len() {
                for p in enc.flush().map_err(|e| e.to_string())? {
                    out.extend_from_slice(&p.data);
                }
            }
            if out.len() >= PART || (n < chunk.len() && !out.is_empty()) {
                let key = format!("{prefix}{:06}", parts.len() + 1);
                size += out.len() as u64;
                self.storage
                    .put(&key, Bytes::from(std::mem::take(&mut out)))
                    .await
                    .map_err(|e| format!("storing the recording: {e}"))?;
                parts.push(key);
            }
            if n < chunk.len() {
                break;
            }
        }
        let CodecConfig::Flac { streaminfo } = enc.config() else {
            return Err("the FLAC encoder gave no STREAMINFO".into());
        };
        let header = flac_header(&streaminfo, &s.meta);
        let key = format!("{prefix}{:06}", 0);
        size += header.len() as u64;
        self.storage
            .put(&key, Bytes::from(header))
            .await
            .map_err(|e| format!("storing the recording: {e}"))?;
        parts.insert(0, key);
        Ok((parts, size))
    }
}

async fn read_full(f: &mut tokio::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    use tokio::io::AsyncReadExt;
    let mut n = 0;
    while n < buf.len() {
        let m = f.read(&mut buf[n..]).await?;
        if m == 0 {
            break;
        }
        n += m;
    }
    Ok(n)
}

fn deinterleave(bytes: &[u8]) -> [Vec<f32>; 2] {
    let mut out = [
        Vec::with_capacity(bytes.len() / 4),
        Vec::with_capacity(bytes.len() / 4),
    ];
    for frame in bytes.chunks_exact(4) {
        out[0].push(i16::from_le_bytes([frame[0], frame[1]]) as f32 / 32768.0);
        out[1].push(i16::from_le_bytes([frame[2], frame[3]]) as f32 / 32768.0);
    }
    out
}

/// `2026-12-07 20:00 UTC`.
fn show_date(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

/// `fLaC`, STREAMINFO and a VORBIS_COMMENT block (RFC 9639 sections 8.1, 8.2, 8.6) with the
/// show's title, date and chapters (`CHAPTER001=00:00:00.000`, `CHAPTER001NAME=…`, the
/// convention players such as foobar2000 and mpv read).
fn flac_header(streaminfo: &[u8], meta: &Meta) -> Vec<u8> {
    let mut comments = vec![
        format!("TITLE={}", meta.title),
        format!("DATE={}", show_date(meta.started_at)),
    ];
    for (i, (at, title)) in meta.chapters.iter().enumerate().take(999) {
        let ms = (at * 1000.0) as u64;
        comments.push(format!(
            "CHAPTER{:03}={:02}:{:02}:{:02}.{:03}",
            i + 1,
            ms / 3_600_000,
            ms / 60_000 % 60,
            ms / 1000 % 60,
            ms % 1000
        ));
        comments.push(format!("CHAPTER{:03}NAME={title}", i + 1));
    }
    let vendor = b"veza-stream";
    let mut body = Vec::new();
    body.extend_from_slice(&(vendor.len() as u32).to_le_bytes());
    body.extend_from_slice(vendor);
    body.extend_from_slice(&(comments.len() as u32).to_le_bytes());
    for c in &comments {
        body.extend_from_slice(&(c.len() as u32).to_le_bytes());
        body.extend_from_slice(c.as_bytes());
    }
    // A block length has 24 bits: comments past that are dropped (never for real shows).
    body.truncate(0xFF_FFFF);
    let mut out = b"fLaC".to_vec();
    out.push(0x00);
    out.extend_from_slice(&(streaminfo.len() as u32).to_be_bytes()[1..]);
    out.extend_from_slice(streaminfo);
    out.push(0x84);
    out.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    out.extend_from_slice(&body);
    out
}

/// One recording's spool files.
struct Spool {
    dir: PathBuf,
    meta: Meta,
    pcm: Option<tokio::fs::File>,
    frames: u64,
}

impl Spool {
    async fn create(dir: &Path, meta: Meta) -> std::io::Result<Spool> {
        tokio::fs::create_dir_all(dir).await?;
        let mut s = Spool {
            dir: dir.to_path_buf(),
            meta,
            pcm: None,
            frames: 0,
        };
        s.pcm = Some(tokio::fs::File::create(s.pcm_path()).await?);
        s.save().await?;
        Ok(s)
    }

    async fn open(meta_path: &Path) -> std::io::Result<Spool> {
        let meta: Meta = serde_json::from_slice(&tokio::fs::read(meta_path).await?)
            .map_err(std::io::Error::other)?;
        let dir = meta_path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let len = tokio::fs::metadata(dir.join(format!("{}.pcm", meta.id)))
            .await
            .map_or(0, |m| m.len());
        Ok(Spool {
            dir,
            meta,
            pcm: None,
            frames: len / 4,
        })
    }

    fn pcm_path(&self) -> PathBuf {
        self.dir.join(format!("{}.pcm", self.meta.id))
    }

    fn meta_path(&self) -> PathBuf {
        self.dir.join(format!("{}.json", self.meta.id))
    }

    /// Its row while it records.
    fn row(&self) -> Recording {
        Recording {
            id: self.meta.id.parse().unwrap_or_default(),
            channel_id: self.meta.channel_id.parse().unwrap_or_default(),
            owner: self.meta.owner.clone(),
            title: self.meta.title.clone(),
            state: "recording".into(),
            reason: None,
            track_id: None,
            started_at: self.meta.started_at,
            ended_at: None,
            seconds: self.frames as f64 / 48_000.0,
        }
    }

    /// Writes the sidecar whole, then moves it into place, so a crash leaves the old or the new.
    async fn save(&self) -> std::io::Result<()> {
        let tmp = self.meta_path().with_extension("json.tmp");
        tokio::fs::write(
            &tmp,
            serde_json::to_vec(&self.meta).map_err(std::io::Error::other)?,
        )
        .await?;
        tokio::fs::rename(&tmp, self.meta_path()).await
    }

    async fn write(&mut self, pcm: &Pcm48) -> std::io::Result<()> {
        let n = pcm[0].len().min(pcm[1].len());
        let mut bytes = Vec::with_capacity(n * 4);
        for i in 0..n {
            for c in pcm {
                let s = (c[i].clamp(-1.0, 1.0) * 32767.0).round() as i16;
                bytes.extend_from_slice(&s.to_le_bytes());
            }
        }
        if let Some(f) = self.pcm.as_mut() {
            f.write_all(&bytes).await?;
        }
        self.frames += n as u64;
        Ok(())
    }

    async fn chapter(&mut self, title: String) -> std::io::Result<()> {
        let at = self.frames as f64 / 48_000.0;
        if self.meta.chapters.last().is_some_and(|c| c.1 == title) {
            return Ok(());
        }
        self.meta.chapters.push((at, title));
        self.save().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flac_header_carries_the_chapters() {
        let meta = Meta {
            id: uuid::Uuid::nil().to_string(),
            channel_id: ChannelId::new().to_string(),
            owner: "a".into(),
            title: "Night Shift — 2026-12-07 20:00 UTC".into(),
            started_at: 0,
            chapters: vec![(0.0, "Intro".into()), (3723.5, "Artist - Song".into())],
        };
        let h = flac_header(&[0u8; 34], &meta);
        assert_eq!(&h[..5], b"fLaC\x00");
        assert_eq!(h[42], 0x84, "the comments are the last block");
        let text = String::from_utf8_lossy(&h);
        assert!(text.contains("CHAPTER002=01:02:03.500"));
        assert!(text.contains("CHAPTER002NAME=Artist - Song"));
    }
}
