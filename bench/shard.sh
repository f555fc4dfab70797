#!/usr/bin/env bash
# Measures a sharded compile against a single one on a synthetic int8 MLP of the compile benchmark (hwgen bench compile):
# wall, processor time (user + system) and peak RSS of `hwgen compile` whole, of each `hwgen compile --shard i/N` and of
# `hwgen merge-shards`, and checks that the merged image is byte for byte the single compile's tb/memory.bin.
# Usage: bench/shard.sh [SIZE] [N]   (default 67M 4; about a minute at 67M; prints a Markdown table)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
size="${1:-67M}"
n="${2:-4}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# --one writes the model into the work folder (and compiles it once, which is not measured here).
"$root/hwgen" bench compile --one "$size" --work "$work/gen" >/dev/null
model="$work/gen/model.onnx"
measure() {  # label, command...: one table row
  local label="$1"; shift
  /usr/bin/time -f "%e %U %S %M" -o "$work/time" "$@" >/dev/null
  read -r wall user sys kb < "$work/time"
  printf '| %s | %s | %.1f | %d |\n' "$label" "$wall" "$(echo "$user + $sys" | bc)" $((kb / 1024))
}
echo "Sharded compile of the $size-parameter int8 MLP of \`hwgen bench compile\` in $n shards (\`bench/shard.sh $size $n\`), one process after another on this machine:"
echo
echo "| run | wall s | CPU s | peak RSS MB |"
echo "|---|---:|---:|---:|"
measure "compile (whole, with golden run and testbench)" "$root/hwgen" compile "$model" -o "$work/whole"
for i in $(seq 1 "$n"); do
  measure "compile --shard $i/$n" "$root/hwgen" compile "$model" --shard "$i/$n" -o "$work/s$i"
done
measure "merge-shards" "$root/hwgen" merge-shards $(for i in $(seq 1 "$n"); do echo "$work/s$i"; done) -o "$work/memory.bin"
echo
cmp "$work/memory.bin" "$work/whole/tb/memory.bin"
echo "The merged image ($(stat -c %s "$work/memory.bin") B) is byte for byte the whole compile's tb/memory.bin; each shard's part, B:" \
  "$(for i in $(seq 1 "$n"); do stat -c %s "$work/s$i/memory.part.bin"; done | paste -sd, | sed 's/,/, /g')."
