//! Decoding: any supported container and codec to planar f32 PCM at the source rate.
//!
//! Symphonia probes the container and decodes everything it supports ([`stream`]). Opus, which
//! Symphonia does not decode, goes through libopus (the same library as the encoder), with the
//! pre-skip and end trimming of RFC 7845 applied ([`opus`]). Recoverable damage (a packet that
//! fails to decode) is skipped and counted; damage that leaves more broken packets than good ones
//! is an [`Error::Corrupt`](crate::Error::Corrupt). MP4 edit lists and iTunes gapless tags are read by [`gapless`].

mod codec;
mod gapless;
mod opus;
mod packets;
mod push;
mod stream;
mod tags;
mod types;

pub(crate) use codec::positions;
pub use gapless::{moov_window, Window};
pub use packets::OpusPackets;
pub use push::PushDecoder;
pub use stream::StreamDecoder;
pub use types::{Cover, Decoded, Limits, SourceInfo, RATE_RANGE};

use crate::units::Pcm;
use crate::Result;
use symphonia::core::io::MediaSource;

/// Decodes a whole source to PCM: [`StreamDecoder`] run to the end, its pieces joined.
///
/// `extension` is a hint only: the container is detected from its bytes. `progress` is called
/// with the fraction decoded so far (0.0 to 1.0) when the duration is known in advance.
///
/// # Errors
/// [`Error::Empty`](crate::Error::Empty) for no bytes or no samples, [`Error::Unsupported`](crate::Error::Unsupported) for a format or codec we do
/// not read, [`Error::Corrupt`](crate::Error::Corrupt) when most packets are broken, [`Error::Limit`](crate::Error::Limit) beyond `limits`.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;
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
