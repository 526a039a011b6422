#!/usr/bin/python3
"""Hostile input for every command (inspect, run, calibrate, convert, quantize, compare).

Each bad model, data folder, calibration table or output path is given to
every command it can reach. The contract checked each time: exit 1 (2 for a
usage error) with exactly one stderr line "onnxq: error: ...", nothing on
stdout, no file left in the output folder (temporary files included), and
every input file byte-identical afterwards. Mutated models (truncated, bit
flips) may happen to stay valid, so for them exit 0 is accepted too, but never
a crash or a second stderr line. test_errors.py covers argument parsing and
.npy header errors; this file does not repeat them.

usage: test_bad_input.py ONNXQ_BINARY SOURCE_ROOT
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from checks import check, finish


def digest_tree(paths):
    """sha256 of every file under paths, to prove inputs are left unchanged."""
    out = {}
    for p in paths:
        files = [p] if os.path.isfile(p) else [os.path.join(d, f) for d, _, fs in os.walk(p) for f in fs]
        for f in files:
            with open(f, "rb") as fh:
                out[f] = hashlib.sha256(fh.read()).hexdigest()
    return out


class Runner:
    def __init__(self, binary, tmp):
        self.binary = binary
        self.out = os.path.join(tmp, "out")
        os.mkdir(self.out)

    def _run(self, args, env=None):
        e = dict(os.environ)
        e.update(env or {})
        return subprocess.run([self.binary, *args], capture_output=True, text=True, env=e, timeout=300)

    def _after(self, what, r, inputs, before):
        left = os.listdir(self.out)
        check(left == [], f"{what}: files left in the output folder: {left}")
        for f in left:
            p = os.path.join(self.out, f)
            shutil.rmtree(p) if os.path.isdir(p) else os.remove(p)
        check(digest_tree(inputs) == before, f"{what}: an input file changed")
        check(r.returncode >= 0, f"{what}: killed by signal {-r.returncode}")

    def fails(self, args, contains="", code=1, inputs=(), env=None, allow_ok=False):
        """Runs onnxq args; checks the failure contract (or, with allow_ok, a clean success)."""
        before = digest_tree(inputs)
        r = self._run(args, env)
        what = "onnxq " + " ".join(os.path.basename(a) if os.path.isabs(a) else a for a in args)
        if allow_ok and r.returncode == 0:
            check(True, what)
            # a success writes its output; clear it so the folder check stays meaningful
            for f in os.listdir(self.out):
                p = os.path.join(self.out, f)
                shutil.rmtree(p) if os.path.isdir(p) else os.remove(p)
            check(digest_tree(inputs) == before, f"{what}: an input file changed")
            return r
        lines = r.stderr.splitlines()
        check(r.returncode == code, f"{what}: exit {r.returncode}, want {code} (stderr {r.stderr[-600:]!r})")
        check(len(lines) == 1 and lines[0].startswith("onnxq: error: ") and r.stderr.endswith("\n"),
              f"{what}: stderr must be one 'onnxq: error: ' line, got {r.stderr[-600:]!r}")
        check(contains in r.stderr, f"{what}: stderr {r.stderr!r} does not mention {contains!r}")
        check(r.stdout == "", f"{what}: stdout should be empty, got {r.stdout[:200]!r}")
        self._after(what, r, inputs, before)
        return r

    def ok(self, args):
        r = self._run(args)
        check(r.returncode == 0, f"onnxq {' '.join(args)}: exit {r.returncode}, stderr {r.stderr[-600:]!r}")
        return r


def table_for(table, model):
    """A copy of table claiming to be made for model, so convert gets as far as loading it."""
    if not os.path.isfile(model):
        return table
    t = json.load(open(table))
    t["model_sha256"] = hashlib.sha256(open(model, "rb").read()).hexdigest()
    p = model + ".table.json"
    with open(p, "w") as f:
        json.dump(t, f)
    return p


def all_commands(run, model, data, table, contains="", inputs=(), allow_ok=False):
    """The eight commands on one model (compare: against itself); outputs go to run.out."""
    o = run.out
    table = table_for(table, model)
    ins = (model, data, table, *inputs)
    run.fails(["inspect", model], contains, inputs=ins, allow_ok=allow_ok)
    run.fails(["prepare", model, "-o", os.path.join(o, "p.onnx"), "--report", os.path.join(o, "p.json"), "-q"],
              contains, inputs=ins, allow_ok=allow_ok)
    run.fails(["run", model, "--data", data, "-o", o], contains, inputs=ins, allow_ok=allow_ok)
    run.fails(["calibrate", model, "--data", data, "-o", os.path.join(o, "t.json"), "-q"], contains,
              inputs=ins, allow_ok=allow_ok)
    run.fails(["convert", model, "--calib", table, "-o", os.path.join(o, "q.onnx"), "-q"], contains,
              inputs=ins, allow_ok=allow_ok)
    run.fails(["quantize", model, "--data", data, "-o", os.path.join(o, "q.onnx"), "-q"], contains,
              inputs=ins, allow_ok=allow_ok)
    run.fails(["compare", model, model, "--data", data, "--report", os.path.join(o, "c.json"), "-q"], contains,
              inputs=ins, allow_ok=allow_ok)
    run.fails(["analyze", model, "--data", data, "-o", os.path.join(o, "s.json"), "-q"], contains, inputs=ins,
              allow_ok=allow_ok)


def executing_commands(run, model, data, contains="", inputs=()):
    """run, calibrate, quantize, compare and analyze: the commands that execute the model."""
    o = run.out
    ins = (model, data, *inputs)
    run.fails(["run", model, "--data", data, "-o", o], contains, inputs=ins)
    run.fails(["calibrate", model, "--data", data, "-o", os.path.join(o, "t.json"), "-q"], contains, inputs=ins)
    run.fails(["quantize", model, "--data", data, "-o", os.path.join(o, "q.onnx"), "-q"], contains, inputs=ins)
    run.fails(["compare", model, model, "--data", data, "--report", os.path.join(o, "c.json"), "-q"], contains,
              inputs=ins)
    run.fails(["analyze", model, "--data", data, "-o", os.path.join(o, "s.json"), "-q"], contains, inputs=ins)


# ---- models ------------------------------------------------------------------

def save(tmp, name, model):
    path = os.path.join(tmp, name)
    with open(path, "wb") as f:
        f.write(model.SerializeToString())
    return path


def small_model(nodes, inits=(), inputs=None, outputs=None):
    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 1, 8, 8])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, None)
    g = helper.make_graph(nodes, "bad", inputs if inputs is not None else [x],
                          outputs if outputs is not None else [y], list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return m


def test_mutated_models(run, tmp, model, data, table):
    raw = open(model, "rb").read()
    rng = np.random.default_rng(8)
    # truncated: each of these prefixes ends inside a field, so each must fail
    for cut in (1, 100, len(raw) // 2, len(raw) - 1):
        p = os.path.join(tmp, f"trunc_{cut}.onnx")
        open(p, "wb").write(raw[:cut])
        all_commands(run, p, data, table, inputs=(p,))
    # bit flips: may stay a valid model, must never crash
    for k in range(6):
        b = bytearray(raw)
        for pos in rng.integers(0, len(b), 4):
            b[pos] ^= 1 << int(rng.integers(0, 8))
        p = os.path.join(tmp, f"flip_{k}.onnx")
        open(p, "wb").write(bytes(b))
        all_commands(run, p, data, table, inputs=(p,), allow_ok=True)
    for name, content in (("random.onnx", rng.bytes(3000)), ("empty.onnx", b""),
                          ("text.onnx", b"this is not a model\n" * 20)):
        p = os.path.join(tmp, name)
        open(p, "wb").write(content)
        all_commands(run, p, data, table, inputs=(p,))
    all_commands(run, os.path.join(tmp, "absent.onnx"), data, table, "absent.onnx")
    all_commands(run, tmp, data, table, os.path.basename(tmp))  # a folder


def test_graph_errors(run, tmp, data, table):
    w = numpy_helper.from_array(np.ones((1, 64), np.float32), "w")
    relu = helper.make_node("Relu", ["image"], ["r"], name="relu")
    # dangling: a node reads a value nothing defines
    dangling = save(tmp, "dangling.onnx", small_model([relu, helper.make_node("Add", ["r", "ghost"], ["logits"],
                                                                               name="add")]))
    all_commands(run, dangling, data, table, "ghost")
    # cycle: a -> b -> a
    cyc = small_model([helper.make_node("Add", ["image", "b"], ["a"], name="n1"),
                       helper.make_node("Relu", ["a"], ["b"], name="n2"),
                       helper.make_node("Identity", ["b"], ["logits"], name="n3")])
    all_commands(run, save(tmp, "cycle.onnx", cyc), data, table, "cycle")
    # a graph output nothing produces
    all_commands(run, save(tmp, "noout.onnx", small_model([relu])), data, table, "logits")
    # two nodes writing one value
    twice = small_model([relu, helper.make_node("Relu", ["image"], ["r"], name="relu2"),
                         helper.make_node("Identity", ["r"], ["logits"])])
    all_commands(run, save(tmp, "twice.onnx", twice), data, table, "'r'")
    # initializer whose raw data does not match its dims
    bad_init = onnx.TensorProto()
    bad_init.CopyFrom(w)
    bad_init.dims[:] = [2, 64]
    m = small_model([helper.make_node("Flatten", ["image"], ["f"]),
                     helper.make_node("MatMul", ["f", "wt"], ["logits"], name="mm")],
                    [bad_init, numpy_helper.from_array(np.ones((64, 1), np.float32), "wt")])
    all_commands(run, save(tmp, "rawsize.onnx", m), data, table, "raw_data")
    # negative and overflowing dims on an initializer
    for name, dims in (("negdim", [-1, 64]), ("ovfdim", [2 ** 62, 2 ** 62])):
        t = onnx.TensorProto()
        t.CopyFrom(w)
        t.dims[:] = dims
        m = small_model([helper.make_node("Flatten", ["image"], ["f"]),
                         helper.make_node("MatMul", ["f", "wt"], ["logits"], name="mm")],
                        [t, numpy_helper.from_array(np.ones((64, 1), np.float32), "wt")])
        all_commands(run, save(tmp, name + ".onnx", m), data, table, "'w'")
    # a tensor larger than the limit (1 GiB of zeros declared in 20 bytes)
    huge = onnx.TensorProto(name="huge", data_type=TensorProto.FLOAT, dims=[2 ** 28])
    big = small_model([helper.make_node("Relu", ["image"], ["logits"])], [huge])
    all_commands(run, save(tmp, "hugeinit.onnx", big), data, table, "huge")


def test_run_time_dims(run, tmp, data):
    """Valid files whose shapes only fail when executed: run, calibrate and quantize refuse them."""
    shape = numpy_helper.from_array(np.array([10 ** 9, 10 ** 9], np.int64), "shape")
    m = small_model([helper.make_node("Expand", ["image", "shape"], ["logits"], name="expand")], [shape])
    executing_commands(run, save(tmp, "expand_huge.onnx", m), data, "'expand'")
    m = small_model([helper.make_node("Flatten", ["image"], ["f"]),
                     helper.make_node("ReduceSum", ["f"], ["s1"], keepdims=1),
                     helper.make_node("Expand", ["s1", "shape"], ["logits"], name="expand")], [shape])
    executing_commands(run, save(tmp, "expand_limit.onnx", m), data, "output 'logits'")
    ovf = numpy_helper.from_array(np.array([2 ** 62, 2 ** 62], np.int64), "shape")
    m = small_model([helper.make_node("ConstantOfShape", ["shape"], ["c"], name="cos"),
                     helper.make_node("Add", ["image", "c"], ["logits"])], [ovf])
    executing_commands(run, save(tmp, "cos_overflow.onnx", m), data, "overflows")
    m = small_model([helper.make_node("Reshape", ["image", "shape"], ["logits"], name="reshape")],
                    [numpy_helper.from_array(np.array([7, 9], np.int64), "shape")])
    executing_commands(run, save(tmp, "reshape_bad.onnx", m), data, "reshape")
    # a weight whose shape does not fit the data
    m = small_model([helper.make_node("Flatten", ["image"], ["f"]),
                     helper.make_node("Gemm", ["f", "w"], ["logits"], name="gemm", transB=1)],
                    [numpy_helper.from_array(np.ones((10, 63), np.float32), "w")])
    executing_commands(run, save(tmp, "gemm_k.onnx", m), data, "gemm")


def test_tensor_limit(run, tmp, model, data, table):
    o = run.out
    ins = (model, data, table)
    run.fails(["--max-tensor-bytes", "16K", "inspect", model], "size limit", inputs=ins)
    env = {"ONNXQ_MAX_TENSOR_BYTES": "300"}
    run.fails(["run", model, "--data", data, "-o", o], "size limit", inputs=ins, env=env)
    run.fails(["--max-tensor-bytes=300", "calibrate", model, "--data", data, "-o", os.path.join(o, "t.json"), "-q"],
              "size limit", inputs=ins)
    run.fails(["--max-tensor-bytes", "300", "quantize", model, "--data", data, "-o", os.path.join(o, "q.onnx"), "-q"],
              "size limit", inputs=ins)
    run.fails(["--max-tensor-bytes", "300", "convert", model, "--calib", table, "-o", os.path.join(o, "q.onnx"), "-q"],
              "size limit", inputs=ins)
    for bad in ("0", "-5", "4X", "", "99999999999999999999G"):
        run.fails(["--max-tensor-bytes", bad, "inspect", model], "--max-tensor-bytes", code=2, inputs=ins)
    run.fails(["inspect", model], "ONNXQ_MAX_TENSOR_BYTES", code=2, inputs=ins,
              env={"ONNXQ_MAX_TENSOR_BYTES": "lots"})
    # the limit is per tensor: the example's largest (a Conv scratch buffer) fits in 128K
    run.ok(["--max-tensor-bytes", "128K", "run", model, "--data", data])


def test_external_data(run, tmp, data, table):
    folder = os.path.join(tmp, "ext")
    os.mkdir(folder)
    secret = os.path.join(tmp, "secret.bin")
    open(secret, "wb").write(np.ones(64, np.float32).tobytes())
    os.symlink(secret, os.path.join(folder, "link.bin"))
    open(os.path.join(folder, "short.bin"), "wb").write(bytes(16))

    def ext_model(name, location, offset=None, length=None):
        t = numpy_helper.from_array(np.ones((1, 64), np.float32), "w")
        t.ClearField("raw_data")
        t.data_location = TensorProto.EXTERNAL
        for k, v in (("location", location), ("offset", offset), ("length", length)):
            if v is not None:
                e = t.external_data.add()
                e.key, e.value = k, str(v)
        m = small_model([helper.make_node("Flatten", ["image"], ["f"]),
                         helper.make_node("Gemm", ["f", "w"], ["logits"], transB=1)], [t])
        return save(folder, name, m)

    for name, loc, off, ln, says in (
            ("up.onnx", "../secret.bin", None, None, "leaves the model's folder"),
            ("abs.onnx", secret, None, None, "leaves the model's folder"),
            ("link.onnx", "link.bin", None, None, "outside the model's folder"),
            ("missing.onnx", "nothere.bin", None, None, "nothere.bin"),
            ("short.onnx", "short.bin", None, None, "external data has 16 bytes"),
            ("offset.onnx", "short.bin", 1000, None, "offset"),
            ("range.onnx", "short.bin", 8, 256, "passes the end"),
            ("nonnum.onnx", "short.bin", "x1", None, "not a number")):
        all_commands(run, ext_model(name, loc, off, ln), data, table, says, inputs=(secret, folder))


def test_data(run, tmp, model, data, table):
    o = run.out
    ins = (model, data, table)
    x = np.zeros((1, 1, 8, 8), np.float32)

    def folder(name, arrays):
        d = os.path.join(tmp, name)
        os.makedirs(d)
        for k, (nm, a) in enumerate(arrays):
            with open(os.path.join(d, f"input_{k}.pb"), "wb") as f:
                f.write(a if isinstance(a, bytes) else numpy_helper.from_array(a, nm).SerializeToString())
        return d

    empty = os.path.join(tmp, "empty_data")
    os.mkdir(empty)
    cases = [
        (empty, ""),
        (os.path.join(tmp, "no_data"), "no_data"),
        (folder("wrong_shape", [("image", np.zeros((1, 1, 7, 8), np.float32))]), "image"),
        (folder("wrong_rank", [("image", np.zeros((1, 8, 8), np.float32))]), "rank"),
        (folder("wrong_dtype", [("image", x.astype(np.float64))]), "float"),
        (folder("wrong_int", [("image", x.astype(np.int32))]), "float"),
        (folder("corrupt_pb", [("image", b"\x08\x01\x12\xff\xff\xff\xff\x0f")]), "input_0.pb"),
        (folder("trunc_pb", [("image", numpy_helper.from_array(x, "image").SerializeToString()[:-9])]),
         "input_0.pb"),
        (folder("extra_pb", [("image", x), ("other", x)]), "input_1.pb"),
    ]
    for d, says in cases:
        run.fails(["run", model, "--data", d, "-o", o], says, inputs=ins)
        run.fails(["calibrate", model, "--data", d, "-o", os.path.join(o, "t.json"), "-q"], says, inputs=ins)
        run.fails(["quantize", model, "--data", d, "-o", os.path.join(o, "q.onnx"), "-q"], says, inputs=ins)
        run.fails(["convert", model, "--calib", table, "--eval-data", d, "-o", os.path.join(o, "q.onnx"), "-q"],
                  says, inputs=ins)
    # .npy stacks with the wrong sample shape, dtype, or a header promising more than the file holds
    for name, arr, says in (("w_shape.npy", np.zeros((3, 1, 1, 8, 9), np.float32), "image"),
                            ("w_dtype.npy", np.zeros((3, 1, 1, 8, 8), np.float16), "float"),
                            ("w_rank.npy", np.zeros((3, 8, 8), np.float32), "image"),
                            ("w_none.npy", np.zeros((0, 1, 1, 8, 8), np.float32), "holds no samples"),
                            ("w_scalar.npy", np.float32(1), "got a scalar")):
        p = os.path.join(tmp, name)
        np.save(p, arr)
        run.fails(["calibrate", model, "--data", "image=" + p, "-o", os.path.join(o, "t.json"), "-q"], says,
                  inputs=(*ins, p))
        run.fails(["quantize", model, "--data", "image=" + p, "-o", os.path.join(o, "q.onnx"), "-q"], says,
                  inputs=(*ins, p))
    huge = os.path.join(tmp, "huge_hdr.npy")
    h = b"{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000000, 1, 1, 8, 8), }"
    h += b" " * (117 - len(h)) + b"\n"
    open(huge, "wb").write(b"\x93NUMPY\x01\x00" + len(h).to_bytes(2, "little") + h + bytes(256))
    run.fails(["calibrate", model, "--data", "image=" + huge, "-o", os.path.join(o, "t.json"), "-q"], "huge_hdr",
              inputs=(*ins, huge))
    run.fails(["run", model, "--input", "image=" + huge], "huge_hdr", inputs=(*ins, huge))
    # quantize's --data NAME=FILE.npy given to run, which feeds .npy files with --input
    run.fails(["run", model, "--data", "image=" + huge], "--input NAME=FILE.npy", code=2, inputs=(*ins, huge))
    # images: truncated, random bytes named .png, and a tiny header declaring a giant image
    from PIL import Image
    imgs = os.path.join(tmp, "imgs")
    os.mkdir(imgs)
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(os.path.join(imgs, "a.png"))
    for name, content in (("trunc.png", open(os.path.join(imgs, "a.png"), "rb").read()[:40]),
                          ("junk.jpg", np.random.default_rng(2).bytes(500))):
        d = os.path.join(tmp, "img_" + name.replace(".", "_"))
        os.mkdir(d)
        open(os.path.join(d, name), "wb").write(content)
        run.fails(["calibrate", model, "--data", d, "-o", os.path.join(o, "t.json"), "-q"], name, inputs=(*ins, d))
        run.fails(["quantize", model, "--data", d, "-o", os.path.join(o, "q.onnx"), "-q"], name, inputs=(*ins, d))


def test_nonfinite(run, tmp, model, data, table):
    """NaN/Inf samples are legal data: run computes with them, calibrate and quantize
    leave them out of the ranges with a warning; nothing crashes and outputs are written."""
    x = np.zeros((4, 1, 1, 8, 8), np.float32)
    x[0, 0, 0, 0, 0] = np.nan
    x[1, 0, 0, 3, 3] = np.inf
    x[2, 0, 0, 1, 1] = -np.inf
    p = os.path.join(tmp, "nonfinite.npy")
    np.save(p, x)
    single = os.path.join(tmp, "nan1.npy")
    np.save(single, x[0])
    r = run.ok(["run", model, "--input", "image=" + single])
    check(r.stdout.startswith("logits"), "run on a NaN input prints its output: " + r.stdout)
    t = os.path.join(run.out, "t.json")
    r = run.ok(["calibrate", model, "--data", "image=" + p, "-o", t, "-q"])
    check("warning" in r.stderr and "'image'" in r.stderr, "calibrate warns about the non-finite input: " + r.stderr)
    tab = json.load(open(t))
    e = tab["tensors"]["image"]
    check(e["nonfinite"] == 3 and all(np.isfinite(e["range"])), "NaN/Inf left out of the ranges")
    q = os.path.join(run.out, "q.onnx")
    rep = os.path.join(run.out, "r.json")
    r = run.ok(["quantize", model, "--data", "image=" + p, "-o", q, "--report", rep])
    check(os.path.isfile(q), "quantize with non-finite samples writes the model")
    # the float model's NaN logits are left out of the accuracy numbers, and the summary says so
    ev = json.load(open(rep))["evaluation"]["outputs"][0]
    line = [s for s in r.stderr.splitlines() if "output 'logits'" in s]
    check(ev.get("nonfinite_values", 0) > 0 and isinstance(ev["cosine"], float) and np.isfinite(ev["cosine"]) and
          line and "SQNR -nan" not in line[0] and "SQNR nan" not in line[0] and
          "NaN or infinite values, left out" in line[0],
          "evaluation on samples whose float logits are NaN: %s; %s" % (ev, line))
    # compare leaves the same elements out and gives the same numbers
    crep = os.path.join(run.out, "c.json")
    r = run.ok(["compare", model, q, "--data", "image=" + p, "--report", crep])
    co = json.load(open(crep))["outputs"][0] if r.returncode == 0 else {}
    check(co.get("nonfinite_values") == ev.get("nonfinite_values") and abs(co.get("cosine", 0) - ev["cosine"]) < 1e-9 and
          "left out" in r.stderr, "compare on the same samples: %s; evaluation %s" % (co, ev))
    # all-NaN data: nothing finite to calibrate on
    allnan = os.path.join(tmp, "allnan.npy")
    np.save(allnan, np.full((2, 1, 1, 8, 8), np.nan, np.float32))
    r = subprocess.run([run.binary, "calibrate", model, "--data", "image=" + allnan, "-o", t, "-q"],
                       capture_output=True, text=True)
    check(r.returncode == 0 or (r.returncode == 1 and len(r.stderr.splitlines()) == 1),
          "all-NaN calibration: a table or one error line: " + r.stderr)
    for f in os.listdir(run.out):
        os.remove(os.path.join(run.out, f))


def test_shared_dims(run, tmp):
    """Two inputs declared with one symbolic dim (token ids and their mask, [batch, seq])
    given different sizes there: refused naming both inputs and the dim, not by the first
    node that cannot broadcast them."""
    g = helper.make_graph([helper.make_node("MatMul", ["ids", "w"], ["h"]), helper.make_node("Mul", ["h", "mask"], ["y"])],
                          "two_inputs", [helper.make_tensor_value_info("ids", TensorProto.FLOAT, ["batch", "seq"]),
                                         helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["batch", "seq"])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "seq"])],
                          [numpy_helper.from_array(np.eye(6, dtype=np.float32)[:, :6], "w")])
    model = os.path.join(tmp, "two_inputs.onnx")
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), model)
    ids, mask = os.path.join(tmp, "ids6.npy"), os.path.join(tmp, "mask5.npy")
    np.save(ids, np.ones((3, 1, 6), np.float32))
    np.save(mask, np.ones((3, 1, 5), np.float32))
    run.fails(["quantize", model, "--data", "ids=" + ids, "--data", "mask=" + mask, "-o",
               os.path.join(run.out, "q.onnx"), "-q"], "inputs 'ids' and 'mask' share the dim 'seq' but are given 6 and 5",
              inputs=(model, ids, mask))


def test_exclude(run, tmp, model, data, table):
    """--exclude naming a node the model lacks (a typo) is refused, not ignored; the name
    preparation gives an unnamed node (the one reports list) is accepted."""
    ins = (model, data, table)
    q = os.path.join(run.out, "q.onnx")
    for cmd in (["quantize", model, "--data", data], ["convert", model, "--calib", table],
                ["analyze", model, "--data", data]):
        out = q if cmd[0] != "analyze" else os.path.join(run.out, "s.json")
        run.fails([*cmd, "--exclude", "no_such_node", "-o", out, "-q"], "no node named 'no_such_node'", inputs=ins)
    g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "unnamed",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])],
                          [numpy_helper.from_array(np.ones((8, 8), np.float32), "w")])
    unnamed, x = os.path.join(tmp, "unnamed.onnx"), os.path.join(tmp, "unnamed_x.npy")
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), unnamed)
    np.save(x, np.ones((2, 1, 8), np.float32))
    rep = os.path.join(run.out, "r.json")
    r = run.ok(["quantize", unnamed, "--data", "x=" + x, "--exclude", "MatMul_0", "-o", q, "--report", rep, "-q"])
    nodes = json.load(open(rep))["nodes"] if r.returncode == 0 else []
    check([(n["name"], n.get("reason")) for n in nodes] == [("MatMul_0", "excluded by --exclude")],
          "--exclude of the name an unnamed node is given: %s" % nodes)
    for f in os.listdir(run.out):
        os.remove(os.path.join(run.out, f))


def test_tables(run, tmp, model, data, table):
    o = run.out
    q = os.path.join(o, "q.onnx")
    good = json.load(open(table))

    def variant(name, mutate=None, text=None):
        p = os.path.join(tmp, name)
        if text is None:
            t = json.loads(json.dumps(good))
            mutate(t)
            text = json.dumps(t)
        open(p, "w" if isinstance(text, str) else "wb").write(text)
        return p

    first = next(iter(good["tensors"]))

    def set_first(key, value):
        return lambda t: t["tensors"][first].__setitem__(key, value)

    cases = [
        (os.path.join(tmp, "absent.json"), "absent.json"),
        (variant("empty.json", text=""), "empty.json"),
        (variant("trunc.json", text=open(table).read()[:200]), "trunc.json"),
        (variant("binary.json", text=np.random.default_rng(4).bytes(300)), "binary.json"),
        (variant("format.json", lambda t: t.__setitem__("format", "other")), "format"),
        (variant("version.json", lambda t: t.__setitem__("version", 99)), "version"),
        (variant("model.json", lambda t: t.__setitem__("model_sha256", "0" * 64)), "different model"),
        (variant("bins.json", lambda t: t.__setitem__("bins", 3)), "3 counts"),
        (variant("bins1.json", lambda t: t.__setitem__("bins", 1)), "header"),
        (variant("samples.json", lambda t: t.__setitem__("samples", 1e300)), "header"),
        (variant("counts.json", lambda t: t["tensors"][first]["hist"].__setitem__("counts", [1, 2])), first),
        (variant("range.json", set_first("range", [5, -5])), first),
        (variant("huge.json", set_first("max", 1e308)), first),
        (variant("minmax.json", set_first("min", "zero")), "min"),
        (variant("notensors.json", lambda t: t.pop("tensors")), "tensors"),
    ]
    for path, says in cases:
        run.fails(["convert", model, "--calib", path, "-o", q, "-q"], says, inputs=(model, table, path))
    for path, says in cases[1:4]:
        run.fails(["calibrate", "merge", table, path, "-o", os.path.join(o, "m.json")], says,
                  inputs=(table, path))


def test_outputs(run, tmp, model, data, table):
    ins = (model, data, table)
    before = sorted(os.listdir(tmp))
    nodir = os.path.join(tmp, "no", "such")
    run.fails(["run", model, "--data", data, "-o", nodir], "no/such", inputs=ins)
    run.fails(["calibrate", model, "--data", data, "-o", os.path.join(nodir, "t.json"), "-q"], "no/such", inputs=ins)
    run.fails(["convert", model, "--calib", table, "-o", os.path.join(nodir, "q.onnx"), "-q"], "no/such", inputs=ins)
    run.fails(["quantize", model, "--data", data, "-o", os.path.join(nodir, "q.onnx"), "-q"], "no/such", inputs=ins)
    run.fails(["convert", model, "--calib", table, "-o", os.path.join(run.out, "q.onnx"), "--report",
               os.path.join(nodir, "r.json"), "-q"], "no/such", inputs=ins)
    # output equal to an input: the model, the table, or the same file through another path
    alias = os.path.join(tmp, ".", os.path.basename(model))
    for out in (model, alias):
        run.fails(["convert", model, "--calib", table, "-o", out, "-q"], "", inputs=ins)
        run.fails(["quantize", model, "--data", data, "-o", out, "-q"], "", inputs=ins)
        run.fails(["calibrate", model, "--data", data, "-o", out, "-q"], "", inputs=ins)
    run.fails(["convert", model, "--calib", table, "-o", table, "-q"], "", inputs=ins)
    run.fails(["calibrate", "merge", table, table, "-o", table], "", inputs=ins)
    run.fails(["convert", model, "--calib", table, "-o", os.path.join(run.out, "q.onnx"), "--report", model, "-q"],
              "", inputs=ins)
    # an output that would change the samples: a data folder's file or a new file in it, an .npy of samples
    q, r = os.path.join(run.out, "q.onnx"), os.path.join(run.out, "r.json")
    for out in (os.path.join(data, "q.onnx"), os.path.join(data, "input_0.pb")):
        run.fails(["quantize", model, "--data", data, "-o", out, "-q"], "would change the samples", inputs=ins)
        run.fails(["quantize", model, "--data", data, "-o", q, "--report", out, "-q"], "would change the samples",
                  inputs=ins)
        run.fails(["calibrate", model, "--data", data, "-o", out, "-q"], "would change the samples", inputs=ins)
    npy = os.path.join(tmp, "samples.npy")
    np.save(npy, np.random.default_rng(0).random((3, 1, 1, 8, 8), np.float32))
    spec, ins_npy = "image=" + npy, ins + (npy,)
    run.fails(["quantize", model, "--data", spec, "-o", npy, "-q"], "would change the samples", inputs=ins_npy)
    run.fails(["quantize", model, "--data", data, "--eval-data", spec, "-o", q, "--html", npy, "-q"],
              "would change the samples", inputs=ins_npy)
    run.fails(["analyze", model, "--data", spec, "-o", npy, "-q"], "would change the samples", inputs=ins_npy)
    qc = os.path.join(tmp, "qc.onnx")
    run.ok(["quantize", model, "--data", data, "-o", qc, "-q"])
    run.fails(["compare", model, qc, "--data", spec, "--report", npy], "would change the samples",
              inputs=ins_npy + (qc,))
    # the model's external data file is an output too
    run.fails(["quantize", model, "--data", data, "-o", q, "--external-data", "--report", q + ".data", "-q"],
              "two outputs", inputs=ins)
    run.fails(["convert", model, "--calib", table, "-o", q, "--report", r, "--html", r, "-q"], "two outputs",
              inputs=ins)
    os.remove(qc)
    os.remove(npy)
    # an output path that is a folder
    run.fails(["convert", model, "--calib", table, "-o", run.out, "-q"], "", inputs=ins)
    run.fails(["calibrate", model, "--data", data, "-o", run.out, "-q"], "", inputs=ins)
    # refusing to replace an input leaves no temporary file beside it either
    check(sorted(os.listdir(tmp)) == before, f"files appeared beside the inputs: {set(os.listdir(tmp)) - set(before)}")


def main():
    binary, root = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory(prefix="onnxq-bad-") as tmp:
        model = os.path.join(tmp, "tiny_cnn.onnx")
        shutil.copy(os.path.join(root, "models", "example", "tiny_cnn.onnx"), model)
        data = os.path.join(tmp, "samples")
        for s in ("sample_000", "sample_001"):
            shutil.copytree(os.path.join(root, "calibration", "example", s), os.path.join(data, s))
        run = Runner(binary, tmp)
        table = os.path.join(tmp, "table.json")
        run.ok(["calibrate", model, "--data", data, "-o", table, "-q"])
        sample = os.path.join(data, "sample_000")
        test_mutated_models(run, tmp, model, sample, table)
        test_graph_errors(run, tmp, sample, table)
        test_run_time_dims(run, tmp, sample)
        test_tensor_limit(run, tmp, model, sample, table)
        test_external_data(run, tmp, sample, table)
        test_data(run, tmp, model, sample, table)
        test_nonfinite(run, tmp, model, sample, table)
        test_exclude(run, tmp, model, sample, table)
        test_shared_dims(run, tmp)
        test_tables(run, tmp, model, sample, table)
        test_outputs(run, tmp, model, sample, table)
    return finish("bad input")


if __name__ == "__main__":
    sys.exit(main())
