#!/usr/bin/env bash
# test.sh: builds onnxq and runs its tests the way CI does:
#   1. build-test/:    gcc release build, warnings as errors; every suite;
#   2. build-asan/:    the same with AddressSanitizer + UndefinedBehaviorSanitizer,
#                      leaks checked, any sanitizer report fatal; every suite;
#   3. build-clang/:   clang release build, warnings as errors; every suite;
#   4. build-generic/: gcc with the x86 kernels compiled out (-Dx86_kernels=false,
#                      what another processor builds); suites unit, kernels,
#                      onnx-node and fuzz;
#   5. build-fuzz/:    the libFuzzer targets (clang, ASan + UBSan, scripts/fuzz.sh):
#                      the regression inputs replayed, then each target run for
#                      FUZZ_SECONDS (default 45) on its seed corpus, two at a time.
# Needs the packages of scripts/setup.sh. Installs the pinned ONNX Runtime
# (tests/package-lock.json) into tests/node_modules first. Options go to the
# `meson test` runs of builds 1-3, e.g. `scripts/test.sh --suite unit`. Ends
# with one line "tests: N passed, N failed, N skipped" over every build and
# fuzz run; exit status 0 only if everything built and nothing failed.
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

step "gcc release build, warnings as errors"
configure build-test -Dwerror=true
ninja -C build-test -j "$jobs"
step "all suites on the gcc release build"
run_suites build-test "$@"

step "gcc ASan + UBSan build"
configure build-asan -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false
ninja -C build-asan -j "$jobs"
step "all suites on the sanitizer build"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  run_suites build-asan --timeout-multiplier 4 "$@"

step "clang release build, warnings as errors"
CC=clang configure build-clang -Dwerror=true
ninja -C build-clang -j "$jobs"
step "all suites on the clang build"
run_suites build-clang "$@"

step "generic build: x86 kernels compiled out (-Dx86_kernels=false)"
configure build-generic -Dwerror=true -Dx86_kernels=false -Dzoo=false
ninja -C build-generic -j "$jobs"
step "suites unit, kernels, onnx-node and fuzz on the generic build"
run_suites build-generic --suite unit --suite kernels --suite onnx-node --suite fuzz

step "fuzz build (clang, libFuzzer, ASan + UBSan): regressions, then ${FUZZ_SECONDS:-45}s per target"
rm -f build-fuzz/fuzz-summary.txt
FUZZ_PARALLEL=2 bash scripts/fuzz.sh "${FUZZ_SECONDS:-45}" || status=1

# ---- one closing line over every build ------------------------------------------------
step "summary"
/usr/bin/python3 - "$root/build-fuzz/fuzz-summary.txt" "$root/build-test" "$root/build-asan" "$root/build-clang" \
  "$root/build-generic" "$root/build-fuzz" <<'PY' || status=1
import json, os, sys
counts = {"passed": 0, "failed": 0, "skipped": 0}
for d in sys.argv[2:]:
    log = os.path.join(d, "meson-logs", "testlog.json")
    per = {"passed": 0, "failed": 0, "skipped": 0}
    if not os.path.exists(log):  # the build failed before its tests ran
        per["failed"] += 1
    else:
        with open(log) as f:
            for line in f:
                r = json.loads(line)["result"]
                key = "passed" if r in ("OK", "EXPECTEDFAIL") else "skipped" if r == "SKIP" else "failed"
                per[key] += 1
    print(f"{os.path.basename(d)}: {per['passed']} passed, {per['failed']} failed, {per['skipped']} skipped")
    for k in counts:
        counts[k] += per[k]
runs = {"passed": 0, "failed": 0}
try:
    with open(sys.argv[1]) as f:
        for line in f:
            name, verdict, execs = line.split()
            runs["passed" if verdict == "ok" else "failed"] += 1
            print(f"fuzz {name}: {execs} executions, {'no crash' if verdict == 'ok' else 'FAILED'}")
except OSError:
    runs["failed"] += 1
print(f"fuzz runs: {runs['passed']} passed, {runs['failed']} failed")
counts["passed"] += runs["passed"]
counts["failed"] += runs["failed"]
print(f"tests: {counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped")
sys.exit(1 if counts["failed"] else 0)
PY
echo "test.sh: $(( $(date +%s) - t0 ))s"
exit $status
