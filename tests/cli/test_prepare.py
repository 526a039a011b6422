#!/usr/bin/python3
"""`onnxq prepare` and the preparation `onnxq run` does, end to end:

- the CNTK-style and ConstantOfShape models of models/gen_prepare_models.py come
  out with every Conv/MatMul/Gemm weight constant (`inspect`), no Reshape of a
  weight, no Add after a Conv, one Gemm; the IR 3 model says IR 4 and its
  weights are no longer inputs;
- the same model prepared twice gives byte-identical files and reports; from a
  copy whose weights are in external data, the same model;
- one summary line on stderr (none with -q), the report's counts;
- `run` feeds a weight an IR 3 model lists as an input when asked to
  (--input NAME=... or a named tensor in --data), with or without preparing,
  and the output moves exactly as that weight says; an IR 7 model's
  overridable initializer likewise;
- BatchNormalization folded by prepare quantizes to the same bytes as the
  quantizer's own fold;
- unnamed nodes get unique names, so a target (which keeps nodes float by
  name) works on a model that has them;
- errors: usage (exit 2), a bad model, output equal to the input, a report
  that cannot be written: one error line, nothing written, existing files kept.

usage: test_prepare.py ONNXQ_BINARY
"""
import json
import os
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from checks import check, finish, run

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "models"))
import gen_prepare_models  # noqa: E402
import gen_test_models  # noqa: E402


def write_pb(path, arr, name):
    with open(path, "wb") as f:
        f.write(numpy_helper.from_array(arr, name).SerializeToString())


def read_pb(path):
    t = TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return numpy_helper.to_array(t)


def run_y(exe, tmp, model, *args):
    """Output 0 of `onnxq run model args -o DIR`, or None (with a failed check)."""
    out = os.path.join(tmp, "run_out")
    r = run(exe, "run", model, "-o", out, *args)
    check(r.returncode == 0, f"run {os.path.basename(model)} {' '.join(args)}: exit {r.returncode} {r.stderr!r}")
    return read_pb(os.path.join(out, "output_0.pb")) if r.returncode == 0 else None


def test_generated(exe, tmp):
    models = {name: (m, cases) for name, m, cases in gen_prepare_models.models()}
    for name, (m, cases) in models.items():
        src, dst, rep = (os.path.join(tmp, f"{name}{s}") for s in (".onnx", ".prepared.onnx", ".report.json"))
        onnx.save(m, src)
        r = run(exe, "prepare", src, "-o", dst, "--report", rep)
        check(r.returncode == 0, f"prepare {name}: exit {r.returncode} {r.stderr!r}")
        if r.returncode:
            continue
        lines = r.stderr.splitlines()
        check(len(lines) == 1 and lines[0].startswith("prepare: "), f"prepare {name}: stderr {r.stderr!r}")
        with open(rep) as f:
            report = json.load(f)
        p = onnx.load(dst)
        onnx.checker.check_model(p)
        ops = [n.op_type for n in p.graph.node]
        q = run(exe, "inspect", dst, "--json")
        quant = json.loads(q.stdout)["quantizable"] if q.returncode == 0 else {}
        for op in ("Conv", "MatMul", "Gemm"):
            got = quant.get(op, {})
            check(got.get("total") == got.get("constant_weight"),
                  f"{name}: {op} weights not all constant after prepare: {got}")
        check("Gemm" in ops and "MatMul" not in ops and "Add" not in ops, f"{name}: MatMul + Add not made one Gemm: {ops}")
        check("Dropout" not in ops and "Identity" not in ops and "ConstantOfShape" not in ops,
              f"{name}: leftovers {ops}")
        check(report["nodes"]["after"] == len(ops), f"{name}: report nodes {report['nodes']} vs {len(ops)}")
        check(report["model"]["output"] == dst, f"{name}: report names output {report['model']['output']}")

        # the same again: byte-identical model and report (modulo the output path)
        dst2, rep2 = dst + ".2.onnx", rep + ".2.json"
        r2 = run(exe, "prepare", src, "-o", dst2, "--report", rep2, "-q")
        check(r2.returncode == 0 and r2.stderr == "", f"prepare -q {name}: {r2.returncode} {r2.stderr!r}")
        check(open(dst, "rb").read() == open(dst2, "rb").read(), f"prepare {name}: two runs give different models")
        with open(rep2) as f:
            again = json.load(f)
        again["model"]["output"] = dst
        check(again == report, f"prepare {name}: two runs give different reports")

        # weights in external data (memory-mapped while folding): the same model
        ext_dir = os.path.join(tmp, name + "-external")
        os.makedirs(ext_dir)
        ext_src, dst3 = os.path.join(ext_dir, "model.onnx"), os.path.join(ext_dir, "prepared.onnx")
        onnx.save_model(m, ext_src, save_as_external_data=True, location="model.onnx.data", size_threshold=64)
        r3 = run(exe, "prepare", ext_src, "-o", dst3, "-q")
        check(r3.returncode == 0 and r3.stderr == "", f"prepare {name} from external data: {r3.returncode} {r3.stderr!r}")
        if r3.returncode == 0:
            check(onnx.load(dst3) == p, f"prepare {name}: external data gives another model than inline")

    cntk = onnx.load(os.path.join(tmp, "cntk_style.prepared.onnx"))
    ops = [n.op_type for n in cntk.graph.node]
    check(ops == ["Conv", "Relu", "MaxPool", "Conv", "Relu", "MaxPool", "Reshape", "Gemm"],
          f"cntk_style prepared to {ops}")
    check(cntk.ir_version == 4 and [i.name for i in cntk.graph.input] == ["x"],
          f"cntk_style: IR {cntk.ir_version}, inputs {[i.name for i in cntk.graph.input]}")
    with open(os.path.join(tmp, "cntk_style.report.json")) as f:
        passes = json.load(f)["passes"]
    want = {"inputs_made_constant": 13, "identities_removed": 1, "constants_folded": 2, "conv_adds_folded": 2,
            "batchnorms_folded": 1, "matmul_adds_to_gemm": 1}
    check(all(passes[k] == v for k, v in want.items()), f"cntk_style passes {passes}")


def test_feeding_weights(exe, tmp):
    """IR 3 weights are constants unless fed; fed, they are what the run uses."""
    src = os.path.join(tmp, "cntk_style.onnx")
    m = onnx.load(src)
    b3 = next(numpy_helper.to_array(t) for t in m.graph.initializer if t.name == "B3")
    rng = np.random.default_rng(5)
    x = rng.random((1, 1, 16, 16)).astype(np.float32)
    new_b3 = (b3 + rng.standard_normal(b3.shape)).astype(np.float32)
    xpath, bpath = os.path.join(tmp, "x.npy"), os.path.join(tmp, "b3.npy")
    np.save(xpath, x)
    np.save(bpath, new_b3)
    data = os.path.join(tmp, "fed")
    os.makedirs(data, exist_ok=True)
    write_pb(os.path.join(data, "input_0.pb"), x, "x")
    write_pb(os.path.join(data, "input_1.pb"), new_b3, "B3")
    base = run_y(exe, tmp, src, "--input", f"x={xpath}")
    base_np = run_y(exe, tmp, src, "--input", f"x={xpath}", "--no-prepare")
    for extra in ((), ("--no-prepare",)):
        fed = run_y(exe, tmp, src, "--input", f"x={xpath}", "--input", f"B3={bpath}", *extra)
        fed_data = run_y(exe, tmp, src, "--data", data, *extra)
        if base is None or fed is None or fed_data is None:
            continue
        want = base + (new_b3 - b3)
        check(np.abs(fed - want).max() <= 1e-5 * np.abs(want).max(),
              f"feeding B3 {extra}: output moved by {np.abs(fed - base).max()}, want the bias change")
        check(np.array_equal(fed, fed_data), f"feeding B3 through --data {extra} differs from --input")
    if base is not None and base_np is not None:
        check(np.abs(base - base_np).max() <= 1e-5 * np.abs(base_np).max(), "run with and without prepare differ")

    # IR 7: an initializer that is also an input is a default the caller may override
    w = np.arange(6, dtype=np.float32).reshape(3, 2)
    g = helper.make_graph([helper.make_node("MatMul", ["x", "W"], ["y"])], "defaults",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3]),
                           helper.make_tensor_value_info("W", TensorProto.FLOAT, [3, 2])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])],
                          [numpy_helper.from_array(w, "W")])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    path = os.path.join(tmp, "defaults.onnx")
    onnx.save(model, path)
    xs, ws = np.ones((1, 3), np.float32), np.full((3, 2), 2, np.float32)
    np.save(xpath, xs)
    np.save(os.path.join(tmp, "w.npy"), ws)
    for extra in ((), ("--no-prepare",)):
        y = run_y(exe, tmp, path, "--input", f"x={xpath}", *extra)
        check(y is not None and np.array_equal(y, xs @ w), f"IR 7 default weight {extra}: {y}")
        y = run_y(exe, tmp, path, "--input", f"x={xpath}", "--input", f"W={os.path.join(tmp, 'w.npy')}", *extra)
        check(y is not None and np.array_equal(y, xs @ ws), f"IR 7 overridden weight {extra}: {y}")
    p = os.path.join(tmp, "defaults.prepared.onnx")
    r = run(exe, "prepare", path, "-o", p, "-q")
    check(r.returncode == 0 and [i.name for i in onnx.load(p).graph.input] == ["x", "W"],
          "IR 7: prepare keeps an overridable initializer an input")


def test_batchnorm_matches_quantizer(exe, tmp):
    """BatchNormalization folded by prepare has the bits the quantizer's own fold
    gives: `convert --mode dynamic` of the original (which folds it itself) and
    of the prepared model store the same bytes under every initializer name."""
    m = next(m for name, m, _ in gen_test_models.models() if name == "mobile_block")
    src, prepared = os.path.join(tmp, "mobile_block.onnx"), os.path.join(tmp, "mobile_block.prepared.onnx")
    onnx.save(m, src)
    outs = []
    r = run(exe, "prepare", src, "-o", prepared, "-q")
    check(r.returncode == 0, f"prepare mobile_block: {r.stderr!r}")
    for k, model in enumerate((src, prepared)):
        out = os.path.join(tmp, f"mobile_block.dynamic{k}.onnx")
        r = run(exe, "convert", model, "--mode", "dynamic", "-o", out, "-q")
        check(r.returncode == 0, f"convert --mode dynamic {os.path.basename(model)}: {r.stderr!r}")
        if r.returncode == 0:
            outs.append({t.name: numpy_helper.to_array(t).tobytes() for t in onnx.load(out).graph.initializer})
    if len(outs) == 2:
        folded = [k for k in outs[0] if "_bn_" in k]
        check(folded and set(outs[0]) == set(outs[1]), f"initializer names differ: {sorted(set(outs[0]) ^ set(outs[1]))}")
        differ = [k for k in outs[0] if k in outs[1] and outs[0][k] != outs[1][k]]
        check(not differ, f"BatchNormalization folds differ from the quantizer's: {differ}")


def test_errors(exe, tmp):
    src = os.path.join(tmp, "cntk_style.onnx")
    r = run(exe, "prepare", "--help")
    check(r.returncode == 0 and r.stdout.startswith("Usage: onnxq prepare"), f"prepare --help: {r.returncode}")
    r = run(exe, "help", "prepare")
    check(r.returncode == 0 and "Usage: onnxq prepare" in r.stdout, "onnxq help prepare")
    r = run(exe, "--help")
    check("prepare" in r.stdout, "the command list names prepare")
    r = run(exe, "run", "--help")
    check("--no-prepare" in r.stdout, "run --help names --no-prepare")
    for args, what in (((src,), "missing -o"), (("-o", os.path.join(tmp, "o.onnx")), "missing MODEL"),
                       ((src, "-o", "a.onnx", "--frobnicate"), "unknown option"),
                       ((src, src, "-o", "a.onnx"), "two models")):
        r = run(exe, "prepare", *args)
        check(r.returncode == 2 and r.stderr.startswith("onnxq: error: ") and len(r.stderr.splitlines()) == 1,
              f"prepare {what}: exit {r.returncode} {r.stderr!r}")

    existing, keep = os.path.join(tmp, "existing.onnx"), b"previous content"
    with open(existing, "wb") as f:
        f.write(keep)
    bad = os.path.join(tmp, "bad.onnx")
    with open(bad, "wb") as f:
        f.write(b"\x08\x07\x12\x03abc garbage")
    cases = [
        ((bad, "-o", existing), "bad model"),
        ((src, "-o", src), "output is the input"),
        ((src, "-o", existing, "--report", os.path.join(tmp, "no", "such", "dir", "r.json")), "report folder missing"),
        ((src, "-o", existing, "--report", src), "report is the input"),
    ]
    before = open(src, "rb").read()
    for args, what in cases:
        listing = sorted(os.listdir(tmp))
        r = run(exe, "prepare", *args)
        check(r.returncode == 1 and r.stderr.startswith("onnxq: error: ") and len(r.stderr.splitlines()) == 1,
              f"prepare {what}: exit {r.returncode} {r.stderr!r}")
        check(open(existing, "rb").read() == keep, f"prepare {what}: the existing output changed")
        check(sorted(os.listdir(tmp)) == listing, f"prepare {what}: files appeared or vanished")
        check(open(src, "rb").read() == before, f"prepare {what}: the input changed")


def test_node_names(exe, tmp):
    """Unnamed nodes get names no other node has (OpType_I, a suffix when the
    model already uses it), named ones keep theirs, and a target that keeps
    nodes float by name works on such a model."""
    rng = np.random.default_rng(3)
    w = numpy_helper.from_array(rng.standard_normal((8, 8)).astype(np.float32), "w")
    nodes = [helper.make_node("MatMul", ["x", "w"], ["a"]), helper.make_node("Relu", ["a"], ["b"], name="MatMul_0"),
             helper.make_node("MatMul", ["b", "w"], ["y"])]
    g = helper.make_graph(nodes, "unnamed", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 8])], [w])
    src, dst = os.path.join(tmp, "unnamed.onnx"), os.path.join(tmp, "unnamed.prepared.onnx")
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), src)
    r = run(exe, "prepare", src, "-o", dst)
    names = [n.name for n in onnx.load(dst).graph.node] if r.returncode == 0 else []
    check(names == ["MatMul_0_2", "MatMul_0", "MatMul_2"] and "3 unnamed nodes named" not in r.stderr and
          "2 unnamed nodes named" in r.stderr, f"prepare names unnamed nodes: {names} {r.stderr!r}")
    data = os.path.join(tmp, "unnamed.npy")
    np.save(data, rng.standard_normal((8, 1, 8)).astype(np.float32))
    # 0.5 dB above what the default plan gives (on the same data): one node must stay float
    r = run(exe, "quantize", src, "--data", data, "--report", os.path.join(tmp, "unnamed.json"), "-q",
            "-o", os.path.join(tmp, "unnamed.q.onnx"))
    base = json.load(open(os.path.join(tmp, "unnamed.json")))["evaluation"]["outputs"][0]["sqnr_db"] \
        if r.returncode == 0 else 0
    r = run(exe, "quantize", src, "--data", data, "--min-sqnr", "%.2f" % (base + 0.5),
            "-o", os.path.join(tmp, "unnamed.q.onnx"))
    check(r.returncode == 0 and "kept 1 of 2 quantized nodes float ('MatMul_" in r.stderr,
          f"a target on a model with unnamed nodes: exit {r.returncode} {r.stderr!r}")


def main():
    if len(sys.argv) != 2:
        print("usage: test_prepare.py ONNXQ_BINARY", file=sys.stderr)
        return 2
    exe = os.path.abspath(sys.argv[1])
    with tempfile.TemporaryDirectory(prefix="oq-cli-prepare-") as tmp:
        test_generated(exe, tmp)
        test_feeding_weights(exe, tmp)
        test_batchnorm_matches_quantizer(exe, tmp)
        test_node_names(exe, tmp)
        test_errors(exe, tmp)
    return finish("prepare")


if __name__ == "__main__":
    sys.exit(main())
