#!/usr/bin/python3
"""Error of onnxq's 3x3 convolutions on real weights and real activations.

For every 3x3 stride-1 ungrouped Conv of the chosen models (default: PP-OCRv4
det and rec, trained weights; resnet50 and vgg16 of bench/model_set.py), its
input on the model's benchmark input is taken from ONNX Runtime, the layer
alone (its weights and bias, as in the model) is run by `onnxq run` and by
ONNX Runtime, and both are compared with the convolution computed in double
(numpy). It prints, per layer, which path onnxq takes (winograd or direct, by
the rule of src/exec/winograd.c oq_wino_fits) and max |err| / max |exact| of
onnxq and of ONNX Runtime (a float direct or im2col sum), then the worst over
each path.

Usage: bench/wino_error.py [--onnxq build-bench/src/onnxq] [--only det,rec,resnet50,vgg16]
"""
import argparse
import os
import sys
import tempfile

import numpy as np
import onnx
from onnx import helper, numpy_helper

from bench_common import REPO, find_onnxq
import model_set

sys.path.insert(0, os.path.join(REPO, "tests", "ort"))
import harness  # noqa: E402


def attr(node, name, default):
    for a in node.attribute:
        if a.name == name:
            return list(a.ints) if a.ints else (a.i if a.type == onnx.AttributeProto.INT else a.s.decode())
    return default


def candidates(m):
    """The 3x3 stride-1 undilated ungrouped Convs with constant weights (initializers or
    Constant nodes): (node, weight, bias)."""
    inits = {t.name: t for t in m.graph.initializer}
    for n in m.graph.node:  # PaddlePaddle's exports hold weights in Constant nodes
        if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value":
            inits[n.output[0]] = n.attribute[0].t
        if n.op_type == "Identity" and n.input[0] in inits:  # torch shares equal tensors so
            inits[n.output[0]] = inits[n.input[0]]
    out = []
    for n in m.graph.node:
        if n.op_type != "Conv" or n.input[1] not in inits:
            continue
        w = numpy_helper.to_array(inits[n.input[1]]).astype(np.float32)
        if w.ndim != 4 or w.shape[2:] != (3, 3) or attr(n, "group", 1) != 1:
            continue
        if attr(n, "strides", [1, 1]) != [1, 1] or attr(n, "dilations", [1, 1]) != [1, 1]:
            continue
        if attr(n, "auto_pad", "NOTSET") not in ("NOTSET", ""):
            continue
        has_b = len(n.input) > 2 and n.input[2]
        if has_b and n.input[2] not in inits:
            continue
        b = numpy_helper.to_array(inits[n.input[2]]).astype(np.float32) if has_b else None
        out.append((n, w, b))
    return out


def winograd_fits(cin, cout, oh, ow):
    """src/exec/winograd.c oq_wino_fits for a 3x3 stride-1 ungrouped conv."""
    tiles = ((oh + 3) // 4) * ((ow + 3) // 4)
    return cin >= 16 and cout >= 16 and tiles >= 36 and cin * cout <= 2048 * tiles


def conv_exact(x, w, b, pads):
    """3x3 stride-1 conv in double: x [n, cin, h, w], pads [top, left, bottom, right]."""
    x = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
    n, cin, h, wd = x.shape
    oh, ow = h - 2, wd - 2
    y = np.zeros((n, w.shape[0], oh, ow))
    wd64 = w.astype(np.float64)
    for ky in range(3):
        for kx in range(3):
            patch = x[:, :, ky:ky + oh, kx:kx + ow]
            y += np.einsum("oc,nchw->nohw", wd64[:, :, ky, kx], patch)
    if b is not None:
        y += b.astype(np.float64)[None, :, None, None]
    return y


def one_conv_model(node, w, b, shape):
    inits = [numpy_helper.from_array(w, "w")] + ([numpy_helper.from_array(b, "b")] if b is not None else [])
    conv = helper.make_node("Conv", ["x", "w"] + (["b"] if b is not None else []), ["y"],
                            kernel_shape=[3, 3], pads=attr(node, "pads", [0, 0, 0, 0]))
    g = helper.make_graph([conv], "one_conv", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, shape)],
                          [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--onnxq")
    ap.add_argument("--only", default="det,rec,resnet50,vgg16")
    a = ap.parse_args()
    onnxq = os.path.abspath(a.onnxq or find_onnxq())
    worst = {}
    print("| model | layer | cin->cout | plane | path | onnxq err | ORT err |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory(prefix="wino_error.") as tmp:
        for name in a.only.split(","):
            path, x = model_set.ensure(name, log=lambda s: print(s, file=sys.stderr))
            m = onnx.load(path)
            convs = candidates(m)
            if not convs:
                continue
            # the inputs of those convs, as extra graph outputs, from ONNX Runtime
            probe = onnx.load(path)
            del probe.graph.output[:]
            for n, _, _ in convs:
                probe.graph.output.append(helper.make_tensor_value_info(n.input[0], onnx.TensorProto.FLOAT, None))
            probe_path = os.path.join(tmp, name + "_probe.onnx")
            onnx.save(probe, probe_path)
            acts = harness.run_ort(probe_path, [x])
            for k, ((n, w, b), xa) in enumerate(zip(convs, acts)):
                pads = attr(n, "pads", [0, 0, 0, 0])
                exact = conv_exact(xa, w, b, pads)
                one = os.path.join(tmp, "%s_%d.onnx" % (name, k))
                onnx.save(one_conv_model(n, w, b, list(xa.shape)), one)
                got = harness.run_onnxq(onnxq, one, [xa], names=["x"])[0]
                ort = harness.run_ort(one, [xa])[0]
                scale = float(np.max(np.abs(exact))) or 1.0
                e_q = float(np.max(np.abs(got - exact))) / scale
                e_o = float(np.max(np.abs(ort - exact))) / scale
                fits = winograd_fits(w.shape[1], w.shape[0], exact.shape[2], exact.shape[3])
                p = "winograd" if fits else "direct"
                wq, wo = worst.get(p, (0.0, 0.0))
                worst[p] = (max(wq, e_q), max(wo, e_o))
                print("| %s | %s | %d->%d | %dx%d | %s | %.1e | %.1e |" % (name, n.name or n.output[0], w.shape[1],
                      w.shape[0], exact.shape[2], exact.shape[3], p, e_q, e_o), flush=True)
    print()
    for p, (wq, wo) in sorted(worst.items()):
        print("worst on the %s path: onnxq %.1e, ONNX Runtime %.1e (max |err| / max |exact|)" % (p, wq, wo))
    return 0


if __name__ == "__main__":
    sys.exit(main())
