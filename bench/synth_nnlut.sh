#!/usr/bin/env bash
# Synthesizes each NN-LUT unit with yosys (Xilinx 7-series mapping) and prints a markdown table of LUTs, FFs and
# DSP48E1 per unit. Usage: bench/synth_nnlut.sh [row length for softmax/layernorm, default 64]
# (about a minute; not part of the tests, which synthesize the units once with generic 'synth').
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
length="${1:-64}"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "| unit | entries | LUTs | FFs | DSP48E1 |"
echo "|---|---:|---:|---:|---:|"
for spec in "gelu 8" "gelu 16" "gelu 32" "sigmoid 16" "exp 16" "reciprocal 16" "rsqrt 16" "softmax 16" "layernorm 16"; do
  set -- $spec
  kind=$1 entries=$2
  extra=""
  [ "$kind" = softmax ] && extra="--out-scale 0.00390625 --out-zero-point -128"
  "$root/hwgen" unit "$kind" --entries "$entries" --length "$length" $extra -o "$out/$kind$entries" >/dev/null
  top="nnlut_${kind}_${entries}"
  (cd "$out/$kind$entries" && yosys -q -p "read_verilog rtl/*.v; synth_xilinx -top $top -flatten; tee -q -o stat.txt stat" >/dev/null)
  awk -v u="$kind" -v n="$entries" '/LUT[1-6] /{l+=$2} /FD[RSCP]E /{f+=$2} /DSP48E1/{d+=$2} END{printf "| %s | %s | %d | %d | %d |\n", u, n, l, f, d}' "$out/$kind$entries/stat.txt"
done
