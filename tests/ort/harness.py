"""harness.py: what the ORT test scripts share.

Runs a model in ONNX Runtime (node + onnxruntime-node, through ort_run.js) and
in `onnxq run`, exchanges tensors as .npy (ORT side) and TensorProto .pb
(onnxq side), and compares outputs.

Agreement criterion ("within rtol 1e-3"), per output tensor:
    max |onnxq - ort|  <=  1e-3 * max |ort|
with identical shape and dtype, no NaN where ORT has none, and exact equality
for integer and bool outputs. Each case prints its max abs error and its max
relative error (|d| / |ort| over elements with |ort| >= 1e-3 * max |ort|).
"""
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
from onnx import numpy_helper, TensorProto

ORT_DIR = os.path.dirname(os.path.abspath(__file__))
TESTS_DIR = os.path.dirname(ORT_DIR)
ROOT = os.path.dirname(TESTS_DIR)
NODE_MODULES = os.path.join(TESTS_DIR, "node_modules")
SKIP = 77  # meson's exit code for a skipped test
RTOL = 1e-3


def in_ci():
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def skip_or_fail(reason):
    """Missing prerequisites: a skip when run by hand, a failure in CI (CI=true)."""
    if in_ci():
        print(f"FAIL: {reason} (CI=true, so this is an error, not a skip)", file=sys.stderr)
        sys.exit(1)
    print(f"SKIP: {reason}")
    sys.exit(SKIP)


def require_ort():
    """Checks that node and onnxruntime-node are installed (see scripts/test.sh)."""
    if shutil.which("node") is None:
        skip_or_fail("node is not installed (apt-get install nodejs npm)")
    if not os.path.isfile(os.path.join(NODE_MODULES, "onnxruntime-node", "package.json")):
        skip_or_fail(f"{NODE_MODULES}/onnxruntime-node is missing: run 'npm ci --ignore-scripts' in tests/")


def require_binary(argv, usage):
    if len(argv) != 2:
        print(f"usage: {usage}", file=sys.stderr)
        sys.exit(2)
    exe = os.path.abspath(argv[1])
    if not os.access(exe, os.X_OK):
        print(f"FAIL: {exe} is not an executable onnxq", file=sys.stderr)
        sys.exit(1)
    return exe


# ---- tensor files -----------------------------------------------------------------

def write_pb_dir(d, arrays, names=None):
    os.makedirs(d, exist_ok=True)
    for k, a in enumerate(arrays):
        t = numpy_helper.from_array(np.array(a, order="C"), names[k] if names else "")
        with open(os.path.join(d, f"input_{k}.pb"), "wb") as f:
            f.write(t.SerializeToString())


def read_pb_dir(d, prefix="output"):
    out = []
    while os.path.exists(os.path.join(d, f"{prefix}_{len(out)}.pb")):
        t = TensorProto()
        with open(os.path.join(d, f"{prefix}_{len(out)}.pb"), "rb") as f:
            t.ParseFromString(f.read())
        out.append(numpy_helper.to_array(t))
    return out


def write_npy_dir(d, arrays):
    os.makedirs(d, exist_ok=True)
    for k, a in enumerate(arrays):
        np.save(os.path.join(d, f"input_{k}.npy"), np.array(a, order="C"))


def read_npy_dir(d, prefix="output"):
    out = []
    while os.path.exists(os.path.join(d, f"{prefix}_{len(out)}.npy")):
        out.append(np.load(os.path.join(d, f"{prefix}_{len(out)}.npy")))
    return out


# ---- runners --------------------------------------------------------------------

class RunError(Exception):
    pass


def run_ort(model, inputs, level="all"):
    """Outputs of model on inputs (list of arrays, graph-input order), from ONNX
    Runtime with its graph optimizations at `level` (all, extended, basic,
    disabled; see ort_run.js)."""
    with tempfile.TemporaryDirectory(prefix="oq-ort-") as tmp:
        write_npy_dir(os.path.join(tmp, "in"), inputs)
        r = subprocess.run(["node", os.path.join(ORT_DIR, "ort_run.js"), model,
                            os.path.join(tmp, "in"), os.path.join(tmp, "out"), level],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise RunError(f"ort_run.js exit {r.returncode}: {r.stderr.strip()}")
        return read_npy_dir(os.path.join(tmp, "out"))


def run_onnxq(exe, model, inputs, names=None, extra=()):
    """Outputs of `onnxq run model --data DIR -o OUT` on inputs (list of arrays)."""
    with tempfile.TemporaryDirectory(prefix="oq-run-") as tmp:
        write_pb_dir(os.path.join(tmp, "in"), inputs, names)
        cmd = [exe, "run", model, "--data", os.path.join(tmp, "in"), "-o", os.path.join(tmp, "out"), *extra]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise RunError(f"onnxq run exit {r.returncode}: {r.stderr.strip()}")
        return read_pb_dir(os.path.join(tmp, "out"))


# ---- comparison ---------------------------------------------------------------

def compare(got, ref):
    """(ok, text) for one output tensor against the ORT reference."""
    if got.shape != ref.shape:
        return False, f"shape {list(got.shape)} != ORT {list(ref.shape)}"
    if got.dtype != ref.dtype:
        return False, f"dtype {got.dtype} != ORT {ref.dtype}"
    if ref.size == 0:
        return True, "empty"
    if not np.issubdtype(ref.dtype, np.floating):
        bad = int(np.count_nonzero(got != ref))
        return bad == 0, f"exact: {bad} of {ref.size} elements differ"
    g = got.astype(np.float64)
    r = ref.astype(np.float64)
    if np.isnan(r).any() or np.isinf(r).any():
        return False, "ORT output has NaN/Inf; the case is not usable"
    if not np.isfinite(g).all():
        return False, f"{int(np.count_nonzero(~np.isfinite(g)))} non-finite elements"
    scale = float(np.abs(r).max())
    diff = np.abs(g - r)
    max_abs = float(diff.max())
    sig = np.abs(r) >= RTOL * scale
    max_rel = float((diff[sig] / np.abs(r[sig])).max()) if sig.any() else 0.0
    ok = max_abs <= RTOL * scale
    return ok, f"max abs {max_abs:.3e}  max rel {max_rel:.3e}  (bound {RTOL * scale:.3e} = 1e-3 * max|ort| {scale:.3e})"


class Tally:
    """Counts cases and prints the closing 'N passed, N failed' line."""

    def __init__(self):
        self.passed = 0
        self.failed = 0

    def case(self, name, ok, text):
        print(f"{'ok  ' if ok else 'FAIL'} {name}: {text}", flush=True)
        if ok:
            self.passed += 1
        else:
            self.failed += 1

    def check_outputs(self, name, got, ref):
        if len(got) != len(ref):
            self.case(name, False, f"{len(got)} outputs, ORT gave {len(ref)}")
            return False
        all_ok = True
        for k, (g, r) in enumerate(zip(got, ref)):
            ok, text = compare(g, r)
            self.case(f"{name} output_{k}", ok, text)
            all_ok &= ok
        return all_ok

    def finish(self):
        print(f"{self.passed} passed, {self.failed} failed")
        return 1 if self.failed else 0
