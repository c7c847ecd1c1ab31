//! [`StreamDecoder`]: the symphonia loop. Probe, pick the first sound track, decode packet by
//! packet, skip and count damage, follow chained Ogg links, and cut the presented window.

use super::codec::*;
use super::gapless::*;
use super::opus::*;
use super::tags::*;
use super::types::*;
use crate::tags::Tags;
use crate::units::{Pcm, SampleRate};
use crate::{Error, Result};
use symphonia::core::audio::Channels;
use symphonia::core::codecs::audio::well_known::CODEC_ID_OPUS;
use symphonia::core::codecs::audio::AudioCodecParameters;
use symphonia::core::codecs::CodecParameters;
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader, Track, TrackType};
use symphonia::core::io::{MediaSource, MediaSourceStream};
use symphonia::core::meta::MetadataOptions;

/// A source decoded piece by piece, in memory that does not grow with its duration.
///
/// [`StreamDecoder::open`] probes the container and checks what the headers declare against
/// [`Limits`] before anything is allocated from those figures: a sample rate outside 8 kHz to
/// 768 kHz, more channels than allowed or a declared duration over the limit is an
/// [`Error::Limit`] at once. [`StreamDecoder::next_chunk`] then gives the decoded PCM at the first
/// link's rate and channel count (later links of a chained Ogg stream are resampled and remapped
/// to it), with the container's edit list or stated duration applied, so the pieces add up to the
/// presented track. [`StreamDecoder::finish`] gives the [`SourceInfo`] (tags, warnings, whether
/// the file was cut off) and the cover art.
pub struct StreamDecoder {
    format: Box<dyn FormatReader>,
    track: Track,
    decoder: Decoder,
    params: AudioCodecParameters,
    opus: OpusFraming,
    first: FirstLink,
    link_rate: SampleRate,
    /// Resamples a later link whose rate differs from the first's.
    link_resampler: Option<crate::Resampler>,
    links: usize,
    layout: Option<Channels>,
    /// Output channels, fixed by the first decoded buffer.
    channels: Option<usize>,
    container: String,
    tags: Tags,
    cover: Option<Cover>,
    warnings: Vec<String>,
    cut_off: bool,
    /// Whether reading stopped at an I/O error: the file ends inside a packet or a sample table
    /// points past its end.
    cut: bool,
    damage: Damage,
    scratch: Vec<Vec<f32>>,
    expected_frames: Option<u64>,
    /// The presentation window in frames at the first link's rate: to skip, then to keep.
    skip_left: u64,
    keep_left: Option<u64>,
    /// Seconds of audio decoded, counting every link at its own rate.
    position: f64,
    /// Frames given out.
    emitted: u64,
    limits: Limits,
    ended: bool,
}

impl StreamDecoder {
    /// Probes `source` and checks its declared facts against `limits`.
    ///
    /// # Errors
    /// As [`decode`](crate::decode), for what the headers already show.
    pub fn open(
        source: Box<dyn MediaSource>,
        extension: Option<&str>,
        limits: &Limits,
    ) -> Result<Self> {
        if source.byte_len() == Some(0) {
            return Err(Error::Empty("the input has no bytes".into()));
        }
        let mut source = source;
        // Tag repairs and edit lists need to look ahead and come back: a pushed, endless source
        // (a live ingest) is decoded as it comes.
        let (scan, edit) = if source.is_seekable() {
            let scan = crate::tags::scan(source.as_mut());
            (scan, mp4_edit(&mut source))
        } else {
            (Default::default(), None)
        };
        let source: Box<dyn MediaSource> = if scan.patches.is_empty() {
            source
        } else {
            Box::new(crate::tags::Overlay::new(source, scan.patches))
        };
        let mss = MediaSourceStream::new(source, Default::default());
        let mut hint = Hint::new();
        if let Some(ext) = extension {
            hint.with_extension(ext);
        }
        let mut format = symphonia::default::get_probe()
            .probe(
                &hint,
                mss,
                FormatOptions::default(),
                MetadataOptions::default(),
            )
            .map_err(|e| match e {
                SymphoniaError::Unsupported(_) => {
                    Error::Unsupported("no known audio container or codec found in the data".into())
                }
                other => classify(other, None),
            })?;
        let track = format
            .default_track(TrackType::Audio)
            .ok_or_else(|| Error::Unsupported("the container holds no audio track".into()))?
            .clone();
        let params = match &track.codec_params {
            Some(CodecParameters::Audio(p)) => p.clone(),
            _ => {
                return Err(Error::Unsupported(
                    "the audio track has no codec parameters".into(),
                ))
            }
        };
        // Header facts first: nothing below allocates from them before they are checked.
        if let Some(hz) = params.sample_rate {
            match SampleRate::new(hz) {
                Some(r) => {
                    check_rate(r)?;
                }
                None => return Err(Error::Limit("a sample rate of 0 Hz".into())),
            }
        }
        let container = format.format_info().short_name.to_string();
        let (mut tags, mut cover) = (Tags::default(), None);
        read_metadata(format.as_mut(), &mut tags, &mut cover, limits);
        crate::tags::merge(&mut tags, scan.salvaged);

        // Matroska states its presentation length (Opus end padding is in DiscardPadding, which
        // Symphonia does not report).
        let window = edit.or_else(|| {
            let info = format.media_info();
            let (tb, duration) = (info.time_base?, info.duration?);
            (container == "matroska").then(|| Window {
                skip_seconds: 0.0,
                keep_seconds: Some(
                    duration.get() as f64 * f64::from(tb.numer.get()) / f64::from(tb.denom.get()),
                ),
            })
        });
        let opus = OpusFraming {
            // Symphonia hands MP4's dOps on as "OpusHead" + the dOps body, whose fields are
            // big-endian (Opus in ISO BMFF, 4.3.2), unlike OpusHead's.
            big_endian: container == "isomp4",
            // In MP4 the edit list carries the pre-skip (media_time); applying both would trim
            // twice.
            pre_skip_in_window: container == "isomp4"
                && window.is_some_and(|w| w.skip_seconds > 0.0),
        };
        let declared_channels = if params.codec == CODEC_ID_OPUS {
            None
        } else {
            params.channels.as_ref().map(Channels::count)
        };
        if let Some(n) = declared_channels {
            check_channels(n, limits)?;
        }
        let decoder = Decoder::new(&params, opus)?;
        let rate = params
            .sample_rate
            .and_then(SampleRate::new)
            .or_else(|| decoder.rate())
            .ok_or_else(|| Error::Unsupported("the audio track states no sample rate".into()))?;
        let rate = check_rate(rate)?;
        let layout = match &decoder {
            Decoder::Opus(o) => o.layout.clone(),
            Decoder::Symphonia(..) => params.channels.clone(),
        };
        let declared_channels = layout
            .as_ref()
            .map(Channels::count)
            .or_else(|| decoder.channels());
        if let Some(n) = declared_channels {
            check_channels(n, limits)?;
        }
        let expected_frames = track.num_frames.filter(|&n| n > 0);
        if let Some(n) = expected_frames {
            let seconds = n as f64 / f64::from(rate.hz());
            if seconds > limits.max_seconds {
                return Err(Error::Limit(format!(
                    "the file declares {seconds:.0} s of audio (at most {} s)",
                    limits.max_seconds
                )));
            }
        }
        let hz = f64::from(rate.hz());
        let (skip_left, keep_left) = match window {
            Some(w) => (
                (w.skip_seconds * hz).round() as u64,
                w.keep_seconds
                    .map(|k| (k * hz).round() as u64)
                    .filter(|&k| k > 0),
            ),
            None => (0, None),
        };
        let first = FirstLink {
            rate,
            name: decoder.name(),
            lossless: decoder.lossless(),
        };
        Ok(StreamDecoder {
            format,
            track,
            decoder,
            params,
            opus,
            first,
            link_rate: rate,
            link_resampler: None,
            links: 1,
            layout,
            channels: None,
            container,
            tags,
            cover,
            warnings: scan.warnings,
            cut_off: scan.truncated,
            cut: false,
            damage: Damage::default(),
            scratch: Vec::new(),
            expected_frames,
            skip_left,
            keep_left,
            position: 0.0,
            emitted: 0,
            limits: limits.clone(),
            ended: false,
        })
    }

    /// The output rate: the first link's.
    pub fn rate(&self) -> SampleRate {
        self.first.rate
    }

    /// The source's channel layout, when the container states one.
    pub fn layout(&self) -> Option<&Channels> {
        self.layout.as_ref()
    }

    /// Frames the headers declare, when they state a count.
    pub fn declared_frames(&self) -> Option<u64> {
        self.expected_frames
    }

    /// The fraction decoded so far, when the duration is known in advance.
    pub fn progress(&self) -> Option<f32> {
        let total = self.expected_frames?;
        Some((self.position * f64::from(self.first.rate.hz()) / total as f64).min(1.0) as f32)
    }

    /// The container's short name (`mp3`, `ogg`, `flac`, `adts`, `isomp4`, ...).
    pub fn container(&self) -> &str {
        &self.container
    }

    /// The next decoded piece, or `None` at the end of the stream. Pieces are never empty.
    pub fn next_chunk(&mut self) -> Result<Option<Pcm>> {
        while !self.ended {
            let decoded = self.next_packet()?;
            let piece = match decoded {
                Some(p) => p,
                None => {
                    self.ended = true;
                    match self.link_resampler.take() {
                        Some(mut r) => r.flush()?,
                        None => continue,
                    }
                }
            };
            if let Some(p) = self.present(piece) {
                return Ok(Some(p));
            }
        }
        Ok(None)
    }

    /// Applies the presentation window and the first link's channel count.
    fn present(&mut self, piece: Pcm) -> Option<Pcm> {
        let mut piece = piece;
        let n = piece.frames() as u64;
        if n == 0 {
            return None;
        }
        let channels = *self.channels.get_or_insert(piece.channels());
        if piece.channels() != channels {
            piece.planes = remap(&piece.planes, channels).into_owned();
        }
        // The window only applies to a single-link stream (edit lists and Matroska durations
        // never come with chained Ogg links).
        if self.links == 1 {
            let skip = self.skip_left.min(n);
            self.skip_left -= skip;
            let mut keep = n - skip;
            if let Some(left) = self.keep_left.as_mut() {
                keep = keep.min(*left);
                *left -= keep;
            }
            if skip > 0 || keep < n - skip {
                for plane in &mut piece.planes {
                    plane.truncate((skip + keep) as usize);
                    plane.drain(..skip as usize);
                }
            }
        }
        self.emitted += piece.frames() as u64;
        (piece.frames() > 0).then_some(piece)
    }

    /// Decodes the next packet of the track; `None` at the end.
    fn next_packet(&mut self) -> Result<Option<Pcm>> {
        loop {
            let packet = match self.format.next_packet() {
                Ok(Some(packet)) => packet,
                Ok(None) => return Ok(None),
                // A truncated file ends in an I/O error: keep what decoded.
                Err(SymphoniaError::IoError(e))
                    if e.kind() == std::io::ErrorKind::UnexpectedEof =>
                {
                    self.cut = true;
                    return Ok(None);
                }
                Err(SymphoniaError::IoError(e)) => return Err(Error::Io(e)),
                Err(SymphoniaError::ResetRequired) => {
                    // The link ends: the tail of its resampler belongs to it.
                    let tail = match self.link_resampler.take() {
                        Some(mut r) => Some(r.flush()?),
                        None => None,
                    };
                    self.next_link()?;
                    match tail {
                        Some(t) if t.frames() > 0 => return Ok(Some(t)),
                        _ => continue,
                    }
                }
                Err(SymphoniaError::DecodeError(detail)) => {
                    // The demuxer lost sync; it resynchronises on the next call.
                    self.damage.skip(self.position, detail.to_string())?;
                    continue;
                }
                Err(e) => return Err(classify(e, Some(self.position))),
            };
            if packet.track_id != self.track.id {
                continue;
            }
            let mut scratch = std::mem::take(&mut self.scratch);
            let result = self.decoder.decode(&packet, &mut scratch);
            let out = match result {
                Ok(()) => {
                    self.damage.good += 1;
                    self.take(&scratch)?
                }
                Err(DecodeFailure::Recoverable(detail)) => {
                    self.damage.skip(self.position, detail)?;
                    None
                }
                Err(DecodeFailure::Fatal(e)) => return Err(e),
            };
            self.scratch = scratch;
            if self.position > self.limits.max_seconds {
                return Err(Error::Limit(format!(
                    "longer than {} s of audio",
                    self.limits.max_seconds
                )));
            }
            if let Some(p) = out {
                return Ok(Some(p));
            }
        }
    }

    /// One decoded buffer as PCM at the first link's rate.
    fn take(&mut self, planes: &[Vec<f32>]) -> Result<Option<Pcm>> {
        if planes.is_empty() || planes[0].is_empty() {
            return Ok(None);
        }
        check_channels(planes.len(), &self.limits)?;
        self.position += planes[0].len() as f64 / f64::from(self.link_rate.hz());
        if self.link_rate == self.first.rate {
            return Ok(Some(Pcm {
                rate: self.first.rate,
                planes: planes.to_vec(),
            }));
        }
        // A later link at another rate: resampled to the first link's, with the channel count of
        // its first buffer.
        if self.link_resampler.is_none() {
            self.link_resampler = Some(crate::Resampler::new(
                self.link_rate,
                self.first.rate,
                planes.len(),
            )?);
        }
        let Some(r) = self.link_resampler.as_mut() else {
            return Ok(None);
        };
        let planes = remap(planes, r.channels());
        let refs: Vec<&[f32]> = planes.iter().map(Vec::as_slice).collect();
        Ok(Some(r.push(&refs)?))
    }

    /// A new link of a chained stream: its own track, codec parameters and decoder.
    fn next_link(&mut self) -> Result<()> {
        self.track = self
            .format
            .default_track(TrackType::Audio)
            .ok_or_else(|| Error::Unsupported("a chained link holds no audio track".into()))?
            .clone();
        let Some(CodecParameters::Audio(params)) = &self.track.codec_params else {
            return Err(Error::Unsupported(
                "a chained link has no codec parameters".into(),
            ));
        };
        self.decoder = Decoder::new(params, self.opus)?;
        self.link_rate = params
            .sample_rate
            .and_then(SampleRate::new)
            .or_else(|| self.decoder.rate())
            .ok_or_else(|| Error::Unsupported("a chained link states no sample rate".into()))?;
        check_rate(self.link_rate)?;
        self.links += 1;
        Ok(())
    }

    /// Ends decoding: the description of the source and its cover art.
    ///
    /// # Errors
    /// [`Error::Empty`] or [`Error::Corrupt`] when nothing playable decoded, [`Error::Corrupt`]
    /// when broken packets outnumber good ones.
    pub fn finish(mut self) -> Result<(SourceInfo, Option<Cover>)> {
        // Metadata can also follow the audio (ID3v1, APE, trailing Vorbis comments).
        read_metadata(
            self.format.as_mut(),
            &mut self.tags,
            &mut self.cover,
            &self.limits,
        );
        let rate = self.first.rate;
        let declared_seconds = self
            .expected_frames
            .map(|n| n as f64 / f64::from(rate.hz()));
        let damage = &self.damage;
        if self.emitted == 0 {
            return Err(if self.cut {
                Error::Corrupt {
                    at_seconds: Some(0.0),
                    detail: match declared_seconds {
                        Some(d) => format!(
                            "the file is cut off before its first complete audio frame (it declares {d:.3} s): nothing playable is left"
                        ),
                        None => "the file is cut off before its first complete audio frame: nothing playable is left".into(),
                    },
                }
            } else if damage.bad > 0 {
                damage.corrupt(format!("none of {} packets decoded", damage.bad))
            } else {
                Error::Empty("the audio track holds no samples".into())
            });
        }
        if damage.bad > damage.good {
            let total = damage.bad + damage.good;
            return Err(damage.corrupt(format!(
                "{} of {total} packets failed to decode",
                damage.bad
            )));
        }
        let kept = self.emitted as f64 / f64::from(rate.hz());
        let container = self.container;
        let mut warnings = self.warnings;
        // Cut off: reading stopped at an I/O error, the structure ends past the file (see
        // `tags`), or more than 0.1 s (a long frame plus priming) less than declared decodes.
        // Only counts that headers state exactly are compared (FLAC STREAMINFO, WAVE and AIFF
        // data sizes, MP3 Xing frames); MP4, Ogg and Matroska durations include what edits trim.
        let exact = !["isomp4", "ogg", "matroska"].contains(&container.as_str());
        let truncated =
            self.cut || self.cut_off || (exact && declared_seconds.is_some_and(|d| d - kept > 0.1));
        if truncated {
            warnings.push(match declared_seconds {
                Some(d) if d > kept => format!(
                    "the file is cut off: {kept:.3} s of its declared {d:.3} s decode, and are kept"
                ),
                _ => format!(
                    "the file is cut off mid-frame: the {kept:.3} s before the cut are kept"
                ),
            });
        }
        if damage.bad > 0 {
            warnings.push(format!(
                "{} damaged packet(s) skipped, the first at {:.3} s",
                damage.bad,
                damage.first_bad.unwrap_or(0.0)
            ));
        }
        let lossless = self.first.lossless;
        let info = SourceInfo {
            container,
            codec: self.first.name,
            sample_rate: rate,
            channels: self.channels.unwrap_or(0),
            bits_per_sample: if lossless {
                self.params.bits_per_sample.or_else(|| self.decoder.bits())
            } else {
                None
            },
            lossless,
            tags: self.tags,
            skipped_packets: damage.bad,
            first_skip_seconds: damage.first_bad,
            truncated,
            declared_seconds,
            warnings,
        };
        Ok((info, self.cover))
    }
}
