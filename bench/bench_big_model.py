#!/usr/bin/python3
"""A model of several GB: quantize it, run it, load the result in ONNX Runtime.

Generates a chain of MatMuls, x[1,D] @ W1 @ W2 ... (W random normal / sqrt(D),
float32), whose weights (--gb GB of them) are in one external data file
written one layer at a time, so this script never holds more than one layer.
Then, each in a fresh process whose peak RSS is taken from the kernel
(wait4's ru_maxrss) and whose anonymous (heap) and file-backed (mapped) parts
are sampled from /proc/PID/status while it runs:

- `onnxq quantize MODEL --mode dynamic -o INT8` (no calibration data needed);
- `onnxq run` of the float model and of the INT8 model on one input;
- ONNX Runtime (tests/node_modules/onnxruntime-node, through tests/ort/ort_run.js)
  on the INT8 model, and on the float model unless --no-ort-float.

It prints file sizes, wall times and peak RSS, each also as a ratio to the
float weight bytes W, how far each INT8 output is from the float one, and two
lines for the goals: quantize's peak RSS at most 1.3 W, and an INT8 output
over 2 GB (protobuf's limit for an inline model) that loads and runs in ONNX
Runtime (N/A when the output is smaller: --gb 9 makes one). Reports, never
gates: exit 0 whenever the measurements ran.

usage: bench/bench_big_model.py [--onnxq PATH] [--gb 2.4] [--dim 4096]
                                [--no-ort-float] [--keep DIR]
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
from onnx import TensorProto, helper, numpy_helper

from bench_common import REPO, find_onnxq

ORT_RUN = os.path.join(REPO, "tests", "ort", "ort_run.js")
GB = 1e9


def make_model(folder, gb, dim, seed=5):
    """Writes folder/float.onnx + float.onnx.data (layers of dim x dim) and the
    input x; returns the weight bytes. Reuses them when --keep made them before."""
    layers = max(1, round(gb * GB / (4 * dim * dim)))
    meta = {"layers": layers, "dim": dim, "seed": seed}
    path, data = os.path.join(folder, "float.onnx"), os.path.join(folder, "float.onnx.data")
    meta_path = os.path.join(folder, "meta.json")
    weight_bytes = layers * dim * dim * 4
    if os.path.exists(meta_path) and json.load(open(meta_path)) == meta and os.path.exists(path) \
            and os.path.getsize(data) == weight_bytes:
        return weight_bytes
    rng = np.random.default_rng(seed)
    inits, nodes = [], []
    with open(data, "wb") as f:
        for i in range(layers):
            w = rng.standard_normal((dim, dim), dtype=np.float32)
            w *= np.float32(1 / np.sqrt(dim))
            t = TensorProto(name=f"w{i}", data_type=TensorProto.FLOAT, dims=[dim, dim])
            t.data_location = TensorProto.EXTERNAL
            for k, v in (("location", os.path.basename(data)), ("offset", str(f.tell())), ("length", str(w.nbytes))):
                t.external_data.add(key=k, value=v)
            f.write(w.tobytes())
            inits.append(t)
            nodes.append(helper.make_node("MatMul", ["x" if i == 0 else f"h{i}", f"w{i}"],
                                          ["y" if i == layers - 1 else f"h{i + 1}"], name=f"mm{i}"))
    graph = helper.make_graph(nodes, "big_chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, dim])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, dim])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    with open(path, "wb") as f:
        f.write(model.SerializeToString())
    x = rng.standard_normal((1, dim), dtype=np.float32)
    os.makedirs(os.path.join(folder, "in"), exist_ok=True)
    np.save(os.path.join(folder, "in", "input_0.npy"), x)
    with open(os.path.join(folder, "in", "input_0.pb"), "wb") as f:
        f.write(numpy_helper.from_array(x, "x").SerializeToString())
    json.dump(meta, open(meta_path, "w"))
    return weight_bytes


def measure(cmd, **kw):
    """Runs cmd; returns (returncode, stderr, wall s, peak RSS, peak anonymous, peak file-backed) in bytes."""
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, **kw)
    peak = {"RssAnon": 0, "RssFile": 0}
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        try:
            with open(f"/proc/{p.pid}/status") as f:
                for line in f:
                    key = line.split(":")[0]
                    if key in peak:
                        peak[key] = max(peak[key], int(line.split()[1]) * 1024)
        except OSError:
            pass
        time.sleep(0.02)
    wall = time.monotonic() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    err = p.stderr.read()
    return p.returncode, err, wall, ru.ru_maxrss * 1024, peak["RssAnon"], peak["RssFile"]


def size(path):
    return sum(os.path.getsize(p) for p in (path, path + ".data") if os.path.exists(p))


def agreement(got, ref):
    g, r = got.astype(np.float64).ravel(), ref.astype(np.float64).ravel()
    cos = float(g @ r / (np.linalg.norm(g) * np.linalg.norm(r) + 1e-30))
    rel = float(np.linalg.norm(g - r) / (np.linalg.norm(r) + 1e-30))
    return f"cosine {cos:.5f}, relative L2 error {rel:.4f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--onnxq", default=find_onnxq())
    ap.add_argument("--gb", type=float, default=2.4, help="float weight GB (default 2.4)")
    ap.add_argument("--dim", type=int, default=4096, help="width of each square MatMul weight")
    ap.add_argument("--no-ort-float", action="store_true", help="do not run the float model in ONNX Runtime")
    ap.add_argument("--keep", help="folder for the models (kept; a model made there before is reused)")
    a = ap.parse_args()
    if not a.onnxq or not os.access(a.onnxq, os.X_OK):
        sys.exit("bench_big_model: no onnxq binary (build one or pass --onnxq)")
    folder = a.keep or tempfile.mkdtemp(prefix="oq-big-")
    os.makedirs(folder, exist_ok=True)
    try:
        t = time.monotonic()
        w = make_model(folder, a.gb, a.dim)
        print(f"model: {w // (4 * a.dim * a.dim)} MatMuls of {a.dim}x{a.dim} float, W = {w / GB:.3f} GB "
              f"of weights in external data ({time.monotonic() - t:.0f} s to make or find) in {folder}", flush=True)
        fp, q = os.path.join(folder, "float.onnx"), os.path.join(folder, "int8.onnx")
        for p in (q, q + ".data"):
            if os.path.exists(p):
                os.remove(p)
        rows = []

        def step(name, cmd, out=None):
            rc, err, wall, rss, anon, filed = measure(cmd)
            rows.append((name, rc, wall, rss, anon, filed, size(out) if out and rc == 0 else None))
            if rc:
                print(f"{name}: exit {rc}: {err.strip()}", flush=True)
            return rc == 0

        ins = os.path.join(folder, "in")
        quantized = step("onnxq quantize --mode dynamic", [a.onnxq, "quantize", fp, "--mode", "dynamic", "-o", q, "-q"], q)
        outs = {}
        for name, model, ok in (("onnxq run float", fp, True), ("onnxq run int8", q, quantized)):
            d = os.path.join(folder, "out_" + name.split()[-1])
            if ok and step(name, [a.onnxq, "run", model, "--data", ins, "-o", d, "--npy"]):
                outs[name] = np.load(os.path.join(d, "output_0.npy"))
        for name, model, ok in (("ORT int8", q, quantized), ("ORT float", fp, not a.no_ort_float)):
            d = os.path.join(folder, "ort_" + name.split()[-1])
            if ok and step(name, ["node", ORT_RUN, model, ins, d]):
                outs[name] = np.load(os.path.join(d, "output_0.npy"))

        print(f"\n{'step':32} {'exit':>4} {'wall s':>8} {'peak RSS GB':>12} {'/W':>6} {'anon GB':>8} {'file GB':>8}")
        for name, rc, wall, rss, anon, filed, _ in rows:
            print(f"{name:32} {rc:>4} {wall:>8.1f} {rss / GB:>12.2f} {rss / w:>6.2f} {anon / GB:>8.2f} {filed / GB:>8.2f}")
        print("(anon and file: the largest heap and mapped-file parts of RSS seen while sampling every 20 ms)")
        print(f"\nfiles: float {size(fp) / GB:.3f} GB ({size(fp) / w:.3f} W)", end="")
        if quantized:
            inline = not os.path.exists(q + ".data")
            print(f", int8 {size(q) / GB:.3f} GB ({size(q) / w:.3f} W, {size(fp) / size(q):.2f}x smaller, "
                  f"{'inline' if inline else 'model %d bytes + external data' % os.path.getsize(q)})")
        else:
            print()
        ref_name = "ORT float" if "ORT float" in outs else "onnxq run float"
        for name in ("ORT int8", "onnxq run int8"):
            if name in outs and ref_name in outs:
                print(f"{name} vs {ref_name}: {agreement(outs[name], outs[ref_name])}")
        for name, ref in (("onnxq run float", "ORT float"), ("onnxq run int8", "ORT int8")):
            if name in outs and ref in outs:
                print(f"{name} vs {ref}: {agreement(outs[name], outs[ref])}")

        qrow = rows[0]
        if qrow[1] == 0:
            ratio = qrow[3] / w
            print(f"\n{'PASS' if ratio <= 1.3 else 'FAIL'}: quantize peak RSS {ratio:.2f} W (goal <= 1.3)")
        else:
            print("\nFAIL: quantize did not run")
        if not quantized:
            print("FAIL: no INT8 output")
        elif size(q) <= 2**31:
            print(f"N/A: the INT8 output is {size(q) / GB:.2f} GB, under 2 GB (--gb 9 makes one over it)")
        else:
            ok = "ORT int8" in outs
            print(f"{'PASS' if ok else 'FAIL'}: the INT8 output ({size(q) / GB:.2f} GB) "
                  f"{'loads and runs' if ok else 'does not run'} in ONNX Runtime")
    finally:
        if not a.keep:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
