#!/usr/bin/env bash
# Installs what Runner's build, demo and tests need on a fresh Debian machine, when missing:
# nats-server (JetStream), a C compiler (the build compiles LMDB), bubblewrap (slice sandboxes),
# clang and zlib (the NativeAOT publish of runner-slice), docker-compose (the tests validate
# docker/compose.yml with it when the docker client has no compose plugin). The docker client
# itself (docker stack config) and the .NET 10 SDK (dotnet) must already be on PATH.
# runner_browser_prereqs adds what the admin page test needs: Debian's chromium, and playwright-core
# (from the npm registry, through the lock file) to drive it.
set -euo pipefail

runner_need_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

runner_prereqs() {
  local missing=()
  command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || missing+=(nats-server)
  command -v cc >/dev/null 2>&1 || missing+=(gcc libc6-dev)
  # Slices: bubblewrap builds their namespaces, util-linux's setpriv drops to the slice uid.
  command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
  command -v setpriv >/dev/null 2>&1 || missing+=(util-linux)
  # runner-slice is published with NativeAOT, which links with clang and zlib.
  command -v clang >/dev/null 2>&1 || missing+=(clang)
  [ -e /usr/include/zlib.h ] || missing+=(zlib1g-dev)
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

# The admin page test drives Debian's Chromium (/usr/bin/chromium) with playwright-core on Node.js
# 20 or later. The browser comes from apt: playwright's own browser download is skipped (and could
# not be fetched here anyway).
runner_browser_prereqs() {
  local missing=()
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  command -v node >/dev/null 2>&1 || missing+=(nodejs)
  command -v npm >/dev/null 2>&1 || missing+=(npm)
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing: ${missing[*]}" >&2
    runner_need_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    runner_need_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  local major
  major="$(node -p 'process.versions.node.split(".")[0]')"
  if [ "$major" -lt 20 ]; then
    echo "error: the admin page test needs Node.js 20 or later (playwright-core); node is $(node --version)" >&2
    exit 1
  fi
  local dir=tests/Runner.Host.Tests/Browser
  if [ ! -f "$dir/node_modules/.package-lock.json" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    (cd "$dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error >&2)
  fi
}

# A NativeAOT warning that arises inside Jint (the compiler's own line naming a Jint member, or the
# assembly's summary): its CLR interop, which the script sandbox turns off. docker/Dockerfile refuses the same.
RUNNER_JINT_WARNING="^ *ILC : (Trim|AOT) analysis warning IL[0-9]+: Jint\\.|Jint\\.dll : warning IL[0-9]+: Assembly 'Jint' produced"

# Publishes PROJECT with NativeAOT into artifacts/DIR unless BINARY there is already newer than every
# source under SOURCES; fails on a warning about Runner's own code (reflection the compiler cannot see
# through fails at run time, not here); prints the binary's path. Extra publish arguments follow.
runner_publish_native() {
  local project="$1" dir="$2" binary="$3" sources="$4" log
  shift 4
  local out="artifacts/$dir/$binary"
  if [ ! -x "$out" ] || [ -n "$(find $sources Directory.Build.props Directory.Packages.props -newer "$out" -type f -not -path '*/bin/*' -not -path '*/obj/*' | head -n1)" ]; then
    log="$(mktemp)"
    if ! dotnet publish "$project" -c Release -r linux-x64 -o "artifacts/$dir" -nologo "$@" >"$log" 2>&1; then
      cat "$log" >&2
      rm -f "$log"
      return 1
    fi
    if grep 'warning IL' "$log" | grep -v -E "$RUNNER_JINT_WARNING" >&2; then
      echo "the NativeAOT publish of $project warns about Runner's code (above)" >&2
      rm -f "$log"
      return 1
    fi
    rm -f "$log"
  fi
  echo "$PWD/$out"
}

# The runner compiled ahead of time, as the image publishes it: what the tests start as a runner process
# (test.sh passes it as RUNNER_TEST_NATIVE_RUNNER).
runner_native_aot() {
  runner_publish_native src/Runner.Host runner-native runner src -p:PublishAot=true
}

# runner-slice (NativeAOT in its project): a single file the slice sandbox can bind.
runner_slice_aot() {
  runner_publish_native src/Runner.Slice runner-slice runner-slice src/Runner.Slice
}

