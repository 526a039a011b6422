#!/usr/bin/python3
"""Small models in the shapes older exporters and graph surgery leave, for the
graph-preparation tests (`onnxq prepare`), each with seeded inputs.

    /usr/bin/python3 models/gen_prepare_models.py OUTDIR

- cntk_style: what CNTK exported (mnist-8 of the ONNX model zoo is one): opset 8,
  IR 3, every initializer also listed as a graph input, Conv without bias
  followed by an Add of a [C, 1, 1] constant, weights that are Reshape(initializer),
  MatMul + Add for the classifier, plus a BatchNormalization and a Dropout.
- constant_of_shape: weights and biases made by ConstantOfShape (as in ONNX's
  own architecture test models), a Shape -> Gather -> Unsqueeze -> Concat ->
  Reshape chain on a static input, MatMul + Add.
- linear_bn: Flatten -> Gemm (transB, alpha, beta) -> BatchNormalization ->
  Relu -> Dropout (opset 13, training_mode false) -> MatMul + Add -> Identity
  as the graph output.

Writes OUTDIR/NAME.onnx and OUTDIR/NAME/case_K/input_N.pb (named TensorProtos).
Also importable: models() yields (name, ModelProto, cases) where a case is a
list of input arrays in the order of feed_names(model).
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

F = TensorProto.FLOAT
PRODUCER = "onnxq models/gen_prepare_models.py"


def _w(rng, *shape, scale=None):
    fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else shape[0]
    return (rng.standard_normal(shape) * (scale or np.sqrt(2.0 / fan_in))).astype(np.float32)


def _bn_params(rng, c):
    return {"gamma": (1 + 0.2 * rng.standard_normal(c)).astype(np.float32),
            "beta": _w(rng, c, scale=0.1), "mean": _w(rng, c, scale=0.1),
            "var": (0.5 + rng.random(c)).astype(np.float32)}


def feed_names(m):
    """The graph inputs a caller feeds: those without an initializer."""
    inits = {i.name for i in m.graph.initializer}
    return [i.name for i in m.graph.input if i.name not in inits]


def cntk_style(rng):
    bn = _bn_params(rng, 16)
    inits = {
        "W1_flat": _w(rng, 8, 1, 3, 3).reshape(-1), "W1_shape": np.array([8, 1, 3, 3], np.int64),
        "B1": _w(rng, 8, 1, 1, scale=0.1),
        "W2": _w(rng, 16, 8, 3, 3), "B2": _w(rng, 1, 16, 1, 1, scale=0.1),
        "bn_scale": bn["gamma"], "bn_bias": bn["beta"], "bn_mean": bn["mean"], "bn_var": bn["var"],
        "flat_shape": np.array([1, 256], np.int64),
        "W3_raw": _w(rng, 16, 4, 4, 10, scale=np.sqrt(2.0 / 256)), "W3_shape": np.array([256, 10], np.int64),
        "B3": _w(rng, 1, 10, scale=0.1),
    }
    nodes = [
        helper.make_node("Reshape", ["W1_flat", "W1_shape"], ["W1"], name="Parameter5_reshape"),
        helper.make_node("Conv", ["x", "W1"], ["c1"], name="Convolution28", kernel_shape=[3, 3],
                         auto_pad="SAME_UPPER"),
        helper.make_node("Add", ["c1", "B1"], ["a1"], name="Plus30"),
        helper.make_node("Relu", ["a1"], ["r1"], name="ReLU32"),
        helper.make_node("MaxPool", ["r1"], ["p1"], name="Pooling66", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "W2"], ["c2"], name="Convolution110", kernel_shape=[3, 3],
                         pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["c2", "B2"], ["a2"], name="Plus112"),
        helper.make_node("BatchNormalization", ["a2", "bn_scale", "bn_bias", "bn_mean", "bn_var"], ["n2"],
                         name="BatchNorm114", epsilon=1e-5),
        helper.make_node("Relu", ["n2"], ["r2"], name="ReLU116"),
        helper.make_node("MaxPool", ["r2"], ["p2"], name="Pooling160", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Reshape", ["p2", "flat_shape"], ["f"], name="Times212_reshape0"),
        helper.make_node("Dropout", ["f"], ["d"], name="Dropout200", ratio=0.3),
        helper.make_node("Reshape", ["W3_raw", "W3_shape"], ["W3"], name="Times212_reshape1"),
        helper.make_node("MatMul", ["d", "W3"], ["mm"], name="Times212"),
        helper.make_node("Add", ["mm", "B3"], ["y"], name="Plus214"),
    ]
    tensors = [numpy_helper.from_array(v, k) for k, v in inits.items()]
    inputs = [helper.make_tensor_value_info("x", F, [1, 1, 16, 16])]
    inputs += [helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in tensors]
    g = helper.make_graph(nodes, "cntk_style", inputs, [helper.make_tensor_value_info("y", F, [1, 10])], tensors)
    m = helper.make_model(g, producer_name=PRODUCER, opset_imports=[helper.make_opsetid("", 8)])
    m.ir_version = 3
    onnx.checker.check_model(m)
    return m, [[rng.random((1, 1, 16, 16)).astype(np.float32)], [rng.standard_normal((1, 1, 16, 16)).astype(np.float32)]]


def constant_of_shape(rng):
    def value(v):
        return helper.make_tensor("value", F, [1], [v])

    inits = {
        "W1_shape": np.array([8, 3, 3, 3], np.int64), "W1_delta": _w(rng, 8, 3, 3, 3),
        "B1_shape": np.array([8], np.int64), "zero": np.array(0, np.int64),
        "axes0": np.array([0], np.int64), "minus_one": np.array([-1], np.int64),
        "W2_shape": np.array([8, 10], np.int64), "B2": _w(rng, 10, scale=0.1),
    }
    nodes = [
        helper.make_node("ConstantOfShape", ["W1_shape"], ["W1_base"], value=value(0.05)),
        helper.make_node("Add", ["W1_base", "W1_delta"], ["W1"]),
        helper.make_node("ConstantOfShape", ["B1_shape"], ["B1"]),
        helper.make_node("Conv", ["x", "W1", "B1"], ["c"], name="conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["g"]),
        helper.make_node("Shape", ["x"], ["x_shape"]),
        helper.make_node("Gather", ["x_shape", "zero"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "axes0"], ["n1"]),
        helper.make_node("Concat", ["n1", "minus_one"], ["flat_shape"], axis=0),
        helper.make_node("Reshape", ["g", "flat_shape"], ["f"]),
        helper.make_node("ConstantOfShape", ["W2_shape"], ["W2"], value=value(0.02)),
        helper.make_node("MatMul", ["f", "W2"], ["mm"], name="fc"),
        helper.make_node("Add", ["mm", "B2"], ["y"]),
    ]
    g = helper.make_graph(nodes, "constant_of_shape", [helper.make_tensor_value_info("x", F, [1, 3, 8, 8])],
                          [helper.make_tensor_value_info("y", F, [1, 10])],
                          [numpy_helper.from_array(v, k) for k, v in inits.items()])
    m = helper.make_model(g, producer_name=PRODUCER, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 7
    onnx.checker.check_model(m)
    return m, [[rng.standard_normal((1, 3, 8, 8)).astype(np.float32)], [rng.random((1, 3, 8, 8)).astype(np.float32)]]


def linear_bn(rng):
    bn = _bn_params(rng, 32)
    inits = {
        "Wg": _w(rng, 32, 144), "bg": _w(rng, 32, scale=0.1),
        "gamma": bn["gamma"], "beta": bn["beta"], "mean": bn["mean"], "var": bn["var"],
        "ratio": np.array(0.5, np.float32), "training": np.array(False),
        "W": _w(rng, 32, 10), "b": _w(rng, 10, scale=0.1),
    }
    nodes = [
        helper.make_node("Flatten", ["x"], ["f"], axis=1),
        helper.make_node("Gemm", ["f", "Wg", "bg"], ["h"], name="linear1", transB=1, alpha=0.5, beta=2.0),
        helper.make_node("BatchNormalization", ["h", "gamma", "beta", "mean", "var"], ["hb"], epsilon=1e-3),
        helper.make_node("Relu", ["hb"], ["r"]),
        helper.make_node("Dropout", ["r", "ratio", "training"], ["d"]),
        helper.make_node("MatMul", ["d", "W"], ["m"], name="linear2"),
        helper.make_node("Add", ["m", "b"], ["z"]),
        helper.make_node("Identity", ["z"], ["y"]),
    ]
    g = helper.make_graph(nodes, "linear_bn", [helper.make_tensor_value_info("x", F, ["N", 4, 6, 6])],
                          [helper.make_tensor_value_info("y", F, ["N", 10])],
                          [numpy_helper.from_array(v, k) for k, v in inits.items()])
    m = helper.make_model(g, producer_name=PRODUCER, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 7
    onnx.checker.check_model(m)
    return m, [[rng.standard_normal((1, 4, 6, 6)).astype(np.float32)],
               [rng.standard_normal((3, 4, 6, 6)).astype(np.float32)]]


GENERATORS = [cntk_style, constant_of_shape, linear_bn]


def models(seed=4321):
    """Yields (name, ModelProto, cases); case inputs are in feed_names(model) order."""
    for gen in GENERATORS:
        m, cases = gen(np.random.default_rng([seed, GENERATORS.index(gen)]))
        yield gen.__name__, m, cases


def main():
    if len(sys.argv) != 2 or sys.argv[1].startswith("-"):
        sys.exit("usage: gen_prepare_models.py OUTDIR")
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name, m, cases in models():
        onnx.save(m, os.path.join(out, f"{name}.onnx"))
        names = feed_names(m)
        for k, case in enumerate(cases):
            d = os.path.join(out, name, f"case_{k}")
            os.makedirs(d, exist_ok=True)
            for i, a in enumerate(case):
                with open(os.path.join(d, f"input_{i}.pb"), "wb") as f:
                    f.write(numpy_helper.from_array(a, names[i]).SerializeToString())
        print(f"{name}: {len(cases)} cases")


if __name__ == "__main__":
    main()
