#!/usr/bin/python3
"""Loader, saver and inspect on the models beyond ONNX's node tests: the real
npm models (weights in Constant nodes), the generated test models and the
bundled example.

- `onnxq inspect --json` agrees with python onnx (tests/cli/test_inspect.py's
  checks, run over a folder of links to these models);
- load + save + reload round-trips them (tests/golden/roundtrip.py's checks);
- ONNX Runtime gives bit-identical outputs for the original and the
  round-tripped model on realistic inputs.

usage: test_models_io.py ONNXQ_BINARY OQ_ROUNDTRIP_BINARY
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import ocr_inputs  # noqa: E402

sys.path.insert(0, os.path.join(harness.ROOT, "models"))
import fetch_npm_models  # noqa: E402
import gen_test_models  # noqa: E402


def real_inputs(name):
    """One realistic input per real model (see ocr_inputs.py)."""
    if name.startswith("ppocr_v4_det"):
        return [ocr_inputs.det_input([ocr_inputs.render_page(256, 320, ["onnxq 0.1", "INT8 for ONNX"], 5)])]
    lines = [ocr_inputs.render_line("round trip", 3)]
    return [ocr_inputs.line_input(lines, 192 if "cls" in name else 320)]


def main():
    if len(sys.argv) != 3:
        print("usage: test_models_io.py ONNXQ_BINARY OQ_ROUNDTRIP_BINARY", file=sys.stderr)
        return 2
    exe, roundtrip = (os.path.abspath(a) for a in sys.argv[1:])
    harness.require_ort()
    try:
        real = {k: v for k, v in fetch_npm_models.fetch().items() if v.endswith(".onnx")}
    except fetch_npm_models.FetchError as e:
        harness.skip_or_fail(f"cannot fetch the zoo models: {e}")
    tally = harness.Tally()
    with tempfile.TemporaryDirectory(prefix="oq-models-io-") as tmp:
        cases = {}
        for name, path in real.items():
            cases[name] = (path, real_inputs(name))
        for name, m, inputs in gen_test_models.models():
            path = os.path.join(tmp, name + ".onnx")
            onnx.save(m, path)
            cases[name] = (path, inputs[0])
        example = os.path.join(harness.ROOT, "models", "example", "tiny_cnn.onnx")
        cases["tiny_cnn"] = (example, harness.read_pb_dir(
            os.path.join(harness.ROOT, "calibration", "example", "sample_000"), "input"))
        links = os.path.join(tmp, "models")
        for name, (path, _) in cases.items():
            os.makedirs(os.path.join(links, name))
            os.symlink(path, os.path.join(links, name, "model.onnx"))

        for script, tool in (("cli/test_inspect.py", exe), ("golden/roundtrip.py", roundtrip)):
            r = subprocess.run(["/usr/bin/python3", os.path.join(harness.TESTS_DIR, script), tool, links],
                               capture_output=True, text=True)
            lines = (r.stdout + r.stderr).strip().splitlines()
            tally.case(f"{script} over {len(cases)} models", r.returncode == 0,
                       "; ".join(l for l in lines if "FAIL" in l or "passed" in l or "differs" in l)[-2000:])

        for name, (path, inputs) in cases.items():
            saved = os.path.join(tmp, name + ".saved.onnx")
            r = subprocess.run([roundtrip, path, saved], capture_output=True, text=True)
            if r.returncode != 0:
                tally.case(name + " round trip", False, r.stderr.strip())
                continue
            try:
                a = harness.run_ort(path, inputs)
                b = harness.run_ort(saved, inputs)
            except harness.RunError as e:
                tally.case(name + " ORT", False, str(e))
                continue
            same = len(a) == len(b) and all(x.dtype == y.dtype and x.shape == y.shape and
                                            np.array_equal(x, y, equal_nan=True) for x, y in zip(a, b))
            tally.case(name + " ORT outputs after round trip", same, "bit-identical" if same else "differ")
    return tally.finish()


if __name__ == "__main__":
    sys.exit(main())
