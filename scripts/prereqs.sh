#!/usr/bin/env bash
# Installs what Runner's build, demo and tests need on a fresh Debian machine, when missing:
# nats-server (JetStream), a C compiler (the build compiles LMDB), docker-compose (the tests
# validate docker/compose.yml with it when the docker client has no compose plugin). The docker
# client itself (docker stack config) and the .NET 10 SDK (dotnet) must already be on PATH.
set -euo pipefail

runner_need_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

runner_prereqs() {
  local missing=()
  command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || missing+=(nats-server)
  command -v cc >/dev/null 2>&1 || missing+=(gcc libc6-dev)
  docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing: ${missing[*]}" >&2
    runner_need_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    runner_need_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  if ! command -v dotnet >/dev/null 2>&1; then
    echo "error: the .NET 10 SDK (dotnet) is not on PATH; install it first (see https://dot.net)" >&2
    exit 1
  fi
  export PATH="$PATH:/usr/sbin"
  export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
}
