#!/usr/bin/python3
"""Graph preparation and executor speed: `onnxq run` with and without preparing,
next to ONNX Runtime, on ResNet-50 exported with its BatchNormalizations kept.

Models (torchvision's resnet50 with seeded random weights and BatchNorm
statistics, exported once by Debian's torch into the cache and reused):
  - resnet50_bn: exported with do_constant_folding=False and
    training=TrainingMode.PRESERVE from eval mode, so all 53
    BatchNormalizations stay separate nodes (what the executor saw before
    graph preparation);
  - resnet50_folded: the default eval export, in which torch folds them into
    the Convs itself (the reference a prepared resnet50_bn should match).
For each model and thread count, in turn on the same input: `onnxq run
--no-prepare --bench N`, `onnxq run --bench N` (prepared in memory; the load
and preparation are not timed) and ONNX Runtime (bench/ort_bench.js). With
--repeats R each is measured R times, alternating, and each side's lowest
median is kept. It also times `onnxq prepare` on the file (best of R). Prints a
Markdown table; the ratios are the numbers to read on a shared machine.

Usage:
  bench/bench_prepare.py [--onnxq build/src/onnxq] [--threads 1] [--runs 10] [--repeats 3]
                         [--model M.onnx --shape 1,3,224,224]
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from bench_common import REPO, find_onnxq
from bench_ort import ORT_JS, TIME, run_json

CACHE = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
                     "onnxq", "bench")


def export_resnet50(path, keep_bn):
    """torchvision resnet50, seed 0, BatchNorm statistics spread as in trained networks."""
    import torch
    import torchvision
    torch.manual_seed(0)
    m = torchvision.models.resnet50(weights=None).eval()
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.1, 0.1)
                mod.running_var.uniform_(0.5, 1.5)
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.1, 0.1)
    mode = torch.onnx.TrainingMode.PRESERVE if keep_bn else torch.onnx.TrainingMode.EVAL
    tmp = path + ".tmp"
    torch.onnx.export(m, torch.randn(1, 3, 224, 224), tmp, opset_version=13, do_constant_folding=not keep_bn,
                      training=mode, input_names=["x"], output_names=["y"])
    os.replace(tmp, path)


def model_paths():
    os.makedirs(CACHE, exist_ok=True)
    paths = {}
    for name, keep_bn in (("resnet50_bn", True), ("resnet50_folded", False)):
        p = os.path.join(CACHE, name + ".onnx")
        if not os.path.exists(p):
            print(f"exporting {name} to {p} ...", flush=True)
            export_resnet50(p, keep_bn)
        paths[name] = p
    return paths


def ops_of(path):
    import onnx
    m = onnx.load(path, load_external_data=False)
    return sum(n.op_type == "BatchNormalization" for n in m.graph.node), len(m.graph.node)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--onnxq", help="the onnxq binary (default: build-bench, build, ...)")
    ap.add_argument("--threads", default="1", help="comma-separated thread counts (default 1)")
    ap.add_argument("--runs", type=int, default=10, help="timed runs per measurement (default 10)")
    ap.add_argument("--repeats", type=int, default=3, help="alternating measurements; lowest median kept")
    ap.add_argument("--model", help="one model instead of the two ResNet-50 exports")
    ap.add_argument("--shape", default="1,3,224,224", help="input shape for --model (input named x)")
    a = ap.parse_args()
    onnxq = a.onnxq or find_onnxq()
    if not onnxq or not os.access(onnxq, os.X_OK):
        sys.exit("no onnxq binary: build one or pass --onnxq")
    if not os.access(TIME, os.X_OK):
        sys.exit("%s is missing: apt-get install -y time" % TIME)
    models = {"model": a.model} if a.model else model_paths()
    shape = [int(d) for d in a.shape.split(",")]
    threads = [int(t) for t in a.threads.split(",")]
    with tempfile.TemporaryDirectory(prefix="bench_prepare.") as work:
        npy = os.path.join(work, "x.npy")
        np.save(npy, np.random.default_rng(0).standard_normal(shape).astype(np.float32))
        print(f"onnxq: {onnxq}; median of {a.runs} runs after a warm-up, lowest of {a.repeats} alternating "
              "measurements per cell\n")
        print("| model | BN nodes / nodes | threads | onnxq unprepared ms | onnxq prepared ms | ORT ms | "
              "unprepared/ORT | prepared/ORT | `onnxq prepare` s |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for name, path in models.items():
            bn, nodes = ops_of(path)
            prep_s = []
            for _ in range(a.repeats):
                t0 = time.monotonic()
                subprocess.run([onnxq, "prepare", path, "-o", os.path.join(work, "p.onnx"), "-q"], check=True)
                prep_s.append(time.monotonic() - t0)
            for t in threads:
                raw, prep, ort = [], [], []
                base = [onnxq, "run", path, "--input", "x=" + npy, "--threads", str(t), "--bench", str(a.runs)]
                for _ in range(a.repeats):
                    raw.append(run_json(base + ["--no-prepare"])[0]["median_ms"])
                    prep.append(run_json(base)[0]["median_ms"])
                    ort.append(run_json(["node", ORT_JS, path, npy, str(t), str(a.runs)])[0]["median_ms"])
                r, p, o = min(raw), min(prep), min(ort)
                print(f"| {name} | {bn} / {nodes} | {t} | {r:.1f} | {p:.1f} | {o:.1f} | {r / o:.2f} | {p / o:.2f} | "
                      f"{min(prep_s):.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (RuntimeError, subprocess.CalledProcessError) as e:
        sys.exit("bench_prepare.py: %s" % e)
