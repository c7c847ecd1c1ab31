#!/usr/bin/env bash
# Glass-to-glass latency on loopback: WHIP in, WHEP out, measured with a click track.
# One headless Chromium page publishes a click every 500 ms over WHIP into a fresh channel and
# listens to that channel over WHEP; an AudioWorklet dates each click's onset on the clock that
# scheduled it (tests/browser/glass.mjs). Prints that page's report: clicks made and heard,
# latency min/p50/p90/max, the listener's jitter-buffer delay. Bounded: one page, SECONDS.
#
#   [PROFILE=dev] benches/glass.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_RUN=${1:-60}
PROFILE=${PROFILE:-release}
if [ "$PROFILE" = release ]; then
  cargo build --release --quiet --bin veza-stream
  BIN=target/release/veza-stream
else
  cargo build --quiet --bin veza-stream
  BIN=target/debug/veza-stream
fi
WORK=$(mktemp -d)
PORT=18193
URL=http://127.0.0.1:$PORT
cleanup() { kill "$SERVER" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
VEZA_SERVER__LISTEN=127.0.0.1:$PORT VEZA_SERVER__DATA_DIR=$WORK/data VEZA_STORAGE__PATH=$WORK/media \
  VEZA_DATABASE__URL="sqlite://$WORK/data/veza.db" VEZA_LIVE__WEBRTC_UDP=127.0.0.1:18194 \
  VEZA_LOG__LEVEL=warn "$BIN" serve > "$WORK/server.out" 2>&1 &
SERVER=$!
until curl -sf $URL/healthz >/dev/null; do sleep 0.2; done
KEY=$(sed -n 's/^api_key = "\(.*\)"$/\1/p' "$WORK/data/dev-secrets.toml")
read -r ID SK < <(curl -sf -H "Authorization: Bearer $KEY" -d '{"title":"Clicks"}' $URL/v1/channels |
  jq -r '"\(.id) \(.stream_key)"')
PB=$(curl -sf -X POST -H "Authorization: Bearer $KEY" $URL/v1/channels/$ID/playback)
node tests/browser/glass.mjs "$URL/whip/$ID" "$SK" "$(echo "$PB" | jq -r .whep_url)" \
  "$(echo "$PB" | jq -r .token)" "$SECONDS_RUN" | jq -c 'del(.pageErrors)'
