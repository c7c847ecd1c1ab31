#!/usr/bin/env bash
# HTTP/1.1 over TLS, HTTP/2 and HTTP/3 side by side, on loopback, bounded in time and connections:
#   1. segment serving: one 6 s AAC segment fetched again and again, CONNECTIONS connections with
#      STREAMS requests in flight on each (HTTP/1.1: one per connection, so CONNECTIONS x STREAMS
#      connections), for SECONDS per protocol, by our own generator (benches/protocols.rs, the same
#      code for the three) and, for HTTP/1.1 and HTTP/2, by h2load too;
#   2. blocking reloads: LISTENERS LL-HLS listeners on one live channel (an ffmpeg source), each
#      doing blocking reloads for the next part on its own connection: reload latency and how late
#      each answer came after its part's nominal end (PROGRAM-DATE-TIME).
#   Both for a segment and for the track's media playlist, a small response like LL-HLS's
#   playlists and parts.
# Each line gives req/s, p50 and p99, the server's CPU and the generator's own CPU.
#
#   [PROFILE=dev] benches/protocols.sh [SECONDS] [CONNECTIONS] [STREAMS] [LISTENERS]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-10}
CONNECTIONS=${2:-4}
STREAMS=${3:-16}
LISTENERS=${4:-200}
TRACK=../shared/fixtures/audio/track/full_track_3min_stereo_44k.mp3
PROFILE=${PROFILE:-release}
if [ "$PROFILE" = release ]; then
  cargo build --release --quiet --bin veza-stream --bench protocols
  DIR=target/release
else
  cargo build --quiet --bin veza-stream --bench protocols
  DIR=target/debug
fi
BIN=$DIR/veza-stream
LOAD=$(ls -t $DIR/deps/protocols-* | grep -v '\.d$' | head -1)
WORK=$(mktemp -d)
PORT=18191
TLS_PORT=18192
URL=http://127.0.0.1:$PORT
HTTPS=https://127.0.0.1:$TLS_PORT
cleanup() { pkill -P $$ 2>/dev/null || true; kill "$SERVER" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
VEZA_SERVER__LISTEN=127.0.0.1:$PORT VEZA_SERVER__TLS=dev VEZA_SERVER__TLS_LISTEN=127.0.0.1:$TLS_PORT \
  VEZA_SERVER__DATA_DIR=$WORK/data VEZA_STORAGE__PATH=$WORK/media \
  VEZA_DATABASE__URL="sqlite://$WORK/data/veza.db" VEZA_LIMITS__PER_IP_PER_MINUTE=0 \
  VEZA_LIMITS__PER_SUBJECT_PER_MINUTE=0 VEZA_LIVE__WEBRTC_UDP=127.0.0.1:0 \
  VEZA_LOG__LEVEL=warn MALLOC_ARENA_MAX=2 \
  "$BIN" serve > "$WORK/server.out" 2>&1 &
SERVER=$!
until curl -sf $URL/healthz >/dev/null; do sleep 0.2; done
CERT=$WORK/data/dev-tls-cert.pem
KEY=$(sed -n 's/^api_key = "\(.*\)"$/\1/p' "$WORK/data/dev-secrets.toml")
auth=(-H "Authorization: Bearer $KEY")

# A packaged track and one of its AAC segments.
ID=$(curl -sf "${auth[@]}" -H 'Content-Type: audio/mpeg' --data-binary @"$TRACK" "$URL/v1/tracks" | jq -r .id)
until [ "$(curl -sf "${auth[@]}" $URL/v1/tracks/$ID | jq -r .status)" = ready ]; do sleep 0.5; done
MASTER=$(curl -sf -X POST "${auth[@]}" $URL/v1/tracks/$ID/playback | jq -r .masters.aac)
MEDIA=$(curl -sf "$MASTER" | grep -v '^#' | head -1)
SEGMENT=$(curl -sf "$URL/hls/tracks/$ID/$MEDIA" | grep '\.m4s' | sed -n 2p)
SEG_URL="$HTTPS/hls/tracks/$ID/${MEDIA%%/*}/$SEGMENT"
echo "# segment: $(curl -sf --cacert "$CERT" "$SEG_URL" | wc -c) bytes; ${SECONDS_EACH} s per run"

h2load_line() {  # protocol url flags...: h2load's req/s and mean latency, with the server's CPU
  local name=$1 url=$2; shift 2
  local t0 c0
  t0=$(date +%s.%N); c0=$(awk '{print $14+$15}' /proc/$SERVER/stat)
  local out
  out=$(/usr/bin/time -f 'generator_cpu=%P' h2load "$@" -D "$SECONDS_EACH" "$url" 2>&1)
  local t1 c1
  t1=$(date +%s.%N); c1=$(awk '{print $14+$15}' /proc/$SERVER/stat)
  echo "$out" | awk -v n="$name" -v cpu="$(echo "($c1 - $c0) / ($t1 - $t0)" | bc -l)" '
    /finished in/ { rps = $4 }
    /requests:/ { ok = $8 " succeeded" }
    /time for request:/ { mean = $6 }
    /generator_cpu=/ { split($0, a, "="); gen = a[2] }
    END { printf "{\"tool\":\"h2load\",\"protocol\":\"%s\",\"req_per_s\":%s,\"latency_mean\":\"%s\",\"%s\":1,\"server_cpu_percent\":%.1f,\"generator_cpu\":\"%s\"}\n", n, rps, mean, ok, cpu, gen }'
}

# The same track's media playlist: a small response, as LL-HLS playlists and parts are.
PLAYLIST="${SEG_URL%/*}/index.m3u8?${SEG_URL#*\?}"
echo "# playlist: $(curl -sf --cacert "$CERT" "$PLAYLIST" | wc -c) bytes"
for url in "$SEG_URL" "$PLAYLIST"; do
  echo "# GET ${url%%\?*}"
  for p in h1 h2 h3; do
    "$LOAD" get "$url" $p "$CONNECTIONS" "$STREAMS" "$SECONDS_EACH" "$SERVER" "$CERT"
  done
  h2load_line h1 "$url" --h1 -c $((CONNECTIONS * STREAMS)) -m 1
  h2load_line h2 "$url" -c "$CONNECTIONS" -m "$STREAMS"
done

# A live channel, and blocking reloads on it.
read -r CID SK < <(curl -sf "${auth[@]}" -d '{"title":"Bench"}' $URL/v1/channels | jq -r '"\(.id) \(.stream_key)"')
ffmpeg -hide_banner -loglevel error -re -stream_loop -1 -i "$TRACK" -vn -c:a copy \
  -content_type audio/mpeg -f mp3 "icecast://source:$SK@127.0.0.1:$PORT/ingest/$CID" &
until [ "$(curl -sf "${auth[@]}" $URL/v1/channels/$CID | jq -r .state)" = live ]; do sleep 0.2; done
sleep 3
TOKEN=$(curl -sf -X POST "${auth[@]}" $URL/v1/channels/$CID/playback | jq -r .token)
LIVE="$HTTPS/hls/live/$CID/aac-128/index.m3u8?token=$TOKEN"
for p in h1 h2 h3; do
  "$LOAD" reload "$LIVE" $p "$LISTENERS" 1 "$SECONDS_EACH" "$SERVER" "$CERT"
done
