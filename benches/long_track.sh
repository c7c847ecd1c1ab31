#!/usr/bin/env bash
# Peak memory and speed of `veza-stream package` (release build, default ladder) by duration: the
# 3-minute fixture track, and the same track looped to 1 hour and to 3 hours (FLAC made by ffmpeg).
# Peak RSS comes from GNU time. Packaging streams the source, so the peak should not grow with the
# duration.
#
#   benches/long_track.sh [HOURS...]     # default: 1 3
set -euo pipefail
cd "$(dirname "$0")/.."
hours=("${@:-1 3}")
[ $# -eq 0 ] && hours=(1 3)
command -v ffmpeg >/dev/null && [ -x /usr/bin/time ] ||
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg time >/dev/null; }
cargo build --release --quiet --bin veza-stream
bin=$PWD/target/release/veza-stream
track=$PWD/../shared/fixtures/audio/track/full_track_3min_stereo_44k.flac
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf '| source | duration | wall | peak RSS | × real time |\n|---|---|---|---|---|\n'
run() {
  local src=$1 label=$2
  /usr/bin/time -f '%e %M' -o "$work/time" "$bin" package --json "$src" "$work/out" >"$work/summary"
  read -r wall kib <"$work/time"
  local secs
  secs=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["duration_seconds"])' "$work/summary")
  printf '| %s | %.0f s | %.1f s | %d MB | %.0f× |\n' "$label" "$secs" "$wall" $((kib / 1024)) \
    "$(echo "$secs / $wall" | bc -l)"
  rm -rf "$work/out"
}
run "$track" "3-minute fixture (FLAC 44.1 kHz)"
for h in "${hours[@]}"; do
  loops=$((h * 20 - 1))
  ffmpeg -v error -stream_loop "$loops" -i "$track" -c:a flac -y "$work/long.flac"
  run "$work/long.flac" "fixture looped to ${h} h (FLAC)"
  rm -f "$work/long.flac"
done
