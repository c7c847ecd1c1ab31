#!/usr/bin/env bash
# Packages the same ~3-minute track with `veza-stream package` and with an equivalent single ffmpeg
# command (same ladder: Opus 96k + AAC 128k at 48 kHz, FLAC at the source rate; fMP4 HLS, 6 s
# segments), alternating runs, and prints wall and CPU time of each and the ratios.
#
#   benches/compare_ffmpeg.sh [RUNS] [INPUT]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
input=${2:-../shared/fixtures/audio/track/full_track_3min_stereo_44k.flac}
cargo build --release --quiet --bin veza-stream
bin=target/release/veza-stream
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

measure() { # runs a command, prints "wall cpu" in seconds
  /usr/bin/time -f "%e %U %S" -o "$work/t" "$@" >/dev/null 2>&1
  awk '{printf "%.3f %.3f\n", $1, $2 + $3}' "$work/t"
}

ours() {
  rm -rf "$work/v"
  measure "$bin" package "$input" "$work/v" --renditions opus-96,aac-128,flac --segment-seconds 6
}

theirs() {
  rm -rf "$work/f" && mkdir -p "$work/f/opus" "$work/f/aac" "$work/f/flac"
  measure ffmpeg -nostdin -v error -y -i "$input" \
    -filter_complex "[0:a]aresample=48000,asplit=2[o][a]" \
    -map "[o]" -c:a libopus -b:a 96k -f hls -hls_time 6 -hls_segment_type fmp4 -hls_playlist_type vod "$work/f/opus/index.m3u8" \
    -map "[a]" -c:a aac -b:a 128k -f hls -hls_time 6 -hls_segment_type fmp4 -hls_playlist_type vod "$work/f/aac/index.m3u8" \
    -map 0:a -c:a flac -strict -2 -f hls -hls_time 6 -hls_segment_type fmp4 -hls_playlist_type vod "$work/f/flac/index.m3u8"
}

ours >/dev/null; theirs >/dev/null # warm caches
vw=0; vc=0; fw=0; fc=0
for i in $(seq "$runs"); do
  read -r w c < <(ours);   vw=$(echo "$vw + $w" | bc -l); vc=$(echo "$vc + $c" | bc -l)
  read -r w2 c2 < <(theirs); fw=$(echo "$fw + $w2" | bc -l); fc=$(echo "$fc + $c2" | bc -l)
  echo "run $i: veza-stream ${w}s wall ${c}s cpu | ffmpeg ${w2}s wall ${c2}s cpu"
done
dur=$(ffprobe -v error -show_entries format=duration -of csv=p=0 "$input")
printf 'input: %s (%.1f s)\n' "$input" "$dur"
printf 'veza-stream: %.2f s wall, %.2f s cpu (%.0fx real time)\n' "$(echo "$vw/$runs" | bc -l)" "$(echo "$vc/$runs" | bc -l)" "$(echo "$dur*$runs/$vw" | bc -l)"
printf 'ffmpeg:      %.2f s wall, %.2f s cpu (%.0fx real time)\n' "$(echo "$fw/$runs" | bc -l)" "$(echo "$fc/$runs" | bc -l)" "$(echo "$dur*$runs/$fw" | bc -l)"
printf 'ratio veza/ffmpeg: wall %.2f, cpu %.2f\n' "$(echo "$vw/$fw" | bc -l)" "$(echo "$vc/$fc" | bc -l)"
