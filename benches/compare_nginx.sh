#!/usr/bin/env bash
# Serving benchmark: the same packaged segment and media playlist served by nginx (static files)
# and by `veza-stream serve` (token verification on, hot cache warm), under the same bounded wrk
# load in one run. Prints req/s, p99 latency and the veza/nginx ratios. Also times upload-to-ready
# of the 3-minute fixture (upload start to `ready` in the track API).
#
#   benches/compare_nginx.sh [SECONDS] [CONNECTIONS]
#
# Needs wrk and nginx (installed from Debian if missing). veza-stream runs its tokio runtime on all
# cores; nginx runs twice, with one worker and with one per core. Runs alternate, on loopback, with
# wrk on the same host.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
conns=${2:-64}
input=../shared/fixtures/audio/track/full_track_3min_stereo_44k.flac
command -v wrk >/dev/null && command -v nginx >/dev/null ||
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk nginx >/dev/null; }
cargo build --release --quiet --bin veza-stream
bin=$PWD/target/release/veza-stream
work=$(mktemp -d)
chmod 755 "$work" # nginx's workers run as nobody and must read the files
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# veza-stream on embedded defaults in a scratch directory.
vport=$(free_port)
(cd "$work" && VEZA_SERVER__LISTEN=127.0.0.1:$vport VEZA_LOG__LEVEL=warn "$bin" serve >"$work/banner" 2>"$work/veza.log") &
pids+=($!)
for _ in $(seq 100); do grep -q "development API key" "$work/banner" 2>/dev/null && break; sleep 0.1; done
key=$(sed -n 's/.*development API key: //p' "$work/banner")
base=http://127.0.0.1:$vport

# Upload-to-ready = the upload request's duration (client clock) + queued-to-ready (the track's
# created_at and updated_at, server clock, ms). The poll is slow on purpose: a tight polling loop
# would steal CPU from the transcode it measures.
upload_to_ready() {
  local t0 t1 id body
  t0=$(date +%s.%N)
  id=$(curl -sf -H "Authorization: Bearer $key" -H 'Content-Type: audio/flac' --data-binary @"$input" \
    "$base/v1/tracks?filename=track.flac" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  t1=$(date +%s.%N)
  while :; do
    sleep 0.5
    body=$(curl -sf -H "Authorization: Bearer $key" "$base/v1/tracks/$id")
    echo "$body" | grep -qE '"status":"(ready|failed)"' && break
  done
  echo "$body" | python3 -c '
import datetime, json, sys
t = json.load(sys.stdin)
if t["status"] != "ready":
    sys.exit("upload failed: %s" % t["error"])
ts = lambda s: datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
print(t["id"], float(sys.argv[1]) + ts(t["updated_at"]) - ts(t["created_at"]))' "$(echo "$t1 - $t0" | bc -l)"
}
times=()
for i in 1 2 3; do
  read -r id took < <(upload_to_ready)
  times+=("$took")
  printf 'upload-to-ready run %d: %.2f s\n' "$i" "$took"
done
median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n 2p)
printf 'upload-to-ready (3-minute FLAC, median of 3): %.2f s\n\n' "$median"

token=$(curl -sf -X POST -H "Authorization: Bearer $key" "$base/v1/tracks/$id/playback" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
seg="aac-128/seg_00010.m4s"
pl="aac-128/index.m3u8"
veza_seg="$base/hls/tracks/$id/$seg?token=$token"
veza_pl="$base/hls/tracks/$id/$pl?token=$token"

# nginx serves the same bytes from disk (the page cache keeps them in memory).
mkdir -p "$work/www/aac-128"
curl -sf "$veza_seg" -o "$work/www/$seg"
curl -sf "$veza_pl" -o "$work/www/$pl"
# Three nginx configurations: one worker (the figure this project's issues quote), one worker per
# core (what a tuned origin runs), and one per core without sendfile (copying through user space,
# as any server that is not handing the kernel a file must, veza-stream included).
conf() { # workers port sendfile name
  cat <<CONF
worker_processes $1;
pid $work/nginx-$4.pid;
error_log $work/nginx.err;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile $3; tcp_nopush on; tcp_nodelay on; keepalive_requests 1000000;
  types { application/vnd.apple.mpegurl m3u8; audio/mp4 m4s; }
  server { listen 127.0.0.1:$2; root $work/www;
    location / { add_header Cache-Control "public, max-age=31536000, immutable"; } }
}
CONF
}
n1=$(free_port); nN=$(free_port); nC=$(free_port)
conf 1 "$n1" on one >"$work/nginx-1.conf"
conf auto "$nN" on auto >"$work/nginx-auto.conf"
conf auto "$nC" off copy >"$work/nginx-copy.conf"
for c in 1 auto copy; do nginx -c "$work/nginx-$c.conf" -g 'daemon off;' & pids+=($!); done
sleep 0.5
size=$(stat -c %s "$work/www/$seg")
# Every server must answer 200 with the same bytes before anything is measured.
for p in $n1 $nN $nC; do
  got=$(curl -s -o /dev/null -w '%{http_code} %{size_download}' "http://127.0.0.1:$p/$seg")
  [ "$got" = "200 $size" ] || { echo "nginx on port $p answered '$got' for $seg" >&2; exit 1; }
done

run_wrk() { # url -> "req/s p99_ms"; any non-2xx answer voids the run
  wrk -t2 -c"$conns" -d"${secs}s" --latency "$1" 2>/dev/null | awk '
    /Non-2xx/ { print "non-2xx answers from " url > "/dev/stderr"; bad = 1 }
    /Requests\/sec/ { rps = $2 }
    /^ +99%/ { v = $2; if (v ~ /us$/) { sub(/us$/, "", v); v /= 1000 } else if (v ~ /ms$/) { sub(/ms$/, "", v) } else if (v ~ /s$/) { sub(/s$/, "", v); v *= 1000 }; p99 = v }
    END { if (bad) exit 1; printf "%.0f %.2f\n", rps, p99 }' url="$1"
}
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

rounds=3
for target in segment playlist; do
  path=$seg; [ $target = playlist ] && path=$pl
  v="$base/hls/tracks/$id/$path?token=$token"
  run_wrk "$v" >/dev/null # warm the hot cache
  : >"$work/r"
  for r in $(seq $rounds); do # alternate, so drift hits every server alike
    for who in veza nginx1 nginxN nginxC; do
      case $who in
        veza) u=$v ;; nginx1) u="http://127.0.0.1:$n1/$path" ;; nginxN) u="http://127.0.0.1:$nN/$path" ;;
        nginxC) u="http://127.0.0.1:$nC/$path" ;;
      esac
      read -r rps p99 < <(run_wrk "$u") || true
      [ -n "${rps:-}" ] || { echo "$who: the run failed" >&2; exit 1; }
      echo "$who $rps $p99" >>"$work/r"
      printf '  %-8s round %d %-7s %7s req/s  p99 %6s ms\n' "$target" "$r" "$who" "$rps" "$p99"
    done
  done
  stat() { grep "^$1 " "$work/r" | awk -v c="$2" '{ print $c }' | median; }
  vr=$(stat veza 2); vp=$(stat veza 3)
  for who in nginx1 nginxN nginxC; do
    nr=$(stat $who 2); np=$(stat $who 3)
    case $who in
      nginx1) label="nginx (1 worker)" ;;
      nginxN) label="nginx ($(nproc) workers)" ;;
      nginxC) label="nginx ($(nproc) w, no sendfile)" ;;
    esac
    printf '%-8s veza-stream %7s req/s p99 %6s ms | %-27s %7s req/s p99 %6s ms | ratio %.2fx\n' \
      "$target" "$vr" "$vp" "$label" "$nr" "$np" "$(echo "$vr / $nr" | bc -l)"
  done
done
echo "(medians of $rounds alternating rounds; segment: $size bytes; wrk -t2 -c$conns -d${secs}s on loopback; $(nproc) cores)"
