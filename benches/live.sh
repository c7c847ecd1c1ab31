#!/usr/bin/env bash
# Live channel benchmarks, on loopback, bounded in time and connections:
#   1. latency of one channel fed by ffmpeg (MP3 copied from a file in real time): the kit's
#      llhls_check on both renditions (sample arrival to part, blocked-reload hold and release),
#      the server's own release histogram (part published -> blocked reload answered, p99), and
#      hls.js in Chromium (lowLatencyMode) for 20 s: hls.latency;
#   2. K concurrent LL-HLS listeners (benches/llhls_load.rs) for K = 0 (baseline), 1 000, 5 000
#      and 10 000: parts missed, server CPU and RSS per listener, the generator's own CPU, and the
#      encoder's CPU (veza_live_encode_seconds_total) with and without listeners;
#   3. N channels (default 40), each with its own ffmpeg source: server CPU per channel and
#      whether any falls behind real time (parts published vs the clock, drift corrections).
#
#   [PROFILE=dev] benches/live.sh [SECONDS_PER_STEP] [CHANNELS] [LISTENER_COUNTS]
set -euo pipefail
cd "$(dirname "$0")/.."
STEP=${1:-20}
CHANNELS=${2:-40}
COUNTS=${3:-"1000 5000 10000"}
KIT=../shared/tools/kit
TRACK=../shared/fixtures/audio/track/full_track_3min_stereo_44k.mp3
# PROFILE=dev uses the debug build (dependencies and the codec crates are optimised there too;
# only the server crate is not), which saves a release build of everything.
PROFILE=${PROFILE:-release}
if [ "$PROFILE" = release ]; then
  cargo build --release --quiet --bin veza-stream --bench llhls_load
  DIR=target/release
else
  cargo build --quiet --bin veza-stream --bench llhls_load
  DIR=target/debug
fi
BIN=$DIR/veza-stream
LOAD=$(ls -t $DIR/deps/llhls_load-* | grep -v '\.d$' | head -1)
WORK=$(mktemp -d)
PORT=18181
URL=http://127.0.0.1:$PORT
cleanup() { pkill -P $$ 2>/dev/null || true; kill "$SERVER" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
VEZA_SERVER__LISTEN=127.0.0.1:$PORT VEZA_SERVER__DATA_DIR=$WORK/data VEZA_STORAGE__PATH=$WORK/media \
  VEZA_DATABASE__URL="sqlite://$WORK/data/veza.db" VEZA_LIMITS__PER_IP_PER_MINUTE=0 \
  VEZA_LIMITS__PER_SUBJECT_PER_MINUTE=0 VEZA_SERVER__MAX_CONNECTIONS_PER_IP=18000 VEZA_LIVE__WEBRTC_UDP=127.0.0.1:0 \
  VEZA_LOG__LEVEL=warn MALLOC_ARENA_MAX=2 \
  "$BIN" serve > "$WORK/server.out" 2>&1 &
SERVER=$!
until curl -sf $URL/healthz >/dev/null; do sleep 0.2; done
KEY=$(sed -n 's/^api_key = "\(.*\)"$/\1/p' "$WORK/data/dev-secrets.toml")
channel() {  # title -> "id key"
  curl -sf -H "Authorization: Bearer $KEY" -d "{\"title\":\"$1\"}" $URL/v1/channels | jq -r '"\(.id) \(.stream_key)"'
}
source() {  # id key: ffmpeg copying the MP3 in real time (no encoding on the source side)
  ffmpeg -hide_banner -loglevel error -re -stream_loop -1 -i "$TRACK" -vn -c:a copy \
    -content_type audio/mpeg -f mp3 "icecast://source:$2@127.0.0.1:$PORT/ingest/$1" &
}
metric() { curl -s $URL/metrics | awk -v m="$1" '$1 == m { print $2 }'; }

read -r ID SK < <(channel "Bench")
source "$ID" "$SK"
until [ "$(curl -sf -H "Authorization: Bearer $KEY" $URL/v1/channels/$ID | jq -r .state)" = live ]; do sleep 0.2; done
PB=$(curl -sf -X POST -H "Authorization: Bearer $KEY" $URL/v1/channels/$ID/playback)
TOKEN=$(echo "$PB" | jq -r .token)
MASTER=$(echo "$PB" | jq -r .master_url)
sleep 3

echo "== 1. latency (one channel, MP3 source at 128 kb/s)"
for R in opus-128 aac-128; do
  python3 $KIT/llhls_check.py --seconds "$STEP" "$URL/hls/live/$ID/$R/index.m3u8?token=$TOKEN" 2>/dev/null |
    jq -c --arg r "$R" '{rendition: $r, ok, to_part_start_s: .latency.to_newest_part_start_s, to_part_end_s: .latency.to_newest_part_end_s, hold_s: .blocking.hold_s, release_after_visible_s: .blocking.release_after_visible_s}'
done
curl -s $URL/metrics | awk '/^veza_live_release_seconds_bucket/ { gsub(/.*le="/, "", $1); gsub(/".*/, "", $1); print $1, $2 }' |
  awk '{ le[NR] = $1; n[NR] = $2 } END { total = n[NR]; for (i = 1; i <= NR; i++) if (n[i] >= 0.99 * total) { print "{\"release_p99_le_s\": \"" le[i] "\", \"released\": " total "}"; exit } }'
(cd tests/browser && node live.mjs "$MASTER" "$STEP") | jq -c '{hls_js_latency_median_s: .latency_median, hls_js_latency_max_s: .latency_max, stalls, advanced_s: .advanced}'

echo "== 2. listeners on one channel (2 renditions encoded once)"
ENC0=$(metric veza_live_encode_seconds_total); sleep "$STEP"; ENC1=$(metric veza_live_encode_seconds_total)
echo "{\"listeners\": 0, \"encode_cpu_percent\": $(echo "scale=2; ($ENC1 - $ENC0) * 100 / $STEP" | bc)}"
for K in $COUNTS; do
  ENC0=$(metric veza_live_encode_seconds_total)
  OUT=$("$LOAD" "$URL/hls/live/$ID/opus-128/index.m3u8?token=$TOKEN" "$K" "$STEP" "$SERVER")
  ENC1=$(metric veza_live_encode_seconds_total)
  echo "$OUT" | jq -c --arg enc "$(echo "scale=2; ($ENC1 - $ENC0) * 100 / $STEP" | bc)" '. + {encode_cpu_percent: ($enc | tonumber)}'
  sleep 3
done

echo "== 3. $CHANNELS channels, one ffmpeg source each"
IDS=()
for n in $(seq "$CHANNELS"); do
  read -r CID CSK < <(channel "Ch $n")
  source "$CID" "$CSK"
  IDS+=("$CID")
done
sleep 8
T0=$(date +%s.%N); C0=$(awk '{print $14 + $15}' /proc/$SERVER/stat); P0=$(metric veza_live_parts_total)
FF0=$(ps -C ffmpeg -o times= | awk '{s += $1} END {print s}')
sleep "$STEP"
T1=$(date +%s.%N); C1=$(awk '{print $14 + $15}' /proc/$SERVER/stat); P1=$(metric veza_live_parts_total)
FF1=$(ps -C ffmpeg -o times= | awk '{s += $1} END {print s}')
LIVE=0
for CID in "${IDS[@]}"; do
  [ "$(curl -sf -H "Authorization: Bearer $KEY" $URL/v1/channels/$CID | jq -r .state)" = live ] && LIVE=$((LIVE + 1))
done
DRIFT=$(curl -s $URL/metrics | awk '/^veza_live_drift_corrections/ { s += $2 } END { print s + 0 }')
WALL=$(echo "$T1 - $T0" | bc)
# Parts due: (channels + the bench channel) x 2 renditions x wall / 0.32 s.
echo "{\"channels\": $CHANNELS, \"live\": $LIVE, \"server_cpu_percent\": $(echo "scale=1; ($C1 - $C0) / $WALL" | bc), \"server_cpu_percent_per_channel\": $(echo "scale=2; ($C1 - $C0) / $WALL / ($CHANNELS + 1)" | bc), \"parts_published\": $(echo "$P1 - $P0" | bc), \"parts_due\": $(echo "scale=0; ($CHANNELS + 1) * 2 * $WALL / 0.32" | bc), \"drift_corrections\": $DRIFT, \"ffmpeg_sources_cpu_percent\": $(echo "scale=1; ($FF1 - $FF0) * 100 / $WALL" | bc), \"server_rss_mb\": $(awk '/VmRSS/ {print int($2/1024)}' /proc/$SERVER/status)}"
