#!/usr/bin/python3
"""Benchmark for `onnxq calibrate`: peak memory, method overhead, throughput.

Checks the three goals of the calibrate issue and prints them as PASS/FAIL
lines; it reports and never gates (exit status 0 whenever the measurements
ran).
  1. minmax peak RSS with 8N samples within 15% of the run with N samples
     (histograms grow in place, so memory must not depend on the sample count)
  2. percentile and entropy wall time at most 30% above minmax on the same data
  3. calibration throughput (samples/s) within 1.2x of `onnxq run --bench`

Every measurement is a fresh child process run under GNU /usr/bin/time (apt
package `time`), which reports its peak RSS; its wall time is the best of
--repeats runs.

Usage:
  bench/bench_calibrate.py [--onnxq PATH] [--samples N] [--threads T]
  bench/bench_calibrate.py --model M.onnx --input-shape 1,3,48,320
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from bench_common import REPO, find_onnxq  # noqa: E402
TIME = "/usr/bin/time"  # GNU time (Debian package `time`): %M is the child's peak RSS in KiB


def mobilenetish(path, size, seed):
    """Writes a small MobileNet-like CNN (stem conv, depthwise/pointwise
    blocks with ReLU, global pool, classifier) with seeded random weights.
    Input x: [1,3,size,size]; output y: [1,10]."""
    rng = np.random.default_rng(seed)
    nodes, inits = [], []

    def weight(name, shape):
        fan_in = int(np.prod(shape[1:]))
        w = rng.normal(0.0, np.sqrt(2.0 / fan_in), shape).astype(np.float32)
        inits.append(numpy_helper.from_array(w, name))
        return name

    def bias(name, n):
        inits.append(numpy_helper.from_array(rng.normal(0.0, 0.05, n).astype(np.float32), name))
        return name

    def conv_relu(x, name, cin, cout, k, stride, group):
        w = weight(name + "_w", (cout, cin // group, k, k))
        b = bias(name + "_b", cout)
        pad = k // 2
        nodes.append(helper.make_node("Conv", [x, w, b], [name], kernel_shape=[k, k], strides=[stride, stride],
                                      pads=[pad] * 4, group=group))
        nodes.append(helper.make_node("Relu", [name], [name + "_relu"]))
        return name + "_relu"

    x = conv_relu("x", "stem", 3, 16, 3, 2, 1)
    cin = 16
    # (out channels, stride) of each depthwise-separable block
    for i, (cout, stride) in enumerate([(32, 1), (64, 2), (64, 1), (128, 2), (128, 1), (256, 2), (256, 1)]):
        x = conv_relu(x, "dw%d" % i, cin, cin, 3, stride, cin)
        x = conv_relu(x, "pw%d" % i, cin, cout, 1, 1, 1)
        cin = cout
    nodes.append(helper.make_node("GlobalAveragePool", [x], ["gap"]))
    nodes.append(helper.make_node("Flatten", ["gap"], ["flat"], axis=1))
    nodes.append(helper.make_node("Gemm", ["flat", weight("fc_w", (10, cin)), bias("fc_b", 10)], ["y"], transB=1))
    graph = helper.make_graph(nodes, "mobilenetish",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, size, size])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="bench_calibrate")
    onnx.checker.check_model(model)
    onnx.save(model, path)


def smooth_images(rng, n, shape):
    """n float32 samples of `shape` ([1,C,H,W] or any shape ending in H,W):
    low-frequency blobs and gradients plus a little noise, in about [0,1]."""
    shape = tuple(shape)
    h, w = shape[-2], shape[-1]
    lead = int(np.prod(shape[:-2]))
    yy, xx = np.meshgrid(np.linspace(0, 1, h, dtype=np.float32), np.linspace(0, 1, w, dtype=np.float32),
                         indexing="ij")
    out = np.empty((n, lead, h, w), np.float32)
    for s in range(n):
        for c in range(lead):
            img = rng.uniform(0.2, 0.6) + rng.uniform(-0.3, 0.3) * xx + rng.uniform(-0.3, 0.3) * yy
            for _ in range(4):
                cy, cx = rng.uniform(0, 1, 2)
                r = rng.uniform(0.05, 0.3)
                img += rng.uniform(-0.5, 0.5) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
            img += rng.normal(0, 0.02, (h, w))
            out[s, c] = img
    return np.clip(out, 0.0, 1.0).reshape((n,) + shape)


def run_child(argv):
    """Runs argv in a fresh child under /usr/bin/time; returns (wall seconds,
    peak RSS MB, stdout, CPU seconds: user + system, to 10 ms). Raises RuntimeError with the child's stderr if it
    fails. (Not wait4() on a direct child: a child forked from this Python
    process starts with its RSS, which ru_maxrss keeps across exec.)"""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r") as rss:
        t0 = time.perf_counter()
        p = subprocess.run([TIME, "-f", "%M %U %S", "-o", rss.name] + argv, stdout=out, stderr=err)
        wall = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        if p.returncode != 0:
            raise RuntimeError("%s failed (%d): %s" % (" ".join(argv), p.returncode,
                                                       err.read().decode(errors="replace").strip()))
        kib, user, system = rss.read().split()[-3:]
        return wall, int(kib) / 1024.0, out.read().decode(errors="replace"), float(user) + float(system)


def measure(argv, repeats):
    """Best wall time, highest peak RSS and least CPU time over `repeats` fresh runs."""
    walls, rss, cpus = [], [], []
    for _ in range(repeats):
        w, r, _, c = run_child(argv)
        walls.append(w)
        rss.append(r)
        cpus.append(c)
    return min(walls), max(rss), min(cpus)


def verdict(ok):
    return "PASS" if ok else "FAIL"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--onnxq", help="the onnxq binary (default: build-bench, build or build-lead)")
    ap.add_argument("--model", help="an ONNX model with one float input (default: a generated MobileNet-ish CNN)")
    ap.add_argument("--input-shape", help="the input's shape as N,C,H,W (required if the model's is not fixed)")
    ap.add_argument("--size", type=int, default=96, help="input height/width of the generated model (default 96)")
    ap.add_argument("--samples", type=int, default=16, help="N: the small run uses N samples, the large 8N (default 16)")
    ap.add_argument("--threads", type=int, default=1, help="executor threads for every run (default 1)")
    ap.add_argument("--bins", type=int, help="histogram bins (default: onnxq's)")
    ap.add_argument("--repeats", type=int, default=3, help="runs per measurement; wall time is the best (default 3)")
    ap.add_argument("--bench-runs", type=int, default=20, help="timed runs for `onnxq run --bench` (default 20)")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--keep", metavar="DIR", help="write the model, data and tables to DIR and keep them")
    a = ap.parse_args()

    if not os.access(TIME, os.X_OK):
        sys.exit("%s is missing: apt-get install -y time" % TIME)
    onnxq = a.onnxq or find_onnxq()
    if not onnxq or not os.access(onnxq, os.X_OK):
        sys.exit("no onnxq binary: build one (meson setup build-bench && ninja -C build-bench) or pass --onnxq")
    work = a.keep or tempfile.mkdtemp(prefix="bench_calibrate.")
    os.makedirs(work, exist_ok=True)
    try:
        return bench(a, onnxq, work)
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)


def bench(a, onnxq, work):
    rng = np.random.default_rng(a.seed)
    if a.model:
        model_path = a.model
    else:
        model_path = os.path.join(work, "mobilenetish.onnx")
        mobilenetish(model_path, a.size, a.seed)
    model = onnx.load(model_path, load_external_data=False)
    init_names = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in init_names]
    if len(inputs) != 1:
        sys.exit("%s: this benchmark feeds models with exactly one input, not %d" % (model_path, len(inputs)))
    inp = inputs[0]
    if a.input_shape:
        shape = [int(d) for d in a.input_shape.split(",")]
    else:
        dims = inp.type.tensor_type.shape.dim
        if not dims or any(not d.HasField("dim_value") for d in dims):
            sys.exit("%s: input '%s' has no fixed shape; pass --input-shape" % (model_path, inp.name))
        shape = [d.dim_value for d in dims]
    if len(shape) < 2:
        sys.exit("--input-shape needs at least two dimensions (..., H, W)")

    n_small, n_large = a.samples, 8 * a.samples
    large = smooth_images(rng, n_large, shape)
    small_path = os.path.join(work, "x_%d.npy" % n_small)
    large_path = os.path.join(work, "x_%d.npy" % n_large)
    one_path = os.path.join(work, "x_one.npy")
    np.save(small_path, large[:n_small])
    np.save(large_path, large)
    np.save(one_path, large[0])  # `onnxq run` takes one sample, no sample axis
    stack_mb = large.nbytes / 2**20
    del large

    threads = ["--threads", str(a.threads)]
    bins = ["--bins", str(a.bins)] if a.bins else []

    def calibrate(method, n, path):
        table = os.path.join(work, "table_%s_%d.json" % (method, n))
        argv = [onnxq, "calibrate", model_path, "--data", "%s=%s" % (inp.name, path), "--method", method,
                "-q", "-o", table] + threads + bins
        wall, rss, cpu = measure(argv, a.repeats)
        return {"method": method, "samples": n, "wall": wall, "rss": rss, "cpu": cpu}

    print("onnxq %s\nmodel %s, input %s %s, threads %d, best of %d, stack of %d samples = %.1f MB"
          % (onnxq, model_path, inp.name, "x".join(map(str, shape)), a.threads, a.repeats, n_large, stack_mb), flush=True)
    rows = [calibrate("minmax", n_small, small_path), calibrate("minmax", n_large, large_path)]
    for method in ("percentile", "entropy", "mse"):
        rows.append(calibrate(method, n_large, large_path))

    # the executor alone: `run --bench` prints one JSON line; the best median of --repeats
    # processes, as the calibrations above are the best of --repeats
    argv = [onnxq, "run", model_path, "--input", "%s=%s" % (inp.name, one_path), "--bench", str(a.bench_runs)] + threads
    infos = [json.loads(run_child(argv)[2].strip().splitlines()[-1]) for _ in range(a.repeats)]
    info = min(infos, key=lambda i: i["median_ms"])
    run_ms = info["median_ms"]
    run_cpu_ms = min(i["cpu_ms"] for i in infos)
    # a single plain run: the process's fixed cost (start, model load, one inference)
    once_wall, once_rss, _cpu = measure([onnxq, "run", model_path, "--input", "%s=%s" % (inp.name, one_path)] + threads,
                                     a.repeats)

    mm_small, mm_large = rows[0], rows[1]
    print()
    print("%-24s %8s %9s %10s %12s %11s" % ("method", "samples", "wall s", "samples/s", "peak RSS MB",
                                              "vs minmax"))
    for r in rows:
        ref = mm_large if r["samples"] == n_large else mm_small
        print("%-24s %8d %9.3f %10.1f %12.1f %10.2fx" % (r["method"], r["samples"], r["wall"],
                                                         r["samples"] / r["wall"], r["rss"], r["wall"] / ref["wall"]))
    print("%-24s %8d %9.3f %10.1f %12.1f %11s" % ("run (one inference)", 1, once_wall, 1 / once_wall, once_rss, "-"))
    print("%-24s %8d %9.3f %10.1f %12.1f %11s" % ("run --bench (median)", 1, run_ms / 1000, 1000 / run_ms,
                                                  info["peak_rss_mb"], "-"))

    print()
    rss_ratio = mm_large["rss"] / mm_small["rss"]
    print("goal 1 %s: minmax peak RSS %d samples %.1f MB vs %d samples %.1f MB = %.3fx (limit 1.15x)"
          % (verdict(rss_ratio <= 1.15), n_large, mm_large["rss"], n_small, mm_small["rss"], rss_ratio))
    by_method = {r["method"]: r for r in rows[1:]}
    over = {m: by_method[m]["wall"] / mm_large["wall"] for m in ("percentile", "entropy")}
    print("goal 2 %s: at %d samples percentile %.3fx, entropy %.3fx of minmax's %.3f s (limit 1.30x; mse %.3fx)"
          % (verdict(max(over.values()) <= 1.30), n_large, over["percentile"], over["entropy"], mm_large["wall"],
             by_method["mse"]["wall"] / mm_large["wall"]))
    # per-sample cost of calibration without the fixed cost of start-up, model
    # load and table writing: the slope between the N and 8N minmax runs
    marginal = (mm_large["wall"] - mm_small["wall"]) / (n_large - n_small)
    end_to_end = mm_large["wall"] / n_large
    slow = marginal / (run_ms / 1000)
    # the same in CPU time (other processes on the machine stretch walls, much less CPU times)
    marginal_cpu = (mm_large["cpu"] - mm_small["cpu"]) / (n_large - n_small)
    print("goal 3 %s: calibration %.1f samples/s (%.2f ms/sample, slope of minmax %d->%d) vs run --bench %.1f "
          "samples/s (%.2f ms median) = %.2fx slower (limit 1.20x); end to end at %d samples %.1f samples/s = %.2fx; "
          "in CPU time %.2f ms/sample vs %.2f ms = %.2fx"
          % (verdict(slow <= 1.20), 1 / marginal, marginal * 1000, n_small, n_large, 1000 / run_ms, run_ms, slow,
             n_large, 1 / end_to_end, end_to_end / (run_ms / 1000), marginal_cpu * 1000, run_cpu_ms,
             marginal_cpu * 1000 / run_cpu_ms))
    return 0


if __name__ == "__main__":
    sys.exit(main())
