#!/usr/bin/env bash
# WebRTC benchmarks, on loopback, bounded in time and sessions:
#   1. added latency: from the PCM block entering the channel to its RTP packet handed to the
#      socket (the server's veza_webrtc_frame_send_seconds histogram, p50 and p99), plus the 20 ms
#      frame and libopus's 6.5 ms look-ahead;
#   2. time to first audio: POST to the first RTP packet received (benches/whep_load.rs, p50/p99);
#   3. K concurrent WHEP listeners (benches/whep_load.rs: receive and count RTP, no decoding) for
#      K = 100, 500, 1 000 and 2 000: loss, jitter, server CPU and RSS per session, and the
#      generator's own CPU.
# One channel, fed by ffmpeg copying a 128 kb/s MP3 in real time.
#
#   [PROFILE=dev] benches/webrtc.sh [SECONDS_PER_STEP] [SESSION_COUNTS]
set -euo pipefail
cd "$(dirname "$0")/.."
STEP=${1:-15}
COUNTS=${2:-"100 500 1000 2000"}
TRACK=../shared/fixtures/audio/track/full_track_3min_stereo_44k.mp3
PROFILE=${PROFILE:-release}
if [ "$PROFILE" = release ]; then
  cargo build --release --quiet --bin veza-stream --bench whep_load
  DIR=target/release
else
  cargo build --quiet --bin veza-stream --bench whep_load
  DIR=target/debug
fi
BIN=$DIR/veza-stream
LOAD=$(ls -t $DIR/deps/whep_load-* | grep -v '\.d$' | head -1)
WORK=$(mktemp -d)
PORT=18191
URL=http://127.0.0.1:$PORT
cleanup() { pkill -P $$ 2>/dev/null || true; kill "$SERVER" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
ulimit -n 65536 2>/dev/null || true
VEZA_SERVER__LISTEN=127.0.0.1:$PORT VEZA_SERVER__DATA_DIR=$WORK/data VEZA_STORAGE__PATH=$WORK/media \
  VEZA_DATABASE__URL="sqlite://$WORK/data/veza.db" VEZA_LIMITS__PER_IP_PER_MINUTE=0 \
  VEZA_LIMITS__PER_SUBJECT_PER_MINUTE=0 VEZA_LIVE__WEBRTC_UDP=127.0.0.1:18192 \
  VEZA_LIVE__MAX_WEBRTC_SESSIONS=2500 VEZA_LIVE__CONSUMER_QUEUE_FRAMES=100 \
  VEZA_LOG__LEVEL=warn MALLOC_ARENA_MAX=2 \
  "$BIN" serve > "$WORK/server.out" 2>&1 &
SERVER=$!
until curl -sf $URL/healthz >/dev/null; do sleep 0.2; done
KEY=$(sed -n 's/^api_key = "\(.*\)"$/\1/p' "$WORK/data/dev-secrets.toml")
read -r ID SK < <(curl -sf -H "Authorization: Bearer $KEY" -d '{"title":"Bench"}' $URL/v1/channels |
  jq -r '"\(.id) \(.stream_key)"')
ffmpeg -hide_banner -loglevel error -re -stream_loop -1 -i "$TRACK" -vn -c:a copy \
  -content_type audio/mpeg -f mp3 "icecast://source:$SK@127.0.0.1:$PORT/ingest/$ID" &
until [ "$(curl -sf -H "Authorization: Bearer $KEY" $URL/v1/channels/$ID | jq -r .state)" = live ]; do sleep 0.2; done
PB=$(curl -sf -X POST -H "Authorization: Bearer $KEY" $URL/v1/channels/$ID/playback)
TOKEN=$(echo "$PB" | jq -r .token)
WHEP=$(echo "$PB" | jq -r .whep_url)
cpu() { awk '{print $14 + $15}' /proc/$SERVER/stat; }
rss_mb() { awk '/VmRSS/ {print int($2/1024)}' /proc/$SERVER/status; }
quantile() {  # histogram name, q: from the cumulative buckets
  curl -s $URL/metrics | awk -v m="$1_bucket" -v q="$2" '
    index($1, m) == 1 { split($1, a, "le=\""); le = a[2]; sub(/".*/, "", le); n[++k] = $2; b[k] = le }
    END { total = n[k]; for (i = 1; i <= k; i++) if (n[i] >= q * total) { print b[i]; exit } }'
}
sleep 2
RSS0=$(rss_mb)
for K in $COUNTS; do
  C0=$(cpu); T0=$(date +%s.%N)
  "$LOAD" "$WHEP" "$TOKEN" "$K" "$STEP" > "$WORK/load.json" &
  LOADPID=$!
  # RSS while every session is up: after the ramp (25 per 100 ms) and half the step.
  sleep "$(echo "$K / 250 + $STEP / 2" | bc)"
  RSS=$(rss_mb)
  wait $LOADPID
  R=$(cat "$WORK/load.json")
  T1=$(date +%s.%N); C1=$(cpu)
  WALL=$(echo "$T1 - $T0" | bc)
  echo "$R" | jq -c --argjson k "$K" --arg cpu "$(echo "scale=1; ($C1 - $C0) / $WALL" | bc)" \
    --arg rss "$RSS" --arg rss0 "$RSS0" \
    '{sessions: $k, connected, loss_percent, jitter_ms_mean, jitter_ms_p99, first_audio_ms_p50,
      first_audio_ms_p99, server_cpu_percent: ($cpu | tonumber), server_rss_mb: ($rss | tonumber),
      rss_kb_per_session: ((($rss | tonumber) - ($rss0 | tonumber)) * 1024 / $k | floor),
      generator_cpu_percent, errors}'
  sleep 2
done
echo "{\"frame_to_socket_p50_s\": $(quantile veza_webrtc_frame_send_seconds 0.5), \"frame_to_socket_p99_s\": $(quantile veza_webrtc_frame_send_seconds 0.99)}"
