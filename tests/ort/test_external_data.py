#!/usr/bin/python3
"""`quantize --external-data`: the quantized constants go to OUT.onnx.data
beside OUT.onnx, whatever the model's size (a model over protobuf's 2 GB limit
is always written so; bench/bench_big_model.py --gb 9 shows one).

On a small MLP (MatMul + bias Add, Relu, MatMul), its float weights inline and,
in a second copy, in external data of their own:
- the output is a small model file plus OUT.onnx.data, and both run in ONNX
  Runtime and in `onnxq run` with outputs close to the float model's;
- static (calibrated, evaluated, with a report) and dynamic mode;
- two runs give byte-identical files;
- a run that fails after the rewrite (report folder missing) and one whose
  OUT.onnx.data would replace the data file the float model reads leave the
  output folder exactly as it was: no new file, no temporary, earlier files
  unchanged.

usage: test_external_data.py ONNXQ_BINARY
"""
import hashlib
import os
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import harness

D, H, S = 64, 128, 32


def mlp(path, data_name):
    """Writes the MLP to path (its weights in data_name beside it, unless None)."""
    rng = np.random.default_rng(7)
    w1 = (rng.standard_normal((D, H)) / np.sqrt(D)).astype(np.float32)
    b1 = (rng.standard_normal(H) * 0.1).astype(np.float32)
    w2 = (rng.standard_normal((H, D)) / np.sqrt(H)).astype(np.float32)
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"], name="mm1"),
             helper.make_node("Add", ["h", "b1"], ["hb"], name="bias1"),
             helper.make_node("Relu", ["hb"], ["r"], name="relu"),
             helper.make_node("MatMul", ["r", "w2"], ["y"], name="mm2")]
    inits = [numpy_helper.from_array(a, n) for a, n in ((w1, "w1"), (b1, "b1"), (w2, "w2"))]
    g = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", D])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", D])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    if data_name:
        onnx.save_model(m, path, save_as_external_data=True, location=data_name, size_threshold=1024)
    else:
        onnx.save_model(m, path)


def snapshot(folder):
    out = {}
    for name in sorted(os.listdir(folder)):
        with open(os.path.join(folder, name), "rb") as f:
            out[name] = hashlib.sha256(f.read()).hexdigest()
    return out


def cosine(a, b):
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def main():
    exe = harness.require_binary(sys.argv, "test_external_data.py ONNXQ_BINARY")
    harness.require_ort()
    failures = 0

    def check(cond, what):
        nonlocal failures
        print(("ok   " if cond else "FAIL ") + what)
        failures += not cond

    def onnxq(*args):
        import subprocess
        return subprocess.run([exe, *args], capture_output=True, text=True)

    with tempfile.TemporaryDirectory(prefix="oq-extdata-") as tmp:
        x = np.random.default_rng(8).standard_normal((S, D)).astype(np.float32)
        data = os.path.join(tmp, "x.npy")
        np.save(data, x)
        probe = x[:4]
        for external_input in (False, True):
            src = os.path.join(tmp, "in-ext" if external_input else "in-inline")
            os.makedirs(src)
            model = os.path.join(src, "mlp.onnx")
            # the data file's name is what quantize -o q.onnx would write beside it
            mlp(model, "q.onnx.data" if external_input else None)
            ref = harness.run_ort(model, [probe])[0]
            for mode in ("static", "dynamic"):
                what = f"{mode}, float weights {'external' if external_input else 'inline'}"
                args = ["--data", f"x={data}"] if mode == "static" else ["--mode", "dynamic"]
                files = []
                for run in (1, 2):
                    out = os.path.join(tmp, f"out-{mode}-{int(external_input)}-{run}")
                    os.makedirs(out)
                    q = os.path.join(out, "q.onnx")
                    p = onnxq("quantize", model, *args, "--external-data", "-o", q,
                              "--report", os.path.join(out, "r.json"), "-q")
                    check(p.returncode == 0, f"{what}: quantize exits 0 ({p.stderr.strip()})")
                    if p.returncode:
                        continue
                    check(sorted(os.listdir(out)) == ["q.onnx", "q.onnx.data", "r.json"],
                          f"{what}: q.onnx, q.onnx.data and the report written, nothing else ({os.listdir(out)})")
                    m = onnx.load(q, load_external_data=False)
                    ext = [t.name for t in m.graph.initializer if t.data_location == TensorProto.EXTERNAL]
                    big = [t.name for t in m.graph.initializer
                           if t.data_location != TensorProto.EXTERNAL and len(t.raw_data) >= 1024]
                    check(len(ext) >= 2 and not big,
                          f"{what}: the int8 weights are in q.onnx.data ({ext}), none of 1 KiB inline ({big})")
                    check(os.path.getsize(q) < 4096, f"{what}: q.onnx is {os.path.getsize(q)} bytes")
                    got = harness.run_ort(q, [probe])[0]
                    check(cosine(got, ref) > 0.999, f"{what}: ONNX Runtime runs it, cosine to float "
                                                    f"{cosine(got, ref):.5f}")
                    mine = harness.run_onnxq(exe, q, [probe])[0]
                    check(cosine(mine, got) > 0.9999, f"{what}: onnxq run agrees with ONNX Runtime "
                                                      f"(cosine {cosine(mine, got):.6f})")
                    files.append({k: v for k, v in snapshot(out).items() if k != "r.json"})
                if len(files) == 2:
                    check(files[0] == files[1], f"{what}: two runs write byte-identical files")

            # failures leave the output folder as it was
            out = os.path.join(tmp, f"fail-{int(external_input)}")
            os.makedirs(out)
            q = os.path.join(out, "q.onnx")
            for path, text in ((q, b"an earlier model\n"), (q + ".data", b"earlier data\n")):
                with open(path, "wb") as f:
                    f.write(text)
            cases = [("report folder missing", model, q,
                      ["--report", os.path.join(tmp, "no", "such", "r.json")])]
            if external_input:  # OUT.onnx.data would be the float model's own data file
                cases.append(("output data is the input's", model, os.path.join(src, "q.onnx"), []))
            for what, m_in, m_out, extra in cases:
                before, before_src = snapshot(out), snapshot(src)
                p = onnxq("quantize", m_in, "--data", f"x={data}", "--external-data", "-o", m_out, *extra, "-q")
                lines = p.stderr.splitlines()
                check(p.returncode == 1 and len(lines) == 1 and lines[0].startswith("onnxq: error: "),
                      f"{what}: exit 1 and one error line (exit {p.returncode}, {p.stderr.strip()!r})")
                check(snapshot(out) == before and snapshot(src) == before_src,
                      f"{what}: output and input folders unchanged")
    print(f"external data: {'FAILED' if failures else 'all passed'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
