#!/usr/bin/python3
"""test_onnxq_vs_ort.py ONNXQ: `onnxq run` against ONNX Runtime on small models.

Models: the bundled example (models/example/tiny_cnn.onnx) on every bundled
calibration sample, the 16 samples stacked as one batch, and
models/gen_test_models.py's miniatures of the real models' structures, two
input shapes each. Outputs must agree within rtol 1e-3 (see harness.py), and
the example's predicted digits must be the same.
"""
import os
import sys
import tempfile

import numpy as np
import onnx

import harness

sys.path.insert(0, os.path.join(harness.ROOT, "models"))
import gen_test_models  # noqa: E402


def run_case(t, exe, name, model, inputs, names):
    try:
        ref = harness.run_ort(model, inputs)
        got = harness.run_onnxq(exe, model, inputs, names)
    except harness.RunError as e:
        t.case(name, False, str(e))
        return None
    return got if t.check_outputs(name, got, ref) else None, ref


def main():
    exe = harness.require_binary(sys.argv, "test_onnxq_vs_ort.py ONNXQ_BINARY")
    harness.require_ort()
    t = harness.Tally()

    example = os.path.join(harness.ROOT, "models", "example", "tiny_cnn.onnx")
    calib = os.path.join(harness.ROOT, "calibration", "example")
    samples = sorted(d for d in os.listdir(calib) if d.startswith("sample_"))
    xs = [harness.read_pb_dir(os.path.join(calib, s), prefix="input")[0] for s in samples]
    for s, x in zip(samples, xs):
        run_case(t, exe, f"tiny_cnn {s}", example, [x], ["image"])
    got, ref = run_case(t, exe, f"tiny_cnn batch {len(xs)}", example, [np.concatenate(xs)], ["image"])
    if got is not None:
        a, b = got[0].argmax(1).tolist(), ref[0].argmax(1).tolist()
        t.case("tiny_cnn predicted digits", a == b, f"onnxq {a}" + ("" if a == b else f", ORT {b}"))

    with tempfile.TemporaryDirectory(prefix="oq-gen-") as tmp:
        for name, m, cases in gen_test_models.models():
            path = os.path.join(tmp, f"{name}.onnx")
            onnx.save(m, path)
            names = [i.name for i in m.graph.input]
            for k, inputs in enumerate(cases):
                shapes = " ".join(str(list(a.shape)) for a in inputs)
                run_case(t, exe, f"{name} case {k} {shapes}", path, inputs, names)
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
