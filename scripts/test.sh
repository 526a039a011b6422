#!/usr/bin/env bash
# test.sh: builds onnxq and runs every test suite twice, the way CI does:
#   1. build-test/: release build with warnings as errors (-Dwerror=true);
#   2. build-asan/: the same with AddressSanitizer + UndefinedBehaviorSanitizer,
#      leaks checked, any sanitizer report fatal.
# Needs the packages of scripts/setup.sh. Installs the pinned ONNX Runtime
# (tests/package-lock.json) into tests/node_modules first. Options go to both
# `meson test` runs, e.g. `scripts/test.sh --suite unit`. Ends with one line
# "tests: N passed, N failed, N skipped" over both runs; exit status 0 only if
# everything built and no test failed.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
jobs=${ONNXQ_JOBS:-$(nproc)}
t0=$(date +%s)

step() { echo; echo "==== $* ($(( $(date +%s) - t0 ))s)"; }

# ---- ONNX Runtime (node) for tests/ort --------------------------------------------------
# --ignore-scripts: onnxruntime-node's install script downloads GPU libraries;
# the CPU runtime is inside the package itself.
step "npm ci in tests/ (onnxruntime-node, pinned by package-lock.json)"
stamp=tests/node_modules/.onnxq-lock
if ! cmp -s tests/package-lock.json "$stamp"; then
  (cd tests && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
  cp tests/package-lock.json "$stamp"
fi
node -e "const o = require('./tests/node_modules/onnxruntime-node'); \
  console.log('onnxruntime-node', o.env.versions.node, 'loads; backends:', o.listSupportedBackends().map(b => b.name).join(' '))"

# ---- builds and suites --------------------------------------------------------------------
# configure DIR OPTIONS...: set up DIR, or reconfigure it with the same options.
configure() {
  local dir=$1; shift
  if [ -f "$dir/build.ninja" ]; then
    meson setup --reconfigure "$dir" "$@"
  else
    rm -rf "$dir"
    meson setup "$dir" "$@"
  fi
}

status=0
run_suites() {
  local dir=$1; shift
  meson test -C "$dir" --print-errorlogs --num-processes "$jobs" "$@" || status=1
}

step "release build, warnings as errors"
configure build-test -Dwerror=true
ninja -C build-test -j "$jobs"
step "all suites on the release build"
run_suites build-test "$@"

step "ASan + UBSan build"
configure build-asan -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false
ninja -C build-asan -j "$jobs"
step "all suites on the sanitizer build"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  run_suites build-asan --timeout-multiplier 4 "$@"

# ---- one closing line over both runs ---------------------------------------------------
step "summary"
/usr/bin/python3 - "$root/build-test" "$root/build-asan" <<'PY'
import json, os, sys
counts = {"passed": 0, "failed": 0, "skipped": 0}
for d in sys.argv[1:]:
    log = os.path.join(d, "meson-logs", "testlog.json")
    per = {"passed": 0, "failed": 0, "skipped": 0}
    with open(log) as f:
        for line in f:
            r = json.loads(line)["result"]
            key = "passed" if r in ("OK", "EXPECTEDFAIL") else "skipped" if r == "SKIP" else "failed"
            per[key] += 1
    print(f"{os.path.basename(d)}: {per['passed']} passed, {per['failed']} failed, {per['skipped']} skipped")
    for k in counts:
        counts[k] += per[k]
print(f"tests: {counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped")
PY
exit $status
