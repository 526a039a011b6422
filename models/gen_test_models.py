#!/usr/bin/python3
"""Small generated models for the onnxq-vs-ORT tests, each with seeded inputs.

    /usr/bin/python3 models/gen_test_models.py OUTDIR

Each model is a miniature of a structure the real models in zoo.json use (the
PaddleOCR det/rec/cls networks), so a mismatch there shows up here first, in a
graph small enough to debug. Writes OUTDIR/NAME.onnx and OUTDIR/NAME/case_K/
input_N.pb (named TensorProtos). Also importable: models() yields
(name, ModelProto, [cases]) where a case is a list of input arrays.
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

F = TensorProto.FLOAT


def _model(name, nodes, inputs, outputs, inits, opset):
    g = helper.make_graph(nodes, name, inputs, outputs,
                          [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()])
    m = helper.make_model(g, producer_name="onnxq models/gen_test_models.py",
                          opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 7
    onnx.checker.check_model(m)
    return m


def _w(rng, *shape, scale=None):
    fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else shape[0]
    return (rng.standard_normal(shape) * (scale or np.sqrt(2.0 / fan_in))).astype(np.float32)


def mlp(rng):
    """MatMul + Add + Relu + Gemm + Softmax on [N, 64]."""
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h"]),
        helper.make_node("Add", ["h", "b1"], ["hb"]),
        helper.make_node("Relu", ["hb"], ["r"]),
        helper.make_node("Gemm", ["r", "w2", "b2"], ["logits"], alpha=0.5, beta=1.0),
        helper.make_node("Softmax", ["logits"], ["y"], axis=-1),
    ]
    inits = {"w1": _w(rng, 64, 48), "b1": _w(rng, 48, scale=0.1), "w2": _w(rng, 48, 10), "b2": _w(rng, 10, scale=0.1)}
    m = _model("mlp", nodes, [helper.make_tensor_value_info("x", F, ["N", 64])],
               [helper.make_tensor_value_info("y", F, ["N", 10])], inits, 13)
    return m, [[rng.standard_normal((1, 64)).astype(np.float32)], [rng.standard_normal((7, 64)).astype(np.float32)]]


def mobile_block(rng):
    """MobileNetV3-style: Conv+BN+HardSwish (x*HardSigmoid), depthwise stride-2 Conv,
    squeeze-excite (GAP, 1x1 Convs, Relu, HardSigmoid, Mul), residual Add, Clip, MaxPool."""
    c, e = 8, 16
    nodes = [
        helper.make_node("Conv", ["x", "w0", "b0"], ["c0"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c0", "g0", "be0", "m0", "v0"], ["n0"], epsilon=1e-5),
        helper.make_node("HardSigmoid", ["n0"], ["hs0"], alpha=1 / 6, beta=0.5),
        helper.make_node("Mul", ["n0", "hs0"], ["a0"]),
        helper.make_node("Conv", ["a0", "w1"], ["c1"], kernel_shape=[1, 1]),
        helper.make_node("Clip", ["c1", "lo", "hi"], ["r1"]),
        helper.make_node("Conv", ["r1", "wd", "bd"], ["d"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2],
                         group=e),
        helper.make_node("GlobalAveragePool", ["d"], ["s"]),
        helper.make_node("Conv", ["s", "ws1", "bs1"], ["s1"], kernel_shape=[1, 1]),
        helper.make_node("Relu", ["s1"], ["s1r"]),
        helper.make_node("Conv", ["s1r", "ws2", "bs2"], ["s2"], kernel_shape=[1, 1]),
        helper.make_node("HardSigmoid", ["s2"], ["gate"], alpha=0.2, beta=0.5),
        helper.make_node("Mul", ["d", "gate"], ["se"]),
        helper.make_node("Conv", ["se", "wp", "bp"], ["p"], kernel_shape=[1, 1]),
        helper.make_node("MaxPool", ["a0"], ["skip"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["p", "skip"], ["y"]),
    ]
    inits = {
        "w0": _w(rng, c, 3, 3, 3), "b0": _w(rng, c, scale=0.1),
        "g0": (1 + 0.1 * rng.standard_normal(c)).astype(np.float32), "be0": _w(rng, c, scale=0.1),
        "m0": _w(rng, c, scale=0.1), "v0": (0.5 + rng.random(c)).astype(np.float32),
        "w1": _w(rng, e, c, 1, 1), "lo": np.array(0, np.float32), "hi": np.array(6, np.float32),
        "wd": _w(rng, e, 1, 3, 3), "bd": _w(rng, e, scale=0.1),
        "ws1": _w(rng, 4, e, 1, 1), "bs1": _w(rng, 4, scale=0.1), "ws2": _w(rng, e, 4, 1, 1), "bs2": _w(rng, e, scale=0.1),
        "wp": _w(rng, c, e, 1, 1), "bp": _w(rng, c, scale=0.1),
    }
    m = _model("mobile_block", nodes, [helper.make_tensor_value_info("x", F, ["N", 3, "H", "W"])],
               [helper.make_tensor_value_info("y", F, ["N", 8, "Ho", "Wo"])], inits, 13)
    return m, [[rng.standard_normal((1, 3, 16, 16)).astype(np.float32)],
               [rng.standard_normal((2, 3, 12, 20)).astype(np.float32)]]


def fpn_head(rng):
    """DBNet-style neck and head: strided Conv, nearest Resize x2, Concat, ConvTranspose, Sigmoid."""
    nodes = [
        helper.make_node("Conv", ["x", "wa"], ["fa"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Relu", ["fa"], ["ra"]),
        helper.make_node("Resize", ["ra", "roi", "scales"], ["up"], mode="nearest",
                         coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
        helper.make_node("Conv", ["x", "wb"], ["fb"], kernel_shape=[1, 1]),
        helper.make_node("Concat", ["up", "fb"], ["cat"], axis=1),
        helper.make_node("ConvTranspose", ["cat", "wt", "bt"], ["t"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Sigmoid", ["t"], ["y"]),
    ]
    inits = {"wa": _w(rng, 6, 4, 3, 3), "wb": _w(rng, 6, 4, 1, 1), "roi": np.zeros(0, np.float32),
             "scales": np.array([1, 1, 2, 2], np.float32),
             "wt": _w(rng, 12, 1, 2, 2), "bt": _w(rng, 1, scale=0.1)}
    m = _model("fpn_head", nodes, [helper.make_tensor_value_info("x", F, ["N", 4, "H", "W"])],
               [helper.make_tensor_value_info("y", F, ["N", 1, "H", "W"])], inits, 11)
    return m, [[rng.standard_normal((1, 4, 8, 8)).astype(np.float32)],
               [rng.standard_normal((2, 4, 16, 24)).astype(np.float32)]]


def attention(rng):
    """SVTR-style mixer: LayerNorm from ReduceMean/Sub/Pow/Sqrt/Div, batched MatMul
    attention with Softmax, and the Shape/Slice/Concat/Reshape/Transpose/Squeeze
    plumbing the rec model uses to go from [N, C, 1, W] to [N, W, C]."""
    d = 16
    nodes = [
        helper.make_node("Squeeze", ["x"], ["sq"], axes=[2]),                     # [N, C, W]
        helper.make_node("Transpose", ["sq"], ["t"], perm=[0, 2, 1]),             # [N, W, C]
        helper.make_node("ReduceMean", ["t"], ["mu"], axes=[-1]),
        helper.make_node("Sub", ["t", "mu"], ["xc"]),
        helper.make_node("Pow", ["xc", "two"], ["sq2"]),
        helper.make_node("ReduceMean", ["sq2"], ["var"], axes=[-1]),
        helper.make_node("Add", ["var", "eps"], ["ve"]),
        helper.make_node("Sqrt", ["ve"], ["sd"]),
        helper.make_node("Div", ["xc", "sd"], ["ln"]),
        helper.make_node("MatMul", ["ln", "wq"], ["q"]),
        helper.make_node("MatMul", ["ln", "wk"], ["k"]),
        helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 2, 1]),
        helper.make_node("MatMul", ["q", "kt"], ["s"]),
        helper.make_node("Mul", ["s", "inv_sqrt_d"], ["ss"]),
        helper.make_node("Softmax", ["ss"], ["a"], axis=2),
        helper.make_node("MatMul", ["a", "ln"], ["o"]),
        helper.make_node("Add", ["o", "t"], ["res"]),
        helper.make_node("Shape", ["res"], ["shp"]),
        helper.make_node("Slice", ["shp"], ["nw"], starts=[0], ends=[2], axes=[0]),  # opset 9: attributes
        helper.make_node("Concat", ["nw", "minus1"], ["newshape"], axis=0),
        helper.make_node("Reshape", ["res", "newshape"], ["flat"]),
        helper.make_node("Cast", ["flat"], ["y"], to=F),
    ]
    inits = {"two": np.array(2, np.float32), "eps": np.array(1e-5, np.float32),
             "wq": _w(rng, d, d), "wk": _w(rng, d, d), "inv_sqrt_d": np.array(d ** -0.5, np.float32),
             "minus1": np.array([-1], np.int64)}
    m = _model("attention", nodes, [helper.make_tensor_value_info("x", F, ["N", d, 1, "W"])],
               [helper.make_tensor_value_info("y", F, ["N", "W", 16])], inits, 9)
    return m, [[rng.standard_normal((1, d, 1, 5)).astype(np.float32)],
               [(3 * rng.standard_normal((3, d, 1, 12)) + 1).astype(np.float32)]]


def two_inputs(rng):
    """Two graph inputs (order matters) with broadcasting Sub/Div and AveragePool."""
    nodes = [
        helper.make_node("Sub", ["image", "mean"], ["c"]),
        helper.make_node("Div", ["c", "std"], ["n"]),
        helper.make_node("AveragePool", ["n"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Mul", ["p", "gain"], ["y"]),
    ]
    m = _model("two_inputs", nodes,
               [helper.make_tensor_value_info("image", F, ["N", 3, "H", "W"]),
                helper.make_tensor_value_info("gain", F, [1, 3, 1, 1])],
               [helper.make_tensor_value_info("y", F, ["N", 3, "Ho", "Wo"])],
               {"mean": np.array([0.485, 0.456, 0.406], np.float32).reshape(1, 3, 1, 1),
                "std": np.array([0.229, 0.224, 0.225], np.float32).reshape(1, 3, 1, 1)}, 13)
    gain = np.array([1.0, -2.0, 0.5], np.float32).reshape(1, 3, 1, 1)
    return m, [[rng.random((1, 3, 8, 8)).astype(np.float32), gain],
               [rng.random((2, 3, 6, 10)).astype(np.float32), gain * 3]]


GENERATORS = [mlp, mobile_block, fpn_head, attention, two_inputs]


def models(seed=1234):
    """Yields (name, ModelProto, cases); case inputs are in graph-input order."""
    for gen in GENERATORS:
        m, cases = gen(np.random.default_rng([seed, GENERATORS.index(gen)]))
        yield gen.__name__, m, cases


def main():
    if len(sys.argv) != 2 or sys.argv[1].startswith("-"):
        sys.exit("usage: gen_test_models.py OUTDIR")
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name, m, cases in models():
        onnx.save(m, os.path.join(out, f"{name}.onnx"))
        names = [i.name for i in m.graph.input]
        for k, case in enumerate(cases):
            d = os.path.join(out, name, f"case_{k}")
            os.makedirs(d, exist_ok=True)
            for i, a in enumerate(case):
                with open(os.path.join(d, f"input_{i}.pb"), "wb") as f:
                    f.write(numpy_helper.from_array(a, names[i]).SerializeToString())
        print(f"{name}: {len(cases)} cases")


if __name__ == "__main__":
    main()
