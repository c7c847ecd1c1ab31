#!/usr/bin/env bash
# Progressive listening against Debian's icecast2, in the same run, on loopback, bounded in time
# and connections. Both servers get the same source: ffmpeg copying the fixture's 128 kb/s MP3 in
# real time (icecast2 relays it as it is; this server decodes it and encodes its MP3 mount at
# 128 kb/s with LAME, plus the channel's AAC and Opus renditions).
#   1. time to first audio in ffmpeg, mpv and VLC, alternating between the two servers;
#   2. this server's CPU with no listener, then with one (the MP3 encoder starts with the first
#      listener of its mount): what a channel and its MP3 encode cost;
#   3. for each K in LISTENER_COUNTS: K progressive MP3 listeners on icecast2, then on this
#      server (benches/progressive_load.rs): none dropped, CPU per listener, RSS, and the load
#      generator's own CPU;
#   4. K LL-HLS listeners (benches/llhls_load.rs, the first count only) on this server, for the
#      LL-HLS-to-progressive ratio.
#
#   [PROFILE=dev] benches/icecast.sh [SECONDS_PER_STEP] [LISTENER_COUNTS] [TTFA_RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
STEP=${1:-30}
COUNTS=${2:-"2000 10000"}
RUNS=${3:-5}
TRACK=$PWD/../shared/fixtures/audio/track/full_track_3min_stereo_44k.mp3
export DEBIAN_FRONTEND=noninteractive
need=()
for pkg in icecast2 ffmpeg mpv vlc-bin vlc-plugin-base jq bc curl; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi
PROFILE=${PROFILE:-release}
if [ "$PROFILE" = release ]; then
  cargo build --release --quiet --bin veza-stream --bench progressive_load --bench llhls_load
  DIR=target/release
else
  cargo build --quiet --bin veza-stream --bench progressive_load --bench llhls_load
  DIR=target/debug
fi
BIN=$DIR/veza-stream
LOAD=$(ls -t $DIR/deps/progressive_load-* | grep -v '\.d$' | head -1)
HLSLOAD=$(ls -t $DIR/deps/llhls_load-* | grep -v '\.d$' | head -1)
WORK=$(mktemp -d)
chmod 755 "$WORK"
VPORT=18181
IPORT=18182
V=http://127.0.0.1:$VPORT
I=http://127.0.0.1:$IPORT
ulimit -n "$(ulimit -Hn)"   # as many descriptors as this shell may have
cleanup() {
  pkill -P $$ 2>/dev/null || true
  kill "$SERVER" "$ICECAST" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# icecast2 as its package configures it, with room for the listeners; it refuses to run as root,
# so it runs as nobody.
mkdir -p "$WORK/icecast/log"
chown -R nobody:nogroup "$WORK/icecast"
cat > "$WORK/icecast/icecast.xml" <<EOF
<icecast>
  <limits>
    <clients>20000</clients>
    <sources>2</sources>
    <queue-size>524288</queue-size>
    <client-timeout>30</client-timeout>
    <header-timeout>15</header-timeout>
    <source-timeout>10</source-timeout>
    <burst-on-connect>1</burst-on-connect>
    <burst-size>65536</burst-size>
  </limits>
  <authentication>
    <source-password>bench</source-password>
    <relay-password>bench</relay-password>
    <admin-user>admin</admin-user>
    <admin-password>bench</admin-password>
  </authentication>
  <hostname>127.0.0.1</hostname>
  <listen-socket><port>$IPORT</port><bind-address>127.0.0.1</bind-address></listen-socket>
  <fileserve>1</fileserve>
  <paths>
    <basedir>/usr/share/icecast2</basedir>
    <logdir>$WORK/icecast/log</logdir>
    <webroot>/usr/share/icecast2/web</webroot>
    <adminroot>/usr/share/icecast2/admin</adminroot>
  </paths>
  <logging><loglevel>1</loglevel></logging>
</icecast>
EOF
setpriv --reuid=nobody --regid=nogroup --clear-groups icecast2 -c "$WORK/icecast/icecast.xml" \
  > "$WORK/icecast.out" 2>&1 &
ICECAST=$!

VEZA_SERVER__LISTEN=127.0.0.1:$VPORT VEZA_SERVER__DATA_DIR=$WORK/data VEZA_STORAGE__PATH=$WORK/media \
  VEZA_DATABASE__URL="sqlite://$WORK/data/veza.db" VEZA_LIMITS__PER_IP_PER_MINUTE=0 \
  VEZA_LIMITS__PER_SUBJECT_PER_MINUTE=0 VEZA_SERVER__MAX_CONNECTIONS_PER_IP=30000 \
  VEZA_LIVE__WEBRTC_UDP=127.0.0.1:0 VEZA_LOG__LEVEL=warn MALLOC_ARENA_MAX=2 \
  "$BIN" serve > "$WORK/server.out" 2>&1 &
SERVER=$!
until curl -sf $V/healthz >/dev/null; do sleep 0.2; done
until curl -sf $I/status-json.xsl >/dev/null; do sleep 0.2; done
KEY=$(sed -n 's/^api_key = "\(.*\)"$/\1/p' "$WORK/data/dev-secrets.toml")
read -r ID SK < <(curl -sf -H "Authorization: Bearer $KEY" \
  -d '{"title":"Bench","slug":"bench","visibility":"public"}' $V/v1/channels | jq -r '"\(.id) \(.stream_key)"')
ffmpeg -nostdin -hide_banner -loglevel error -re -stream_loop -1 -i "$TRACK" -vn -c:a copy \
  -content_type audio/mpeg -f mp3 "icecast://source:$SK@127.0.0.1:$VPORT/ingest/$ID" &
ffmpeg -nostdin -hide_banner -loglevel error -re -stream_loop -1 -i "$TRACK" -vn -c:a copy \
  -content_type audio/mpeg -f mp3 "icecast://source:bench@127.0.0.1:$IPORT/bench.mp3" &
until [ "$(curl -sf -H "Authorization: Bearer $KEY" $V/v1/channels/$ID | jq -r .state)" = live ]; do sleep 0.2; done
until curl -sf $I/status-json.xsl | jq -e '.icestats.source' >/dev/null; do sleep 0.2; done
# Both have more than the burst in hand before anyone listens.
sleep 6
VM=$V/listen/bench.mp3
IM=$I/bench.mp3
SERVER_PID=$SERVER
ICECAST_PID=$ICECAST   # setpriv execs icecast2

cpu() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }  # ticks
TICK=$(getconf CLK_TCK)

echo "== 1. time to first audio (s; median of $RUNS, alternating)"
# Each player is timed from launch until it has decoded 0.2 s of audio and exits.
ttfa() {  # player url
  local t0 t1
  t0=$(date +%s.%N)
  case $1 in
    # Each bounded: a player that never stops is cut off at 20 s (and that time counts).
    ffmpeg) timeout 20 ffmpeg -nostdin -hide_banner -loglevel error -i "$2" -t 0.2 -f null - ;;
    mpv) timeout 20 mpv --no-config --really-quiet --vo=null --ao=null --length=0.2 "$2" ;;
    vlc) timeout 20 setpriv --reuid=nobody --regid=nogroup --clear-groups env HOME="$WORK" \
      cvlc -q -I dummy --aout=dummy --no-video --stop-time=0.2 --play-and-exit "$2" ;;
  esac >/dev/null 2>&1
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc
}
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
for P in ffmpeg mpv vlc; do
  : > "$WORK/ice.$P"; : > "$WORK/veza.$P"
  for _ in $(seq "$RUNS"); do
    ttfa $P "$IM" >> "$WORK/ice.$P"
    ttfa $P "$VM" >> "$WORK/veza.$P"
  done
  A=$(median < "$WORK/ice.$P"); B=$(median < "$WORK/veza.$P")
  echo "{\"player\": \"$P\", \"icecast2_s\": $A, \"veza_s\": $B, \"ratio\": $(echo "scale=2; $B / $A" | bc)}"
done

echo "== 2. this server's channel cost (% of a core)"
C0=$(cpu $SERVER_PID); sleep "$STEP"; C1=$(cpu $SERVER_PID)
IDLE=$(echo "scale=3; ($C1 - $C0) * 100 / $TICK / $STEP" | bc)
curl -s -N "$VM" -o /dev/null --max-time $((STEP + 4)) &
sleep 4
C0=$(cpu $SERVER_PID); sleep "$STEP"; C1=$(cpu $SERVER_PID)
ONE=$(echo "scale=3; ($C1 - $C0) * 100 / $TICK / $STEP" | bc)
wait $! || true
echo "{\"no_listener_cpu_percent\": $IDLE, \"one_mp3_listener_cpu_percent\": $ONE, \"mp3_encoder_cpu_percent\": $(echo "scale=3; $ONE - $IDLE" | bc)}"
sleep 11   # the MP3 encoder stops 10 s after its last listener

echo "== 3. progressive MP3 listeners"
for K in $COUNTS; do
  A=$("$LOAD" "$IM" "$K" "$STEP" "$ICECAST_PID")
  echo "$A" | jq -c '{server: "icecast2"} + .'
  sleep 3
  B=$("$LOAD" "$VM" "$K" "$STEP" "$SERVER_PID")
  echo "$B" | jq -c '{server: "veza-stream"} + .'
  echo "{\"listeners\": $K, \"cpu_per_listener_ratio\": $(jq -n --argjson a "$A" --argjson b "$B" \
    '(($b.server_cpu_percent_per_listener / $a.server_cpu_percent_per_listener) * 100 | round) / 100'), \
\"marginal_ratio\": $(jq -n --argjson a "$A" --argjson b "$B" --argjson one "$ONE" \
    '((($b.server_cpu_percent - $one) / $a.server_cpu_percent) * 100 | round) / 100')}"
  sleep 12
done

echo "== 4. LL-HLS listeners on this server"
K=${COUNTS%% *}
PB=$(curl -sf -X POST -H "Authorization: Bearer $KEY" $V/v1/channels/$ID/playback)
TOKEN=$(echo "$PB" | jq -r .token)
for R in aac-128 opus-128; do
  "$HLSLOAD" "$V/hls/live/$ID/$R/index.m3u8?token=$TOKEN" "$K" "$STEP" "$SERVER_PID" |
    jq -c --arg r "$R" '{rendition: $r, listeners, parts_short, request_errors, server_cpu_percent, server_cpu_percent_per_listener: ((.server_cpu_percent / .listeners) * 100000 | round / 100000), generator_cpu_percent}'
  sleep 3
done
