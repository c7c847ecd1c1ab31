#!/usr/bin/env bash
# Live soak: one channel on loopback for MINUTES, its source reconnecting every 30 s (ffmpeg killed
# and started again), 200 LL-HLS listeners (benches/llhls_load.rs) in rounds of 60 s and 20 WebRTC
# listeners (benches/whep_load.rs) in rounds of 30 s, so that listeners come and go all along.
# Samples the server's RSS and open descriptors every 10 s and prints the growth after warm-up
# (the first fifth of the run, at least one minute), the same way as benches/soak.sh. Bounded in
# time and connections; stops by itself.
#
#   [PROFILE=dev] benches/live_soak.sh [MINUTES]     # default 30
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES=${1:-30}
TRACK=../shared/fixtures/audio/track/full_track_3min_stereo_44k.mp3
PROFILE=${PROFILE:-release}
if [ "$PROFILE" = release ]; then
  cargo build --release --quiet --bin veza-stream --bench llhls_load --bench whep_load
  DIR=target/release
else
  cargo build --quiet --bin veza-stream --bench llhls_load --bench whep_load
  DIR=target/debug
fi
BIN=$DIR/veza-stream
LLHLS=$(ls -t $DIR/deps/llhls_load-* | grep -v '\.d$' | head -1)
WHEP=$(ls -t $DIR/deps/whep_load-* | grep -v '\.d$' | head -1)
WORK=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
URL=http://127.0.0.1:$PORT
cleanup() { pkill -P $$ 2>/dev/null || true; kill "$SERVER" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
VEZA_SERVER__LISTEN=127.0.0.1:$PORT VEZA_SERVER__DATA_DIR=$WORK/data VEZA_STORAGE__PATH=$WORK/media \
  VEZA_DATABASE__URL="sqlite://$WORK/data/veza.db" VEZA_LIMITS__PER_IP_PER_MINUTE=0 \
  VEZA_LIMITS__PER_SUBJECT_PER_MINUTE=0 VEZA_LIVE__WEBRTC_UDP=127.0.0.1:0 \
  VEZA_LIVE__MAX_CONNECTING_PER_CLIENT=64 VEZA_LIVE__MAX_CONNECTING_PER_CREDENTIAL=64 \
  VEZA_LOG__LEVEL=warn \
  "$BIN" serve > "$WORK/server.out" 2>&1 &
SERVER=$!
until curl -sf $URL/healthz >/dev/null; do sleep 0.2; done
KEY=$(sed -n 's/^api_key = "\(.*\)"$/\1/p' "$WORK/data/dev-secrets.toml")
read -r ID SK < <(curl -sf -H "Authorization: Bearer $KEY" -d '{"title":"Soak"}' $URL/v1/channels |
  jq -r '"\(.id) \(.stream_key)"')
END=$(( $(date +%s) + MINUTES * 60 ))
# The source: 30 s on, then it drops and reconnects.
(while [ "$(date +%s)" -lt "$END" ]; do
  timeout 30 ffmpeg -hide_banner -loglevel error -re -stream_loop -1 -i "$TRACK" -vn -c:a copy \
    -content_type audio/mpeg -f mp3 "icecast://source:$SK@127.0.0.1:$PORT/ingest/$ID" || true
  sleep 1
done) &
until [ "$(curl -sf -H "Authorization: Bearer $KEY" $URL/v1/channels/$ID | jq -r .state)" = live ]; do sleep 0.2; done
PB=$(curl -sf -X POST -H "Authorization: Bearer $KEY" $URL/v1/channels/$ID/playback)
TOKEN=$(echo "$PB" | jq -r .token)
WHEP_URL=$(echo "$PB" | jq -r .whep_url)
MEDIA="$URL/hls/live/$ID/opus-128/index.m3u8?token=$TOKEN"
# Listeners in rounds, each round a new set of connections.
(while [ $(( END - $(date +%s) )) -gt 65 ]; do
  "$LLHLS" "$MEDIA" 200 60 "$SERVER" > /dev/null 2>&1 || true
done) &
(while [ $(( END - $(date +%s) )) -gt 35 ]; do
  "$WHEP" "$WHEP_URL" "$TOKEN" 20 30 > /dev/null 2>&1 || true
done) &
python3 - "$SERVER" "$MINUTES" <<'PY'
import json, os, sys, time
pid, minutes = int(sys.argv[1]), float(sys.argv[2])
deadline = time.monotonic() + minutes * 60
samples = []
while time.monotonic() < deadline:
    time.sleep(10)
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS"))
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    with open(f"/proc/{pid}/stat") as f:
        st = f.read().rsplit(")", 1)[1].split()
    cpu = (int(st[11]) + int(st[12])) / os.sysconf("SC_CLK_TCK")
    s = {"t_s": 10 * (len(samples) + 1), "rss_kib": rss, "fds": fds, "server_cpu_s": round(cpu, 1)}
    samples.append(s)
    print(json.dumps(s), flush=True)
warm = max(6, len(samples) // 5)
after = samples[warm:]
mean = lambda xs, k: sum(x[k] for x in xs) / len(xs)
if len(after) >= 6:
    first, last = after[:3], after[-3:]
    rss = 100 * (mean(last, "rss_kib") - mean(first, "rss_kib")) / mean(first, "rss_kib")
    fds = 100 * (mean(last, "fds") - mean(first, "fds")) / mean(first, "fds")
else:
    rss = fds = float("nan")
print(json.dumps({"summary": True, "minutes": minutes, "rss_growth_percent": round(rss, 2),
                  "fd_growth_percent": round(fds, 2), "rss_kib_end": samples[-1]["rss_kib"] if samples else None,
                  "fds_end": samples[-1]["fds"] if samples else None}), flush=True)
PY
