#!/usr/bin/env bash
# Synthesizes the example for one configuration with yosys and prints cells, LUTs, FFs, DSPs and BRAMs.
# Usage: bench/synth.sh [config.json] [model.onnx]     (slow: minutes for large arrays; not part of the tests)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cfg="${1:-}"
model="${2:-$root/examples/mlp_digits/model.onnx}"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$root/hwgen" compile "$model" -o "$out/design" ${cfg:+--config "$cfg"} >/dev/null
cd "$out/design"
# Xilinx 7-series mapping: the scratchpad becomes block RAM (generic 'synth' would flatten it into flip-flops).
yosys -q -p "read_verilog rtl/*.v; synth_xilinx -top hwgen_top -flatten; tee -q -o $out/xilinx.txt stat" >/dev/null
awk '/LUT[1-6] /{l+=$2} /FD[RSCP]E /{f+=$2} /DSP48E1/{d+=$2} /RAMB(18|36)E1/{b+=$2} END{printf "xilinx 7-series: %d LUTs, %d FFs, %d DSP48E1, %d RAMB\n", l, f, d, b}' "$out/xilinx.txt"
