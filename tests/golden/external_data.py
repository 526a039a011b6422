#!/usr/bin/python3
"""External data through onnxq's loader, driven by python's onnx.

1. python saves a model with its weights in an external file
   (save_as_external_data); oq_roundtrip loads it and saves it inline; the
   result's initializers must equal the originals.
2. oq_roundtrip saving with an external threshold writes <model>.data; python
   loads that (with its external data) and the values must match.
3. Hostile external_data (location "../x", "/etc/passwd", a symlink out of the
   folder, offset/length past the end of the file) must be refused: non-zero
   exit, an error message, no crash (a signal would be a negative return code).
4. Offsets: onnxq loads a float tensor at an offset that is not a multiple of
   4 (copied, not mapped) and writes every tensor at a multiple of its element
   size (an odd-sized int8 tensor before a float one).
5. Over 2 GB: a model whose weight (a sparse file, so nothing big is written
   here) would make it longer than protobuf's limit is saved with external
   data by default, the small constants inline, the bytes where they were.

usage: external_data.py path/to/oq_roundtrip
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto

results = {"passed": 0, "failed": 0}


def check(cond, what):
    results["passed" if cond else "failed"] += 1
    if not cond:
        print("FAIL", what)


def make_model():
    rng = np.random.default_rng(7)
    w = rng.standard_normal((64, 32)).astype(np.float32)
    b = rng.standard_normal((32,)).astype(np.float32)
    k = np.arange(40, dtype=np.int64)
    c = rng.standard_normal((32,)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Constant", [], ["C"], value=numpy_helper.from_array(c, "C")),
         helper.make_node("MatMul", ["X", "W"], ["Y"]),
         helper.make_node("Add", ["Y", "B"], ["Y2"]),
         helper.make_node("Add", ["Y2", "C"], ["Z"])],
        "ext",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", 64])],
        [helper.make_tensor_value_info("Z", TensorProto.FLOAT, ["N", 32])],
        [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B"),
         numpy_helper.from_array(k, "K")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def arrays(model):
    out = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for n in model.graph.node:
        if n.op_type == "Constant":
            out[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
    return out


def equal(a, b):
    return a.keys() == b.keys() and all(a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]) for k in a)


def run(tool, *args):
    return subprocess.run([tool, *args], capture_output=True, text=True)


def entries(t):
    return {e.key: e.value for e in t.external_data}


def offsets(tool, tmp):
    rng = np.random.default_rng(3)
    odd = rng.integers(-128, 127, size=(1027,), dtype=np.int8)
    w = rng.standard_normal((16, 8)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Cast", ["Q"], ["Qf"], to=TensorProto.FLOAT),
         helper.make_node("MatMul", ["X", "W"], ["Y"])],
        "offsets",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 16])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, 8]),
         helper.make_tensor_value_info("Qf", TensorProto.FLOAT, [1027])],
        [numpy_helper.from_array(odd, "Q"), numpy_helper.from_array(w, "W")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    want = arrays(model)

    # W at byte 2 of its file
    src = os.path.join(tmp, "odd_src.onnx")
    with open(os.path.join(tmp, "odd_src.bin"), "wb") as f:
        f.write(b"\0\0" + w.tobytes())
    m = onnx.ModelProto()
    m.CopyFrom(model)
    t = next(t for t in m.graph.initializer if t.name == "W")
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    for k, v in (("location", "odd_src.bin"), ("offset", "2"), ("length", str(w.nbytes))):
        t.external_data.add(key=k, value=v)
    with open(src, "wb") as f:
        f.write(m.SerializeToString())
    out = os.path.join(tmp, "odd_inline.onnx")
    r = run(tool, src, out)
    check(r.returncode == 0 and equal(arrays(onnx.load(out)), want), f"float at offset 2: {r.stderr}")

    # Q (1027 bytes) first, then W: W must not start at 1027
    out = os.path.join(tmp, "odd_ext.onnx")
    r = run(tool, src, out, "1")
    check(r.returncode == 0, f"save external: {r.stderr}")
    if r.returncode == 0:
        plain = onnx.load(out, load_external_data=False)
        offs = {t.name: int(entries(t)["offset"]) for t in plain.graph.initializer}
        check(offs["Q"] == 0 and offs["W"] % 4 == 0 and offs["W"] >= 1027, f"aligned offsets: {offs}")
        check(equal(arrays(onnx.load(out)), want), "values after aligned save")


def over_2gb(tool, tmp):
    n = (2**31 + 4096) // 4  # float elements: the inline model would pass 2**31 - 1 bytes
    marks = {0: 1.5, n // 2: -2.0, n - 1: 3.25}
    data = os.path.join(tmp, "big.bin")
    with open(data, "wb") as f:
        f.truncate(4 * n)  # a hole: zeros that take no disk space
        for i, v in marks.items():
            f.seek(4 * i)
            f.write(np.float32(v).tobytes())
    w = TensorProto(name="W", data_type=TensorProto.FLOAT, dims=[1, n])
    w.data_location = TensorProto.EXTERNAL
    for k, v in (("location", "big.bin"), ("offset", "0"), ("length", str(4 * n))):
        w.external_data.add(key=k, value=v)
    b = numpy_helper.from_array(np.array([0.5, -0.5], np.float32), "B")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["X", "W"], ["Y"]), helper.make_node("Add", ["B", "B"], ["B2"])],
        "big", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 1])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, n]),
         helper.make_tensor_value_info("B2", TensorProto.FLOAT, [2])], [w, b])
    src = os.path.join(tmp, "big_src.onnx")
    with open(src, "wb") as f:
        f.write(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString())
    out = os.path.join(tmp, "big_out.onnx")
    r = run(tool, src, out)  # no threshold: onnxq decides
    check(r.returncode == 0, f"save a model over 2 GB: {r.stderr}")
    if r.returncode != 0:
        return
    plain = onnx.load(out, load_external_data=False)
    inits = {t.name: t for t in plain.graph.initializer}
    e = entries(inits["W"])
    check(inits["W"].data_location == TensorProto.EXTERNAL and e.get("location") == "big_out.onnx.data"
          and e.get("length") == str(4 * n), f"W goes to external data: {e}")
    check(inits["B"].data_location != TensorProto.EXTERNAL and len(inits["B"].raw_data) == 8, "B stays inline")
    check(os.path.getsize(out) < 4096, f"the model file is small: {os.path.getsize(out)}")
    with open(out + ".data", "rb") as f:
        for i, v in marks.items():
            f.seek(int(e.get("offset", "0")) + 4 * i)
            check(np.frombuffer(f.read(4), np.float32)[0] == v, f"W[{i}] kept")
    for p in (out, out + ".data", data):
        os.remove(p)


def main():
    tool = sys.argv[1]
    with tempfile.TemporaryDirectory() as tmp:
        model = make_model()
        want = arrays(model)

        # 1. python external data -> onnxq -> inline
        src = os.path.join(tmp, "src.onnx")
        onnx.save_model(model, src, save_as_external_data=True, all_tensors_to_one_file=True,
                        location="src.weights", size_threshold=64, convert_attribute=True)
        check(os.path.getsize(os.path.join(tmp, "src.weights")) > 8000, "python wrote external data")
        out = os.path.join(tmp, "inline.onnx")
        r = run(tool, src, out)
        check(r.returncode == 0, f"load python external data: {r.stderr}")
        if r.returncode == 0:
            got = onnx.load(out)
            onnx.checker.check_model(got)
            check(equal(arrays(got), want), "inline values equal the originals")
            check(not any(t.external_data for t in got.graph.initializer), "saved inline")

        # 2. onnxq external data -> python
        ext = os.path.join(tmp, "ours.onnx")
        r = run(tool, src, ext, "100")
        check(r.returncode == 0 and os.path.exists(ext + ".data"), f"save external: {r.stderr}")
        if r.returncode == 0:
            got = onnx.load(ext)  # resolves ours.onnx.data beside it
            onnx.checker.check_model(ext)
            check(equal(arrays(got), want), "python reads onnxq's external data")
            plain = onnx.load(ext, load_external_data=False)
            locs = {e.value for t in plain.graph.initializer for e in t.external_data if e.key == "location"}
            check(locs == {"ours.onnx.data"}, f"location is relative: {locs}")

        # 3. refusals
        sub = os.path.join(tmp, "m")
        os.mkdir(sub)
        with open(os.path.join(tmp, "outside.bin"), "wb") as f:
            f.write(b"\0" * 100000)
        os.symlink(os.path.join(tmp, "outside.bin"), os.path.join(sub, "link.bin"))
        size = os.path.getsize(os.path.join(tmp, "src.weights"))
        os.link(os.path.join(tmp, "src.weights"), os.path.join(sub, "w.bin"))
        cases = {
            "dotdot": {"location": "../outside.bin"},
            "absolute": {"location": "/etc/passwd"},
            "symlink": {"location": "link.bin"},
            "past-end": {"location": "w.bin", "offset": str(size - 16), "length": "8192"},
            "offset-past-end": {"location": "w.bin", "offset": str(size + 1)},
            "huge-length": {"location": "w.bin", "offset": "0", "length": str(2**63)},
        }
        for name, kv in cases.items():
            m = onnx.load(src, load_external_data=False)
            w = next(t for t in m.graph.initializer if t.name == "W")
            del w.external_data[:]
            for k, v in kv.items():
                w.external_data.add(key=k, value=v)
            path = os.path.join(sub, name + ".onnx")
            with open(path, "wb") as f:
                f.write(m.SerializeToString())
            r = run(tool, path, os.path.join(sub, "out.onnx"))
            check(r.returncode == 1 and "initializer 'W'" in r.stderr,
                  f"{name}: expected a clean refusal, got rc={r.returncode} {r.stderr.strip()}")
        offsets(tool, tmp)
        over_2gb(tool, tmp)
    print(f"external_data: {results['passed']} passed, {results['failed']} failed")
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
