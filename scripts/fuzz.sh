#!/bin/bash
# Builds the libFuzzer targets of tests/fuzz with clang (ASan + UBSan) into
# build-fuzz/ and runs each for SECONDS (default 600) on its seed corpus.
#   scripts/fuzz.sh [SECONDS] [TARGET...]     targets: model tensor_pb npy calib_table image
# Prints each target's executions and any crash; crashing inputs are kept in
# build-fuzz/fuzz-artifacts/TARGET/ (copy them to tests/fuzz/regressions/TARGET/
# once fixed). The growing corpus stays in build-fuzz/fuzz-corpus/TARGET/.
# Exits 1 if any target crashed, timed out or ran out of memory.
set -u
cd "$(dirname "$0")/.."
secs=${1:-600}
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(model tensor_pb npy calib_table image)
build=${FUZZ_BUILD:-build-fuzz}

if [ ! -d "$build" ]; then
    CC=clang meson setup "$build" -Dfuzz=true -Dzoo=false -Dwerror=true \
        -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debugoptimized >/dev/null || exit 1
fi
ninja -C "$build" $(printf 'tests/fuzz/fuzz_%s ' "${targets[@]}") >/dev/null || exit 1
[ -d "$build/fuzz-seeds" ] || /usr/bin/python3 tests/fuzz/make_seeds.py "$build/fuzz-seeds" || exit 1

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
failed=0
for t in "${targets[@]}"; do
    corpus=$build/fuzz-corpus/$t
    artifacts=$build/fuzz-artifacts/$t
    log=$build/fuzz-$t.log
    mkdir -p "$corpus" "$artifacts"
    echo "fuzz: $t for ${secs}s"
    nice -n 10 "$build/tests/fuzz/fuzz_$t" "$corpus" "$build/fuzz-seeds/$t" \
        -max_total_time="$secs" -timeout=20 -rss_limit_mb=2560 -max_len=65536 \
        -artifact_prefix="$artifacts/" -print_final_stats=1 >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    if [ $rc -ne 0 ]; then
        failed=1
        echo "fuzz: $t: FAILED after ${execs:-?} executions (exit $rc); log $log"
        grep -m1 -E '^==[0-9]+==ERROR|runtime error|deadly signal|timeout|out-of-memory' "$log"
        ls "$artifacts"
    else
        echo "fuzz: $t: ${execs:-?} executions, no crash"
    fi
done
exit $failed
