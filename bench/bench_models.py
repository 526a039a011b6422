#!/usr/bin/python3
"""The executor on a set of real architectures, against ONNX Runtime.

Models (bench/model_set.py): twelve torchvision architectures with random
weights and BatchNorm statistics from synthetic images, a GPT-style decoder
and the three PaddleOCR models; exported once into ~/.cache/onnxq/bench/.

For each model it first checks that `onnxq run` and ONNX Runtime give the same
outputs (the tests' criterion: max |onnxq - ORT| <= 1e-3 max |ORT|), then
times, alternating on the same input, `onnxq run --bench N --threads T` and
bench/ort_bench.js (onnxruntime-node, CPU provider, default optimizations, T
intra-op threads), for every T of --threads, --repeats times; each side keeps
its lowest median. It prints one row per model and thread count (ms, ratio,
at one thread also the ratio of median CPU times, which time slices lost to
other processes do not inflate; GFLOP/s of both; the load average over the
row's measurements), the core's
FP32 peak measured by bench_peak (built next to onnxq), and the geometric
mean of the ratios. With --int8 it also quantizes the CNNs with `onnxq
quantize` (8 synthetic calibration samples) and times our FP32 against our
INT8 at one thread, alternating.

It also runs bench_conv (built next to onnxq) for the single-thread speed of
the 3x3 layers of VGG-16 and ResNet-50 against that peak. With --write FILE
it writes everything it printed, under a header naming the command, the date,
the processor and the load, to FILE (docs/performance.md is made so).

The machine may be shared: compare the ratios within one run. Exits 0 whatever
the numbers (1 if a measurement could not run).

Usage:
  bench/bench_models.py [--onnxq build-bench/src/onnxq] [--threads 1,2] [--runs 10] [--repeats 3]
                        [--only resnet50,vgg16,...] [--no-check] [--int8] [--no-ort] [--write FILE]
"""
import argparse
import io
import json
import math
import time
import os
import subprocess
import sys
import tempfile

import numpy as np

from bench_common import REPO, find_onnxq
from bench_ort import ORT_JS, TIME, run_json
import model_set

sys.path.insert(0, os.path.join(REPO, "tests", "ort"))
import harness  # noqa: E402


def load_range(samples):
    lo, hi = min(samples), max(samples)
    return "%.1f" % lo if abs(hi - lo) < 0.05 else "%.1f-%.1f" % (lo, hi)


class Tee(io.TextIOBase):
    """Writes to the real stdout and keeps a copy (for --write)."""

    def __init__(self, out):
        self.out, self.copy = out, io.StringIO()

    def write(self, s):
        self.copy.write(s)
        return self.out.write(s)

    def flush(self):
        self.out.flush()


def bench_exe(onnxq, name):
    exe = os.path.join(os.path.dirname(os.path.dirname(onnxq)), "bench", name)
    return exe if os.access(exe, os.X_OK) else None


def peak_gflops(onnxq):
    exe = bench_exe(onnxq, "bench_peak")
    if not exe:
        return None
    out = subprocess.run([exe, "0.5"], capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])["peak_gflops"]


def bench_conv_layers(onnxq, peak):
    """The 3x3 layers of bench_conv (one thread, thread CPU time, fastest call) against the peak."""
    exe = bench_exe(onnxq, "bench_conv")
    if not exe or not peak:
        return
    load0 = os.getloadavg()[0]
    rows = [json.loads(line) for line in
            subprocess.run([exe, str(peak)], capture_output=True, text=True, check=True).stdout.splitlines()]
    print("\n3x3 stride-1 layers, one thread (bench_conv: thread CPU time, fastest of >= 3 calls; GFLOP/s of the "
          "direct convolution's FLOP, whatever the path computes), load avg %.1f-%.1f:\n"
          % (load0, os.getloadavg()[0]))
    print("| layer | path | ms | GFLOP/s | of peak |")
    print("| --- | --- | --- | --- | --- |")
    for r in rows:
        if " 3x3 " in " %s " % r["layer"] and " s2 " not in r["layer"]:
            print("| %s | %s | %.2f | %.1f | %.2f |" % (r["layer"], r["path"], r["ms"], r["gflops"], r["of_peak"]))


def check_outputs(onnxq, path, x):
    """(verdict, worst max|d| / max|ORT| over the outputs). The reference is
    ONNX Runtime without graph optimizations: with them, ORT 1.20.1 folds a
    Pad into a following AveragePool without counting the padded zeros
    (count_include_pad), which changes inception_v3's output by 23%."""
    got = harness.run_onnxq(onnxq, path, [x], names=["x"])
    ref = harness.run_ort(path, [x], level="disabled")
    worst = 0.0
    for a, b in zip(got, ref):
        if a.shape != b.shape:
            return "FAIL (shape %s vs %s)" % (a.shape, b.shape), math.inf
        scale = float(np.max(np.abs(b))) if b.size else 0.0
        d = float(np.max(np.abs(a.astype(np.float64) - b))) if b.size else 0.0
        worst = max(worst, d / scale if scale > 0 else (0.0 if d == 0 else math.inf))
    return ("ok" if worst <= harness.RTOL and len(got) == len(ref) else "FAIL"), worst


def onnxq_ms(onnxq, path, npy, threads, runs):
    """(median wall ms, median CPU ms) of `onnxq run --bench`."""
    r = run_json([onnxq, "run", path, "--input", "x=" + npy, "--threads", str(threads), "--bench", str(runs)])[0]
    return r["median_ms"], r["cpu_ms"]


def ort_ms(path, npy, threads, runs):
    r = run_json(["node", ORT_JS, path, npy, str(threads), str(runs)])[0]
    return r["median_ms"], r["cpu_ms"]


def geomean(v):
    return math.exp(sum(math.log(r) for r in v) / len(v)) if v else float("nan")


def bench_ort(a, onnxq, work, names, threads, peak):
    print("| model | input | GFLOP | threads | onnxq ms | ORT ms | onnxq/ORT | CPU-time ratio | onnxq GFLOP/s | "
          "ORT GFLOP/s | outputs (max err / max ORT) | load avg |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    ratios = {t: {} for t in threads}
    for name in names:
        path, x = model_set.ensure(name, log=lambda s: print(s, file=sys.stderr, flush=True))
        npy = os.path.join(work, name + ".npy")
        np.save(npy, x)
        flop, complete = model_set.flops(path, x)
        gflop = flop * 1e-9
        verdict = "not checked"
        if not a.no_check:
            v, worst = check_outputs(onnxq, path, x)
            verdict = "%s %.1e" % (v, worst)
        # best[t] = [onnxq wall, ORT wall, onnxq CPU, ORT CPU], each the lowest median over the repeats
        best = {t: [math.inf] * 4 for t in threads}
        loads = {t: [] for t in threads}
        for _ in range(a.repeats):
            for t in threads:
                loads[t].append(os.getloadavg()[0])
                sides = [onnxq_ms(onnxq, path, npy, t, a.runs)]
                if not a.no_ort:
                    sides.append(ort_ms(path, npy, t, a.runs))
                for k, (wall, cpu) in enumerate(sides):
                    best[t][k] = min(best[t][k], wall)
                    best[t][2 + k] = min(best[t][2 + k], cpu)
                loads[t].append(os.getloadavg()[0])
        for t in threads:
            q, o, qc, oc = best[t]
            r = q / o if not a.no_ort else math.nan
            ratios[t][name] = r
            cpu_ratio = "%.2f" % (qc / oc) if t == 1 and not a.no_ort else "-"
            print("| %s | %s | %.2f%s | %d | %.2f | %.2f | %.2f | %s | %.1f | %.1f | %s | %s |"
                  % (name, "x".join(str(d) for d in x.shape), gflop, "" if complete else "+", t, q, o, r, cpu_ratio,
                     gflop / q * 1e3, gflop / o * 1e3 if o < math.inf else math.nan, verdict, load_range(loads[t])),
                  flush=True)
    print()
    if peak:
        print("FP32 peak of one core (bench_peak, FMA on registers): %.1f GFLOP/s" % peak)
    for t in threads:
        r = ratios[t]
        if not r or a.no_ort:
            continue
        worst = max(r, key=r.get)
        print("threads %d: geomean onnxq/ORT %.3f over %d models; highest %.2f (%s); above 1.3: %s"
              % (t, geomean(list(r.values())), len(r), r[worst], worst,
                 ", ".join(n for n in r if r[n] > 1.3) or "none"))
    return ratios


def bench_int8(a, onnxq, work, names):
    print("\n| model | FP32 ms | INT8 ms | FP32/INT8 | CPU-time FP32/INT8 | load avg |")
    print("| --- | --- | --- | --- | --- | --- |")
    speedups, cpu_speedups = [], []
    for name in names:
        if name not in model_set.CNNS:
            continue
        path, x = model_set.ensure(name)
        npy = os.path.join(work, name + ".npy")
        np.save(npy, x)
        calib = os.path.join(work, name + "_calib.npy")
        # samples on a leading axis, each of the input's own shape (batch of 1 included)
        np.save(calib, model_set.calibration_data(name, 8).reshape((8,) + x.shape))
        q = os.path.join(work, name + "_int8.onnx")
        subprocess.run([onnxq, "quantize", path, "--data", "x=" + calib, "-o", q, "-q"], check=True,
                       capture_output=True)
        best, loads = [math.inf] * 4, []  # FP32 wall, INT8 wall, FP32 CPU, INT8 CPU
        for _ in range(a.repeats):
            loads.append(os.getloadavg()[0])
            for k, model in enumerate((path, q)):
                wall, cpu = onnxq_ms(onnxq, model, npy, 1, a.runs)
                best[k], best[2 + k] = min(best[k], wall), min(best[2 + k], cpu)
            loads.append(os.getloadavg()[0])
        f, i, fc, ic = best
        speedups.append(f / i)
        cpu_speedups.append(fc / ic)
        print("| %s | %.2f | %.2f | %.2f | %.2f | %s |" % (name, f, i, f / i, fc / ic, load_range(loads)), flush=True)
    if speedups:
        print("\nINT8 speed-up over FP32 (onnxq, 1 thread): geomean %.2f, lowest %.2f over %d CNNs; "
              "in CPU time: geomean %.2f, lowest %.2f"
              % (geomean(speedups), min(speedups), len(speedups), geomean(cpu_speedups), min(cpu_speedups)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--onnxq", help="the onnxq binary (default: build-bench, build, ...)")
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    ap.add_argument("--runs", type=int, default=10, help="timed runs per measurement (default 10)")
    ap.add_argument("--repeats", type=int, default=3, help="alternating measurements; lowest median kept")
    ap.add_argument("--only", help="comma-separated subset of " + ",".join(model_set.ALL))
    ap.add_argument("--no-check", action="store_true", help="skip the output comparison with ORT")
    ap.add_argument("--no-ort", action="store_true", help="time onnxq only")
    ap.add_argument("--int8", action="store_true", help="also time our INT8 against our FP32 on the CNNs")
    ap.add_argument("--int8-only", action="store_true", help="only the INT8 table")
    ap.add_argument("--write", metavar="FILE", help="also write the output, with a header, to FILE")
    a = ap.parse_args()
    onnxq = a.onnxq or find_onnxq()
    if not onnxq or not os.access(onnxq, os.X_OK):
        sys.exit("no onnxq binary: build one or pass --onnxq")
    onnxq = os.path.abspath(onnxq)
    if not os.access(TIME, os.X_OK):
        sys.exit("%s is missing: apt-get install -y time" % TIME)
    names = a.only.split(",") if a.only else model_set.ALL
    for n in names:
        if n not in model_set.ALL:
            sys.exit("unknown model '%s'; the set is %s" % (n, ",".join(model_set.ALL)))
    threads = [int(t) for t in a.threads.split(",")]
    tee = Tee(sys.stdout)
    sys.stdout = tee
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    with tempfile.TemporaryDirectory(prefix="bench_models.") as work:
        print("Started %s; %s, %d cores; load average %.1f (the column load avg below gives it per row).\n"
              % (started, cpu_model(), os.cpu_count(), os.getloadavg()[0]))
        print("onnxq: %s; median of %d runs after a warm-up, lowest of %d alternating measurements per cell; "
              "%d cores\n" % (os.path.relpath(onnxq, REPO), a.runs, a.repeats, os.cpu_count()))
        if not a.int8_only:
            peak = peak_gflops(onnxq)
            bench_ort(a, onnxq, work, names, threads, peak)
            bench_conv_layers(onnxq, peak)
        if a.int8 or a.int8_only:
            bench_int8(a, onnxq, work, names)
    sys.stdout = tee.out
    if a.write:
        write_report(a.write, started, tee.copy.getvalue())
    return 0


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown processor"


def write_report(path, started, body):
    """FILE = a header (command, date, processor, ONNX Runtime) + what the run printed; written whole."""
    head = ("# Executor performance against ONNX Runtime\n\n"
            "Written by `bench/bench_models.py %s` (do not edit by hand; rerun it), started %s on %s, "
            "%d cores, against onnxruntime-node %s. The load average column says how busy the machine was "
            "(other builds ran beside it): wall times are noisy, ratios within a row less so, and the CPU-time "
            "ratio least (time slices lost to other processes do not count).\n\n"
            % (" ".join(sys.argv[1:]), started, cpu_model(), os.cpu_count(), ort_version()))
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(head + body)
    os.replace(tmp, path)


def ort_version():
    try:
        with open(os.path.join(REPO, "tests", "node_modules", "onnxruntime-node", "package.json")) as f:
            return json.load(f)["version"]
    except (OSError, ValueError, KeyError):
        return "(version unknown)"


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (RuntimeError, subprocess.CalledProcessError, harness.RunError) as e:
        sys.exit("bench_models.py: %s" % e)
