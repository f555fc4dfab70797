#!/usr/bin/env bash
# Runs every test: build, unit tests, ONNX conformance, RTL simulation in Verilator and Icarus, lint, yosys.
# Installs missing tools first (.ci/setup; a no-op when they are there). Extra arguments go to dotnet test,
# e.g. ./test.sh --filter "FullyQualifiedName~RtlSim".
set -euo pipefail
cd "$(dirname "$0")"
bash .ci/setup
dotnet restore HwGen.sln --verbosity quiet
dotnet build HwGen.sln --no-restore -c Release --verbosity quiet -nologo
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
dotnet test HwGen.sln --no-build -c Release --verbosity quiet -nologo --logger "console;verbosity=minimal" "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One plain summary line for CI: "tests: N passed, N failed, N skipped".
summary=$(grep -E "(Passed|Failed)! +- +Failed: +[0-9]+, +Passed: +[0-9]+, +Skipped: +[0-9]+" "$log" | tail -1)
if [ -n "$summary" ]; then
  failed=$(sed -E 's/.*Failed: +([0-9]+).*/\1/' <<<"$summary")
  passed=$(sed -E 's/.*Passed: +([0-9]+).*/\1/' <<<"$summary")
  skipped=$(sed -E 's/.*Skipped: +([0-9]+).*/\1/' <<<"$summary")
  echo "tests: $passed passed, $failed failed, $skipped skipped"
fi
exit "$status"
