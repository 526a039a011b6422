#!/usr/bin/python3
"""test_ort_harness.py: checks the ONNX Runtime reference itself, without onnxq.

1. Every dtype the harness exchanges (float32/64, int64/32, uint8, int8, bool,
   including a scalar and an empty tensor) survives numpy -> npy.js -> ORT
   Identity -> npy.js -> numpy bit for bit.
2. ort_run.js refuses bad input files (Fortran order, wrong input count) with
   exit 1 and a message.
3. The bundled example model classifies the bundled samples in ORT as their
   labels say (it was trained to 97.6% held-out accuracy; at most 1 miss of 16).
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import helper, TensorProto

import harness

CASES = [  # (ONNX type, array)
    (TensorProto.FLOAT, np.array([[1.5, -2.25, 3e-38], [np.inf, -0.0, 7]], np.float32)),
    (TensorProto.DOUBLE, np.array(3.141592653589793, np.float64)),
    (TensorProto.INT64, np.array([-(2 ** 62), -1, 0, 2 ** 62 + 3], np.int64)),
    (TensorProto.INT32, np.zeros((1, 0, 2), np.int32)),
    (TensorProto.UINT8, np.array([[0], [128], [255]], np.uint8)),
    (TensorProto.INT8, np.array([-128, -1, 0, 1, 127], np.int8)),
    (TensorProto.BOOL, np.array([[True, False], [False, True]])),
]


def identity_model(path):
    ins, outs, nodes = [], [], []
    for k, (et, a) in enumerate(CASES):
        ins.append(helper.make_tensor_value_info(f"x{k}", et, list(a.shape)))
        outs.append(helper.make_tensor_value_info(f"y{k}", et, list(a.shape)))
        nodes.append(helper.make_node("Identity", [f"x{k}"], [f"y{k}"]))
    m = helper.make_model(helper.make_graph(nodes, "identity", ins, outs),
                          opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 7
    onnx.save(m, path)


def main():
    harness.require_ort()
    t = harness.Tally()
    with tempfile.TemporaryDirectory(prefix="oq-harness-") as tmp:
        model = os.path.join(tmp, "identity.onnx")
        identity_model(model)
        outs = harness.run_ort(model, [a for _, a in CASES])
        for k, (_, a) in enumerate(CASES):
            o = outs[k] if k < len(outs) else None
            ok = o is not None and o.dtype == a.dtype and o.shape == a.shape and o.tobytes() == a.tobytes()
            t.case(f"npy round trip {a.dtype} {list(a.shape)}", ok,
                   "identical" if ok else f"got {None if o is None else (o.dtype, o.shape)}")

        bad = os.path.join(tmp, "bad")
        harness.write_npy_dir(bad, [a for _, a in CASES])
        np.save(os.path.join(bad, "input_0.npy"), np.asfortranarray(np.ones((2, 3), np.float32)))
        r = subprocess.run(["node", os.path.join(harness.ORT_DIR, "ort_run.js"), model, bad, os.path.join(tmp, "o")],
                           capture_output=True, text=True)
        t.case("Fortran-order npy refused", r.returncode == 1 and "Fortran" in r.stderr,
               f"exit {r.returncode}: {r.stderr.strip()}")
        np.save(os.path.join(bad, "input_0.npy"), CASES[0][1])
        np.save(os.path.join(bad, f"input_{len(CASES)}.npy"), CASES[0][1])
        r = subprocess.run(["node", os.path.join(harness.ORT_DIR, "ort_run.js"), model, bad, os.path.join(tmp, "o")],
                           capture_output=True, text=True)
        t.case("extra input file refused", r.returncode == 1 and "only" in r.stderr,
               f"exit {r.returncode}: {r.stderr.strip()}")

    example = os.path.join(harness.ROOT, "models", "example", "tiny_cnn.onnx")
    calib = os.path.join(harness.ROOT, "calibration", "example")
    with open(os.path.join(calib, "labels.txt")) as f:
        labels = dict(line.split() for line in f if line.strip())
    misses = []
    for name, label in sorted(labels.items()):
        x = harness.read_pb_dir(os.path.join(calib, name), prefix="input")
        logits = harness.run_ort(example, x)[0]
        if int(logits.argmax()) != int(label):
            misses.append(f"{name}: {int(logits.argmax())} (label {label})")
    t.case(f"tiny_cnn in ORT classifies the {len(labels)} bundled samples", len(misses) <= 1,
           f"{len(labels) - len(misses)}/{len(labels)} correct" + (f"; wrong: {', '.join(misses)}" if misses else ""))
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
