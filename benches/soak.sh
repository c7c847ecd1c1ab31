#!/usr/bin/env bash
# Soak: `veza-stream serve` (release build, embedded defaults, rate limits off) under a bounded
# mixed load on loopback for MINUTES (uploads and deletes of small fixtures, playback of tracks and
# playlists, control API calls, bad requests), sampling the server's RSS, open descriptors and CPU
# and the load generator's own CPU every 10 s. Prints the samples and a summary line with RSS and
# descriptor growth after warm-up (the first fifth of the run, at least one minute). Exits non-zero
# on any 5xx or failed connection. The hot object cache is set to 32 MiB (default 256 MiB) so that
# it reaches its bound during warm-up: a bounded cache still filling would read as growth.
#
#   benches/soak.sh [MINUTES]      # default 30
#
# SOAK_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 (or libmimalloc.so.2) runs the server,
# and only the server, on another allocator, for comparing allocators on one build.
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-30}
cargo build --release --quiet --bin veza-stream
bin=$PWD/target/release/veza-stream
work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
(cd "$work" && exec env ${SOAK_PRELOAD:+LD_PRELOAD=$SOAK_PRELOAD} VEZA_SERVER__LISTEN=127.0.0.1:$port VEZA_LOG__LEVEL=warn \
  VEZA_LIMITS__PER_SUBJECT_PER_MINUTE=0 VEZA_LIMITS__PER_IP_PER_MINUTE=0 \
  VEZA_DELIVERY__CACHE_BYTES=${SOAK_CACHE_BYTES:-33554432} \
  "$bin" serve >"$work/banner" 2>"$work/veza.log") &
pid=$!
for _ in $(seq 100); do grep -q "development API key" "$work/banner" 2>/dev/null && break; sleep 0.1; done
key=$(sed -n 's/.*development API key: //p' "$work/banner")
fx=../shared/fixtures/audio/formats
python3 benches/soak.py "http://127.0.0.1:$port" "$key" "$pid" "$minutes" \
  "$fx/flac_16bit_44k_stereo.flac" "$fx/aiff_pcm16_stereo_44k.aiff" "$fx/mp3_cbr128_stereo_44k.mp3" \
  "$fx/m4a_aac_lc_itunes_stereo_44k.m4a" "$fx/ogg_vorbis_q5_stereo_44k.ogg" "$fx/opus_96k_stereo_48k.opus"
