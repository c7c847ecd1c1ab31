//! A rendition: one codec at one bitrate, as packaging (`veza-stream package`, the job worker)
//! and live channels both encode it. Its name in URLs, playlists and on the command line
//! (`opus-96`, `aac-128`, `flac`), its parsing, its RFC 6381 codec string, its encoder and its
//! init segment live here once.

use std::str::FromStr;
use veza_codecs::{Codec, CodecConfig, Encoder, OpusEncoder, SampleRate};
use veza_hls::{init_segment, SampleEntry, TrackInfo, LOSSY_TIMESCALE};

/// One rendition of a ladder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rendition {
    /// Opus at the given kb/s.
    Opus(u32),
    /// AAC-LC at the given kb/s.
    Aac(u32),
    /// FLAC at the source rate and bit depth.
    Flac,
}

impl Rendition {
    /// Parses a live channel's rendition: `opus-32` … `opus-510` or `aac-32` … `aac-320`. Live
    /// renditions are lossy and run at 48 kHz stereo, so Opus and AAC cut parts at the same
    /// instants.
    pub fn parse_live(s: &str) -> Result<Rendition, String> {
        let bad =
            || format!("{s:?} is not a live rendition: opus-32 … opus-510 or aac-32 … aac-320");
        if s.trim() != s {
            return Err(bad());
        }
        match s.parse::<Rendition>() {
            Ok(r @ Rendition::Opus(k)) if k >= 32 => Ok(r),
            Ok(r @ Rendition::Aac(_)) => Ok(r),
            _ => Err(bad()),
        }
    }

    /// The name used for directories, URLs and playlists.
    pub fn name(&self) -> String {
        match self {
            Rendition::Opus(k) => format!("opus-{k}"),
            Rendition::Aac(k) => format!("aac-{k}"),
            Rendition::Flac => "flac".into(),
        }
    }

    /// The codec family: one multivariant playlist per family.
    pub fn codec(&self) -> Codec {
        match self {
            Rendition::Opus(_) => Codec::Opus,
            Rendition::Aac(_) => Codec::Aac,
            Rendition::Flac => Codec::Flac,
        }
    }

    /// The codec family's name in URLs (`master_opus.m3u8`): `opus`, `aac`, `flac`.
    pub fn family(&self) -> &'static str {
        match self {
            Rendition::Opus(_) => "opus",
            Rendition::Aac(_) => "aac",
            Rendition::Flac => "flac",
        }
    }

    /// The RFC 6381 codec string of `CODECS`.
    pub fn codecs_attr(&self) -> &'static str {
        match self {
            Rendition::Opus(_) => "Opus",
            Rendition::Aac(_) => "mp4a.40.2",
            Rendition::Flac => "fLaC",
        }
    }

    /// Target bits per second; 0 for FLAC.
    pub fn bitrate(&self) -> u32 {
        match self {
            Rendition::Opus(k) | Rendition::Aac(k) => k * 1000,
            Rendition::Flac => 0,
        }
    }

    /// An encoder of a lossy rendition for `channels` channels at 48 kHz.
    ///
    /// # Errors
    /// FLAC (not lossy), AAC in a build without the `aac` feature, or the encoder refusing.
    pub fn lossy_encoder(&self, channels: usize) -> Result<Box<dyn Encoder>, String> {
        match self {
            Rendition::Opus(_) => OpusEncoder::new(channels, self.bitrate())
                .map(|e| Box::new(e) as Box<dyn Encoder>)
                .map_err(|e| e.to_string()),
            Rendition::Aac(_) => aac(channels, self.bitrate()),
            Rendition::Flac => Err("FLAC is not a lossy rendition".into()),
        }
    }

    /// A live rendition's stereo 48 kHz encoder and the init segment of its stream. A live stream
    /// has no known length and no edit list: encoder priming plays as a few milliseconds of
    /// silence at the very start, once.
    ///
    /// # Errors
    /// As [`Rendition::lossy_encoder`].
    pub fn live_encoder(&self) -> Result<(Box<dyn Encoder>, Vec<u8>), String> {
        let encoder = self.lossy_encoder(2)?;
        let init = init_segment(&TrackInfo {
            entry: sample_entry(encoder.config())
                .ok_or_else(|| format!("{} has no fMP4 sample entry", self.name()))?,
            timescale: LOSSY_TIMESCALE,
            channels: 2,
            priming: 0,
            duration: 0,
            bitrate: (self.bitrate(), self.bitrate()),
        })
        .map_err(|e| e.to_string())?;
        Ok((encoder, init))
    }
}

/// The ISO BMFF sample entry of an encoder's configuration; `None` for MP3, which only the
/// progressive mounts carry.
pub fn sample_entry(config: CodecConfig) -> Option<SampleEntry> {
    Some(match config {
        CodecConfig::Opus {
            pre_skip,
            input_rate,
            ..
        } => SampleEntry::Opus {
            pre_skip,
            input_rate,
        },
        CodecConfig::Aac { asc } => SampleEntry::Aac { asc },
        CodecConfig::Flac { streaminfo } => SampleEntry::Flac { streaminfo },
        CodecConfig::Mp3 => return None,
    })
}

#[cfg(feature = "aac")]
fn aac(channels: usize, bitrate: u32) -> Result<Box<dyn Encoder>, String> {
    veza_codecs::AacEncoder::new(SampleRate::LOSSY, channels, bitrate)
        .map(|e| Box::new(e) as Box<dyn Encoder>)
        .map_err(|e| e.to_string())
}

#[cfg(not(feature = "aac"))]
fn aac(_channels: usize, _bitrate: u32) -> Result<Box<dyn Encoder>, String> {
    let _ = SampleRate::LOSSY;
    Err("this build has no AAC encoder (cargo feature `aac`)".into())
}

impl FromStr for Rendition {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let s = s.trim();
        if s == "flac" {
            return Ok(Rendition::Flac);
        }
        let (codec, kbps) = s
            .split_once('-')
            .ok_or_else(|| format!("'{s}': expected opus-<kbps>, aac-<kbps> or flac"))?;
        if kbps.is_empty() || !kbps.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("'{s}': bitrate must be a whole number of kb/s"));
        }
        let kbps: u32 = kbps
            .parse()
            .map_err(|_| format!("'{s}': bitrate must be a whole number of kb/s"))?;
        match codec {
            "opus" if (6..=510).contains(&kbps) => Ok(Rendition::Opus(kbps)),
            "aac" if (32..=320).contains(&kbps) => Ok(Rendition::Aac(kbps)),
            "opus" => Err(format!("'{s}': Opus takes 6 to 510 kb/s")),
            "aac" => Err(format!("'{s}': AAC takes 32 to 320 kb/s")),
            _ => Err(format!("'{s}': unknown codec '{codec}' (opus, aac, flac)")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_names_parse_back_and_others_are_refused() {
        for r in [
            Rendition::Opus(128),
            Rendition::Aac(96),
            Rendition::Opus(32),
        ] {
            assert_eq!(Rendition::parse_live(&r.name()), Ok(r));
        }
        for bad in [
            "flac", "opus-8", "aac-999", "mp3-128", "opus-x", "", " opus-64", "opus-+64",
        ] {
            assert!(Rendition::parse_live(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn live_encoders_and_init_segments_build() {
        let (e, init) = Rendition::Opus(128).live_encoder().unwrap();
        assert_eq!(e.frame_len(), 960);
        assert_eq!(&init[4..8], b"ftyp");
        assert!(Rendition::Flac.live_encoder().is_err());
    }
}
