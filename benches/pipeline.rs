//! Criterion benches of each packaging stage on a real fixture (8 s of 44.1 kHz stereo).
//!
//! Throughput is reported in audio frames per second: divide by the stage's sample rate (44 100
//! for decode and FLAC, 48 000 for the rest) to get × real time. `benches/compare_ffmpeg.sh`
//! measures the whole ladder against ffmpeg.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::path::Path;
use veza_codecs::{encode_aligned, Encoder, FlacEncoder, Limits, OpusEncoder, Pcm, SampleRate};

const FIXTURE: &str = "../shared/fixtures/audio/synth/chords_pluck_progression_stereo_44k.flac";

fn source() -> (Vec<u8>, Pcm) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURE);
    let bytes = std::fs::read(path).expect("fixture");
    let decoded = veza_codecs::decode(
        Box::new(std::io::Cursor::new(bytes.clone())),
        Some("flac"),
        &Limits::default(),
        &mut |_| {},
    )
    .expect("decodes");
    (bytes, decoded.pcm)
}

fn stages(c: &mut Criterion) {
    let (bytes, pcm) = source();
    let pcm48 = veza_codecs::resample(&pcm, SampleRate::LOSSY).unwrap();
    let plan = veza_hls::Plan::new(pcm48.frames() as u64, 6.0);
    let mut g = c.benchmark_group("stage");
    g.sample_size(10);

    g.throughput(Throughput::Elements(pcm.frames() as u64));
    g.bench_function("decode_flac", |b| {
        b.iter(|| {
            veza_codecs::decode(
                Box::new(std::io::Cursor::new(bytes.clone())),
                Some("flac"),
                &Limits::default(),
                &mut |_| {},
            )
            .unwrap()
        })
    });
    g.bench_function("resample_44k1_to_48k", |b| {
        b.iter(|| veza_codecs::resample(&pcm, SampleRate::LOSSY).unwrap())
    });
    g.bench_function("encode_flac", |b| {
        b.iter(|| {
            let mut enc = FlacEncoder::new(pcm.rate, 2, 16, plan.starts_at_rate(44_100)).unwrap();
            let mut p = enc.push(&pcm.plane_refs()).unwrap();
            p.extend(enc.flush().unwrap());
            p
        })
    });
    g.throughput(Throughput::Elements(pcm48.frames() as u64));
    g.bench_function("loudness_measure", |b| {
        b.iter(|| veza_codecs::measure(&pcm48).unwrap())
    });
    g.bench_function("normalize", |b| {
        b.iter(|| {
            let mut p = pcm48.clone();
            veza_codecs::normalize(&mut p, &Default::default()).unwrap()
        })
    });
    g.bench_function("encode_opus_96", |b| {
        b.iter(|| {
            encode_aligned(
                &mut OpusEncoder::new(2, 96_000).unwrap(),
                &pcm48,
                plan.priming_for(960, 312),
            )
            .unwrap()
        })
    });
    #[cfg(feature = "aac")]
    g.bench_function("encode_aac_128", |b| {
        b.iter(|| {
            encode_aligned(
                &mut veza_codecs::AacEncoder::new(SampleRate::LOSSY, 2, 128_000).unwrap(),
                &pcm48,
                plan.priming_for(1024, 1024),
            )
            .unwrap()
        })
    });
    // The progressive mounts' MP3 (LAME, CBR), encoded while a channel's .mp3 has listeners.
    g.bench_function("encode_mp3_128", |b| {
        b.iter(|| {
            let mut e = veza_codecs::Mp3Encoder::new(SampleRate::LOSSY, 2, 128_000).unwrap();
            let delay = e.delay() as u32;
            encode_aligned(&mut e, &pcm48, plan.priming_for(1152, delay)).unwrap()
        })
    });
    let encoded = encode_aligned(
        &mut OpusEncoder::new(2, 96_000).unwrap(),
        &pcm48,
        plan.priming_for(960, 312),
    )
    .unwrap();
    g.bench_function("mux_fmp4_segments", |b| {
        b.iter(|| {
            let mut seg = veza_hls::Segmenter::new(plan.decode_boundaries(encoded.priming));
            let mut out = Vec::new();
            for p in &encoded.packets {
                if let Some(f) = seg.push(p.data.clone(), p.duration) {
                    out.push(
                        veza_hls::media_segment(f.index + 1, f.base_time, &f.samples).unwrap(),
                    );
                }
            }
            if let Some(f) = seg.flush() {
                out.push(veza_hls::media_segment(f.index + 1, f.base_time, &f.samples).unwrap());
            }
            out
        })
    });
    g.finish();
}

criterion_group!(benches, stages);
criterion_main!(benches);
