#!/usr/bin/env bash
# Builds everything and runs every test suite against a real nats-server and real LMDB files.
# The tests start their own nats-server on free loopback ports (or use RUNNER_TEST_NATS_URL).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/prereqs.sh
runner_prereqs
runner_browser_prereqs

dotnet build Runner.slnx -c Release -nologo -v quiet -p:TreatWarningsAsErrors=true
# Slice tests run the NativeAOT runner-slice inside sandboxes: publish it once for every suite.
RUNNER_TEST_SLICE_BIN="${RUNNER_TEST_SLICE_BIN:-$(runner_slice_aot)}"
export RUNNER_TEST_SLICE_BIN
# The runner compiled ahead of time, as the image ships it: every test that starts a runner process runs it. Published once.
RUNNER_TEST_NATIVE_RUNNER="${RUNNER_TEST_NATIVE_RUNNER:-$(runner_native_aot)}"
export RUNNER_TEST_NATIVE_RUNNER
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
set +e
dotnet test Runner.slnx -c Release --no-build -nologo --logger "console;verbosity=normal" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e

# The failed tests last, where a CI log's tail shows them: each one's error message (its first
# 150 lines, without the stack trace), then their names.
if grep -qE '^  Failed ' "$log"; then
  echo "why they failed:"
  awk '
    /^  Failed / { on = 1; n = 0; print; next }
    on && (/^  Stack Trace:/ || /^  (Passed|Skipped) / || /^Test Run /) { on = 0 }
    on && n++ < 150 { print }
  ' "$log"
  echo "failed tests:"
  grep -E '^  Failed ' "$log" | sed 's/^  Failed /  /'
fi
# One summary line over all test projects, in the plain "N passed, N failed" form.
awk '
  /^Total tests: [0-9]+/ { projects++ }
  /^ +Passed: [0-9]+ *$/ { p += $2 }
  /^ +Failed: [0-9]+ *$/ { f += $2 }
  /^ +Skipped: [0-9]+ *$/ { s += $2 }
  END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s; if (projects == 0) exit 1 }
' "$log"
exit "$status"
