//! Writing a package: each rendition's segments as they are cut, then its init segment and media
//! playlist once its length is known, the multivariant playlists, and the atomic rename into place.

use super::types::{Error, Rendition, RenditionReport, Result};
use std::fs;
use std::path::{Path, PathBuf};
use veza_codecs::{Codec, CodecConfig, Packet};
use veza_hls::{
    init_segment, media_segment, render_media, render_multivariant, Fragment, MediaPlaylist,
    SegmentRef, Segmenter, TrackInfo, Variant,
};

/// One rendition being written: packets in, `seg_NNNNN.m4s` files out as each segment closes.
///
/// It keeps only the open segment's packets and one line of playlist per segment, so its memory
/// does not grow with the track beyond that list.
pub(super) struct RenditionWriter {
    dir: PathBuf,
    segmenter: Segmenter,
    rate: u32,
    priming: u64,
    /// Decode time where the presented track ends (`priming + duration`).
    end: u64,
    duration: u64,
    refs: Vec<SegmentRef>,
    payload_bytes: u64,
    peak: u64,
}

impl RenditionWriter {
    /// A writer into the new directory `dir`, cutting at `boundaries` (decode times), for a track
    /// of `duration` samples at `rate` after `priming` samples.
    pub(super) fn new(
        dir: PathBuf,
        boundaries: Vec<u64>,
        rate: u32,
        priming: u32,
        duration: u64,
    ) -> Result<Self> {
        fs::create_dir(&dir).map_err(|source| Error::Output {
            path: dir.clone(),
            source,
        })?;
        Ok(RenditionWriter {
            dir,
            segmenter: Segmenter::new(boundaries),
            rate,
            priming: u64::from(priming),
            end: u64::from(priming) + duration,
            duration,
            refs: Vec::new(),
            payload_bytes: 0,
            peak: 0,
        })
    }

    /// Adds packets in decode order; writes every segment they close.
    pub(super) fn push(&mut self, packets: Vec<Packet>) -> Result<()> {
        for p in packets {
            if let Some(f) = self.segmenter.push(p.data, p.duration) {
                self.write_segment(f)?;
            }
        }
        Ok(())
    }

    fn write_segment(&mut self, f: Fragment) -> Result<()> {
        let decode_len: u64 = f.samples.iter().map(|(_, d)| u64::from(*d)).sum();
        let start = f.base_time.max(self.priming);
        let stop = (f.base_time + decode_len).min(self.end);
        let seconds = stop.saturating_sub(start) as f64 / f64::from(self.rate);
        let seg = media_segment(f.index + 1, f.base_time, &f.samples)?;
        self.payload_bytes += f.samples.iter().map(|(d, _)| d.len() as u64).sum::<u64>();
        if seconds > 0.0 {
            self.peak = self
                .peak
                .max((seg.len() as f64 * 8.0 / seconds).ceil() as u64);
        }
        let uri = format!("seg_{:05}.m4s", f.index);
        write(&self.dir.join(&uri), &seg)?;
        self.refs.push(SegmentRef { uri, seconds });
        Ok(())
    }

    /// Writes the last segment, the init segment (its edit list and bitrates need the whole
    /// track) and the media playlist.
    pub(super) fn finish(
        mut self,
        rendition: Rendition,
        config: CodecConfig,
        channels: usize,
        bits: Option<u32>,
    ) -> Result<RenditionReport> {
        if let Some(f) = self.segmenter.flush() {
            self.write_segment(f)?;
        }
        let duration_s = self.duration as f64 / f64::from(self.rate);
        let average = if duration_s > 0.0 {
            (self.payload_bytes as f64 * 8.0 / duration_s) as u64
        } else {
            0
        };
        let entry = crate::rendition::sample_entry(config)
            .ok_or_else(|| Error::Options("MP3 is not packaged in fMP4".into()))?;
        let init = init_segment(&TrackInfo {
            entry,
            timescale: self.rate,
            channels: channels as u16,
            priming: self.priming as u32,
            duration: self.duration,
            bitrate: (average as u32, self.peak.min(u64::from(u32::MAX)) as u32),
        })?;
        write(&self.dir.join("init.mp4"), &init)?;
        let segments = self.refs.len();
        let playlist = render_media(&MediaPlaylist {
            map_uri: "init.mp4".into(),
            segments: self.refs,
        });
        write(&self.dir.join("index.m3u8"), playlist.as_bytes())?;
        Ok(RenditionReport {
            name: rendition.name(),
            codec: rendition.codec(),
            codecs: rendition.codecs_attr().into(),
            sample_rate: self.rate,
            channels,
            bits_per_sample: bits,
            average_bitrate: average,
            peak_bitrate: self.peak.max(average),
            segments,
            priming_samples: self.priming as u32,
        })
    }
}

pub(super) fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    fs::write(path, bytes).map_err(|source| Error::Output {
        path: path.into(),
        source,
    })
}

/// The multivariant playlists: `master.m3u8` holds the most compatible family (AAC, or the first
/// family present), and every family also gets `master_<codec>.m3u8`.
pub(super) fn masters(renditions: &[RenditionReport]) -> Vec<(String, String)> {
    let mut families: Vec<Codec> = Vec::new();
    for r in renditions {
        if !families.contains(&r.codec) {
            families.push(r.codec);
        }
    }
    let Some(&first) = families.first() else {
        return Vec::new();
    };
    let primary = if families.contains(&Codec::Aac) {
        Codec::Aac
    } else {
        first
    };
    let variants = |codec: Codec| -> Vec<Variant> {
        let mut v: Vec<&RenditionReport> = renditions.iter().filter(|r| r.codec == codec).collect();
        v.sort_by_key(|r| std::cmp::Reverse(r.average_bitrate));
        v.iter()
            .map(|r| Variant {
                name: r.name.clone(),
                uri: format!("{}/index.m3u8", r.name),
                bandwidth: r.peak_bitrate,
                average_bandwidth: r.average_bitrate,
                codecs: r.codecs.clone(),
                channels: r.channels as u16,
            })
            .collect()
    };
    let mut out = vec![(
        crate::layout::MASTER.to_string(),
        render_multivariant(&variants(primary)),
    )];
    for codec in families {
        let family = match codec {
            Codec::Opus => "opus",
            Codec::Aac => "aac",
            Codec::Flac => "flac",
            // Packaging never makes MP3 (the ladder has none): it would list as its own family.
            Codec::Mp3 => "mp3",
        };
        out.push((
            crate::layout::master_of(family),
            render_multivariant(&variants(codec)),
        ));
    }
    out
}

/// Runs `fill` on a fresh temporary sibling of `outdir` (its parent made first when missing),
/// then renames it into place (replacing an older `outdir`). On any failure the temporary directory is removed and `outdir` is untouched.
pub(super) fn write_atomically<T>(
    outdir: &Path,
    fill: impl FnOnce(&Path) -> Result<T>,
) -> Result<T> {
    let parent = match outdir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = outdir
        .file_name()
        .ok_or_else(|| Error::Options(format!("{} is not a directory name", outdir.display())))?
        .to_string_lossy()
        .into_owned();
    let out_err = |source| Error::Output {
        path: outdir.into(),
        source,
    };
    // `veza-stream package in.flac a/b/out` makes `a/b` as `mkdir -p` would.
    fs::create_dir_all(&parent).map_err(out_err)?;
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}.tmp-"))
        .tempdir_in(&parent)
        .map_err(out_err)?;
    // On error `tmp` is dropped here, which removes it with whatever was written.
    let value = fill(tmp.path())?;
    let staged = tmp.keep();
    let result = (|| -> std::io::Result<()> {
        if outdir.exists() {
            let old = tempfile::Builder::new()
                .prefix(&format!(".{name}.old-"))
                .tempdir_in(&parent)?
                .keep();
            fs::rename(outdir, old.join("previous"))?;
            fs::rename(&staged, outdir)?;
            fs::remove_dir_all(old)
        } else {
            fs::rename(&staged, outdir)
        }
    })();
    if result.is_err() {
        let _ = fs::remove_dir_all(&staged);
    }
    result.map_err(out_err)?;
    Ok(value)
}
