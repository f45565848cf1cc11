#!/usr/bin/env bash
# Runner's main job on one machine: builds, starts a local nats-server with JetStream on a free
# loopback port (unless RUNNER_NATS_URL is set), runs Runner in combined mode on manifests/,
# publishes the sample events and prints the saga instances progressing to completion, runs a
# data pipeline of four sandboxed slices over generated data, then stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/prereqs.sh
runner_prereqs

dotnet build src/Runner.Host -c Release -nologo -v quiet
# The pipeline demo's slices run the NativeAOT runner-slice in their sandboxes.
RUNNER_SLICE_BIN="${RUNNER_SLICE_BIN:-$(runner_slice_aot)}"
export RUNNER_SLICE_BIN

work="$(mktemp -d)"
nats_pid=""
cleanup() {
  if [ -n "$nats_pid" ]; then kill "$nats_pid" 2>/dev/null || true; wait "$nats_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

if [ -z "${RUNNER_NATS_URL:-}" ]; then
  nats-server -a 127.0.0.1 -p -1 -js -sd "$work/nats" --ports_file_dir "$work" >"$work/nats.log" 2>&1 &
  nats_pid=$!
  for _ in $(seq 1 100); do
    ports="$(ls "$work"/*.ports 2>/dev/null | head -n1 || true)"
    [ -n "$ports" ] && break
    sleep 0.1
  done
  [ -n "${ports:-}" ] || { echo "nats-server did not start:"; cat "$work/nats.log"; exit 1; }
  RUNNER_NATS_URL="$(grep -o 'nats://[^"]*' "$ports" | head -n1)"
  export RUNNER_NATS_URL
  echo "started nats-server with JetStream at $RUNNER_NATS_URL"
fi

export RUNNER_MANIFESTS="${RUNNER_MANIFESTS:-manifests}"
export RUNNER_DATA_DIR="${RUNNER_DATA_DIR:-$work/data}"
dotnet src/Runner.Host/bin/Release/net10.0/runner.dll demo
