//! Decoding: any supported container and codec to planar f32 PCM at the source rate.
//!
//! Symphonia probes the container and decodes everything it supports. Opus, which Symphonia does
//! not decode, goes through libopus (the same library as the encoder), with the pre-skip and end
//! trimming of RFC 7845 applied. Recoverable damage (a packet that fails to decode) is skipped and
//! counted; damage that leaves more broken packets than good ones is an [`Error::Corrupt`].

use crate::tags::Tags;
use crate::units::{Pcm, SampleRate};
use crate::{Error, Result};
use serde::Serialize;
use symphonia::core::audio::{Channels, Position};
use symphonia::core::codecs::audio::well_known::CODEC_ID_OPUS;
use symphonia::core::codecs::audio::{AudioCodecParameters, AudioDecoder, AudioDecoderOptions};
use symphonia::core::codecs::CodecParameters;
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader, Track, TrackType};
use symphonia::core::io::{MediaSource, MediaSourceStream};
use symphonia::core::meta::{MetadataOptions, MetadataRevision, StandardTag, StandardVisualKey};
use symphonia::core::packet::Packet;

/// Bounds on what one input may make us allocate.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Longest accepted input, in seconds of audio.
    pub max_seconds: f64,
    /// Most channels accepted in the source (they are downmixed afterwards).
    pub max_channels: usize,
    /// Largest embedded cover image kept, in bytes; larger ones are dropped, not fatal.
    pub max_cover_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_seconds: 6.0 * 3600.0,
            max_channels: 32,
            max_cover_bytes: 8 << 20,
        }
    }
}

/// An embedded cover image.
#[derive(Debug, Clone, PartialEq)]
pub struct Cover {
    /// MIME type, detected from the bytes (`image/jpeg` or `image/png`).
    pub media_type: &'static str,
    /// The encoded image.
    pub data: Vec<u8>,
}

impl Cover {
    /// The file extension matching the image type.
    pub fn extension(&self) -> &'static str {
        if self.media_type == "image/png" {
            "png"
        } else {
            "jpg"
        }
    }
}

/// What the source is, as found while decoding it.
#[derive(Debug, Clone, Serialize)]
pub struct SourceInfo {
    /// Container short name (`wav`, `flac`, `isomp4`, `ogg`, ...).
    pub container: String,
    /// Codec short name (`pcm_s16le`, `mp3`, `aac`, `opus`, ...).
    pub codec: String,
    /// Source sample rate.
    pub sample_rate: SampleRate,
    /// Channels in the source, before any downmix.
    pub channels: usize,
    /// Bits per sample for PCM-like and lossless codecs; `None` for lossy codecs.
    pub bits_per_sample: Option<u32>,
    /// Whether the codec is lossless (PCM, FLAC, ALAC, ...).
    pub lossless: bool,
    /// Descriptive tags.
    pub tags: Tags,
    /// Packets that failed to decode and were skipped.
    pub skipped_packets: u64,
    /// Where the first skipped packet was, in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_skip_seconds: Option<f64>,
    /// Whether the file ends before the audio it declares (cut off mid-frame, or a sample table
    /// pointing past the end): what decodes up to the cut is kept.
    #[serde(skip)]
    pub truncated: bool,
    /// The duration the container or codec header declares, in seconds, when it states one.
    #[serde(skip)]
    pub declared_seconds: Option<f64>,
    /// What was wrong but did not stop decoding (malformed tags, a cut-off end), one line each.
    #[serde(skip)]
    pub warnings: Vec<String>,
}

/// A decoded source: its PCM, what it was, and its cover art.
#[derive(Debug, Clone)]
pub struct Decoded {
    /// Description of the source.
    pub info: SourceInfo,
    /// The decoded samples at the source rate, in the source's channel order.
    pub pcm: Pcm,
    /// The source's channel layout, when the container states one.
    pub layout: Option<Channels>,
    /// Embedded cover art (front cover preferred).
    pub cover: Option<Cover>,
}

/// Decodes a whole source to PCM: [`StreamDecoder`] run to the end, its pieces joined.
///
/// `extension` is a hint only: the container is detected from its bytes. `progress` is called
/// with the fraction decoded so far (0.0 to 1.0) when the duration is known in advance.
///
/// # Errors
/// [`Error::Empty`] for no bytes or no samples, [`Error::Unsupported`] for a format or codec we do
/// not read, [`Error::Corrupt`] when most packets are broken, [`Error::Limit`] beyond `limits`.
pub fn decode(
    source: Box<dyn MediaSource>,
    extension: Option<&str>,
    limits: &Limits,
    progress: &mut dyn FnMut(f32),
) -> Result<Decoded> {
    let mut stream = StreamDecoder::open(source, extension, limits)?;
    let mut pcm = Pcm::new(stream.rate(), 0);
    while let Some(piece) = stream.next_chunk()? {
        pcm.append(piece);
        if let Some(f) = stream.progress() {
            progress(f);
        }
    }
    let layout = stream.layout().cloned();
    let (info, cover) = stream.finish()?;
    progress(1.0);
    Ok(Decoded {
        info,
        pcm,
        layout,
        cover,
    })
}

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

/// Sample rates accepted from a header: 8 kHz (narrowband telephony) to 768 kHz (the highest rate
/// professional converters offer). Outside these, a header is lying or hostile, and every buffer
/// sized from the rate (resampler filters, waveform pixels) would be absurd.
pub const RATE_RANGE: std::ops::RangeInclusive<u32> = 8_000..=768_000;

fn check_rate(rate: SampleRate) -> Result<SampleRate> {
    if RATE_RANGE.contains(&rate.hz()) {
        Ok(rate)
    } else {
        Err(Error::Limit(format!(
            "a sample rate of {} Hz (accepted: {} to {} Hz)",
            rate.hz(),
            RATE_RANGE.start(),
            RATE_RANGE.end()
        )))
    }
}

impl StreamDecoder {
    /// Probes `source` and checks its declared facts against `limits`.
    ///
    /// # Errors
    /// As [`decode`], for what the headers already show.
    pub fn open(
        source: Box<dyn MediaSource>,
        extension: Option<&str>,
        limits: &Limits,
    ) -> Result<Self> {
        if source.byte_len() == Some(0) {
            return Err(Error::Empty("the input has no bytes".into()));
        }
        let mut source = source;
        let scan = crate::tags::scan(source.as_mut());
        let edit = mp4_edit(&mut source);
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

fn check_channels(n: usize, limits: &Limits) -> Result<()> {
    if n > limits.max_channels {
        return Err(Error::Limit(format!(
            "{n} channels (at most {})",
            limits.max_channels
        )));
    }
    Ok(())
}

/// Counts of packets that decoded and that were skipped as damaged.
#[derive(Debug, Default)]
struct Damage {
    good: u64,
    bad: u64,
    first_bad: Option<f64>,
}

impl Damage {
    /// Packets skipped before the damage is judged too much to recover from.
    const TOLERATED: u64 = 64;

    /// Records a skipped packet at `at` seconds; fails once broken packets outnumber good ones.
    fn skip(&mut self, at: f64, detail: String) -> Result<()> {
        self.bad += 1;
        self.first_bad.get_or_insert(at);
        if self.bad > Self::TOLERATED && self.bad > self.good {
            return Err(self.corrupt(detail));
        }
        Ok(())
    }

    fn corrupt(&self, detail: String) -> Error {
        Error::Corrupt {
            at_seconds: self.first_bad,
            detail,
        }
    }
}

/// What the first link of the stream was.
struct FirstLink {
    rate: SampleRate,
    name: String,
    lossless: bool,
}

/// `planes` with `want` channels: unchanged, mono duplicated, or folded by averaging.
fn remap(planes: &[Vec<f32>], want: usize) -> std::borrow::Cow<'_, [Vec<f32>]> {
    use std::borrow::Cow;
    if planes.len() == want || planes.is_empty() {
        return Cow::Borrowed(planes);
    }
    let n = planes[0].len();
    Cow::Owned(if planes.len() == 1 {
        vec![planes[0].clone(); want]
    } else if want == 1 {
        let scale = 1.0 / planes.len() as f32;
        vec![(0..n)
            .map(|i| planes.iter().map(|p| p[i]).sum::<f32>() * scale)
            .collect()]
    } else {
        (0..want)
            .map(|ch| planes[ch.min(planes.len() - 1)].clone())
            .collect()
    })
}

fn classify(e: SymphoniaError, at_seconds: Option<f64>) -> Error {
    match e {
        SymphoniaError::Unsupported(what) => Error::Unsupported(what.to_string()),
        SymphoniaError::LimitError(what) => Error::Limit(what.to_string()),
        SymphoniaError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            Error::Corrupt {
                at_seconds,
                detail: "the data ends before its headers do".into(),
            }
        }
        SymphoniaError::IoError(io) => Error::Io(io),
        other => Error::Corrupt {
            at_seconds,
            detail: other.to_string(),
        },
    }
}

fn read_metadata(
    format: &mut dyn FormatReader,
    tags: &mut Tags,
    cover: &mut Option<Cover>,
    limits: &Limits,
) {
    let mut meta = format.metadata();
    while let Some(rev) = meta.pop() {
        absorb(&rev, tags, cover, limits);
    }
    if let Some(rev) = meta.current() {
        absorb(rev, tags, cover, limits);
    }
}

fn absorb(rev: &MetadataRevision, tags: &mut Tags, cover: &mut Option<Cover>, limits: &Limits) {
    let containers = std::iter::once(&rev.media).chain(rev.per_track.iter().map(|t| &t.metadata));
    for c in containers {
        for tag in &c.tags {
            match &tag.std {
                Some(StandardTag::TrackTitle(v)) => tags.title.get_or_insert_with(|| v.to_string()),
                Some(StandardTag::Artist(v)) => tags.artist.get_or_insert_with(|| v.to_string()),
                Some(StandardTag::Album(v)) => tags.album.get_or_insert_with(|| v.to_string()),
                Some(StandardTag::IdentIsrc(v)) => tags.isrc.get_or_insert_with(|| v.to_string()),
                Some(StandardTag::TrackNumber(n)) => {
                    tags.track_number.get_or_insert(*n);
                    continue;
                }
                _ => continue,
            };
        }
        for visual in &c.visuals {
            let front = matches!(visual.usage, Some(StandardVisualKey::FrontCover));
            if visual.data.len() > limits.max_cover_bytes || (cover.is_some() && !front) {
                continue;
            }
            if let Some(media_type) = sniff_image(&visual.data) {
                *cover = Some(Cover {
                    media_type,
                    data: visual.data.to_vec(),
                });
            }
        }
    }
}

/// The image type from its magic bytes; a stated MIME type is not trusted.
fn sniff_image(data: &[u8]) -> Option<&'static str> {
    if data.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if data.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else {
        None
    }
}

enum DecodeFailure {
    Recoverable(String),
    Fatal(Error),
}

/// Symphonia's decoders, plus libopus for Opus.
enum Decoder {
    /// A Symphonia decoder, and the integer width of the buffers it produced.
    Symphonia(Box<dyn AudioDecoder>, Option<u32>),
    Opus(OpusSource),
}

impl Decoder {
    fn new(params: &AudioCodecParameters, opus: OpusFraming) -> Result<Self> {
        if params.codec == CODEC_ID_OPUS {
            return OpusSource::new(params, opus).map(Decoder::Opus);
        }
        let decoder = symphonia::default::get_codecs()
            .make_audio_decoder(params, &AudioDecoderOptions::default())
            .map_err(|e| Error::Unsupported(format!("codec: {e}")))?;
        Ok(Decoder::Symphonia(decoder, None))
    }

    fn name(&self) -> String {
        match self {
            Decoder::Symphonia(d, _) => d.codec_info().short_name.to_string(),
            Decoder::Opus(_) => "opus".into(),
        }
    }

    fn lossless(&self) -> bool {
        let name = self.name();
        name.starts_with("pcm") || ["flac", "alac", "wavpack"].contains(&name.as_str())
    }

    fn bits(&self) -> Option<u32> {
        match self {
            Decoder::Symphonia(d, seen) => d.codec_params().bits_per_sample.or(*seen),
            Decoder::Opus(_) => None,
        }
    }

    fn rate(&self) -> Option<SampleRate> {
        match self {
            Decoder::Symphonia(d, _) => d.codec_params().sample_rate.and_then(SampleRate::new),
            Decoder::Opus(_) => Some(SampleRate::LOSSY),
        }
    }

    fn channels(&self) -> Option<usize> {
        match self {
            Decoder::Symphonia(d, _) => d.codec_params().channels.as_ref().map(Channels::count),
            Decoder::Opus(o) => Some(o.channels),
        }
    }

    fn decode(
        &mut self,
        packet: &Packet,
        out: &mut Vec<Vec<f32>>,
    ) -> std::result::Result<(), DecodeFailure> {
        match self {
            Decoder::Symphonia(d, seen) => match d.decode(packet) {
                Ok(buf) => {
                    use symphonia::core::audio::GenericAudioBufferRef as B;
                    *seen = match buf {
                        B::U8(_) | B::S8(_) => Some(8),
                        B::U16(_) | B::S16(_) => Some(16),
                        B::U24(_) | B::S24(_) => Some(24),
                        B::U32(_) | B::S32(_) => Some(32),
                        _ => None,
                    };
                    out.iter_mut().for_each(Vec::clear);
                    buf.copy_to_vecs_planar::<f32>(out);
                    out.truncate(buf.spec().channels().count());
                    for plane in out.iter_mut() {
                        plane.truncate(buf.frames());
                    }
                    Ok(())
                }
                Err(SymphoniaError::DecodeError(e)) => {
                    Err(DecodeFailure::Recoverable(e.to_string()))
                }
                Err(SymphoniaError::IoError(e)) => Err(DecodeFailure::Recoverable(e.to_string())),
                Err(SymphoniaError::Unsupported(e)) => {
                    Err(DecodeFailure::Fatal(Error::Unsupported(e.to_string())))
                }
                Err(SymphoniaError::ResetRequired) => Err(DecodeFailure::Fatal(
                    Error::Unsupported("the stream changes its parameters mid-file".into()),
                )),
                Err(e) => Err(DecodeFailure::Recoverable(e.to_string())),
            },
            Decoder::Opus(o) => o.decode(packet, out),
        }
    }
}

/// How the container frames Opus's identification header and pre-skip.
#[derive(Debug, Clone, Copy)]
struct OpusFraming {
    big_endian: bool,
    pre_skip_in_window: bool,
}

/// Opus through libopus's multistream decoder, following RFC 7845: decode at 48 kHz, skip the
/// pre-skip, trim the end. One stream (mapping family 0, mono or stereo) is the simplest case of a
/// multistream; family 1 (up to 8 channels in the Vorbis order, such as 5.1 and 7.1) and family
/// 255 (unlabelled channels) name their streams and mapping table in the header (5.1.1).
struct OpusSource {
    decoder: opusic_c::multistream::Decoder,
    channels: usize,
    /// For each output plane (in the order of [`OpusSource::layout`]), the decoded channel it takes.
    order: Vec<usize>,
    /// The positions of the output planes, when the mapping family names them.
    layout: Option<Channels>,
    /// Samples still to drop from the start when the container does not trim packets itself
    /// (Matroska and MP4 carry the pre-skip only in the header).
    pre_skip_left: usize,
    buf: Vec<f32>,
}

/// The fields of an Opus identification header (RFC 7845 5.1) that decoding needs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct OpusHead {
    channels: usize,
    pre_skip: usize,
    gain: i16,
    family: u8,
    streams: u8,
    coupled: u8,
    mapping: Vec<u8>,
}

impl OpusHead {
    /// Most channels a multistream decoder is built for here: mapping family 1's limit.
    const MAX_CHANNELS: usize = 8;

    /// Reads `OpusHead`, or MP4's `dOps` behind the same magic (its fields are big-endian, Opus in
    /// ISO BMFF 4.3.2). Never reads past `head`.
    fn parse(head: &[u8], big_endian: bool) -> Result<Self> {
        let bad = |why: &str| Error::Unsupported(format!("Opus header: {why}"));
        if head.len() < 19 || !head.starts_with(b"OpusHead") {
            return Err(bad("missing or shorter than 19 bytes"));
        }
        let u16_at = |i: usize| {
            let b = [head[i], head[i + 1]];
            if big_endian {
                u16::from_be_bytes(b)
            } else {
                u16::from_le_bytes(b)
            }
        };
        let channels = usize::from(head[9]);
        let family = head[18];
        let (streams, coupled, mapping) = if family == 0 {
            if !(1..=2).contains(&channels) {
                return Err(bad(&format!("mapping family 0 with {channels} channels")));
            }
            (1, channels as u8 - 1, (0..channels as u8).collect())
        } else {
            // Stream count, coupled count, then one mapping byte per output channel (5.1.1.2).
            let table = head
                .get(19..21 + channels)
                .ok_or_else(|| bad("the channel mapping table is cut short"))?;
            (table[0], table[1], table[2..].to_vec())
        };
        if !matches!(family, 0 | 1 | 255) {
            return Err(Error::Unsupported(format!(
                "Opus channel mapping family {family} (ambisonics); families 0, 1 and 255 are decoded"
            )));
        }
        if channels == 0 || channels > Self::MAX_CHANNELS || (family == 1 && channels > 8) {
            return Err(Error::Unsupported(format!(
                "Opus with {channels} channels (at most {})",
                Self::MAX_CHANNELS
            )));
        }
        let coded = usize::from(streams) + usize::from(coupled);
        if streams == 0 || coupled > streams || coded > 255 {
            return Err(bad(&format!(
                "{streams} streams of which {coupled} coupled"
            )));
        }
        if let Some(m) = mapping
            .iter()
            .find(|&&m| m != 255 && usize::from(m) >= coded)
        {
            return Err(bad(&format!(
                "mapping entry {m} names no coded channel (of {coded})"
            )));
        }
        Ok(OpusHead {
            channels,
            pre_skip: usize::from(u16_at(10)),
            gain: u16_at(16) as i16,
            family,
            streams,
            coupled,
            mapping,
        })
    }

    /// The speaker positions of mapping family 1's output channels, in the Vorbis I order
    /// (Vorbis I 4.3.9, which RFC 7845 5.1.1.2 adopts).
    fn vorbis_positions(channels: usize) -> Option<Vec<Position>> {
        use Position as P;
        let (fl, fr, fc, lfe) = (P::FRONT_LEFT, P::FRONT_RIGHT, P::FRONT_CENTER, P::LFE1);
        let (rl, rr, rc, sl, sr) = (
            P::REAR_LEFT,
            P::REAR_RIGHT,
            P::REAR_CENTER,
            P::SIDE_LEFT,
            P::SIDE_RIGHT,
        );
        Some(match channels {
            1 => vec![fc],
            2 => vec![fl, fr],
            3 => vec![fl, fc, fr],
            4 => vec![fl, fr, rl, rr],
            5 => vec![fl, fc, fr, rl, rr],
            6 => vec![fl, fc, fr, rl, rr, lfe],
            7 => vec![fl, fc, fr, sl, sr, rc, lfe],
            8 => vec![fl, fc, fr, sl, sr, rl, rr, lfe],
            _ => return None,
        })
    }
}

/// A multistream decoder for `head`; the mapping's length fixes the channel count at compile time
/// in opusic-c, so each supported count has its arm.
fn multistream(head: &OpusHead) -> Result<opusic_c::multistream::Decoder> {
    use opusic_c::multistream::{Config, Decoder};
    use opusic_c::SampleRate as Rate;
    macro_rules! build {
        ($($n:literal),*) => {
            match head.mapping.len() {
                $($n => {
                    let mut mapping = [0u8; $n];
                    mapping.copy_from_slice(&head.mapping);
                    Config::<$n>::try_new(head.streams, head.coupled, mapping)
                        .map(|c| Decoder::new(c, Rate::Hz48000))
                })*
                _ => None,
            }
        };
    }
    build!(1, 2, 3, 4, 5, 6, 7, 8)
        .ok_or_else(|| {
            Error::Unsupported(format!(
                "Opus with {} streams ({} coupled) for {} channels",
                head.streams, head.coupled, head.channels
            ))
        })?
        .map_err(|e| Error::Unsupported(format!("libopus: {}", e.message())))
}

impl OpusSource {
    fn new(params: &AudioCodecParameters, framing: OpusFraming) -> Result<Self> {
        let head = match params.extra_data.as_deref() {
            Some(h) => OpusHead::parse(h, framing.big_endian)?,
            // No header at all: a plain stereo or mono stream, as the container states.
            None => {
                let channels = params
                    .channels
                    .as_ref()
                    .map_or(2, Channels::count)
                    .clamp(1, 2);
                OpusHead {
                    channels,
                    pre_skip: 0,
                    gain: 0,
                    family: 0,
                    streams: 1,
                    coupled: channels as u8 - 1,
                    mapping: (0..channels as u8).collect(),
                }
            }
        };
        let mut decoder = multistream(&head)?;
        decoder
            .set_gain(i32::from(head.gain))
            .map_err(|e| Error::Unsupported(format!("libopus: {}", e.message())))?;
        // Family 1 names positions: order the planes as their position bits (the WAVE order the
        // downmix reads). Other families keep the coded order.
        let (order, layout) = match OpusHead::vorbis_positions(head.channels)
            .filter(|_| head.family == 1 && head.channels > 2)
        {
            Some(positions) => {
                let mut order: Vec<usize> = (0..head.channels).collect();
                order.sort_by_key(|&i| positions[i].bits());
                let mask = positions.iter().fold(Position::empty(), |m, &p| m | p);
                (order, Some(Channels::Positioned(mask)))
            }
            None => ((0..head.channels).collect(), None),
        };
        // Containers that turn the pre-skip into per-packet trims are detected on the first
        // packet (see `decode`); until then the pre-skip is ours to apply.
        let pre_skip_left = if framing.pre_skip_in_window {
            0
        } else {
            head.pre_skip
        };
        Ok(OpusSource {
            decoder,
            channels: head.channels,
            order,
            layout,
            pre_skip_left,
            // 120 ms at 48 kHz, the longest Opus packet (RFC 6716 3.2.5).
            buf: vec![0.0; 5760 * head.channels],
        })
    }

    fn decode(
        &mut self,
        packet: &Packet,
        out: &mut Vec<Vec<f32>>,
    ) -> std::result::Result<(), DecodeFailure> {
        let n = self
            .decoder
            .decode_float_to_slice(&packet.data, &mut self.buf, false)
            .map_err(|e| DecodeFailure::Recoverable(e.message().to_string()))?;
        let trim_start = (packet.trim_start.get() as usize).min(n);
        if trim_start > 0 {
            // The container applies the pre-skip itself (Ogg does, through granule positions).
            self.pre_skip_left = 0;
        }
        let trim_end = (packet.trim_end.get() as usize).min(n - trim_start);
        let mut start = trim_start;
        let skip = self.pre_skip_left.min(n - trim_end - start);
        self.pre_skip_left -= skip;
        start += skip;
        let end = n - trim_end;
        out.resize_with(self.channels, Vec::new);
        for (plane, &ch) in out.iter_mut().zip(&self.order) {
            plane.clear();
            plane.extend((start..end).map(|i| self.buf[i * self.channels + ch]));
        }
        Ok(())
    }
}

/// Channel positions of the planes symphonia produced, for the downmix.
pub(crate) fn positions(layout: Option<&Channels>, count: usize) -> Vec<Position> {
    match layout {
        Some(Channels::Positioned(mask)) if mask.bits().count_ones() as usize == count => {
            mask.iter().collect()
        }
        _ => Position::from_count(count as u32)
            .map(|m| m.iter().collect())
            .unwrap_or_default(),
    }
}

/// The presented part of the decoded stream, from container information Symphonia does not apply:
/// an MP4 edit list (ISO/IEC 14496-12 8.6.6) or iTunes gapless tag (AAC encoder delay and
/// padding), or a Matroska segment duration (Opus end padding).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Window {
    /// Seconds to drop from the start of the decoded stream.
    skip_seconds: f64,
    /// Seconds to keep after that, when stated.
    keep_seconds: Option<f64>,
}

/// Reads the edit list of the first sound track, if the source is an MP4 file; rewinds the source.
fn mp4_edit(source: &mut Box<dyn MediaSource>) -> Option<Window> {
    use std::io::{Read, Seek, SeekFrom};
    const MAX_MOOV: u64 = 64 << 20;
    let found = (|| -> Option<Vec<u8>> {
        let mut header = [0u8; 8];
        source.read_exact(&mut header).ok()?;
        if &header[4..8] != b"ftyp" {
            return None;
        }
        let mut at = 0u64;
        loop {
            source.seek(SeekFrom::Start(at)).ok()?;
            source.read_exact(&mut header).ok()?;
            let mut size = u64::from(u32::from_be_bytes(header[..4].try_into().ok()?));
            let mut body_at = at + 8;
            if size == 1 {
                let mut large = [0u8; 8];
                source.read_exact(&mut large).ok()?;
                size = u64::from_be_bytes(large);
                body_at += 8;
            }
            if size < 8 {
                return None;
            }
            if &header[4..8] == b"moov" {
                let len = size - (body_at - at);
                if len > MAX_MOOV {
                    return None;
                }
                let mut moov = vec![0u8; len as usize];
                source.read_exact(&mut moov).ok()?;
                return Some(moov);
            }
            at += size;
        }
    })();
    let _ = source.seek(SeekFrom::Start(0));
    parse_moov_edit(&found?)
}

fn children(data: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    let mut at = 0usize;
    std::iter::from_fn(move || {
        if at + 8 > data.len() {
            return None;
        }
        let size = u32::from_be_bytes(data[at..at + 4].try_into().ok()?) as usize;
        if size < 8 || at + size > data.len() {
            return None;
        }
        let item = (&data[at + 4..at + 8], &data[at + 8..at + size]);
        at += size;
        Some(item)
    })
}

fn child<'a>(data: &'a [u8], kind: &[u8]) -> Option<&'a [u8]> {
    children(data).find(|(k, _)| *k == kind).map(|(_, b)| b)
}

fn be(data: &[u8], at: usize, len: usize) -> Option<u64> {
    data.get(at..at + len)
        .map(|b| b.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
}

fn parse_moov_edit(moov: &[u8]) -> Option<Window> {
    elst_edit(moov).or_else(|| itunes_edit(moov))
}

/// iTunes gapless info: `moov/udta/meta/ilst/----` named `iTunSMPB`, whose value lists (in hex)
/// a reserved field, the priming, the padding and the sample count. Times are at the track rate,
/// which `mdhd` states.
fn itunes_edit(moov: &[u8]) -> Option<Window> {
    let meta = child(child(moov, b"udta")?, b"meta")?;
    let ilst = child(meta.get(4..)?, b"ilst")?;
    let rate = children(moov)
        .filter(|(k, _)| *k == b"trak")
        .find_map(|(_, t)| child(t, b"mdia").and_then(|m| child(m, b"mdhd")))
        .and_then(|mdhd| {
            if mdhd.first()? == &1 {
                be(mdhd, 20, 4)
            } else {
                be(mdhd, 12, 4)
            }
        })?;
    for (kind, item) in children(ilst) {
        if kind != b"----" {
            continue;
        }
        let name = child(item, b"name").and_then(|n| n.get(4..));
        if name != Some(b"iTunSMPB".as_slice()) {
            continue;
        }
        let value = std::str::from_utf8(child(item, b"data")?.get(8..)?).ok()?;
        let fields: Vec<u64> = value
            .split_whitespace()
            .filter_map(|f| u64::from_str_radix(f, 16).ok())
            .collect();
        let (priming, total) = (*fields.get(1)?, *fields.get(3)?);
        if rate == 0 || priming >= 1 << 20 {
            return None;
        }
        return Some(Window {
            skip_seconds: priming as f64 / rate as f64,
            keep_seconds: (total > 0).then(|| total as f64 / rate as f64),
        });
    }
    None
}

fn elst_edit(moov: &[u8]) -> Option<Window> {
    let mvhd = child(moov, b"mvhd")?;
    let movie_ts = if mvhd.first()? == &1 {
        be(mvhd, 20, 4)?
    } else {
        be(mvhd, 12, 4)?
    };
    for (kind, trak) in children(moov) {
        if kind != b"trak" {
            continue;
        }
        let mdia = child(trak, b"mdia")?;
        if child(mdia, b"hdlr").and_then(|h| h.get(8..12)) != Some(b"soun".as_slice()) {
            continue;
        }
        let mdhd = child(mdia, b"mdhd")?;
        let media_ts = if mdhd.first()? == &1 {
            be(mdhd, 20, 4)?
        } else {
            be(mdhd, 12, 4)?
        };
        let elst = child(child(trak, b"edts")?, b"elst")?;
        let version = *elst.first()?;
        let count = be(elst, 4, 4)?;
        let entry = if version == 1 { 20 } else { 12 };
        for i in 0..count.min(16) as usize {
            let at = 8 + i * entry;
            let (duration, media_time) = if version == 1 {
                (be(elst, at, 8)?, be(elst, at + 8, 8)? as i64)
            } else {
                (
                    be(elst, at, 4)?,
                    i64::from(be(elst, at + 4, 4)? as u32 as i32),
                )
            };
            if media_time < 0 {
                continue; // an empty edit (a delay), not a trim
            }
            if movie_ts == 0 || media_ts == 0 {
                return None;
            }
            return Some(Window {
                skip_seconds: media_time as f64 / media_ts as f64,
                keep_seconds: (duration > 0).then(|| duration as f64 / movie_ts as f64),
            });
        }
        return None;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// A 16-bit PCM WAV header declaring `data_len` bytes, followed by `body` zero bytes.
    fn wav(rate: u32, channels: u16, data_len: u32, body: usize) -> Vec<u8> {
        let align = 2 * channels;
        let mut w = Vec::new();
        w.extend_from_slice(b"RIFF");
        w.extend_from_slice(&36u32.saturating_add(data_len).to_le_bytes());
        w.extend_from_slice(b"WAVEfmt ");
        w.extend_from_slice(&16u32.to_le_bytes());
        w.extend_from_slice(&1u16.to_le_bytes());
        w.extend_from_slice(&channels.to_le_bytes());
        w.extend_from_slice(&rate.to_le_bytes());
        w.extend_from_slice(&rate.wrapping_mul(u32::from(align)).to_le_bytes());
        w.extend_from_slice(&align.to_le_bytes());
        w.extend_from_slice(&16u16.to_le_bytes());
        w.extend_from_slice(b"data");
        w.extend_from_slice(&data_len.to_le_bytes());
        w.resize(w.len() + body, 0);
        w
    }

    fn open(bytes: Vec<u8>, limits: &Limits) -> Result<StreamDecoder> {
        StreamDecoder::open(Box::new(Cursor::new(bytes)), Some("wav"), limits)
    }

    fn limit_message(r: Result<StreamDecoder>) -> String {
        match r {
            Err(Error::Limit(m)) => m,
            Err(e) => panic!("expected a limit error, got {e}"),
            Ok(_) => panic!("expected a limit error, the source opened"),
        }
    }

    #[test]
    fn a_rate_outside_8_to_768_khz_is_refused_before_anything_is_sized_from_it() {
        let hostile = wav(u32::MAX, 2, 4000, 4000);
        let m = limit_message(open(hostile, &Limits::default()));
        assert!(m.contains("4294967295 Hz"), "{m}");
        assert!(m.contains("8000 to 768000 Hz"), "{m}");
        let m = limit_message(open(wav(4_000, 1, 800, 800), &Limits::default()));
        assert!(m.contains("4000 Hz"), "{m}");
        assert!(open(wav(768_000, 1, 800, 800), &Limits::default()).is_ok());
        assert!(open(wav(8_000, 1, 800, 800), &Limits::default()).is_ok());
    }

    #[test]
    fn more_channels_than_allowed_are_refused() {
        let limits = Limits {
            max_channels: 4,
            ..Limits::default()
        };
        let m = limit_message(open(wav(48_000, 6, 1200, 1200), &limits));
        assert!(m.contains("6 channels (at most 4)"), "{m}");
        assert!(open(wav(48_000, 4, 1200, 1200), &limits).is_ok());
    }

    #[test]
    fn a_declared_duration_over_the_limit_is_refused_at_open() {
        // 2^31 mono frames at 8 kHz: about 74.6 hours declared by a 4 KB file.
        let m = limit_message(open(wav(8_000, 1, 0xFFFF_FFF0, 4000), &Limits::default()));
        assert!(m.contains("declares 268435 s"), "{m}");
        assert!(m.contains("at most 21600 s"), "{m}");
    }

    #[test]
    fn pieces_add_up_to_the_source() {
        let frames = 100_000u32;
        let mut d = open(
            wav(44_100, 2, frames * 4, (frames * 4) as usize),
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(d.declared_frames(), Some(u64::from(frames)));
        let mut total = 0;
        let mut pieces = 0;
        while let Some(p) = d.next_chunk().unwrap() {
            assert!(p.frames() > 0 && p.frames() <= 1 << 16);
            assert_eq!(p.channels(), 2);
            total += p.frames();
            pieces += 1;
        }
        assert_eq!(total, frames as usize);
        assert!(pieces > 1);
        let (info, _) = d.finish().unwrap();
        assert!(!info.truncated);
        assert_eq!(info.channels, 2);
    }
}
