//! A live rendition: which codec at which bitrate, its encoder and its init segment.

use veza_codecs::{CodecConfig, Encoder, OpusEncoder, SampleRate};
use veza_hls::{init_segment, SampleEntry, TrackInfo, LOSSY_TIMESCALE};

/// A live rendition. Live renditions run at 48 kHz stereo, so Opus and AAC cut parts at the same
/// instants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lane {
    /// Opus at kb/s: 20 ms frames, music mode, no DTX.
    Opus(u32),
    /// AAC-LC at kb/s.
    Aac(u32),
}

impl Lane {
    /// Parses `opus-128` or `aac-128`.
    pub fn parse(s: &str) -> Result<Lane, String> {
        let bad =
            || format!("{s:?} is not a live rendition: opus-32 … opus-510 or aac-32 … aac-320");
        let (codec, kbps) = s.split_once('-').ok_or_else(bad)?;
        let kbps: u32 = kbps.parse().map_err(|_| bad())?;
        match codec {
            "opus" if (32..=510).contains(&kbps) => Ok(Lane::Opus(kbps)),
            "aac" if (32..=320).contains(&kbps) => Ok(Lane::Aac(kbps)),
            _ => Err(bad()),
        }
    }

    /// Its name in URLs and the API.
    pub fn name(&self) -> String {
        match self {
            Lane::Opus(k) => format!("opus-{k}"),
            Lane::Aac(k) => format!("aac-{k}"),
        }
    }

    /// Its codec family (`opus`, `aac`).
    pub fn family(&self) -> &'static str {
        match self {
            Lane::Opus(_) => "opus",
            Lane::Aac(_) => "aac",
        }
    }

    /// The RFC 6381 codec string.
    pub fn codecs(&self) -> &'static str {
        match self {
            Lane::Opus(_) => "Opus",
            Lane::Aac(_) => "mp4a.40.2",
        }
    }

    /// Bits per second.
    pub fn bitrate(&self) -> u32 {
        match self {
            Lane::Opus(k) | Lane::Aac(k) => k * 1000,
        }
    }

    /// A stereo 48 kHz encoder and the init segment of its stream.
    pub fn encoder(&self) -> Result<(Box<dyn Encoder>, Vec<u8>), String> {
        let encoder: Box<dyn Encoder> = match self {
            Lane::Opus(_) => {
                Box::new(OpusEncoder::new(2, self.bitrate()).map_err(|e| e.to_string())?)
            }
            Lane::Aac(_) => aac(self.bitrate())?,
        };
        let entry = match encoder.config() {
            CodecConfig::Opus {
                pre_skip,
                input_rate,
                ..
            } => SampleEntry::Opus {
                pre_skip,
                input_rate,
            },
            CodecConfig::Aac { asc } => SampleEntry::Aac { asc },
            CodecConfig::Flac { .. } => return Err("FLAC is not a live rendition".into()),
        };
        // A live stream has no known length and no edit list: encoder priming plays as a few
        // milliseconds of silence at the very start, once.
        let init = init_segment(&TrackInfo {
            entry,
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

#[cfg(feature = "aac")]
fn aac(bitrate: u32) -> Result<Box<dyn Encoder>, String> {
    veza_codecs::AacEncoder::new(SampleRate::LOSSY, 2, bitrate)
        .map(|e| Box::new(e) as Box<dyn Encoder>)
        .map_err(|e| e.to_string())
}

#[cfg(not(feature = "aac"))]
fn aac(_bitrate: u32) -> Result<Box<dyn Encoder>, String> {
    let _ = SampleRate::LOSSY;
    Err("this build has no AAC encoder (cargo feature `aac`)".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back() {
        for l in [Lane::Opus(128), Lane::Aac(96)] {
            assert_eq!(Lane::parse(&l.name()), Ok(l));
        }
        for bad in ["flac", "opus-8", "aac-999", "mp3-128", "opus-x", ""] {
            assert!(Lane::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn encoders_and_init_segments_build() {
        let (e, init) = Lane::Opus(128).encoder().unwrap();
        assert_eq!(e.frame_len(), 960);
        assert_eq!(&init[4..8], b"ftyp");
    }
}
