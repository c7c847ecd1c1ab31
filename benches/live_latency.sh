#!/usr/bin/env bash
# hls.js latency behind a live channel's edge, on README's defaults: starts the server (the
# binary in target/, debug unless BIN says otherwise) on a free loopback port with a fresh data
# directory, goes live with SOURCE (mp3: ffmpeg, MP3 128 kb/s in real time; whip: aiortc
# publishing Opus over WHIP, tests/peers/whip_publish.py), and plays the channel's master in
# Debian's Chromium with hls.js in low-latency mode (tests/browser/live.mjs) RUNS times for
# SECONDS each. Prints each session's median latency and a summary. Stops everything it started;
# bounded to about RUNS × (SECONDS + 5) seconds.
#
#   bash benches/live_latency.sh [RUNS=6] [SECONDS=10] [SOURCE=mp3|whip]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-6}
seconds=${2:-10}
source=${3:-mp3}
bin=${BIN:-target/debug/veza-stream}
[ -x "$bin" ] || cargo build --bin veza-stream
dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
udp=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0",0)); print(s.getsockname()[1])')
VEZA_SERVER__DATA_DIR="$dir" VEZA_SERVER__LISTEN="127.0.0.1:$port" VEZA_LIVE__WEBRTC_UDP="0.0.0.0:$udp" \
  "$bin" serve >"$dir/server.log" 2>&1 &
server=$!
ff=""
cleanup() {
  if [ -n "$ff" ]; then kill "$ff" 2>/dev/null || true; wait "$ff" 2>/dev/null || true; fi
  kill "$server" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
url="http://127.0.0.1:$port"
for _ in $(seq 50); do curl -sf "$url/healthz" >/dev/null && break; sleep 0.2; done
key=$(sed -n 's/^api_key = "\(.*\)"/\1/p' "$dir/dev-secrets.toml" | head -1)
[ -n "$key" ] || key=$(grep -o 'dev_[A-Za-z0-9_-]*' "$dir/server.log" | head -1)
channel=$(curl -sf -H "authorization: Bearer $key" -H 'content-type: application/json' \
  -d '{"title":"Latency"}' "$url/v1/channels")
id=$(jq -r .id <<<"$channel")
stream_key=$(jq -r .stream_key <<<"$channel")
if [ "$source" = whip ]; then
  python3 tests/peers/whip_publish.py "$url/whip/$id" "$stream_key" \
    ../shared/fixtures/audio/formats/wav_float32_stereo_48k.wav $((runs * (seconds + 8) + 10)) \
    >"$dir/source.log" 2>&1 &
else
  ffmpeg -nostdin -loglevel error -re -stream_loop -1 \
    -i ../shared/fixtures/audio/track/full_track_3min_stereo_44k.mp3 -vn -c:a libmp3lame -b:a 128k \
    -content_type audio/mpeg -f mp3 "icecast://source:$stream_key@127.0.0.1:$port/ingest/$id" \
    >"$dir/source.log" 2>&1 &
fi
ff=$!
for _ in $(seq 100); do
  [ "$(curl -sf -H "authorization: Bearer $key" "$url/v1/channels/$id" | jq -r .state)" = live ] && break
  sleep 0.1
done
sleep 2
master=$(curl -sf -X POST -H "authorization: Bearer $key" "$url/v1/channels/$id/playback" | jq -r .master_url)
medians=()
for i in $(seq "$runs"); do
  r=$(node tests/browser/live.mjs "$master" "$seconds")
  m=$(jq -r '.latency_median' <<<"$r")
  echo "session $i: latency median ${m} s, max $(jq -r .latency_max <<<"$r") s, stalls $(jq -r .stalls <<<"$r")"
  medians+=("$m")
done
printf '%s\n' "${medians[@]}" | sort -n | awk -v src="$source" '{a[NR]=$1} END {printf "hls.js latency (%s source) over %d sessions: min %.2f s, median %.2f s, max %.2f s\n", src, NR, a[1], a[int((NR+1)/2)], a[NR]}'
