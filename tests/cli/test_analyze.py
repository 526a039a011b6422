#!/usr/bin/python3
"""`onnxq analyze` and the accuracy targets of quantize, end to end, on a
small branchy CNN with two outputs (a classifier [N, 5] and a feature map):
a residual value that lives across three candidates, a scalar factor folded
into a candidate's input scale, a MatMul of two activations.

- Each node's numbers equal those of `quantize --exclude` every other node
  (the full evaluation of the same "node alone" model), and its
  multiply-adds are the node's.
- The result does not depend on --threads or --cache-mb; shards (also run
  by GNU parallel) merge into the bytes of the whole run.
- A target keeps the top of the ranking float, meets the target, and writes
  the bytes `--exclude` of those nodes writes; with the ranking from a file
  the same bytes; twice the same bytes.
- Bad input: one error line, the exit code, nothing written.

usage: test_analyze.py ONNXQ_BINARY
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from checks import check, finish, run
from test_bad_input import Runner

RNG = np.random.default_rng(17)
SAMPLES = 24
CANDIDATES = ["c0", "c1", "c2", "gram", "fc", "c3"]  # gram: a MatMul of two activations


def w(*shape, scale=None):
    fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else shape[0]
    return (RNG.standard_normal(shape) * (scale or np.sqrt(2.0 / fan_in))).astype(np.float32)


def branchy_model(with_probs=True):
    n = helper.make_node
    nodes = [
        n("Conv", ["x", "w0", "b0"], ["t0"], name="c0", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        n("Relu", ["t0"], ["r0"], name="relu0"),
        n("Mul", ["r0", "half"], ["m0"], name="scale0"),
        n("Conv", ["m0", "w1", "b1"], ["t1"], name="c1", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        n("Sigmoid", ["t1"], ["s1"], name="sig1"),
        n("Mul", ["t1", "s1"], ["a1"], name="silu1"),
        n("MaxPool", ["a1"], ["p1"], name="pool1", kernel_shape=[2, 2], strides=[2, 2]),
        n("Conv", ["p1", "w2"], ["t2"], name="c2", kernel_shape=[1, 1]),
        n("MaxPool", ["r0"], ["skip"], name="poolskip", kernel_shape=[2, 2], strides=[2, 2]),
        n("Add", ["t2", "skip"], ["a2"], name="res"),
        n("Reshape", ["a2", "tokens_shape"], ["tok"], name="tokens"),
        n("Transpose", ["tok"], ["tokt"], name="tokt", perm=[0, 2, 1]),
        n("MatMul", ["tok", "tokt"], ["gram"], name="gram"),
        n("ReduceMean", ["gram"], ["gm0"], name="gram_mean", axes=[2], keepdims=0),
        n("Mul", ["gm0", "gram_scale"], ["gm"], name="gram_scale"),
        n("GlobalAveragePool", ["a2"], ["g"], name="gap"),
        n("Flatten", ["g"], ["f"], name="flat"),
        n("Concat", ["f", "gm"], ["fg"], name="cat", axis=1),
        n("Gemm", ["fg", "wf", "bf"], ["logits"], name="fc", transB=1),
        n("Softmax", ["logits"], ["probs"], name="softmax", axis=-1),
        n("Conv", ["a2", "w3", "b3"], ["feat"], name="c3", kernel_shape=[1, 1]),
    ]
    inits = {"w0": w(8, 3, 3, 3), "b0": w(8, scale=0.1), "half": np.array(0.5, np.float32),
             "w1": w(8, 8, 3, 3), "b1": w(8, scale=0.1), "w2": w(8, 8, 1, 1),
             "tokens_shape": np.array([0, 8, -1], np.int64), "gram_scale": np.array(0.001, np.float32),
             "wf": w(5, 16, scale=0.3), "bf": w(5, scale=0.1), "w3": w(4, 8, 1, 1), "b3": w(4, scale=0.1)}
    outputs = [helper.make_tensor_value_info("feat", TensorProto.FLOAT, ["N", 4, 16, 16])]
    if with_probs:
        outputs.insert(0, helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", 5]))
    g = helper.make_graph(nodes, "branchy", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 32, 32])],
                          outputs, [numpy_helper.from_array(v, k) for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return m


def one_error(r):
    lines = r.stderr.strip().splitlines()
    return len(lines) == 1 and lines[0].startswith("onnxq: error: ")


def inf_if_null(v):
    return float("inf") if v is None else v


def close(a, b, tol):
    """Numbers within tol, or both null (an infinite SQNR: exactly equal outputs)."""
    return (a is None and b is None) or (a is not None and b is not None and abs(a - b) < tol)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def sens_of(path):
    return json.load(open(path))["sensitivity"]


def write_model(tmp, stem, nodes, x_shape, outputs, inits, samples):
    """Saves an opset-13 model of nodes and inits ({name: array}) with one input x
    [x_shape] and outputs [(name, shape)] as tmp/STEM.onnx, and `samples` normal samples
    of x as tmp/STEM_x.npy; returns the two paths."""
    g = helper.make_graph(nodes, stem, [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                          [helper.make_tensor_value_info(o, TensorProto.FLOAT, shape) for o, shape in outputs],
                          [numpy_helper.from_array(v, k) for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    model, npy = os.path.join(tmp, stem + ".onnx"), os.path.join(tmp, stem + "_x.npy")
    onnx.save(m, model)
    shape = [1 if isinstance(d, str) else d for d in x_shape]
    np.save(npy, RNG.standard_normal([samples] + shape).astype(np.float32))
    return model, npy


def test_numbers(binary, tmp, model, data, sens):
    """Each node against the full evaluation of the plan that quantizes it alone."""
    nodes = {e["name"]: e for e in sens["nodes"]}
    check(sorted(nodes) == sorted(CANDIDATES) and sens["candidates"] == len(CANDIDATES), f"candidates: {sorted(nodes)}")
    check(sorted(e["rank"] for e in sens["nodes"]) == list(range(1, len(CANDIDATES) + 1)), "ranks are 1..6")
    ranked = [inf_if_null(e["sqnr_db"]) for e in sorted(sens["nodes"], key=lambda e: e["rank"])]
    check(ranked == sorted(ranked), f"ranked by the lowest output SQNR: {ranked}")
    check(sens["outputs"] == ["probs", "feat"], f"outputs {sens['outputs']}")
    # multiply-adds: output elements times the reduction length
    want_macs = {"c0": 8 * 32 * 32 * 27, "c1": 8 * 32 * 32 * 72, "c2": 8 * 16 * 16 * 8, "fc": 5 * 16,
                 "c3": 4 * 16 * 16 * 8, "gram": 8 * 8 * 256}
    for name, macs in want_macs.items():
        check(nodes.get(name, {}).get("macs") == macs, f"{name}: macs {nodes.get(name, {}).get('macs')} != {macs}")
    check(sens["macs_per_sample"] == sum(want_macs.values()), "all multiply-adds")
    for name in CANDIDATES:
        report = os.path.join(tmp, f"alone_{name}.json")
        others = ",".join(c for c in CANDIDATES if c != name)
        r = run(binary, "quantize", model, "--data", data, "--exclude", others, "-o", os.path.join(tmp, "a.onnx"),
                "--report", report, "-q")
        check(r.returncode == 0, f"quantize {name} alone: {r.stderr}")
        if r.returncode:
            continue
        ev = json.load(open(report))["evaluation"]["outputs"]
        e = nodes[name]
        for k, (mine, full) in enumerate(zip(e["outputs"], ev)):
            same = (close(mine["sqnr_db"], full["sqnr_db"], 1e-6) and close(mine["cosine"], full["cosine"], 1e-9) and
                    close(mine["max_abs_error"], full["max_abs_error"], 1e-6))
            check(same, f"{name} output {k}: analysis {mine} != evaluation {full}")
            if k == 0:
                check(mine["top1_agreement"] == full["top1_agreement"] and mine["top1_total"] == SAMPLES,
                      f"{name}: agreement {mine['top1_agreement']} != {full['top1_agreement']}")
            else:
                check("top1_agreement" not in mine, f"{name}: a feature map has no top-1 agreement")
        finite = [o["sqnr_db"] for o in e["outputs"] if o["sqnr_db"] is not None]
        check(e["sqnr_db"] == min(finite, default=None), f"{name}: score is the lowest output SQNR")
    # six candidates left float: the summary names five and counts the rest
    r = run(binary, "quantize", model, "--data", data, "--exclude", ",".join(CANDIDATES), "-o",
            os.path.join(tmp, "none.onnx"))
    named = [line for line in r.stderr.splitlines() if line.startswith("onnxq:   left float: '")]
    check(r.returncode == 0 and len(named) == 5 and all(line.endswith("excluded by --exclude") for line in named) and
          "left float: 1 more (--report writes every node with its reason)" in r.stderr,
          f"the summary of six nodes left float: {r.stderr}")


def test_invariance(binary, tmp, model, data, whole):
    """Threads, chunks and shards do not change the bytes."""
    # the default --op-types spelled out, in any order, is the same setup
    spelled = "Add,Einsum,RNN,GRU,LSTM,Gather,Gemm,MatMul,ConvTranspose,Conv"
    for extra in (["--threads", "1"], ["--threads", "3"], ["--cache-mb", "1", "--threads", "2"],
                  ["--op-types", spelled]):
        out = os.path.join(tmp, "v.json")
        r = run(binary, "analyze", model, "--data", data, "-o", out, "-q", *extra)
        check(r.returncode == 0 and read(out) == whole, f"analyze {' '.join(extra)}: bytes differ ({r.stderr})")
    for count in (2, 3, 5, 7):
        parts = []
        for k in range(1, count + 1):
            parts.append(os.path.join(tmp, f"part{k}of{count}.json"))
            spell = ["--op-types", spelled] if k % 2 == 0 else []
            r = run(binary, "analyze", model, "--data", data, "--shard", f"{k}/{count}", "-o", parts[-1], "-q", *spell)
            check(r.returncode == 0, f"shard {k}/{count}: {r.stderr}")
        part = sens_of(parts[0])
        check(part["shard"] == {"index": 1, "count": count} and all("rank" not in e for e in part["nodes"]),
              f"a partial result says so and ranks nothing: {part['shard']}")
        merged = os.path.join(tmp, f"merged{count}.json")
        r = run(binary, "analyze", "merge", *reversed(parts), "-o", merged)
        check(r.returncode == 0 and read(merged) == whole, f"merge of {count} shards: bytes differ ({r.stderr})")
        check("rank" in r.stderr and "c0" in r.stderr, "merge prints the ranking")
        check(f"merged {count} shards: 6 of 6 quantized nodes" in r.stderr and "analysed" not in r.stderr,
              f"merge says what it merged, not that it analysed: {r.stderr}")
    if shutil.which("parallel"):
        r = subprocess.run(["parallel", binary, "analyze", model, "--data", data, "--shard", "{}/3",
                            "-o", os.path.join(tmp, "p{}.json"), "-q", ":::", "1", "2", "3"],
                           capture_output=True, text=True)
        merged = os.path.join(tmp, "parallel.json")
        r2 = run(binary, "analyze", "merge", *[os.path.join(tmp, f"p{k}.json") for k in (1, 2, 3)], "-o", merged,
                 "-q")
        check(r.returncode == 0 and r2.returncode == 0 and read(merged) == whole,
              f"GNU parallel shards merged: bytes differ ({r.stderr} {r2.stderr})")


def test_targets(binary, tmp, model, data, sens_path, labels):
    sens = sens_of(sens_path)
    ranked = [e["name"] for e in sorted(sens["nodes"], key=lambda e: e["rank"])]
    scores = sorted(e["sqnr_db"] for e in sens["nodes"])
    # a target above every node's own SQNR but the best: needs at least the worst node float
    target = scores[0] + 0.25
    out, report = os.path.join(tmp, "t.onnx"), os.path.join(tmp, "t.json")
    r = run(binary, "quantize", model, "--data", data, "--min-sqnr", str(target), "-o", out, "--report", report)
    check(r.returncode == 0, f"quantize --min-sqnr: {r.stderr}")
    if r.returncode:
        return
    rep = json.load(open(report))
    mp = rep["mixed_precision"]
    kept = mp["kept_float"]
    # the prefix the doubling and bisection found, then give-back steps over it
    steps = mp["steps"]
    prefix = max((st["kept_float"] for st in steps if st["met"] and st["requantized"] is None), default=0)
    check(1 <= len(kept) <= prefix < 5 and kept == [n for n in ranked[:prefix] if n in kept],
          f"kept float {kept}: a subset of the first {prefix} of the ranking {ranked}, in its order")
    gave_back = [st["requantized"] for st in steps if st["requantized"] is not None]
    order = list(reversed(ranked[:prefix - 1]))
    check(gave_back == order[:len(gave_back)] and (len(gave_back) == len(order) or len(kept) == 1),
          f"give-back tried the first {prefix - 1} ranked nodes, least sensitive first, until one was left: "
          f"{gave_back}")
    for st in steps:
        if st["requantized"] is not None:
            check(st["met"] is (st["requantized"] not in kept),
                  f"a node quantized again stays quantized exactly when its plan met the target: {st}")
    check(mp["metric_after"] >= target > mp["metric_before"], f"metric {mp['metric_before']} -> {mp['metric_after']}")
    check(min(o["sqnr_db"] for o in rep["evaluation"]["outputs"]) == mp["metric_after"],
          "the report's evaluation shows the metric the search saw")
    check(mp["ranking"] == "analysis" and rep["sensitivity"]["nodes"] == sens["nodes"],
          "the report holds the ranking, equal to analyze's")
    check(steps[0] == {"kept_float": 0, "requantized": None, "metric": mp["metric_before"], "met": False} and
          [st["metric"] for st in steps if st["met"]][-1] == mp["metric_after"], f"steps {steps}")
    kept_macs = sum(e["macs"] for e in sens["nodes"] if e["name"] in kept)
    want_int8 = sum(e["macs"] for e in sens["nodes"]) - kept_macs
    check(mp["macs_per_sample"]["int8"] == want_int8 and mp["macs_per_sample"]["total"] == sens["macs_per_sample"],
          f"macs {mp['macs_per_sample']}")
    check("accuracy target output SQNR >=" in r.stderr and "kept %d of %d" % (len(kept), len(CANDIDATES)) in r.stderr,
          "the summary says what the target did")
    reasons = {n["name"]: n.get("reason") for n in rep["nodes"] if not n["quantized"]}
    check(reasons == {n: "kept float to meet the accuracy target" for n in kept},
          f"the nodes left float are the kept ones, each saying why: {reasons}")
    # the same bytes as --exclude of those nodes, as with the ranking from the file, and again
    excl = os.path.join(tmp, "x.onnx")
    r = run(binary, "quantize", model, "--data", data, "--exclude", ",".join(kept), "-o", excl, "-q")
    check(r.returncode == 0 and read(excl) == read(out), "--exclude of the kept nodes gives the same model")
    again, rep2 = os.path.join(tmp, "t2.onnx"), os.path.join(tmp, "t2.json")
    r = run(binary, "quantize", model, "--data", data, "--min-sqnr", str(target), "--sensitivity", sens_path,
            "-o", again, "--report", rep2, "-q")
    check(r.returncode == 0 and read(again) == read(out), "with --sensitivity FILE: the same model")
    check(r.returncode == 0 and json.load(open(rep2))["mixed_precision"]["ranking"] == "file", "ranking from file")
    r = run(binary, "quantize", model, "--data", data, "--min-sqnr", str(target), "-o", again, "-q", "--threads", "1")
    check(r.returncode == 0 and read(again) == read(out), "again on one thread: the same model")
    # a quantize report with its sensitivity section serves as the ranking too
    r = run(binary, "quantize", model, "--data", data, "--min-sqnr", str(target), "--sensitivity", report,
            "-o", again, "-q")
    check(r.returncode == 0 and read(again) == read(out), "a report as --sensitivity: the same model")
    # a ranking that puts the least sensitive node first: the doubling keeps it float with the nodes the
    # target needs, and the give-back quantizes it again
    least = ranked[-1]
    misled = json.load(open(sens_path))
    for e in misled["sensitivity"]["nodes"]:
        if e["name"] == least:
            for o in e["outputs"]:
                o["sqnr_db"] = scores[0] - 10
    misled_path, rep3 = os.path.join(tmp, "misled.json"), os.path.join(tmp, "t3.json")
    json.dump(misled, open(misled_path, "w"))
    r = run(binary, "quantize", model, "--data", data, "--min-sqnr", str(target), "--sensitivity", misled_path,
            "-o", again, "--report", rep3, "-q")
    mp3 = json.load(open(rep3))["mixed_precision"] if r.returncode == 0 else {}
    check(r.returncode == 0 and least not in mp3["kept_float"] and mp3["metric_after"] >= target and
          any(st["requantized"] == least and st["met"] for st in mp3["steps"]), f"a misleading ranking: '{least}' quantized again, {mp3.get('kept_float')} float "
          f"({r.stderr} {mp3.get('steps')})")
    # agreement and accuracy drop
    r = run(binary, "quantize", model, "--data", data, "--min-agreement", "100", "-o", out, "--report", report, "-q")
    rep = json.load(open(report)) if r.returncode == 0 else {}
    check(r.returncode == 0 and rep["evaluation"]["outputs"][0]["top1_agreement"] == 1.0,
          f"--min-agreement 100: {r.stderr}")
    r = run(binary, "quantize", model, "--data", data, "--labels", labels, "--max-drop", "0", "-o", out,
            "--report", report, "-q")
    rep = json.load(open(report)) if r.returncode == 0 else {}
    acc = rep.get("evaluation", {}).get("accuracy", {})
    check(r.returncode == 0 and acc.get("quantized_top1", -1) >= acc.get("fp32_top1", 2) and
          rep["mixed_precision"]["target"] == {"kind": "max_drop", "value": 0}, f"--max-drop 0: {r.stderr} {acc}")


def test_transposed(binary, tmp):
    """A ConvTranspose is a candidate like a Conv: ranked, and its multiply-adds
    counted from its input (each input element meets C_out x kernel weights)."""
    n = helper.make_node
    nodes = [n("Conv", ["x", "w0"], ["c"], name="c0", kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2]),
             n("Relu", ["c"], ["r"], name="relu"),
             n("ConvTranspose", ["r", "wt", "bt"], ["y"], name="up", kernel_shape=[3, 3], strides=[2, 2],
               pads=[1, 1, 1, 1], output_padding=[1, 1])]
    inits = {"w0": w(6, 3, 3, 3), "wt": w(6, 4, 3, 3), "bt": w(4, scale=0.1)}
    model, npy = write_model(tmp, "up", nodes, ["N", 3, 16, 16], [("y", ["N", 4, 16, 16])], inits, 4)
    out = os.path.join(tmp, "up_sens.json")
    r = run(binary, "analyze", model, "--data", f"x={npy}", "-o", out, "-q")
    nodes = {e["name"]: e for e in sens_of(out)["nodes"]} if r.returncode == 0 else {}
    want = {"c0": 6 * 8 * 8 * 27, "up": 6 * 8 * 8 * 4 * 9}
    check(r.returncode == 0 and {k: e["macs"] for k, e in nodes.items()} == want and
          nodes["up"]["sqnr_db"] is not None,
          f"ConvTranspose analysed with its multiply-adds: {r.stderr} {nodes}")


def test_recurrent(binary, tmp):
    """An LSTM is a candidate with its two weights: ranked, and its multiply-adds
    counted per step (input elements / input size) as directions x gate rows x
    (input size + hidden size), whichever outputs it writes."""
    n = helper.make_node
    nodes = [n("LSTM", ["x", "lw", "lr"], ["", "h"], name="lstm", hidden_size=8, direction="bidirectional"),
             n("Reshape", ["h", "shape"], ["hf"], name="flat"),
             n("MatMul", ["hf", "m"], ["y"], name="head")]
    inits = {"lw": w(2, 32, 5), "lr": w(2, 32, 8), "m": w(16, 3), "shape": np.array([1, 16], np.int64)}
    model, npy = write_model(tmp, "rnn", nodes, [7, 1, 5], [("y", [1, 3])], inits, 4)
    out = os.path.join(tmp, "rnn_sens.json")
    r = run(binary, "analyze", model, "--data", f"x={npy}", "-o", out, "-q")
    nodes = {e["name"]: e for e in sens_of(out)["nodes"]} if r.returncode == 0 else {}
    want = {"lstm": 7 * 2 * 32 * (5 + 8), "head": 16 * 3}
    check(r.returncode == 0 and {k: e["macs"] for k, e in nodes.items()} == want and
          nodes["lstm"]["sqnr_db"] is not None,
          f"LSTM analysed with its multiply-adds: {r.stderr} {nodes}")
    if r.returncode != 0:
        return
    # a target that keeps the head float leaves the LSTM quantized, but its weights alone
    # are 8-bit (it computes in float): none of the multiply-adds runs in INT8
    target = (nodes["lstm"]["sqnr_db"] + nodes["head"]["sqnr_db"]) / 2
    q, rep = os.path.join(tmp, "rnn_q.onnx"), os.path.join(tmp, "rnn_q.json")
    r = run(binary, "quantize", model, "--data", f"x={npy}", "--sensitivity", out, "--min-sqnr", f"{target:.3f}",
            "-o", q, "--report", rep, "-q")
    mixed = json.load(open(rep))["mixed_precision"] if r.returncode == 0 else {}
    check(mixed.get("kept_float") == ["head"] and mixed.get("macs_per_sample", {}).get("int8") == 0,
          f"a recurrent op's multiply-adds are not counted as INT8: {r.stderr} {mixed}")


def test_zero_output(binary, tmp):
    """An output that is all zeros in float (Conv - Conv of one weight): exact when both
    Convs are quantized alike (SQNR +inf, written null), all noise when one of them is
    (-inf, written "-inf"); -inf ranks first, in a whole analysis and in merged shards."""
    n = helper.make_node
    wa = w(4, 3, 3, 3)
    nodes = [n("Conv", ["x", "wa"], ["c1"], name="conv_a", pads=[1] * 4),
             n("Conv", ["x", "wb"], ["c2"], name="conv_b", pads=[1] * 4),
             n("Sub", ["c1", "c2"], ["d"], name="sub"), n("Flatten", ["d"], ["y"], name="fy"),
             n("Conv", ["x", "wc"], ["c3"], name="conv_c", pads=[1] * 4), n("Flatten", ["c3"], ["z"], name="fz")]
    inits = {"wa": wa, "wb": wa.copy(), "wc": w(4, 3, 3, 3)}
    model, npy = write_model(tmp, "zero", nodes, [1, 3, 8, 8], [("y", [1, 256]), ("z", [1, 256])], inits, 8)
    rep = os.path.join(tmp, "zero_q.json")
    r = run(binary, "quantize", model, "--data", f"x={npy}", "--min-sqnr", "20", "-o",
            os.path.join(tmp, "zero_q.onnx"), "--report", rep, "-q")
    outs = {o["name"]: o for o in json.load(open(rep))["evaluation"]["outputs"]} if r.returncode == 0 else {}
    check(r.returncode == 0 and outs["y"]["sqnr_db"] is None and outs["y"]["max_abs_error"] == 0,
          f"an exact output of zeros is SQNR +inf (null), and a 20 dB target holds: {r.stderr} {outs.get('y')}")
    whole = os.path.join(tmp, "zero_sens.json")
    r = run(binary, "analyze", model, "--data", f"x={npy}", "-o", whole, "-q")
    parts = [os.path.join(tmp, f"zero_part{k}.json") for k in (1, 2)]
    for k, part in enumerate(parts, 1):
        run(binary, "analyze", model, "--data", f"x={npy}", "--shard", f"{k}/2", "-o", part, "-q")
    merged = os.path.join(tmp, "zero_merged.json")
    r2 = run(binary, "analyze", "merge", *parts, "-o", merged, "-q")
    nodes = {e["name"]: e for e in sens_of(whole)["nodes"]} if r.returncode == 0 else {}
    check(r.returncode == 0 and r2.returncode == 0 and read(merged) == read(whole) and
          nodes["conv_a"]["sqnr_db"] == "-inf" and nodes["conv_a"]["rank"] == 1 and nodes["conv_c"]["rank"] == 3,
          f"all noise on a zero output is -inf, ranks first, and merged shards give the same bytes: "
          f"{r.stderr} {r2.stderr} {nodes}")


def test_target_output(binary, tmp):
    """--target-output: a model that returns a hidden state [N, 16] beside its logits
    [N, 4] (both classifier-shaped; the hidden state is the small difference of two
    products, which 8 bits render poorly) is held to --min-agreement and --min-sqnr on the
    logits alone; a name the model lacks, and --target-output beside --max-drop, are refused."""
    n = helper.make_node
    w1 = w(8, 16)
    nodes = [n("MatMul", ["x", "w1"], ["h1"], name="enc1"), n("MatMul", ["x", "w1b"], ["h2"], name="enc2"),
             n("Sub", ["h1", "h2"], ["hidden"], name="diff"), n("MatMul", ["x", "w2"], ["logits"], name="head")]
    model, npy = write_model(tmp, "two_out", nodes, ["N", 8], [("hidden", ["N", 16]), ("logits", ["N", 4])],
                             {"w1": w1, "w1b": w1 + 0.01 * w(8, 16), "w2": w(8, 4)}, 64)
    base = ["quantize", model, "--data", f"x={npy}", "-o", os.path.join(tmp, "two_out_q.onnx")]
    for target in (["--min-agreement", "10"], ["--min-sqnr", "1"]):
        rep = os.path.join(tmp, "two_out.json")
        r = run(binary, *base, *target, "--target-output", "logits", "--report", rep)
        doc = json.load(open(rep)) if r.returncode == 0 else {}
        outs = {o["name"]: o for o in doc.get("evaluation", {"outputs": []})["outputs"]}
        mp = doc.get("mixed_precision") or {}
        want = (100 * outs["logits"]["top1_agreement"] if target[0] == "--min-agreement"
                else outs["logits"]["sqnr_db"]) if outs else None
        check(r.returncode == 0 and mp["target"].get("output") == "logits" and
              close(mp["metric_before"], want, 1e-9) and "on output 'logits'" in r.stderr and
              outs["hidden"]["sqnr_db"] < outs["logits"]["sqnr_db"] - 20 and
              outs["hidden"]["top1_agreement"] < outs["logits"]["top1_agreement"] - 0.2,
              f"{target[0]} --target-output logits reads the logits alone: {r.stderr} {mp} {outs}")
    own = os.path.join(tmp, "target_output")
    os.mkdir(own)
    runner = Runner(binary, own)
    q = ["quantize", model, "--data", f"x={npy}", "-o", os.path.join(runner.out, "q.onnx")]
    runner.fails(q + ["--min-sqnr", "1", "--target-output", "probs"], "no graph output named 'probs'",
                 inputs=(model, npy))
    runner.fails(q + ["--max-drop", "1", "--labels", npy, "--target-output", "logits"],
                 "--target-output applies to --min-agreement and --min-sqnr", code=2, inputs=(model, npy))
    runner.fails(q + ["--target-output", "logits"], "--target-output needs an accuracy target", code=2,
                 inputs=(model, npy))


def test_constant_input(binary, tmp):
    """A Conv whose input is a constant stays float, and the report says why in those words."""
    n = helper.make_node
    nodes = [n("Conv", ["c", "wc"], ["y0"], name="const_conv", pads=[1] * 4), n("Add", ["x", "y0"], ["y"], name="add")]
    inits = {"c": w(1, 3, 8, 8, scale=1.0), "wc": w(4, 3, 3, 3)}
    model, npy = write_model(tmp, "const", nodes, [1, 4, 8, 8], [("y", [1, 4, 8, 8])], inits, 4)
    rep = os.path.join(tmp, "const_q.json")
    r = run(binary, "quantize", model, "--data", f"x={npy}", "-o", os.path.join(tmp, "const_q.onnx"), "--report", rep)
    nodes = json.load(open(rep))["nodes"] if r.returncode == 0 else []
    check(r.returncode == 0 and [e.get("reason") for e in nodes] ==
          ["input is a constant (the node gives the same output for every sample)"] and "input is a constant" in r.stderr,
          f"a Conv of a constant says so: {r.stderr} {nodes}")


def test_bad_input(binary, tmp, model, data, sens_path, labels):
    runner = Runner(binary, tmp)
    o = runner.out
    ins = (model, data, sens_path)
    q = ["quantize", model, "--data", data, "-o", os.path.join(o, "q.onnx"), "--report", os.path.join(o, "q.json")]
    a = ["analyze", model, "--data", data, "-o", os.path.join(o, "s.json")]
    for spec in ("0/2", "3/2", "a/b", "2", "1/", "/2", "1/2/3"):
        runner.fails(a + ["--shard", spec], "--shard expects K/N", code=2, inputs=ins)
    runner.fails(a + ["--labels", labels], "belongs to convert and quantize", code=2, inputs=ins)
    runner.fails(["analyze", model, "-o", os.path.join(o, "s.json")], "missing --data", code=2, inputs=ins)
    runner.fails(["analyze", model, "--data", data], "missing -o", code=2, inputs=ins)
    runner.fails(q + ["--max-drop", "1"], "--max-drop needs --labels", code=2, inputs=ins)
    runner.fails(q + ["--min-sqnr", "10", "--min-agreement", "90"], "one accuracy target", code=2, inputs=ins)
    runner.fails(q + ["--min-agreement", "150"], "from 0 to 100", code=2, inputs=ins)
    runner.fails(q + ["--min-sqnr", "nan"], "--min-sqnr expects", code=2, inputs=ins)
    runner.fails(q + ["--sensitivity", sens_path], "needs an accuracy target", code=2, inputs=ins)
    table = os.path.join(tmp, "table.json")
    subprocess.run([binary, "calibrate", model, "--data", data, "-o", table, "-q"], check=True)
    runner.fails(["convert", model, "--calib", table, "-o", os.path.join(o, "q.onnx"), "--min-agreement", "90"],
                 "needs evaluation samples", code=2, inputs=ins + (table,))
    # no samples to hold a target on
    runner.fails(["quantize", model, "--mode", "dynamic", "-o", os.path.join(o, "q.onnx"), "--min-agreement", "90"],
                 "needs evaluation samples", code=2, inputs=ins)
    empty = os.path.join(tmp, "empty")
    os.makedirs(empty, exist_ok=True)
    runner.fails(q + ["--eval-data", empty, "--min-agreement", "90"], "no samples", inputs=ins)
    runner.fails(["analyze", model, "--data", empty, "-o", os.path.join(o, "s.json")], "no samples", inputs=ins)
    # labels that say nothing about the samples
    no_labels = os.path.join(tmp, "no_labels.txt")
    open(no_labels, "w").close()
    runner.fails(q + ["--max-drop", "1", "--labels", no_labels], "--max-drop needs labels",
                 inputs=ins + (no_labels,))
    # targets that cannot be met: nothing written
    runner.fails(q + ["--min-sqnr", "1000"], "cannot be met", inputs=ins)
    # ... and a file already at the output path is left as it was
    existing = os.path.join(tmp, "existing.onnx")
    open(existing, "wb").write(b"not replaced")
    runner.fails(["quantize", model, "--data", data, "-o", existing, "--min-sqnr", "1000"], "cannot be met",
                 inputs=ins + (existing,))
    runner.fails(q + ["--min-sqnr", "1000", "--sensitivity", sens_path], "only '", inputs=ins)
    # a model without a classifier-shaped output has no agreement
    feat_only = os.path.join(tmp, "feat_only.onnx")
    onnx.save(branchy_model(with_probs=False), feat_only)
    runner.fails(["quantize", feat_only, "--data", data, "-o", os.path.join(o, "q.onnx"), "--min-agreement", "99"],
                 "needs an output shaped", inputs=ins + (feat_only,))
    # a model whose only output is class ids (int64): nothing to rank nodes by
    ids_only = os.path.join(tmp, "ids_only.onnx")
    m = branchy_model(with_probs=True)
    m.graph.node.append(helper.make_node("ArgMax", ["probs"], ["ids"], name="ids", axis=1, keepdims=0))
    del m.graph.output[:]
    m.graph.output.append(helper.make_tensor_value_info("ids", TensorProto.INT64, ["N"]))
    onnx.save(m, ids_only)
    runner.fails(["analyze", ids_only, "--data", data, "-o", os.path.join(o, "s.json")],
                 "no output could be measured", inputs=ins + (ids_only,))
    # sensitivity files that do not fit
    s = json.load(open(sens_path))
    def variant(name, edit):
        v = json.loads(json.dumps(s))
        edit(v["sensitivity"])
        p = os.path.join(tmp, name)
        json.dump(v, open(p, "w"))
        return p
    unknown = variant("unknown.json", lambda b: b["nodes"][0].update(name="no_such_node"))
    runner.fails(q + ["--min-sqnr", "100", "--sensitivity", unknown], "'no_such_node', which is not", inputs=ins)
    not_candidate = variant("relu.json", lambda b: b["nodes"][0].update(name="relu0"))
    runner.fails(q + ["--min-sqnr", "100", "--sensitivity", not_candidate], "'relu0', which is not", inputs=ins)
    other = variant("other.json", lambda b: b["setup"].update(model_sha256="0" * 64))
    runner.fails(q + ["--min-sqnr", "100", "--sensitivity", other], "different model", inputs=ins)
    missing = variant("missing.json", lambda b: (b.update(candidates=len(CANDIDATES) - 1), b["nodes"].pop()))
    runner.fails(q + ["--min-sqnr", "100", "--sensitivity", missing], "no entry for node", inputs=ins)
    partial = os.path.join(tmp, "part1of2.json")
    runner.fails(q + ["--min-sqnr", "100", "--sensitivity", partial], "merge the shards first", inputs=ins)
    runner.fails(q + ["--min-sqnr", "100", "--sensitivity", model], "not valid JSON", inputs=ins)
    # the ranking read is an input: a report written over it is refused, the file left as it was
    runner.fails(["quantize", model, "--data", data, "-o", os.path.join(o, "q.onnx"), "--report", sens_path,
                  "--min-sqnr", "100", "--sensitivity", sens_path], "is the input", inputs=ins)
    runner.fails(q + ["--min-sqnr", "100", "--sensitivity", os.path.join(tmp, "nope.json")], "nope.json",
                 inputs=ins)
    # merging what does not belong together
    p1, p2 = os.path.join(tmp, "part1of2.json"), os.path.join(tmp, "part2of2.json")
    merged = os.path.join(o, "m.json")
    pt = os.path.join(tmp, "pt2of2.json")
    subprocess.run([binary, "analyze", model, "--data", data, "--per-tensor", "--shard", "2/2", "-o", pt, "-q"],
                   check=True)
    runner.fails(["analyze", "merge", p1, pt, "-o", merged], "different quantization options", inputs=ins + (pt,))
    runner.fails(["analyze", "merge", p1, "-o", merged], "one of 2 shards", inputs=ins)
    runner.fails(["analyze", "merge", p1, p1, "-o", merged], "are both shard 1", inputs=ins)
    runner.fails(["analyze", "merge", p1, os.path.join(tmp, "part1of3.json"), "-o", merged], "one of 3",
                 inputs=ins)
    runner.fails(["analyze", "merge", p1, p2, "-o", p1], "is the input", code=2, inputs=ins + (p1, p2))
    runner.fails(["analyze", "merge", p1, p2], "missing -o", code=2, inputs=ins)
    runner.fails(["analyze", "merge", "-o", merged], "missing PART.json", code=2, inputs=ins)
    runner.fails(["analyze", "merge", p1, model, "-o", merged], "not valid JSON", inputs=ins)


def main():
    binary = sys.argv[1]
    tmp = tempfile.mkdtemp(prefix="oq_analyze_")
    try:
        model = os.path.join(tmp, "branchy.onnx")
        onnx.save(branchy_model(), model)
        # a per-sample shift of each channel makes the classes differ between samples
        x = (RNG.standard_normal((SAMPLES, 3, 32, 32)) * 1.5 + RNG.standard_normal((SAMPLES, 3, 1, 1)) * 2)
        x = x.astype(np.float32)
        npy = os.path.join(tmp, "x.npy")
        np.save(npy, x)
        data = f"x={npy}"
        # labels: the float model's classes, one in four changed
        r = run(binary, "run", model, "--input", f"x={npy}", "-o", os.path.join(tmp, "float"), "--npy")
        check(r.returncode == 0, f"run: {r.stderr}")
        classes = np.load(os.path.join(tmp, "float", "output_0.npy")).argmax(-1)
        classes[::4] = (classes[::4] + 1) % 5
        labels = os.path.join(tmp, "labels.txt")
        open(labels, "w").write("".join(f"{c}\n" for c in classes))

        sens_path = os.path.join(tmp, "sens.json")
        r = run(binary, "analyze", model, "--data", data, "-o", sens_path, "--threads", "2")
        check(r.returncode == 0, f"analyze: {r.stderr}")
        check("analysed 6 of 6 quantized nodes" in r.stderr and "c0 (Conv)" in r.stderr, f"ranking: {r.stderr}")
        whole = read(sens_path)
        test_numbers(binary, tmp, model, data, sens_of(sens_path))
        test_invariance(binary, tmp, model, data, whole)
        test_targets(binary, tmp, model, data, sens_path, labels)
        test_bad_input(binary, tmp, model, data, sens_path, labels)
        test_transposed(binary, tmp)
        test_recurrent(binary, tmp)
        test_zero_output(binary, tmp)
        test_constant_input(binary, tmp)
        test_target_output(binary, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return finish("analyze")


if __name__ == "__main__":
    sys.exit(main())
