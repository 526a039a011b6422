#!/usr/bin/python3
"""`onnxq compare FLOAT QUANT --data ...` against numpy, on a model quantized the
way ONNX Runtime's quantize_static writes QDQ models and on onnxq's own outputs
in every form.

The float model is a small CNN: Conv, Relu, Conv, residual Add,
GlobalAveragePool, Flatten, Gemm. Its ONNX-Runtime-style QDQ version is written
here by hand with ONNX Runtime 1.20's conventions (onnxruntime/python/tools/
quantization/qdq_quantizer.py): activations get QuantizeLinear/DequantizeLinear
pairs named X_QuantizeLinear(_Output) / X_DequantizeLinear(_Output), with
X_scale / X_zero_point (uint8, asymmetric, min/max over the calibration
samples); weights are int8 initializers W_quantized with per-channel
W_scale / W_zero_point read by a DequantizeLinear (axis 0) writing
W_DequantizeLinear_Output; biases are int32 B_quantized with
B_quantized_scale = input scale x weight scale, read by a DequantizeLinear that
writes the bias's own name; the Relu after the first Conv is removed (its
range applies it) and the Conv writes the Relu's output name; the Gemm, whose
output is a graph output, writes logits_QuantizeLinear_Input and the last
DequantizeLinear writes `logits`.

For each quantized model the test states which float tensor each of its tensors
stands for (written from the formats, not read from onnxq), exposes all of
them as graph outputs, runs both models sample by sample with `onnxq run`, and
computes with numpy, for each pair: the dequantized tensor (float(q - zero
point) * scale in float32, per axis where the scale is, with the parameters of
the op that made the tensor, read by its ONNX definition), then SQNR, cosine
and max abs error from float64 sums over all samples, and top-1 agreement of
the output. compare must list exactly those tensors, in graph order, with those
counterparts, and numbers equal to numpy's: max abs error to 1e-15 relative
(the same float32 values subtracted in float64; the JSON prints 15 significant
digits when they read back within an ulp), SQNR and cosine within 1e-9 (only
the summation order differs: sums of a few thousand non-negative float64 terms
agree to ~1e-12 relative). The ORT-style model is also run in ONNX Runtime: its
SQNRs from ORT's tensors must agree with compare's within 0.01 dB (ORT's float
Conv may round differently, which would move an element across a quantization
step now and then; on these samples the two agree to 1e-4 dB).

A masked attention block (scores + a -10000 mask, Softmax) checks that the
Softmax's drop is measured from the scores' quality, not from the mask-sized
sum, and that the first sharp drop named is a quantization step.

Also: unmatched tensors are listed with a reason; shapes that differ are counted,
not compared; the same inputs give the same JSON (timings aside) on any number
of threads; peak memory does not grow with the number of samples; bad input
(missing model, different inputs, no data, bad data, bad report path) gives one
`onnxq: error:` line, exit 1 (2 for usage errors), and no report file.

usage: test_compare.py ONNXQ_BINARY
"""
import json
import math
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

RNG = np.random.default_rng(17)
N_SAMPLES = 8
EXACT_TOL = 1e-9   # SQNR (dB) and cosine: numpy vs compare on the same tensors
ORT_TOL_DB = 0.01  # SQNR: tensors from ONNX Runtime vs compare (onnxq's executor)
results = harness.Tally()


def check(ok, name, text=""):
    results.case(name, bool(ok), text)
    return ok


# ---- models ------------------------------------------------------------------------------

def init(name, a):
    return numpy_helper.from_array(np.asarray(a), name)


def float_model():
    w = {"W1": RNG.normal(0, 0.3, (8, 3, 3, 3)), "B1": RNG.normal(0, 0.1, 8),
         "W2": RNG.normal(0, 0.15, (8, 8, 3, 3)), "B2": RNG.normal(0, 0.1, 8),
         "Wfc": RNG.normal(0, 0.4, (5, 8)), "Bfc": RNG.normal(0, 0.1, 5)}
    w = {k: v.astype(np.float32) for k, v in w.items()}
    nodes = [
        helper.make_node("Conv", ["x", "W1", "B1"], ["c1"], "conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], "relu1"),
        helper.make_node("Conv", ["r1", "W2", "B2"], ["c2"], "conv2", pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["c2", "r1"], ["s"], "add"),
        helper.make_node("GlobalAveragePool", ["s"], ["g"], "gap"),
        helper.make_node("Flatten", ["g"], ["f"], "flatten"),
        helper.make_node("Gemm", ["f", "Wfc", "Bfc"], ["logits"], "fc", transB=1),
    ]
    g = helper.make_graph(nodes, "cnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 16, 16])],
                          [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 5])],
                          [init(k, v) for k, v in w.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 7
    onnx.checker.check_model(m, full_check=True)
    return m


def uint8_params(lo, hi):
    """ONNX Runtime's compute_scale_zp for uint8, asymmetric: the range widened to hold 0."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    scale = np.float32((hi - lo) / 255.0) if hi > lo else np.float32(1.0)
    zp = np.uint8(np.clip(round(0 - lo / float(scale)), 0, 255))
    return scale, zp


def ort_style_qdq(fm, ranges):
    """The QDQ model quantize_static writes for fm (see the module docstring)."""
    w = {i.name: numpy_helper.to_array(i) for i in fm.graph.initializer}
    inits, nodes = [], []
    act = {}

    def qdq(t, q_input=None, dq_output=None):
        """Q/DQ pair on activation t; returns the name consumers read."""
        scale, zp = uint8_params(*ranges[t])
        inits.extend([init(t + "_scale", scale), init(t + "_zero_point", zp)])
        act[t] = (scale, zp)
        dq_out = dq_output or t + "_DequantizeLinear_Output"
        nodes.append(helper.make_node("QuantizeLinear", [q_input or t, t + "_scale", t + "_zero_point"],
                                      [t + "_QuantizeLinear_Output"], t + "_QuantizeLinear"))
        nodes.append(helper.make_node("DequantizeLinear", [t + "_QuantizeLinear_Output", t + "_scale",
                                                           t + "_zero_point"], [dq_out], t + "_DequantizeLinear"))
        return dq_out

    def weight(name):
        a = w[name]
        amax = np.abs(a.reshape(a.shape[0], -1)).max(axis=1)
        scale = (amax / 127.0).astype(np.float32)
        shape = (-1,) + (1,) * (a.ndim - 1)
        q = np.clip(np.round(a / scale.reshape(shape)), -127, 127).astype(np.int8)
        inits.extend([init(name + "_quantized", q), init(name + "_scale", scale),
                      init(name + "_zero_point", np.zeros(a.shape[0], np.int8))])
        nodes.append(helper.make_node("DequantizeLinear", [name + "_quantized", name + "_scale", name + "_zero_point"],
                                      [name + "_DequantizeLinear_Output"], name + "_DequantizeLinear", axis=0))
        return name + "_DequantizeLinear_Output", scale

    def bias(name, input_scale, weight_scale):
        scale = (np.float32(input_scale) * weight_scale).astype(np.float32)
        q = np.round(w[name] / scale).astype(np.int32)
        inits.extend([init(name + "_quantized", q), init(name + "_quantized_scale", scale),
                      init(name + "_quantized_zero_point", np.zeros(len(q), np.int32))])
        nodes.append(helper.make_node("DequantizeLinear", [name + "_quantized", name + "_quantized_scale",
                                                           name + "_quantized_zero_point"], [name],
                                      name + "_DequantizeLinear", axis=0))
        return name

    x = qdq("x")
    w1, s1 = weight("W1")
    b1 = bias("B1", act["x"][0], s1)
    nodes.append(helper.make_node("Conv", [x, w1, b1], ["r1"], "conv1", pads=[1, 1, 1, 1]))  # Relu removed
    r1 = qdq("r1")
    w2, s2 = weight("W2")
    b2 = bias("B2", act["r1"][0], s2)
    nodes.append(helper.make_node("Conv", [r1, w2, b2], ["c2"], "conv2", pads=[1, 1, 1, 1]))
    c2 = qdq("c2")
    nodes.append(helper.make_node("Add", [c2, r1], ["s"], "add"))
    s = qdq("s")
    nodes.append(helper.make_node("GlobalAveragePool", [s], ["g"], "gap"))
    g = qdq("g")
    nodes.append(helper.make_node("Flatten", [g], ["f"], "flatten"))
    f = qdq("f")
    wfc, sfc = weight("Wfc")
    bfc = bias("Bfc", act["f"][0], sfc)
    nodes.append(helper.make_node("Gemm", [f, wfc, bfc], ["logits_QuantizeLinear_Input"], "fc", transB=1))
    qdq("logits", q_input="logits_QuantizeLinear_Input", dq_output="logits")
    graph = helper.make_graph(nodes, "cnn_qdq", list(fm.graph.input), list(fm.graph.output), inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="onnx.quantize")
    m.ir_version = 7
    onnx.checker.check_model(m, full_check=True)
    return m


# What each tensor of the ORT-style model stands for, in graph order.
ORT_STYLE_PAIRS = [
    ("x_QuantizeLinear_Output", "x"), ("x_DequantizeLinear_Output", "x"),
    ("W1_DequantizeLinear_Output", "W1"), ("B1", "B1"),
    ("r1", "c1"),  # the Conv writes the removed Relu's name: it holds the Conv's output
    ("r1_QuantizeLinear_Output", "r1"), ("r1_DequantizeLinear_Output", "r1"),  # the range applies the Relu
    ("W2_DequantizeLinear_Output", "W2"), ("B2", "B2"), ("c2", "c2"),
    ("c2_QuantizeLinear_Output", "c2"), ("c2_DequantizeLinear_Output", "c2"),
    ("s", "s"), ("s_QuantizeLinear_Output", "s"), ("s_DequantizeLinear_Output", "s"),
    ("g", "g"), ("g_QuantizeLinear_Output", "g"), ("g_DequantizeLinear_Output", "g"),
    ("f", "f"), ("f_QuantizeLinear_Output", "f"), ("f_DequantizeLinear_Output", "f"),
    ("Wfc_DequantizeLinear_Output", "Wfc"), ("Bfc", "Bfc"),
    ("logits_QuantizeLinear_Input", "logits"), ("logits_QuantizeLinear_Output", "logits"), ("logits", "logits"),
]

# onnxq's own outputs of the same float model: tensor -> the float tensor it stands for.
OWN_PAIRS = {
    "qoperator": [("x_quantized", "x"), ("r1_quantized", "r1"), ("c2_quantized", "c2"), ("r1", "r1"), ("c2", "c2"),
                  ("s", "s"), ("g", "g"), ("f", "f"), ("f_quantized", "f"), ("logits", "logits")],
    "qdq": [("x_quantized", "x"), ("x_dequantized", "x"), ("W1_dequantized", "W1"), ("B1_dequantized", "B1"),
            ("c1_float", "c1"), ("c1_quantized", "r1"), ("c1", "r1"), ("r1", "r1"), ("r1_quantized", "r1"),
            ("r1_dequantized", "r1"), ("W2_dequantized", "W2"), ("B2_dequantized", "B2"), ("c2_float", "c2"),
            ("c2_quantized", "c2"), ("c2", "c2"), ("s", "s"), ("g", "g"), ("f", "f"), ("f_quantized", "f"),
            ("f_dequantized", "f"), ("Wfc_dequantized", "Wfc"), ("Bfc_dequantized", "Bfc"),
            ("logits", "logits")],  # the Gemm writes the graph output: no output pair
    "dynamic": [("x_quantized", "x"), ("c1", "c1"), ("r1", "r1"), ("r1_quantized", "r1"), ("c2", "c2"), ("s", "s"),
                ("g", "g"), ("f", "f"), ("f_quantized", "f"), ("logits", "logits")],
    "contrib": [("x_quantized", "x"), ("r1_quantized", "r1"), ("c2_quantized", "c2"), ("s_quantized", "s"),
                ("g_quantized", "g"), ("f_quantized", "f"), ("logits", "logits")],
}
# tensors compare must list as not compared (name -> words its reason must contain)
OWN_UNMATCHED = {
    "qoperator": {"logits_int32": "holds int32", "logits_int32_bias": "no float counterpart",
                  "logits_float": "no float counterpart"},
    "qdq": {}, "contrib": {},
    "dynamic": {"x_scale": "no float counterpart", "c1_int32": "holds int32", "c1_float": "no float counterpart",
                "logits_int32": "holds int32"},
}
OWN_ARGS = {"qoperator": [], "qdq": ["--format", "qdq"], "dynamic": ["--mode", "dynamic"], "contrib": ["--contrib"]}


# ---- the numpy side ---------------------------------------------------------------------------

def expose(model, names):
    """A copy of model with the tensors `names` added as graph outputs (no type: onnxq infers it)."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    have = {o.name for o in m.graph.output}
    for n in names:
        if n not in have:
            m.graph.output.append(onnx.ValueInfoProto(name=n))
    return m


def typed_expose(model, names, dtypes):
    """The same with declared element types (ONNX Runtime needs them)."""
    m = expose(model, [])
    have = {o.name for o in m.graph.output}
    for n in names:
        if n not in have:
            m.graph.output.append(helper.make_tensor_value_info(n, dtypes[n], None))
    return m


def run_tensors(exe, model, path, names, samples, runner="onnxq", dtypes=None):
    """{name: [array per sample]} of the tensors `names` of model, from onnxq run of the model as
    written (--no-prepare: compare runs both models as given) or from ORT."""
    m = typed_expose(model, names, dtypes) if runner == "ort" else expose(model, names)
    onnx.save(m, path)
    outs = [o.name for o in m.graph.output]
    got = {n: [] for n in names}
    for x in samples:
        arrays = harness.run_ort(path, [x]) if runner == "ort" else harness.run_onnxq(exe, path, [x], extra=["--no-prepare"])
        for n, a in zip(outs, arrays):
            if n in got:
                got[n].append(a)
    return got


def producer_params(model, name):
    """(scale, zero point, axis) names that dequantize 8-bit tensor `name`, read from the
    ONNX definition of the op that made it; None for float tensors."""
    prod = {o: n for n in model.graph.node for o in n.output}
    n = prod.get(name)
    while n is not None:
        attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
        if n.op_type in ("QuantizeLinear",):
            return n.input[1], n.input[2] if len(n.input) > 2 else None, attrs.get("axis", 1)
        if n.op_type == "DynamicQuantizeLinear":
            return n.output[1], n.output[2], 1
        if n.op_type in ("QLinearConv", "QLinearMatMul", "QLinearAdd", "QLinearMul"):
            return n.input[6], n.input[7], 1
        if n.op_type in ("QLinearAveragePool", "QLinearGlobalAveragePool", "QLinearSigmoid", "QLinearLeakyRelu"):
            return n.input[3], n.input[4], 1
        if n.op_type == "QGemm":
            return (n.input[7], n.input[8], 1) if len(n.input) > 8 else None
        if n.op_type in ("Flatten", "MaxPool", "Reshape", "Transpose"):
            n = prod.get(n.input[0])
            continue
        return None
    return None


# integer inputs read at a scale and zero point (the two inputs after each), by op
READS = {"DequantizeLinear": (0,), "QLinearConv": (0, 3), "QLinearMatMul": (0, 3), "QLinearAdd": (0, 3),
         "QLinearMul": (0, 3), "QGemm": (0, 3), "QLinearSigmoid": (0,), "QLinearAveragePool": (0,),
         "QLinearGlobalAveragePool": (0,)}


def reader_params(model, name):
    """(scale, zero point, axis) names at which the first op reading `name` with a scale reads it."""
    for n in model.graph.node:
        for i in READS.get(n.op_type, ()):
            if i < len(n.input) and n.input[i] == name:
                axis = {a.name: helper.get_attribute_value(a) for a in n.attribute}.get("axis", 1)
                return n.input[i + 1], n.input[i + 2] if len(n.input) > i + 2 else None, axis
    return None


def dequantize(q, scale, zp, axis):
    scale = np.asarray(scale, np.float32)
    zp = np.zeros_like(scale, np.int32) if zp is None else np.asarray(zp).astype(np.int32)
    if scale.size > 1:
        shape = [1] * q.ndim
        shape[axis] = -1
        scale, zp = scale.reshape(shape), zp.reshape(shape)
    return (q.astype(np.int32) - zp).astype(np.float32) * scale


def metrics(fs, qs):
    """SQNR (dB), cosine, max abs error over lists of float and (dequantized) arrays."""
    ff = qq = fq = e2 = 0.0
    mx = 0.0
    for f, q in zip(fs, qs):
        f, q = f.astype(np.float64).ravel(), q.astype(np.float64).ravel()
        d = f - q
        ff += float(np.dot(f, f))
        qq += float(np.dot(q, q))
        fq += float(np.dot(f, q))
        e2 += float(np.dot(d, d))
        mx = max(mx, float(np.abs(d).max()))
    sqnr = math.inf if e2 == 0 else 10 * math.log10(ff / e2)
    return sqnr, fq / math.sqrt(ff * qq), mx


def expected(qmodel, pairs, qt, ft, fconst):
    """numpy's numbers for each (quantized tensor, float tensor[, "read"]) pair: an
    integer tensor is dequantized at its producer's parameters, or with "read" at
    those of the op that reads it (where a factor is folded into that scale)."""
    inits = {i.name: numpy_helper.to_array(i) for i in qmodel.graph.initializer}
    out = {}
    for qn, fn, *how in pairs:
        fs = [np.broadcast_to(fconst[fn], qt[qn][0].shape)] * len(qt[qn]) if fn in fconst else ft[fn]
        qs = qt[qn]
        if qs[0].dtype != np.float32:
            s, z, axis = reader_params(qmodel, qn) if how else producer_params(qmodel, qn)
            qs = [dequantize(q, inits[s] if s in inits else qt[s][k],
                             None if z is None else (inits[z] if z in inits else qt[z][k]), axis)
                  for k, q in enumerate(qs)]
        out[qn] = metrics(fs, qs)
    return out


def runtime_params(qmodel, pairs):
    """Scale/zero-point tensors that are not initializers (DynamicQuantizeLinear's outputs)."""
    inits = {i.name for i in qmodel.graph.initializer}
    names = []
    for qn, *_ in pairs:
        p = producer_params(qmodel, qn)
        for n in (p[:2] if p else ()):
            if n and n not in inits and n not in names:
                names.append(n)
    return names


# ---- running compare --------------------------------------------------------------------------

def compare(exe, fpath, qpath, data, report, *extra):
    r = subprocess.run([exe, "compare", fpath, qpath, "--data", data, "--report", report, *extra],
                       capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise harness.RunError(f"compare exit {r.returncode}: {r.stderr.strip()}")
    with open(report) as f:
        return json.load(f), r.stderr


def close(a, b, tol):
    if a is None or b is None or (isinstance(b, float) and math.isinf(b)):
        return a is None and (b is None or math.isinf(b))
    return abs(a - b) <= tol


def check_against_numpy(label, rep, pairs, want, samples):
    rows = rep["tensors"]
    check([t["name"] for t in rows] == [q for q, *_ in pairs], f"{label}: tensors and order",
          f"got {[t['name'] for t in rows]}")
    byname = {t["name"]: t for t in rows}
    for qn, fn, *_ in pairs:
        t = byname.get(qn)
        if not check(t is not None, f"{label} {qn}: listed"):
            continue
        sq, cs, mx = want[qn]
        ok = (t["float_name"] == fn and t["samples"] == samples and close(t["sqnr_db"], sq, EXACT_TOL)
              and close(t["cosine"], cs, EXACT_TOL) and close(t["max_abs_error"], mx, 1e-15 * mx) and t["mismatched_samples"] == 0)
        check(ok, f"{label} {qn} ({t['op']}, {t['match']}) -> {fn}",
              f"compare {t['float_name']} {t['sqnr_db']} dB cos {t['cosine']} max {t['max_abs_error']}; "
              f"numpy {sq:.9f} dB cos {cs:.12f} max {mx}")


def check_output(label, rep, name, fo, qo):
    """The one graph output; top-1 agreement (argmax of the last axis) when shaped [N, C]."""
    agree = np.mean([int(np.argmax(a) == np.argmax(b)) for a, b in zip(fo, qo)]) if fo[0].ndim == 2 else None
    sq, cs, mx = metrics(fo, qo)
    outs = rep["outputs"]
    ok = (len(outs) == 1 and outs[0]["name"] == name and close(outs[0]["sqnr_db"], sq, EXACT_TOL)
          and close(outs[0]["cosine"], cs, EXACT_TOL) and close(outs[0]["max_abs_error"], mx, 1e-15 * mx)
          and outs[0]["top1_agreement"] == agree)
    check(ok, f"{label}: output {name}", f"compare {outs}; numpy {sq} dB, top-1 agreement {agree}")


# ---- the cases -------------------------------------------------------------------------------

def write_samples(root, xs):
    for k, x in enumerate(xs):
        harness.write_pb_dir(os.path.join(root, f"s{k:02d}"), [x])


def test_ort_style(exe, tmp, fm, fpath, data, xs):
    float_names = ["c1", "r1", "c2", "s", "g", "f", "logits"]
    ft = run_tensors(exe, fm, os.path.join(tmp, "f_exposed.onnx"), float_names, xs)
    ranges = {"x": (min(x.min() for x in xs), max(x.max() for x in xs))}
    ranges.update({n: (min(a.min() for a in ft[n]), max(a.max() for a in ft[n])) for n in float_names})
    qm = ort_style_qdq(fm, ranges)
    qpath = os.path.join(tmp, "ort_style.onnx")
    onnx.save(qm, qpath)
    rep, stderr = compare(exe, fpath, qpath, data, os.path.join(tmp, "ort_style.json"))
    print(stderr, end="")
    qnames = [q for q, _ in ORT_STYLE_PAIRS]
    qt = run_tensors(exe, qm, os.path.join(tmp, "q_exposed.onnx"), qnames, xs)
    ft["x"] = xs
    fconst = {i.name: numpy_helper.to_array(i) for i in fm.graph.initializer}
    want = expected(qm, ORT_STYLE_PAIRS, qt, ft, fconst)
    check_against_numpy("ort-style qdq", rep, ORT_STYLE_PAIRS, want, len(xs))
    check(rep["unmatched"] == [] and rep["summary"]["unmatched"] == 0, "ort-style qdq: nothing unmatched",
          str(rep["unmatched"]))
    check_output("ort-style qdq", rep, "logits", ft["logits"], qt["logits"])
    # the same tensors as ONNX Runtime computes them
    qtypes = {n: (TensorProto.UINT8 if n.endswith("_QuantizeLinear_Output") else TensorProto.FLOAT) for n in qnames}
    ftypes = {n: TensorProto.FLOAT for n in float_names}
    ort_q = run_tensors(exe, qm, os.path.join(tmp, "q_exposed_ort.onnx"), qnames, xs, "ort", qtypes)
    ort_f = run_tensors(exe, fm, os.path.join(tmp, "f_exposed_ort.onnx"), float_names, xs, "ort", ftypes)
    ort_f["x"] = xs
    ort_want = expected(qm, ORT_STYLE_PAIRS, ort_q, ort_f, fconst)
    worst = max((abs(t["sqnr_db"] - ort_want[t["name"]][0]), t["name"]) for t in rep["tensors"])
    check(worst[0] <= ORT_TOL_DB, "ort-style qdq: SQNR from ONNX Runtime's tensors",
          f"largest difference {worst[0]:.4f} dB at {worst[1]} (bound {ORT_TOL_DB})")


def check_own_form(exe, tmp, label, fpath, data, xs, ft, fconst, args, pairs, unmatched, output):
    """Quantizes fpath with args and checks compare on it against numpy."""
    qpath = os.path.join(tmp, f"{label}.onnx")
    r = subprocess.run([exe, "quantize", fpath, "--data", data, "-o", qpath, "-q", *args], capture_output=True,
                       text=True)
    if not check(r.returncode == 0, f"{label}: quantize", r.stderr):
        return
    qm = onnx.load(qpath)
    rep, _ = compare(exe, fpath, qpath, data, os.path.join(tmp, f"{label}.json"))
    extra = runtime_params(qm, pairs)
    qt = run_tensors(exe, qm, os.path.join(tmp, f"{label}_exposed.onnx"), [q for q, *_ in pairs] + extra, xs)
    check_against_numpy(label, rep, pairs, expected(qm, pairs, qt, ft, fconst), len(xs))
    check_output(label, rep, output, ft[output], qt[output])
    un = {u["name"]: u["reason"] for u in rep["unmatched"]}
    check(rep["summary"]["unmatched"] == len(un) and all(n in un and w in un[n] for n, w in unmatched.items()),
          f"{label}: unmatched tensors listed with their reason", str(un))
    # every tensor made by a node is either compared or listed
    made = [o for n in qm.graph.node if n.op_type != "Constant" for o in n.output if o]
    check(sorted(made) == sorted([t["name"] for t in rep["tensors"]] + list(un)),
          f"{label}: every computed tensor is compared or listed")


def test_own_forms(exe, tmp, fm, fpath, data, xs):
    fconst = {i.name: numpy_helper.to_array(i) for i in fm.graph.initializer}
    ft = run_tensors(exe, fm, os.path.join(tmp, "f_all.onnx"), ["c1", "r1", "c2", "s", "g", "f", "logits"], xs)
    ft["x"] = xs
    for form, pairs in OWN_PAIRS.items():
        check_own_form(exe, tmp, f"own_{form}", fpath, data, xs, ft, fconst, OWN_ARGS[form], pairs,
                       OWN_UNMATCHED[form], "logits")


def affine_model():
    """Conv + BatchNormalization, then the scale-and-shift blocks of PP-OCRv4
    (Mul and Add by constants), once after the Conv and once after a Sigmoid."""
    w = {"W1": RNG.normal(0, 0.3, (6, 3, 3, 3)), "W2": RNG.normal(0, 0.2, (4, 6, 1, 1)),
         "g": RNG.uniform(0.5, 1.5, 6), "b": RNG.normal(0, 0.1, 6), "mu": RNG.normal(0, 0.1, 6),
         "var": RNG.uniform(0.5, 1.5, 6), "k": 0.5, "t": 0.1, "k2": 3.0, "t2": -0.2}
    nodes = [
        helper.make_node("Conv", ["x", "W1"], ["c"], "conv1", pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c", "g", "b", "mu", "var"], ["bn"], "bn1"),
        helper.make_node("Mul", ["bn", "k"], ["m"], "mul"),
        helper.make_node("Add", ["m", "t"], ["a"], "add"),
        helper.make_node("Sigmoid", ["a"], ["s"], "sig"),
        helper.make_node("Mul", ["s", "k2"], ["m2"], "mul2"),
        helper.make_node("Add", ["m2", "t2"], ["a2"], "add2"),
        helper.make_node("Conv", ["a2", "W2"], ["y"], "conv2"),
    ]
    g = helper.make_graph(nodes, "affine", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 16, 16])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4, 16, 16])],
                          [init(k, np.asarray(v, np.float32)) for k, v in w.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 7
    onnx.checker.check_model(m, full_check=True)
    return m


# onnxq folds the BatchNormalization into the Conv (its output has no float twin
# in QDQ form), the first Mul into the scale of the DequantizeLinear reading
# the Conv's 8-bit output, and the second into the scale of
# the QuantizeLinear after the shift Add, whose output keeps the name a2 while it
# holds a2 / 3: that tensor is no counterpart of a2, and the 8-bit tensor stands
# for a2 at the scale the next Conv reads it at ("read").
AFFINE_PAIRS = {
    "qoperator": [("x_quantized", "x"), ("bn_quantized", "m", "read"), ("m", "m"), ("a", "a"), ("s", "s"),
                  ("a2_quantized", "a2", "read"), ("y_quantized", "y"), ("y", "y")],
    "qdq": [("x_quantized", "x"), ("x_dequantized", "x"), ("bn_quantized", "m", "read"), ("m", "m"), ("a", "a"),
            ("s", "s"), ("a2_quantized", "a2", "read"), ("a2_dequantized", "a2"), ("W2_dequantized", "W2"),
            ("y_float", "y"), ("y_quantized", "y"), ("y", "y")],
}
# --contrib keeps both shift Adds float (0.1 and -0.2 are no whole numbers of steps), so the
# Sigmoid and the second Mul too: the qoperator form
AFFINE_PAIRS["contrib"] = AFFINE_PAIRS["qoperator"]
REUSED = "computed from other tensors"
AFFINE_UNMATCHED = {
    "qoperator": {"a2": REUSED},
    "qdq": {"a2": REUSED, "bn_float": "no float counterpart", "W1_bn_folded_dequantized": "no float counterpart"},
    "contrib": {"a2": REUSED},
}


def test_folded_factors(exe, tmp, xs):
    fm = affine_model()
    fpath = os.path.join(tmp, "affine.onnx")
    onnx.save(fm, fpath)
    data = os.path.join(tmp, "data")
    fconst = {i.name: numpy_helper.to_array(i) for i in fm.graph.initializer}
    ft = run_tensors(exe, fm, os.path.join(tmp, "affine_all.onnx"), ["m", "a", "s", "m2", "a2", "y"], xs)
    ft["x"] = xs
    for form, pairs in AFFINE_PAIRS.items():
        check_own_form(exe, tmp, f"affine_{form}", fpath, data, xs, ft, fconst, OWN_ARGS[form], pairs,
                       AFFINE_UNMATCHED[form], "y")


def test_masked_softmax(exe, tmp):
    """Attention scores plus a causal mask of -10000, then a Softmax: the sum's SQNR is the
    mask's size, not the scores' quality, so the Softmax after it must not seem to lose
    what the mask added (hundreds of dB before drops carried the scores' quality past an
    exact operand), and the summaries name quantization steps only."""
    rng = np.random.default_rng(23)
    mask = np.where(np.arange(8)[None, :] > np.arange(8)[:, None], -10000.0, 0.0).astype(np.float32)
    nodes = [helper.make_node("MatMul", ["x", "wq"], ["q"], "proj_q"),
             helper.make_node("MatMul", ["x", "wk"], ["k"], "proj_k"),
             helper.make_node("Transpose", ["k"], ["kt"], "kt", perm=[0, 2, 1]),
             helper.make_node("MatMul", ["q", "kt"], ["scores"], "scores"),
             helper.make_node("Add", ["scores", "mask"], ["masked"], "mask_add"),
             helper.make_node("Softmax", ["masked"], ["probs"], "softmax", axis=-1),
             helper.make_node("MatMul", ["probs", "x"], ["y"], "mix")]
    g = helper.make_graph(nodes, "masked", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 16])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 16])],
                          [init("wq", rng.normal(0, 0.4, (16, 16)).astype(np.float32)),
                           init("wk", rng.normal(0, 0.4, (16, 16)).astype(np.float32)),
                           init("mask", mask)])
    fpath, qpath = os.path.join(tmp, "masked.onnx"), os.path.join(tmp, "masked_q.onnx")
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), fpath)
    data = os.path.join(tmp, "masked_data")
    write_samples(data, [rng.normal(0, 1, (1, 8, 16)).astype(np.float32) for _ in range(N_SAMPLES)])
    r = subprocess.run([exe, "quantize", fpath, "--data", data, "-o", qpath, "-q"], capture_output=True, text=True)
    if not check(r.returncode == 0, "masked: quantize", r.stderr):
        return
    rep, stderr = compare(exe, fpath, qpath, data, os.path.join(tmp, "masked.json"))
    by = {t["name"]: t for t in rep["tensors"]}
    check("masked" in by and "probs" in by and by["masked"]["sqnr_db"] > by["scores"]["sqnr_db"] + 20 and
          abs(by["probs"]["drop_db"]) < 20, "masked: the Softmax after a mask keeps the scores' quality",
          "scores %.1f dB, masked %.1f dB, probs %.1f dB with a drop of %.1f dB" %
          (by["scores"]["sqnr_db"], by["masked"]["sqnr_db"], by["probs"]["sqnr_db"], by["probs"]["drop_db"]))
    steps = [t["name"] for t in rep["tensors"] if t["quantization_step"]]
    check(not by["probs"]["quantization_step"] and not by["masked"]["quantization_step"] and "x_quantized" in steps,
          "masked: quantization steps are the 8-bit tensors, not the mask Add or the Softmax", str(steps))


def test_shapes_and_determinism(exe, tmp, fpath, data):
    # the same name with another shape: counted, not compared
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 16, 16])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    fnodes = [helper.make_node("Relu", ["x"], ["a"], "relu"), helper.make_node("Identity", ["a"], ["y"], "id")]
    qnodes = [helper.make_node("Relu", ["x"], ["r"], "relu"), helper.make_node("Flatten", ["r"], ["a"], "flat"),
              helper.make_node("Reshape", ["a", "shape"], ["y"], "back")]
    shape = init("shape", np.array([-1, 3, 16, 16], np.int64))
    for name, nodes, inits in (("shape_f.onnx", fnodes, []), ("shape_q.onnx", qnodes, [shape])):
        m = helper.make_model(helper.make_graph(nodes, "g", [x], [y], inits),
                              opset_imports=[helper.make_opsetid("", 13)])
        onnx.save(m, os.path.join(tmp, name))
    rep, stderr = compare(exe, os.path.join(tmp, "shape_f.onnx"), os.path.join(tmp, "shape_q.onnx"), data,
                          os.path.join(tmp, "shape.json"))
    rows = {t["name"]: t for t in rep["tensors"]}
    a = rows.get("a", {})
    check(a.get("mismatched_samples") == N_SAMPLES and a.get("samples") == 0 and a.get("sqnr_db") is None
          and rep["summary"]["shape_mismatches"] == 1 and rows.get("y", {}).get("sqnr_db") is None
          and rows["y"]["samples"] == N_SAMPLES and rows["y"]["max_abs_error"] == 0
          and "differing shapes" in stderr, "a tensor whose shapes differ is counted, not compared",
          json.dumps(rep["tensors"]))
    # the same inputs give the same report on any number of threads
    qpath = os.path.join(tmp, "own_qdq.onnx")
    reps = []
    for threads in ("1", "2"):
        r, _ = compare(exe, fpath, qpath, data, os.path.join(tmp, f"det{threads}.json"), "--threads", threads)
        del r["timings_s"]
        reps.append(r)
    check(reps[0] == reps[1], "the report does not depend on --threads")
    r, _ = compare(exe, fpath, qpath, data, os.path.join(tmp, "det3.json"), "--samples", "3", "-q")
    check(r["samples"] == 3 and all(t["samples"] == 3 for t in r["tensors"]), "--samples 3 compares 3 samples")


def peak_rss_mb(tmp, args):
    """Peak RSS of onnxq args, measured by GNU time: a child forked straight from
    this Python process would start with Python's RSS, which ru_maxrss keeps."""
    out = os.path.join(tmp, "rss.txt")
    # under AddressSanitizer, freed blocks wait in a quarantine (256 MB by default) on purpose
    env = dict(os.environ, ASAN_OPTIONS=os.environ.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=0")
    r = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", out, *args], capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise harness.RunError(f"{' '.join(args)}: {r.stderr}")
    with open(out) as f:
        return int(f.read().split()[-1]) / 1024.0


def test_memory(exe, tmp, fpath):
    """Per sample the compared tensors hold about 0.4 MB here; keeping them for 300
    samples would add 120 MB, so a flat peak shows that samples are streamed."""
    fm = onnx.load(fpath)
    fm.graph.input[0].type.tensor_type.shape.dim[2].dim_value = 64
    fm.graph.input[0].type.tensor_type.shape.dim[3].dim_value = 64
    big = os.path.join(tmp, "big.onnx")
    onnx.save(fm, big)
    xs = RNG.normal(0, 1, (300, 1, 3, 64, 64)).astype(np.float32)
    np.save(os.path.join(tmp, "many.npy"), xs)
    np.save(os.path.join(tmp, "few.npy"), xs[:10])
    qpath = os.path.join(tmp, "big_q.onnx")
    subprocess.run([exe, "quantize", big, "--data", f"x={tmp}/few.npy", "-o", qpath, "-q", "--format", "qdq"],
                   check=True)
    if not check(os.access("/usr/bin/time", os.X_OK), "GNU time is installed (scripts/setup.sh)"):
        return
    few = peak_rss_mb(tmp, [exe, "compare", big, qpath, "--data", f"x={tmp}/few.npy", "-q", "--threads", "1"])
    many = peak_rss_mb(tmp, [exe, "compare", big, qpath, "--data", f"x={tmp}/many.npy", "-q", "--threads", "1"])
    check(many - few < 8, "peak memory does not grow with the number of samples",
          f"10 samples {few:.1f} MB, 300 samples {many:.1f} MB")


def test_bad_input(exe, tmp, fpath, data):
    out = os.path.join(tmp, "bad")
    os.mkdir(out)
    report = os.path.join(out, "r.json")
    qpath = os.path.join(tmp, "own_qdq.onnx")

    def refused(args, code, contains, what):
        before = {p: open(p, "rb").read() for p in (fpath, qpath)}
        r = subprocess.run([exe, "compare", *args], capture_output=True, text=True, timeout=300)
        lines = r.stderr.splitlines()
        check(r.returncode == code and len(lines) == 1 and lines[0].startswith("onnxq: error: ")
              and contains in r.stderr and r.stdout == "" and os.listdir(out) == []
              and all(open(p, "rb").read() == b for p, b in before.items()),
              f"bad input: {what}", f"exit {r.returncode}, stderr {r.stderr!r}, left {os.listdir(out)}")

    missing = os.path.join(tmp, "missing.onnx")
    refused([missing, qpath, "--data", data, "--report", report], 1, "missing.onnx", "missing float model")
    refused([fpath, missing, "--data", data, "--report", report], 1, "missing.onnx", "missing quantized model")
    m = onnx.load(qpath)
    m.graph.input[0].name = "image"
    for n in m.graph.node:
        n.input[:] = ["image" if i == "x" else i for i in n.input]
    renamed = os.path.join(tmp, "renamed.onnx")
    onnx.save(m, renamed)
    refused([fpath, renamed, "--data", data, "--report", report], 1, "input", "different input names")
    m = onnx.load(fpath)
    m.graph.input[0].type.tensor_type.elem_type = TensorProto.DOUBLE
    retyped = os.path.join(tmp, "retyped.onnx")
    onnx.save(m, retyped)
    refused([retyped, qpath, "--data", data, "--report", report], 1, "'x'", "different input types")
    refused([fpath, qpath, "--report", report], 2, "--data", "no --data")
    refused([fpath, "--data", data], 2, "QUANT", "one model")
    refused([fpath, qpath, "--data", data, "--method", "minmax"], 2, "--method", "a calibration option")
    empty = os.path.join(tmp, "empty")
    os.mkdir(empty)
    refused([fpath, qpath, "--data", empty, "--report", report], 1, "empty", "empty data folder")
    bad = os.path.join(tmp, "bad_data", "s0")
    os.makedirs(bad)
    with open(os.path.join(bad, "input_0.pb"), "wb") as f:
        f.write(b"\x0a\xff\xff\xff")
    refused([fpath, qpath, "--data", os.path.dirname(bad), "--report", report], 1, "input_0.pb", "corrupt sample")
    harness.write_pb_dir(os.path.join(tmp, "wrong_shape", "s0"), [np.zeros((1, 3, 8, 8), np.float32)])
    refused([fpath, qpath, "--data", os.path.join(tmp, "wrong_shape"), "--report", report], 1, "'x'",
            "sample of the wrong shape")
    refused([fpath, qpath, "--data", data, "--report", os.path.join(tmp, "no_dir", "r.json")], 1, "no_dir",
            "report in a missing folder")
    refused([fpath, qpath, "--data", data, "--report", qpath], 1, "", "report over the quantized model")


def main():
    exe = harness.require_binary(sys.argv, "test_compare.py ONNXQ_BINARY")
    harness.require_ort()
    with tempfile.TemporaryDirectory(prefix="oq-compare-") as tmp:
        fm = float_model()
        fpath = os.path.join(tmp, "float.onnx")
        onnx.save(fm, fpath)
        xs = [RNG.normal(0, 1, (1, 3, 16, 16)).astype(np.float32) for _ in range(N_SAMPLES)]
        data = os.path.join(tmp, "data")
        write_samples(data, xs)
        test_ort_style(exe, tmp, fm, fpath, data, xs)
        test_own_forms(exe, tmp, fm, fpath, data, xs)
        test_folded_factors(exe, tmp, xs)
        test_masked_softmax(exe, tmp)
        test_shapes_and_determinism(exe, tmp, fpath, data)
        test_memory(exe, tmp, fpath)
        test_bad_input(exe, tmp, fpath, data)
    return results.finish()


if __name__ == "__main__":
    sys.exit(main())
