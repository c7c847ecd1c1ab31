//! The push decoder against the file decoder, on real files pushed in uneven pieces, as a live
//! source's body arrives: the same samples must come out, whatever the piece sizes.

use std::path::PathBuf;
use veza_codecs::{decode, Limits, Pcm, PushDecoder};

fn fixture(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/fixtures/audio/formats")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Every sample of the pieces, channel by channel.
fn join(pieces: &[Pcm]) -> Vec<Vec<f32>> {
    let channels = pieces.first().map_or(0, Pcm::channels);
    let mut out = vec![Vec::new(); channels];
    for p in pieces {
        for (ch, plane) in out.iter_mut().zip(p.planes.iter()) {
            ch.extend_from_slice(plane);
        }
    }
    out
}

fn pushed(bytes: &[u8], ext: &str, sizes: &[usize]) -> (Vec<Vec<f32>>, String, usize, usize) {
    let mut d = PushDecoder::new(Some(ext), Limits::default());
    let mut pieces = Vec::new();
    let (mut at, mut i) = (0, 0);
    let mut before_end = 0;
    while at < bytes.len() {
        let n = sizes[i % sizes.len()].min(bytes.len() - at);
        pieces.extend(d.push(&bytes[at..at + n]).expect("push"));
        at += n;
        i += 1;
    }
    before_end += pieces.iter().map(Pcm::frames).sum::<usize>();
    let container = d.container().unwrap_or_default().to_owned();
    let reserve = d.reserve();
    pieces.extend(d.finish().expect("finish"));
    (join(&pieces), container, before_end, reserve)
}

fn check(name: &str, ext: &str) {
    check_bytes(&fixture(name), name, ext)
}

fn check_bytes(bytes: &[u8], name: &str, ext: &str) {
    let bytes = bytes.to_vec();
    let whole = decode(
        Box::new(std::io::Cursor::new(bytes.clone())),
        Some(ext),
        &Limits::default(),
        &mut |_| {},
    )
    .expect("file decode");
    for sizes in [&[1usize, 7, 300][..], &[4096], &[65_536, 13]] {
        let (samples, container, before_end, reserve) = pushed(&bytes, ext, sizes);
        assert_eq!(samples.len(), whole.pcm.channels(), "{name}");
        let n = whole.pcm.frames();
        // The file decoder knows the end of a file (its tags, its edit list) and a pushed stream
        // does not: the pushed samples are the file's from the start, and as many or more.
        assert!(
            samples[0].len() >= n.saturating_sub(2048),
            "{name}: {} of {n}",
            samples[0].len()
        );
        for (ch, plane) in samples.iter().zip(whole.pcm.planes.iter()) {
            let common = ch.len().min(plane.len());
            assert_eq!(&ch[..common], &plane[..common], "{name} {sizes:?}");
        }
        // Everything but the reserve (and a kilobyte the reader holds) came out while the stream
        // was still being pushed: the reserve is the latency the decoder adds.
        // (FLAC frames are found by the next frame's sync code: one more unit is held.)
        let withheld = (reserve + reserve / 2 + 2048) as f64 / bytes.len() as f64;
        let floor = (n as f64 * (1.0 - withheld)).max(0.0);
        assert!(
            before_end as f64 >= floor - 4096.0,
            "{name} ({container}): {before_end} of {n} before the end, floor {floor}"
        );
    }
}

#[test]
fn mp3_pushed_decodes_as_the_file() {
    check("mp3_cbr128_stereo_44k.mp3", "mp3");
}

/// A live MP3 source is held back by the longest frame its rate allows (1 045 bytes at 44.1 kHz,
/// 65 ms at 128 kb/s), not by a fixed 4 KiB (256 ms).
#[test]
fn an_mp3_stream_is_held_back_by_one_frame_at_most() {
    let bytes = fixture("mp3_cbr128_stereo_44k.mp3");
    let (samples, container, before_end, reserve) = pushed(&bytes, "mp3", &[418]);
    assert_eq!(container, "mp3");
    assert!(reserve <= 1_045 + 64, "reserve {reserve}");
    // All but the last frames came out while the stream was still being pushed.
    let held = samples[0].len() - before_end;
    assert!(held <= 3 * 1152 + 2048, "{held} frames held until the end");
}

#[test]
fn ogg_vorbis_pushed_decodes_as_the_file() {
    check("ogg_vorbis_q5_stereo_44k.ogg", "ogg");
}

#[test]
fn ogg_opus_pushed_decodes_as_the_file() {
    check("opus_96k_stereo_48k.opus", "opus");
}

#[test]
fn flac_pushed_decodes_as_the_file() {
    check("flac_16bit_44k_stereo.flac", "flac");
}

#[test]
fn garbage_is_refused_not_decoded() {
    let mut d = PushDecoder::new(None, Limits::default());
    let junk: Vec<u8> = (0..40_000u32).map(|i| (i * 7919 % 251) as u8).collect();
    let r = d.push(&junk).and_then(|_| d.finish());
    assert!(r.is_err());
}

/// An ADTS stream (ISO/IEC 13818-7 6.2, what Icecast carries for `audio/aac`) of two seconds of
/// a 440 Hz tone at 48 kHz, from our own AAC encoder.
fn adts_tone() -> Vec<u8> {
    use veza_codecs::{AacEncoder, Encoder, SampleRate};
    let rate = SampleRate::new(48_000).unwrap();
    let mut enc = AacEncoder::new(rate, 2, 128_000).unwrap();
    let tone: Vec<f32> = (0..96_000)
        .map(|i| (i as f32 * 440.0 * std::f32::consts::TAU / 48_000.0).sin() * 0.3)
        .collect();
    let mut packets = enc.push(&[&tone, &tone]).unwrap();
    packets.extend(enc.flush().unwrap());
    let mut out = Vec::new();
    for p in packets {
        let len = p.data.len() + 7;
        // Sync, MPEG-4, no CRC; AAC LC (profile 1), 48 kHz (index 3), two channels.
        out.extend_from_slice(&[
            0xFF,
            0xF1,
            (1 << 6) | (3 << 2),
            (2 << 6) | ((len >> 11) & 0x3) as u8,
            ((len >> 3) & 0xFF) as u8,
            (((len & 0x7) << 5) as u8) | 0x1F,
            0xFC,
        ]);
        out.extend_from_slice(&p.data);
    }
    out
}

#[test]
fn aac_adts_pushed_decodes_as_the_file() {
    let bytes = adts_tone();
    let whole = decode(
        Box::new(std::io::Cursor::new(bytes.clone())),
        Some("aac"),
        &Limits::default(),
        &mut |_| {},
    )
    .expect("file decode");
    let (samples, container, before_end, reserve) = pushed(&bytes, "aac", &[1, 500, 3000]);
    assert_eq!(container, "aac");
    assert!(reserve < 16 << 10);
    assert_eq!(samples.len(), 2);
    let n = whole.pcm.frames();
    assert!(n >= 90_000, "{n}");
    let common = samples[0].len().min(n);
    assert!(common + 2048 >= n);
    assert_eq!(&samples[0][..common], &whole.pcm.planes[0][..common]);
    assert!(before_end > 0);
}

/// ffmpeg's Ogg FLAC (`-c:a flac -f ogg`, what `ffmpeg … icecast://` sends for it) puts a second
/// of audio in each page, here 57 KiB, more than the 16 KiB the probe first waits for: the probe
/// runs dry, puts the bytes back and tries again with more, instead of failing (the live source
/// was then dropped as garbage). Made with `ffmpeg -f lavfi -i anoisesrc=d=1.5:c=pink:r=22050
/// -ac 1 -c:a flac -f ogg` (Lavf 59).
#[test]
fn ffmpeg_ogg_flac_with_pages_past_the_probe_pushed_decodes_as_the_file() {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/test_data/ffmpeg_ogg_flac_pink_22k.ogg");
    check_bytes(&std::fs::read(p).unwrap(), "ffmpeg Ogg FLAC", "ogg");
}

/// An Ogg Vorbis link of `seconds` (at most 4) of the fixture, made by ffmpeg.
fn vorbis_link(seconds: f64) -> Vec<u8> {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/fixtures/audio/formats/ogg_vorbis_q5_stereo_44k.ogg");
    let out = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-i"])
        .arg(&src)
        .args([
            "-t",
            &seconds.to_string(),
            "-c:a",
            "libvorbis",
            "-f",
            "ogg",
            "-",
        ])
        .output()
        .expect("ffmpeg");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A chained Ogg stream (an Icecast source's title change: Liquidsoap, ices2) decodes whole,
/// wherever the new link begins: inside the probe's first bytes, at its edge, or well after.
#[test]
fn a_chained_ogg_stream_decodes_every_link_wherever_it_begins() {
    let second = vorbis_link(2.0);
    for first_s in [0.1, 0.3, 0.6, 0.8, 0.9, 1.0, 1.2, 2.0, 3.0] {
        let mut chained = vorbis_link(first_s);
        chained.extend_from_slice(&second);
        for sizes in [&[1024usize][..], &[4096], &[333, 2000]] {
            let (samples, _, _, _) = pushed(&chained, "ogg", sizes);
            let want = ((first_s + 2.0) * 44_100.0) as usize;
            let got = samples[0].len();
            assert!(
                got + 4096 >= want && got <= want + 4096,
                "first link {first_s} s, pieces {sizes:?}: {got} samples of {want}"
            );
            let rms = (samples[0][got - 44_100..]
                .iter()
                .map(|x| x * x)
                .sum::<f32>()
                / 44_100.0)
                .sqrt();
            assert!(
                rms > 0.01,
                "first link {first_s} s: the second link is silent"
            );
        }
    }
}
