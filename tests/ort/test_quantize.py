#!/usr/bin/python3
"""`onnxq quantize` judged by ONNX Runtime, on the generated test models and the
bundled digit CNN, in both static formats (qoperator, qdq), in qoperator with
ONNX Runtime's contrib ops (--contrib: com.microsoft QGemm, QLinearConcat, QLinearAdd, QLinearMul,
QLinearSigmoid, QLinearLeakyRelu, QLinearGlobalAveragePool), and in dynamic
mode (DynamicQuantizeLinear + MatMulInteger/ConvInteger, no calibration):

- the output passes onnx.checker.check_model(full_check=True) (the checker
  has no schemas for com.microsoft: it checks those nodes' structure and the
  domain import, not their inputs and types; ONNX Runtime's run checks them);
- ONNX Runtime loads and runs it;
- onnxq's own executor gives the same outputs as ONNX Runtime on the quantized
  model within one quantization step of each output (in dynamic mode the steps
  are chosen at run time, so the bound is 1e-3 of the output's magnitude);
  ONNX Runtime runs it here with its basic graph optimizations, which keep
  every operator's arithmetic: its extended ones fuse DequantizeLinear,
  Softmax, QuantizeLinear into a table-driven QLinearSoftmax that rounds
  some elements one step differently (measured on a DequantizeLinear ->
  Softmax -> QuantizeLinear model: 2 of 64 uint8 values), which the layers
  after an attention's softmax carry to the output;
- the quantized model stays close to the float one in ONNX Runtime (cosine);
- in the QDQ format, each node's `output_sqnr_db` in the report is the SQNR
  `onnxq compare` measures on one of the model's Q/DQ pairs (the one after
  the node, compared with the float value it stands for, after a Relu whose
  range it has);
- the report's `boundaries` counts the QuantizeLinear/DequantizeLinear nodes on
  activations that the output graph has (QOperator format), null elsewhere;
- the report's work per sample (multiply-adds of the integer ops, elements
  converted between float and 8-bit) equals a count made from the tensors
  ONNX Runtime computes on the same samples, and `speed_outlook` says whether
  to expect a speed-up (QOperator format), null elsewhere;
- a ConvTranspose (ONNX has no 8-bit form of it) reads its weight as int8 per
  output channel (axis 1) through a DequantizeLinear in every format, and in
  the QDQ format its input through a Q/DQ pair (fpn_head, upsampler);
- an Einsum of an activation and a constant kernel (EinsumDense) reads the
  kernel as int8 along an output axis of its own through a DequantizeLinear,
  in every format; one whose kernel has no such axis stays float (einsum);
- an Add of a constant table (learned positions) reads it as int8 per row
  behind a DequantizeLinear in every format, and masks (-inf, or -10000 beside
  small penalties) stay float with the reason; the MatMul before that mask writes float, also with
  --contrib, where an Add of a constant has no 8-bit form (position_table);
- LSTM, GRU and RNN (no 8-bit form in ONNX either) read W and R as int8 per
  gate row (axis 1) through DequantizeLinears in every format (recurrent,
  simple_rnn: an opset-11 model, which the per-axis DequantizeLinear moves to 13);
- hard-swish patterns become HardSwish and scalar factors next to 8-bit tensors
  move into (De)QuantizeLinear scales, on a PP-OCRv4-style block;
- a Concat that an 8-bit op reads runs on 8-bit tensors in the QOperator
  format: its inputs are written at its output's parameters (a SqueezeNet
  fire module, SHARED_CONCAT), and a Shape of an 8-bit tensor reads it as is;
- with --contrib, Add, Mul, Sigmoid, LeakyRelu and GlobalAveragePool next to
  8-bit tensors become their com.microsoft QLinear ops (CONTRIB_OPS); `convert
  --contrib` with a table from plain `calibrate` keeps them float and warns, one
  from `calibrate --contrib` gives what `quantize --contrib` gives;
- no quantized model is larger than its float input: its stored constants
  (initializers, Constant nodes) are not, on every model, and neither is the
  file, on the models of at least MIN_FILE_CHECKED bytes (in the miniatures
  of 1 to 5 KB the nodes and names the quantized form adds outweigh the
  bytes their few hundred weights save: conv_affine, hard_swish,
  mobile_block, fpn_head and attention grow by 2% to 100%);
- CNTK's export (models/gen_prepare_models.py cntk_style: opset 8, IR 3, Conv
  without bias + Add, weights through Reshape, MatMul + Add) is 8-bit from its
  input to its last integer op in the QOperator format, every Conv and MatMul
  quantized, the file at least 3x smaller; weights made by ConstantOfShape
  quantize;
- bias correction (`--bias-correction on`) moves
  the quantized model's per-channel mean output error on the calibration
  samples toward zero, in ONNX Runtime, in every format, on the models whose
  outputs come from a Conv, MatMul or Gemm (BIAS_CORRECTED), and the report
  says what it did;
- cross-layer equalization (`--equalization on`) of a Conv -> Relu ->
  depthwise Conv whose channels span very different ranges scales the narrow
  channels up and raises the worst output channel's SQNR in ONNX Runtime;
- the same inputs and options give byte-identical output, whether calibration
  records every activation (--all-tensors) or not, and the same report on any
  number of threads (in dynamic mode:
  `convert --mode dynamic` without a table gives the same bytes as `quantize
  --mode dynamic`), the input model is left unchanged, and the JSON report lists
  every candidate node.

usage: test_quantize.py ONNXQ_BINARY
"""
import hashlib
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

sys.path.insert(0, os.path.join(harness.ROOT, "models"))
import gen_prepare_models  # noqa: E402
import gen_test_models  # noqa: E402

MIN_COSINE = 0.99
MIN_FILE_CHECKED = 8192  # float models this large must not grow (see the module doc)
VARIANTS = [("qoperator", ["--format", "qoperator"]), ("qdq", ["--format", "qdq"]),
            ("dynamic", ["--mode", "dynamic"]), ("contrib", ["--format", "qoperator", "--contrib"])]
CONTRACTIVE = {"Softmax", "LogSoftmax", "Sigmoid", "Tanh", "Relu", "Clip", "Identity", "Reshape", "Flatten",
               "Transpose", "Squeeze", "Unsqueeze"}


def output_step(model, name):
    """Quantization step behind graph output `name`: the scale of the nearest
    DequantizeLinear upstream through ops whose output moves by at most one
    input step when the input moves by one step (Softmax, Sigmoid, Relu, data
    movement), or None."""
    inits = {i.name: i for i in model.graph.initializer}
    producer = {o: n for n in model.graph.node for o in n.output}
    seen = set()
    while name in producer and name not in seen:
        seen.add(name)
        n = producer[name]
        if n.op_type == "DequantizeLinear" and n.input[1] in inits:
            return float(np.max(numpy_helper.to_array(inits[n.input[1]])))
        if n.op_type not in CONTRACTIVE or not n.input:
            return None
        name = n.input[0]
    return None


def cosine(a, b):
    a = a.astype(np.float64).ravel()
    b = b.astype(np.float64).ravel()
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    return 1.0 if na == 0 and nb == 0 else float(a @ b / (na * nb)) if na and nb else 0.0


def sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def const(name, a):
    """A Constant node writing float32 array a as `name` (PP-OCR keeps its weights so)."""
    return onnx.helper.make_node("Constant", [], [name], value=numpy_helper.from_array(
        np.asarray(a, np.float32), name))


def conv_test_model(name, nodes, weights):
    """Opset-13 model `name` of `nodes` with float32 initializers `weights`
    (name -> array), input x [1,3,8,8] and output y [1,2,8,8]."""
    inits = [numpy_helper.from_array(np.asarray(a, np.float32), n) for n, a in weights]
    g = onnx.helper.make_graph(nodes, name,
                               [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3, 8, 8])],
                               [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 2, 8, 8])],
                               inits)
    m = onnx.helper.make_model(g, opset_imports=[onnx.helper.make_opsetid("", 13)])
    m.ir_version = 7
    return m


def conv_affine_model():
    """Conv -> BatchNormalization -> Mul [1,C,1,1] -> Add scalar -> Relu -> Conv -> Mul [W]: the
    quantizer folds the BatchNormalization into the Conv (FOLDABLE) and keeps the rest."""
    rng = np.random.default_rng(7)
    c = 4
    nodes = [
        onnx.helper.make_node("Conv", ["x", "w0", "b0"], ["c0"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        onnx.helper.make_node("BatchNormalization", ["c0", "g", "be", "mu", "var"], ["n0"], epsilon=1e-3),
        const("k", rng.uniform(0.5, 2.0, (1, c, 1, 1))),
        onnx.helper.make_node("Mul", ["k", "n0"], ["m0"]),
        const("d", 0.25),
        onnx.helper.make_node("Add", ["m0", "d"], ["a0"]),
        onnx.helper.make_node("Relu", ["a0"], ["r0"]),
        onnx.helper.make_node("Conv", ["r0", "w1"], ["c1"], kernel_shape=[1, 1]),
        const("kw", rng.uniform(0.5, 2.0, (8,))),
        onnx.helper.make_node("Mul", ["c1", "kw"], ["y"]),
    ]
    m = conv_test_model("conv_affine", nodes, [
        ("w0", rng.standard_normal((c, 3, 3, 3)) * 0.3), ("b0", rng.standard_normal(c) * 0.1),
        ("g", rng.uniform(0.5, 1.5, c)), ("be", rng.standard_normal(c) * 0.1),
        ("mu", rng.standard_normal(c) * 0.1), ("var", rng.uniform(0.5, 1.5, c)),
        ("w1", rng.standard_normal((2, c, 1, 1)) * 0.5)])
    return m, [[rng.standard_normal((1, 3, 8, 8)).astype(np.float32)] for _ in range(4)]


def upsampler_model():
    """Conv -> Relu -> ConvTranspose (8 -> 4 channels of distinct scales, 3x3, stride 2, pads 1,
    output_padding 1, bias) -> Relu -> Conv: a segmentation decoder's upsampling step; the
    ConvTranspose weight is quantized per output channel (axis 1)."""
    rng = np.random.default_rng(11)
    nodes = [
        onnx.helper.make_node("Conv", ["x", "w0", "b0"], ["c0"], kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                              strides=[2, 2]),
        onnx.helper.make_node("Relu", ["c0"], ["r0"]),
        onnx.helper.make_node("ConvTranspose", ["r0", "wt", "bt"], ["t"], kernel_shape=[3, 3], strides=[2, 2],
                              pads=[1, 1, 1, 1], output_padding=[1, 1]),
        onnx.helper.make_node("Relu", ["t"], ["r1"]),
        onnx.helper.make_node("Conv", ["r1", "w1"], ["y"], kernel_shape=[1, 1]),
    ]
    wt = rng.standard_normal((8, 4, 3, 3)) * np.array([0.05, 0.2, 0.5, 1.0]).reshape(1, 4, 1, 1)
    m = conv_test_model("upsampler", nodes, [
        ("w0", rng.standard_normal((8, 3, 3, 3)) * 0.3), ("b0", rng.standard_normal(8) * 0.1),
        ("wt", wt), ("bt", rng.standard_normal(4) * 0.1), ("w1", rng.standard_normal((2, 4, 1, 1)) * 0.5)])
    return m, [[rng.standard_normal((1, 3, 8, 8)).astype(np.float32)] for _ in range(4)]


def recurrent_model():
    """A sequence model x [6, 1, 16] -> LSTM (32 units, forward; Y and Y_h, whose gate rows
    have weights of distinct scales) -> Squeeze -> GRU (16 units, bidirectional,
    linear_before_reset; Y_h only) -> Reshape -> Gemm -> y [1, 4]: ONNX has no 8-bit form of
    either, so their W and R are int8 per gate row (axis 1) behind DequantizeLinears."""
    rng = np.random.default_rng(12)
    nodes = [
        onnx.helper.make_node("LSTM", ["x", "lw", "lr", "lb"], ["ly", "lh"], hidden_size=32),
        onnx.helper.make_node("Squeeze", ["ly", "one"], ["seq"]),
        onnx.helper.make_node("GRU", ["seq", "gw", "gr", "gb"], ["", "gh"], hidden_size=16,
                              direction="bidirectional", linear_before_reset=1),
        onnx.helper.make_node("Reshape", ["gh", "flat"], ["h"]),
        onnx.helper.make_node("Gemm", ["h", "fw", "fb"], ["y"], transB=1),
    ]
    rows = rng.uniform(0.1, 2.0, (1, 128, 1))
    weights = [("lw", rng.standard_normal((1, 128, 16)) * 0.3 * rows), ("lr", rng.standard_normal((1, 128, 32)) * 0.2),
               ("lb", rng.standard_normal((1, 256)) * 0.1), ("gw", rng.standard_normal((2, 48, 32)) * 0.3),
               ("gr", rng.standard_normal((2, 48, 16)) * 0.3), ("gb", rng.standard_normal((2, 96)) * 0.1),
               ("fw", rng.standard_normal((4, 32)) * 0.5), ("fb", rng.standard_normal(4) * 0.1)]
    inits = [numpy_helper.from_array(np.asarray(a, np.float32), n) for n, a in weights]
    inits += [numpy_helper.from_array(np.array([1], np.int64), "one"),
              numpy_helper.from_array(np.array([1, 32], np.int64), "flat")]
    g = onnx.helper.make_graph(nodes, "recurrent",
                               [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [6, 1, 16])],
                               [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 4]),
                                onnx.helper.make_tensor_value_info("lh", onnx.TensorProto.FLOAT, [1, 1, 32])],
                               inits)
    m = onnx.helper.make_model(g, opset_imports=[onnx.helper.make_opsetid("", 13)])
    m.ir_version = 7
    return m, [[rng.standard_normal((6, 1, 16)).astype(np.float32)] for _ in range(4)]


def simple_rnn_model():
    """An opset-11 RNN (24 units, reverse) -> Reshape -> MatMul: per-axis
    DequantizeLinear needs opset 13, so the quantized model imports it."""
    rng = np.random.default_rng(13)
    nodes = [
        onnx.helper.make_node("RNN", ["x", "w", "r", "b"], ["", "h"], hidden_size=24, direction="reverse"),
        onnx.helper.make_node("Reshape", ["h", "flat"], ["hf"]),
        onnx.helper.make_node("MatMul", ["hf", "m"], ["y"]),
    ]
    weights = [("w", rng.standard_normal((1, 24, 40)) * 0.2), ("r", rng.standard_normal((1, 24, 24)) * 0.1),
               ("b", rng.standard_normal((1, 48)) * 0.1), ("m", rng.standard_normal((24, 3)) * 0.3)]
    inits = [numpy_helper.from_array(np.asarray(a, np.float32), n) for n, a in weights]
    inits.append(numpy_helper.from_array(np.array([1, 24], np.int64), "flat"))
    g = onnx.helper.make_graph(nodes, "simple_rnn",
                               [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [5, 1, 40])],
                               [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 3])], inits)
    m = onnx.helper.make_model(g, opset_imports=[onnx.helper.make_opsetid("", 11)])
    m.ir_version = 6
    return m, [[rng.standard_normal((5, 1, 40)).astype(np.float32)] for _ in range(4)]


def einsum_model():
    """Keras EinsumDense-style layers that tf2onnx writes as Einsum with a constant kernel:
    x [N, 5, 16] -> Einsum(abc,cd->abd) -> Relu -> Einsum(def,abd->abef) (kernel first, labels
    spaced) -> Einsum(abef,ef->ab), whose kernel has no output axis of its own (it stays float).
    The first two kernels are int8 per output axis behind DequantizeLinears."""
    rng = np.random.default_rng(14)
    nodes = [onnx.helper.make_node("Einsum", ["x", "k1"], ["a"], equation="abc,cd->abd"),
             onnx.helper.make_node("Relu", ["a"], ["ar"]),
             onnx.helper.make_node("Einsum", ["k2", "ar"], ["b"], equation="def, abd -> abef"),
             onnx.helper.make_node("Einsum", ["b", "k3"], ["y"], equation="abef,ef->ab")]
    weights = [("k1", rng.standard_normal((16, 32)) * 0.3 * rng.uniform(0.1, 2.0, 32)),
               ("k2", rng.standard_normal((32, 4, 8)) * 0.2), ("k3", rng.standard_normal((4, 8)) * 0.3)]
    g = onnx.helper.make_graph(nodes, "einsum",
                               [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 5, 16])],
                               [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 5])],
                               [numpy_helper.from_array(np.asarray(a, np.float32), n) for n, a in weights])
    m = onnx.helper.make_model(g, opset_imports=[onnx.helper.make_opsetid("", 13)])
    m.ir_version = 7
    return m, [[rng.standard_normal((1, 5, 16)).astype(np.float32)] for _ in range(4)]


def position_table_model():
    """Learned positions added as PyTorch exports `x + self.pos`, then a MatMul and two
    attention-style masks before a Softmax: x [1, 16, 32] -> Add(pos [1, 16, 32]) -> MatMul
    -> Add(mask [16, 32], -inf above a diagonal) -> Add(bias [16, 32]: a distance penalty of
    -0.1 per place, -10000 far below the diagonal) -> Softmax. The position table is int8 per
    row (axis 1) behind a DequantizeLinear in every format; both masks stay float (no scale
    holds -inf, and one set by -10000 would round the penalties to 0)."""
    rng = np.random.default_rng(15)
    rows, cols = np.arange(16)[:, None], np.arange(32)[None, :]
    mask = np.where(cols > 2 * rows, -np.inf, 0.0)
    bias = np.where(cols < 2 * rows - 8, -10000.0, -0.1 * np.abs(cols - 2 * rows))
    nodes = [onnx.helper.make_node("Add", ["x", "pos"], ["a"]),
             onnx.helper.make_node("MatMul", ["a", "w"], ["b"]),
             onnx.helper.make_node("Add", ["b", "mask"], ["c"]),
             onnx.helper.make_node("Add", ["c", "bias"], ["d"]),
             onnx.helper.make_node("Softmax", ["d"], ["y"], axis=-1)]
    weights = [("pos", rng.standard_normal((1, 16, 32)) * 0.1 * rng.uniform(0.2, 2.0, (1, 16, 1))),
               ("w", rng.standard_normal((32, 32)) * 0.2), ("mask", mask), ("bias", bias)]
    g = onnx.helper.make_graph(nodes, "position_table",
                               [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 16, 32])],
                               [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 16, 32])],
                               [numpy_helper.from_array(np.asarray(a, np.float32), n) for n, a in weights])
    m = onnx.helper.make_model(g, opset_imports=[onnx.helper.make_opsetid("", 13)])
    m.ir_version = 7
    return m, [[rng.standard_normal((1, 16, 32)).astype(np.float32)] for _ in range(4)]


def hard_swish_model():
    """PP-OCRv4-style blocks: Conv -> Mul/Add by scalars -> hard-swish spelled
    x * Clip(x + 3, 0, 6) / 6 -> Mul/Add by scalars -> Conv, then x *
    HardSigmoid(x) -> Conv, at opset 13. The quantizer turns both hard-swishes
    into HardSwish (raising the opset to 14) and moves the scalar factors next to
    8-bit tensors into (De)QuantizeLinear scales."""
    rng = np.random.default_rng(11)
    c = 6
    nodes = [
        onnx.helper.make_node("Conv", ["x", "w0", "b0"], ["c0"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        const("s0", [1.5]), onnx.helper.make_node("Mul", ["s0", "c0"], ["m0"]),
        const("t0", [0.3]), onnx.helper.make_node("Add", ["m0", "t0"], ["a0"]),
        const("three", [3.0]), onnx.helper.make_node("Add", ["a0", "three"], ["h0"]),
        const("zero", 0.0), const("six", 6.0), onnx.helper.make_node("Clip", ["h0", "zero", "six"], ["h1"]),
        onnx.helper.make_node("Mul", ["a0", "h1"], ["h2"]),
        const("six_d", [6.0]), onnx.helper.make_node("Div", ["h2", "six_d"], ["h3"]),
        const("s1", [0.8]), onnx.helper.make_node("Mul", ["s1", "h3"], ["m1"]),
        const("t1", [-0.1]), onnx.helper.make_node("Add", ["m1", "t1"], ["a1"]),
        onnx.helper.make_node("Conv", ["a1", "w1"], ["c1"], kernel_shape=[1, 1]),
        onnx.helper.make_node("HardSigmoid", ["c1"], ["g1"], alpha=1.0 / 6.0, beta=0.5),
        onnx.helper.make_node("Mul", ["c1", "g1"], ["h4"]),
        onnx.helper.make_node("Conv", ["h4", "w2"], ["y"], kernel_shape=[1, 1]),
    ]
    m = conv_test_model("hard_swish", nodes, [
        ("w0", rng.standard_normal((c, 3, 3, 3)) * 0.4), ("b0", rng.standard_normal(c) * 0.2),
        ("w1", rng.standard_normal((c, c, 1, 1)) * 0.5), ("w2", rng.standard_normal((2, c, 1, 1)) * 0.5)])
    return m, [[rng.uniform(-2, 2, (1, 3, 8, 8)).astype(np.float32)] for _ in range(4)]


def contrib_ops_model():
    """Two Convs whose outputs meet in Mul, Add (also with a Relu after it), LeakyRelu, Sigmoid, GlobalAveragePool, a
    squeeze-excite style HardSigmoid gate, and a Mul by a scalar before a
    hard-swish (x * HardSigmoid(x)), then a last Conv: with --contrib all of it
    runs on 8-bit tensors as com.microsoft QLinear ops (CONTRIB_OPS)."""
    rng = np.random.default_rng(13)
    c = 4
    nodes = [
        onnx.helper.make_node("Conv", ["x", "wa", "ba"], ["ca"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        onnx.helper.make_node("Conv", ["x", "wb"], ["cb"], kernel_shape=[1, 1]),
        onnx.helper.make_node("Mul", ["ca", "cb"], ["m"]),
        onnx.helper.make_node("Add", ["m", "cb"], ["a"]),
        onnx.helper.make_node("Relu", ["a"], ["r"]),
        onnx.helper.make_node("LeakyRelu", ["cb"], ["l"], alpha=0.1),
        onnx.helper.make_node("Add", ["r", "l"], ["s"]),
        onnx.helper.make_node("Sigmoid", ["s"], ["g"]),
        onnx.helper.make_node("GlobalAveragePool", ["l"], ["p"]),
        onnx.helper.make_node("HardSigmoid", ["p"], ["hp"], alpha=0.2, beta=0.5),
        onnx.helper.make_node("Mul", ["g", "hp"], ["gp"]),
        const("half", 0.5),
        onnx.helper.make_node("Mul", ["ca", "half"], ["cs"]),
        onnx.helper.make_node("HardSigmoid", ["cs"], ["hg"], alpha=1.0 / 6.0, beta=0.5),
        onnx.helper.make_node("Mul", ["cs", "hg"], ["hw"]),
        onnx.helper.make_node("Add", ["gp", "hw"], ["z"]),
        onnx.helper.make_node("Conv", ["z", "wy"], ["y"], kernel_shape=[1, 1]),
    ]
    m = conv_test_model("contrib_ops", nodes, [
        ("wa", rng.standard_normal((c, 3, 3, 3)) * 0.6), ("ba", rng.standard_normal(c) * 0.1),
        ("wb", rng.standard_normal((c, 3, 1, 1)) * 0.5), ("wy", rng.standard_normal((2, c, 1, 1)) * 0.5)])
    return m, [[rng.standard_normal((1, 3, 8, 8)).astype(np.float32)] for _ in range(4)]


def fire_model():
    """A SqueezeNet fire module: a squeeze Conv + Relu, two expand Convs + Relu of
    different ranges, their Concat, an identity Reshape to the Concat's own
    Shape (as ShuffleNet's channel shuffle reads it), then a Conv. In the
    QOperator form all of it runs on 8-bit tensors (SHARED_CONCAT): the expand
    Convs write at the Concat's parameters, and Shape reads the 8-bit tensor."""
    rng = np.random.default_rng(17)
    nodes = [
        onnx.helper.make_node("Conv", ["x", "ws"], ["cs"], kernel_shape=[1, 1]),
        onnx.helper.make_node("Relu", ["cs"], ["s"]),
        onnx.helper.make_node("Conv", ["s", "w1"], ["c1"], kernel_shape=[1, 1]),
        onnx.helper.make_node("Relu", ["c1"], ["e1"]),
        onnx.helper.make_node("Conv", ["s", "w3"], ["c3"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        onnx.helper.make_node("Relu", ["c3"], ["e3"]),
        onnx.helper.make_node("Concat", ["e1", "e3"], ["cat"], axis=1),
        onnx.helper.make_node("Shape", ["cat"], ["shape"]),
        onnx.helper.make_node("Reshape", ["cat", "shape"], ["r"]),
        onnx.helper.make_node("Conv", ["r", "wy"], ["y"], kernel_shape=[1, 1]),
    ]
    m = conv_test_model("fire", nodes, [
        ("ws", rng.standard_normal((4, 3, 1, 1)) * 0.6), ("w1", rng.standard_normal((3, 4, 1, 1)) * 0.3),
        ("w3", rng.standard_normal((3, 4, 3, 3)) * 0.4), ("wy", rng.standard_normal((2, 6, 1, 1)) * 0.5)])
    return m, [[rng.standard_normal((1, 3, 8, 8)).astype(np.float32)] for _ in range(4)]


FOLDABLE = {"conv_affine": 1}
SHARED_CONCAT = {"fire"}  # a Concat that an 8-bit op reads: one QuantizeLinear in, one DequantizeLinear out
# hard-swish patterns made HardSwish, and scalar factors moved into scales (static formats)
HARD_SWISH = {"hard_swish": (2, 2)}
QLINEAR_CONCAT = {"fpn_head"}  # concatenates two Conv outputs of different ranges
# --contrib: com.microsoft op -> how many, and the float ops it replaced (none may be left);
# report counts contrib_ops and folded_factors
CONTRIB_OPS = {
    "contrib_ops": ({"QLinearMul": 3, "QLinearAdd": 5, "QLinearSigmoid": 1, "QLinearLeakyRelu": 1,
                     "QLinearGlobalAveragePool": 1},
                    {"Mul", "Add", "Relu", "Sigmoid", "LeakyRelu", "GlobalAveragePool", "HardSigmoid", "HardSwish"},
                    10, 1),
    "mobile_block": ({"QLinearAdd": 3, "QLinearMul": 2, "QLinearGlobalAveragePool": 1},
                     {"Add", "Mul", "GlobalAveragePool", "HardSigmoid", "HardSwish"}, 5, 0),
}


INTEGER_OPS = {("", "QLinearConv"), ("", "ConvInteger"), ("", "QLinearMatMul"), ("", "MatMulInteger"),
               ("com.microsoft", "QGemm")}
CONVERSIONS = {"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear"}


def work_in_ort(qm, cases):
    """(multiply-adds of the integer ops, elements converted by (Dynamic)QuantizeLinear /
    DequantizeLinear on activations) per case, averaged, from the tensors ONNX Runtime
    computes: an independent count of the report's evaluation.work_per_sample."""
    consts = {i.name: numpy_helper.to_array(i) for i in qm.graph.initializer}
    consts.update({n.output[0]: numpy_helper.to_array(n.attribute[0].t) for n in qm.graph.node
                   if n.op_type == "Constant"})
    watched = [n for n in qm.graph.node if (n.domain, n.op_type) in INTEGER_OPS or
               (n.domain == "" and n.op_type in CONVERSIONS and n.input[0] not in consts)]
    names = []
    for n in watched:
        names += [n.output[0]] + ([n.input[0]] if "MatMul" in n.op_type else [])
    m = onnx.ModelProto()
    m.CopyFrom(qm)
    present = {o.name for o in m.graph.output}
    for t in dict.fromkeys(names):
        if t not in present:
            m.graph.output.append(onnx.helper.make_empty_tensor_value_info(t))
    with tempfile.TemporaryDirectory(prefix="oq-work-") as tmp:
        path = os.path.join(tmp, "m.onnx")
        onnx.save(m, path)
        macs = converted = 0
        for case in cases:
            got = dict(zip([o.name for o in m.graph.output], harness.run_ort(path, case)))
            for n in watched:
                size = got[n.output[0]].size
                if n.op_type in CONVERSIONS:
                    converted += size
                elif n.op_type in ("QLinearConv", "ConvInteger"):
                    w = consts[n.input[3 if n.op_type == "QLinearConv" else 1]]
                    macs += size * (w.size // w.shape[0])
                elif n.op_type == "QGemm":
                    trans_b = any(a.name == "transB" and a.i for a in n.attribute)
                    macs += size * consts[n.input[3]].shape[1 if trans_b else 0]
                else:
                    b = consts.get(n.input[3 if n.op_type == "QLinearMatMul" else 1])
                    macs += size * (b.shape[-2] if b is not None and b.ndim >= 2 else got[n.input[0]].shape[-1])
    return macs / len(cases), converted / len(cases)


def stored_weight_bytes(m):
    """Bytes of the constants stored in m: initializers and Constant nodes' values."""
    tensors = list(m.graph.initializer) + [a.t for n in m.graph.node if n.op_type == "Constant"
                                           for a in n.attribute if a.name == "value"]
    return sum(numpy_helper.to_array(t).nbytes for t in tensors)


def cntk_checks(tag, qm, rep_path, ratio, tally):
    """CNTK's export (Conv without bias + Add, weights through Reshape, MatMul +
    Add) in the QOperator format: every Conv and MatMul quantized, 8-bit from the
    input's QuantizeLinear to the last integer op (MaxPool and Reshape run on
    uint8; nothing is dequantized on the way), the file at least 3x smaller."""
    rep = json.load(open(rep_path))
    counts = rep["node_counts"]
    ops = [n.op_type for n in qm.graph.node]
    tally.case(tag + " all quantized", counts["quantized"] == counts["candidates"] == 3 and
               not {"Conv", "MatMul", "Gemm"} & set(ops),
               "%d of %d Conv/MatMul quantized, float ones left: %s" %
               (counts["quantized"], counts["candidates"], sorted({"Conv", "MatMul", "Gemm"} & set(ops))))
    last_int = max(i for i, op in enumerate(ops) if op in ("QLinearConv", "MatMulInteger", "QLinearMatMul"))
    between = [op for op in ops[1:last_int] if op not in ("QLinearConv", "QLinearMatMul", "MatMulInteger",
                                                           "MaxPool", "Reshape", "QuantizeLinear")]
    tally.case(tag + " 8-bit throughout", ops[0] == "QuantizeLinear" and not between and
               ops.count("QuantizeLinear") == 1 and "DequantizeLinear" not in ops,
               "ops %s: float ops between 8-bit ones: %s" % (ops, between or "none"))
    tally.case(tag + " 3x smaller", ratio >= 3.0, "file %.2fx smaller (at least 3x)" % ratio)


def transposed_convs_quantized(qm, qdq):
    """How many ConvTranspose nodes of qm read their weight as an int8
    initializer through a DequantizeLinear along axis 1 (the output channels
    of a one-group ConvTranspose; no axis for one channel), and with qdq also their input through a
    DequantizeLinear: ONNX has no 8-bit ConvTranspose, so outside the QDQ
    format only the weight is quantized."""
    made = {o: n for n in qm.graph.node for o in n.output}
    int8 = {t.name for t in qm.graph.initializer if t.data_type == onnx.TensorProto.INT8}
    sizes = {t.name: int(np.prod(t.dims)) for t in qm.graph.initializer}
    count = 0
    for n in qm.graph.node:
        if n.op_type != "ConvTranspose":
            continue
        w, x = made.get(n.input[1]), made.get(n.input[0])
        if w is None or w.op_type != "DequantizeLinear" or w.input[0] not in int8:
            continue
        axis = [a.i for a in w.attribute if a.name == "axis"]
        per_channel = axis == [1] or (not axis and sizes.get(w.input[1]) == 1)  # one output channel: one scale
        count += per_channel and (not qdq or (x is not None and x.op_type == "DequantizeLinear"))
    return count


RECURRENT = ("LSTM", "GRU", "RNN")


def recurrent_weights_quantized(qm):
    """How many LSTM/GRU/RNN nodes of qm read both W and R as int8 initializers
    through DequantizeLinears along axis 1 (one row per gate unit)."""
    made = {o: n for n in qm.graph.node for o in n.output}
    int8 = {t.name for t in qm.graph.initializer if t.data_type == onnx.TensorProto.INT8}
    count = 0
    for n in qm.graph.node:
        if n.op_type not in RECURRENT:
            continue
        dqs = [made.get(n.input[k]) for k in (1, 2)]
        count += all(d is not None and d.op_type == "DequantizeLinear" and d.input[0] in int8 and
                     [a.i for a in d.attribute if a.name == "axis"] == [1] for d in dqs)
    return count


def cases_for(tmp):
    """(name, model path, data folder, list of input-array lists) for every model."""
    out = []
    for name, (m, cases) in [("conv_affine", conv_affine_model()), ("upsampler", upsampler_model()),
                             ("recurrent", recurrent_model()), ("simple_rnn", simple_rnn_model()),
                             ("einsum", einsum_model()), ("position_table", position_table_model()),
                             ("hard_swish", hard_swish_model()),
                             ("contrib_ops", contrib_ops_model()), ("fire", fire_model())]:
        path = os.path.join(tmp, name + ".onnx")
        onnx.save(m, path)
        for k, case in enumerate(cases):
            harness.write_pb_dir(os.path.join(tmp, name + "_data", "case_%d" % k), case)
        out.append((name, path, os.path.join(tmp, name + "_data"), cases))
    # the miniatures of the real models, and the graphs older exporters leave (CNTK's
    # opset 8 / IR 3, weights made by ConstantOfShape, Gemm + BatchNormalization)
    for name, m, cases in [*gen_test_models.models(), *gen_prepare_models.models()]:
        path = os.path.join(tmp, name + ".onnx")
        onnx.save(m, path)
        data = os.path.join(tmp, name + "_data")
        for k, case in enumerate(cases):
            harness.write_pb_dir(os.path.join(data, "case_%d" % k), case, gen_prepare_models.feed_names(m))
        out.append((name, path, data, cases))
    example = os.path.join(harness.ROOT, "models", "example", "tiny_cnn.onnx")
    calib = os.path.join(harness.ROOT, "calibration", "example")
    if os.path.exists(example):
        samples = sorted(d for d in os.listdir(calib) if d.startswith("sample_"))
        cases = [harness.read_pb_dir(os.path.join(calib, d), "input") for d in samples]
        out.append(("tiny_cnn", example, calib, cases))
    return out


def usage_errors(exe, tmp, tally):
    """Options that contradict --mode dynamic: one error line, exit 2, nothing written."""
    model = os.path.join(harness.ROOT, "models", "example", "tiny_cnn.onnx")
    out = os.path.join(tmp, "refused.onnx")
    for args in (["convert", model, "--mode", "dynamic", "--calib", model],
                 ["convert", model, "--mode", "dynamic", "--format", "qdq"],
                 ["quantize", model, "--mode", "dynamic", "--activation-type", "int8"],
                 ["convert", model, "--mode", "fast"],
                 ["convert", model, "--mode", "dynamic", "--contrib"],
                 ["convert", model]):
        r = subprocess.run([exe, *args, "-o", out], capture_output=True, text=True)
        lines = r.stderr.strip().splitlines()
        tally.case("usage: " + " ".join(args[2:]), r.returncode == 2 and len(lines) == 1 and
                   lines[0].startswith("onnxq: error: ") and not os.path.exists(out),
                   "exit %d: %s" % (r.returncode, lines[0] if lines else "(no message)"))


def channel_mean_error(model, ref, cases):
    """Mean over channels (axis 1) of |mean error| of model's first output against ref's, over cases."""
    y = np.concatenate([harness.run_ort(model, c)[0] for c in cases]).astype(np.float64)
    r = np.concatenate([harness.run_ort(ref, c)[0] for c in cases]).astype(np.float64)
    axes = tuple(a for a in range(y.ndim) if a != 1) if y.ndim > 1 else (0,)
    return float(np.abs((y - r).mean(axis=axes)).mean())


# models whose first output a quantized product writes (through nothing that moves its mean)
BIAS_CORRECTED = ("tiny_cnn", "conv_affine")


def bias_correction(exe, tmp, tally, models):
    """--bias-correction on against off: smaller per-channel mean output error on the calibration samples."""
    for name, path, data, cases in models:
        if name not in BIAS_CORRECTED:
            continue
        for fmt, opts in VARIANTS:
            errs, reps = [], []
            for bc in ("off", "on"):
                out = os.path.join(tmp, "%s_%s_bc_%s.onnx" % (name, fmt, bc))
                r = subprocess.run([exe, "quantize", path, "--data", data, *opts, "--bias-correction", bc, "-o", out,
                                    "--report", out + ".json", "-q"], capture_output=True, text=True)
                if r.returncode != 0:
                    tally.case("%s/%s bias correction %s" % (name, fmt, bc), False, r.stderr.strip())
                    break
                errs.append(channel_mean_error(out, path, cases))
                reps.append(json.load(open(out + ".json"))["bias_correction"])
            if len(errs) < 2:
                continue
            tally.case("%s/%s bias correction" % (name, fmt),
                       errs[1] < errs[0] and reps[1]["applied"] and reps[1]["nodes"] > 0 and not reps[0]["applied"],
                       "mean |per-channel mean error| %.3g without, %.3g with; report: %d nodes corrected on %d "
                       "samples" % (errs[0], errs[1], reps[1]["nodes"], reps[1]["samples"]))


def equalization_model():
    """Conv -> Relu -> depthwise Conv, the first Conv's channels 1x to 1000x narrower than the widest
    and the depthwise weights as much wider: every output channel spans about the same range."""
    rng = np.random.default_rng(11)
    c = 4
    w0 = rng.standard_normal((c, 3, 3, 3)) * 0.3 * (10.0 ** -np.arange(c))[:, None, None, None]
    nodes = [onnx.helper.make_node("Conv", ["x", "w0", "b0"], ["c0"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             onnx.helper.make_node("Relu", ["c0"], ["r0"]),
             onnx.helper.make_node("Conv", ["r0", "w1", "b1"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                                   group=c)]
    inits = [numpy_helper.from_array(np.asarray(a, np.float32), n) for n, a in [
        ("w0", w0), ("b0", np.abs(w0).mean(axis=(1, 2, 3))), ("w1", rng.standard_normal((c, 1, 3, 3)) * 0.5 * (10.0 ** np.arange(c))[:, None, None, None]),
        ("b1", np.zeros(c))]]
    g = onnx.helper.make_graph(nodes, "equalization",
                               [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3, 8, 8])],
                               [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, c, 8, 8])], inits)
    m = onnx.helper.make_model(g, opset_imports=[onnx.helper.make_opsetid("", 13)])
    m.ir_version = 7
    return m, [[rng.standard_normal((1, 3, 8, 8)).astype(np.float32)] for _ in range(8)]


def equalization(exe, tmp, tally):
    """--equalization on against off on equalization_model: worst channel's SQNR, and the report."""
    m, cases = equalization_model()
    path, data = os.path.join(tmp, "equalization.onnx"), os.path.join(tmp, "equalization_data")
    onnx.save(m, path)
    for k, case in enumerate(cases):
        harness.write_pb_dir(os.path.join(data, "case_%d" % k), case)
    ref = np.concatenate([harness.run_ort(path, c)[0] for c in cases]).astype(np.float64)
    worst, rep_ = [], None
    for eq in ("off", "on"):
        out = os.path.join(tmp, "equalization_%s.onnx" % eq)
        r = subprocess.run([exe, "quantize", path, "--data", data, "--equalization", eq, "-o", out, "--report",
                            out + ".json", "-q"], capture_output=True, text=True)
        if r.returncode != 0:
            tally.case("equalization %s" % eq, False, r.stderr.strip())
            return
        y = np.concatenate([harness.run_ort(out, c)[0] for c in cases]).astype(np.float64)
        sqnr = [10 * np.log10((ref[:, k] ** 2).sum() / ((ref[:, k] - y[:, k]) ** 2).sum()) for k in range(y.shape[1])]
        worst.append(min(sqnr))
        rep_ = json.load(open(out + ".json"))["equalization"]
    pairs = rep_["pairs"]
    tally.case("equalization", worst[1] > worst[0] + 10 and rep_["applied"] and len(pairs) == 1 and
               pairs[0]["scaled_channels"] >= 3,
               "worst output channel %.1f dB without, %.1f dB with (at least 10 dB better); report: %s"
               % (worst[0], worst[1], pairs))


def contrib_tables(exe, tmp, tally):
    """`convert --contrib` with a table from plain `calibrate` leaves the contrib
    ops float and says so in one warning line; a table from `calibrate
    --contrib` gives the bytes `quantize --contrib` gives without bias
    correction (which needs the samples that convert does not have)."""
    m, cases = contrib_ops_model()
    path = os.path.join(tmp, "contrib_tables.onnx")
    onnx.save(m, path)
    data = os.path.join(tmp, "contrib_tables_data")
    for k, case in enumerate(cases):
        harness.write_pb_dir(os.path.join(data, "case_%d" % k), case)
    out = {}
    for tag, calib_opts in (("plain", []), ("contrib", ["--contrib"])):
        table = os.path.join(tmp, "contrib_tables_%s.json" % tag)
        out[tag] = os.path.join(tmp, "contrib_tables_%s.onnx" % tag)
        subprocess.run([exe, "calibrate", path, "--data", data, *calib_opts, "-q", "-o", table], check=True)
        r = subprocess.run([exe, "convert", path, "--calib", table, "--contrib", "-q", "-o", out[tag],
                            "--report", out[tag] + ".json"], capture_output=True, text=True)
        warned = [ln for ln in r.stderr.splitlines() if "calibrate --contrib" in ln]
        counts = json.load(open(out[tag] + ".json"))["node_counts"] if r.returncode == 0 else {}
        if tag == "plain":
            tally.case("contrib table: plain", r.returncode == 0 and len(warned) == 1 and
                       warned[0].startswith("onnxq: warning: ") and counts.get("contrib_ops") == 0 and
                       counts.get("contrib_no_range", 0) > 0,
                       "exit %d, warning: %s, contrib_ops %s, contrib_no_range %s"
                       % (r.returncode, warned[0] if warned else "(none)", counts.get("contrib_ops"),
                          counts.get("contrib_no_range")))
        else:
            q = out[tag] + ".quantize.onnx"
            subprocess.run([exe, "quantize", path, "--data", data, "--contrib", "--bias-correction", "off", "-q",
                            "-o", q], check=True)
            tally.case("contrib table: calibrate --contrib", r.returncode == 0 and not warned and
                       counts.get("contrib_ops") == CONTRIB_OPS["contrib_ops"][2] and sha(q) == sha(out[tag]),
                       "exit %d, contrib_ops %s, same bytes as quantize --contrib --bias-correction off: %s"
                       % (r.returncode, counts.get("contrib_ops"), sha(q) == sha(out[tag])))


def detector_outputs(exe, tmp, tally):
    """A detector-style head: per-location class scores from two Conv + Sigmoid
    branches, concatenated and moved to the output (no 8-bit op reads the
    Concat, so its float inputs stay float: no QuantizeLinear before it), the
    class ids (ArgMax, int64) and the locations above a threshold (NonZero, a
    shape that depends on the values). quantize evaluates what it can: the
    float output on every sample, the int64 ones by equality or, when the two
    models give another shape, by counting; ONNX Runtime runs the result."""
    rng = np.random.default_rng(13)
    h = onnx.helper
    nodes = [
        h.make_node("Conv", ["x", "w0"], ["c0"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        h.make_node("Sigmoid", ["c0"], ["s0"]),
        h.make_node("Reshape", ["s0", "shape0"], ["r0"]),
        h.make_node("Conv", ["x", "w1"], ["c1"], kernel_shape=[1, 1]),
        h.make_node("Sigmoid", ["c1"], ["s1"]),
        h.make_node("Reshape", ["s1", "shape1"], ["r1"]),
        h.make_node("Concat", ["r0", "r1"], ["cat"], axis=1),
        h.make_node("Transpose", ["cat"], ["scores"], perm=[0, 2, 1]),
        h.make_node("ArgMax", ["cat"], ["cls"], axis=1, keepdims=0),
        h.make_node("ReduceMax", ["cat"], ["best"], axes=[1], keepdims=0),
        h.make_node("Greater", ["best", "thr"], ["hit"]),
        h.make_node("NonZero", ["hit"], ["idx"]),
    ]
    inits = [numpy_helper.from_array((rng.standard_normal((4, 3, 3, 3)) * 0.4).astype(np.float32), "w0"),
             numpy_helper.from_array((rng.standard_normal((2, 3, 1, 1)) * 0.6).astype(np.float32), "w1"),
             numpy_helper.from_array(np.array([1, 4, 64], np.int64), "shape0"),
             numpy_helper.from_array(np.array([1, 2, 64], np.int64), "shape1"),
             numpy_helper.from_array(np.array(0.7, np.float32), "thr")]
    g = h.make_graph(nodes, "detector_head", [h.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3, 8, 8])],
                     [h.make_tensor_value_info("scores", onnx.TensorProto.FLOAT, [1, 64, 6]),
                      h.make_tensor_value_info("cls", onnx.TensorProto.INT64, [1, 64]),
                      h.make_tensor_value_info("idx", onnx.TensorProto.INT64, [2, None])], inits)
    m = h.make_model(g, opset_imports=[h.make_opsetid("", 13)])
    m.ir_version = 7
    path, data = os.path.join(tmp, "detector_head.onnx"), os.path.join(tmp, "detector_head.npy")
    onnx.save(m, path)
    xs = rng.standard_normal((16, 1, 3, 8, 8)).astype(np.float32)
    np.save(data, xs)
    out, report = os.path.join(tmp, "detector_head_q.onnx"), os.path.join(tmp, "detector_head_q.json")
    r = subprocess.run([exe, "quantize", path, "--data", data, "-o", out, "--report", report],
                       capture_output=True, text=True)
    tally.case("detector head quantize", r.returncode == 0 and os.path.exists(out),
               "exit %d%s" % (r.returncode, "" if r.returncode == 0 else ": " + r.stderr.strip()))
    if r.returncode != 0:
        return
    outs = {o["name"]: o for o in json.load(open(report))["evaluation"]["outputs"]}
    sc, cls, idx = outs["scores"], outs["cls"], outs["idx"]
    tally.case("detector head float output compared", sc["compared_samples"] == 16 and sc["sqnr_db"] is not None,
               "scores: compared on %d of 16 samples, SQNR %s" % (sc["compared_samples"], sc["sqnr_db"]))
    # the same counts from ONNX Runtime's runs of both models (fixed data: deterministic)
    want = {"cls": [0, 0], "idx": [0, 0]}  # identical, shape differs
    for x in xs:
        f, q = harness.run_ort(path, [x]), harness.run_ort(out, [x])
        for k, name in ((1, "cls"), (2, "idx")):
            if f[k].shape != q[k].shape:
                want[name][1] += 1
            else:
                want[name][0] += bool((f[k] == q[k]).all())
    got = {n: [o.get("identical_samples"), o.get("shape_differs", 0)] for n, o in (("cls", cls), ("idx", idx))}
    tally.case("detector head int64 outputs counted",
               cls["compared_samples"] == idx["compared_samples"] == 0 and cls["sqnr_db"] is None and got == want and
               "compared for equality on 16 of 16 samples (not float or empty): %d identical" % want["cls"][0]
               in r.stderr,
               "[identical, shape differs] of 16 samples: %s, in ONNX Runtime %s" % (got, want))
    qm = onnx.load(out)
    made = {o: n.op_type for n in qm.graph.node for o in n.output}
    cat = [n for n in qm.graph.node if n.op_type == "Concat"]
    tally.case("detector head Concat stays float", len(cat) == 1 and
               all(made.get(i) != "QuantizeLinear" for i in cat[0].input),
               "the Concat's inputs come from %s" % ([made.get(i) for i in cat[0].input] if cat else "no Concat"))
    try:
        for k in range(2):
            harness.run_ort(out, [xs[k]])
        tally.case("detector head in ONNX Runtime", True, "the quantized head runs")
    except harness.RunError as e:
        tally.case("detector head in ONNX Runtime", False, str(e))


def main():
    exe = harness.require_binary(sys.argv, "test_quantize.py ONNXQ_BINARY")
    harness.require_ort()
    tally = harness.Tally()
    with tempfile.TemporaryDirectory(prefix="oq-quant-") as tmp:
        usage_errors(exe, tmp, tally)
        detector_outputs(exe, tmp, tally)
        contrib_tables(exe, tmp, tally)
        models = cases_for(tmp)
        bias_correction(exe, tmp, tally, models)
        equalization(exe, tmp, tally)
        for name, path, data, cases in models:
            before = sha(path)
            for fmt, opts in VARIANTS:
                tag = "%s/%s" % (name, fmt)
                out = os.path.join(tmp, "%s_%s.onnx" % (name, fmt))
                report = out + ".json"
                r = subprocess.run([exe, "quantize", path, "--data", data, *opts, "-o", out,
                                    "--report", report, "-q"], capture_output=True, text=True)
                if r.returncode != 0:
                    tally.case(tag + " quantize", False, r.stderr.strip())
                    continue
                again = out + ".again.onnx"
                if fmt == "dynamic":  # no calibration: convert needs no table, and evaluates nothing without data
                    subprocess.run([exe, "convert", path, *opts, "-o", again, "--report", again + ".json", "-q"],
                                   capture_output=True, text=True)
                    rep2 = json.load(open(again + ".json")) if os.path.exists(again + ".json") else {}
                    tally.case(tag + " convert without data", rep2.get("options", {}).get("mode") == "dynamic" and
                               "evaluation" in rep2 and rep2["evaluation"] is None and "calibration" not in rep2,
                               "report: mode dynamic, no calibration section, evaluation null")
                else:  # the rerun records every activation: the output must not change, so the
                    # default calibration records all that the rewrite reads; it also runs on
                    # 3 threads, which must not change the report either (timings aside)
                    subprocess.run([exe, "quantize", path, "--data", data, *opts, "-o", again, "-q",
                                    "--all-tensors", "--threads", "3", "--report", again + ".json"],
                                   capture_output=True, text=True)
                    reports = [json.load(open(f)) if os.path.exists(f) else None for f in (report, again + ".json")]
                    for rep_ in reports:
                        if rep_:
                            rep_.pop("timings_s", None)
                            rep_.get("model", {}).pop("output", None)
                    tally.case(tag + " report", reports[0] is not None and reports[0] == reports[1],
                               "the same report (timings and output path aside) with --threads 3 and --all-tensors")
                tally.case(tag + " deterministic", os.path.exists(again) and sha(again) == sha(out),
                           "byte-identical output for the same inputs" +
                           ("" if fmt == "dynamic" else ", with or without --all-tensors"))
                qm = onnx.load(out)
                fm = onnx.load(path)
                w_in, w_out = stored_weight_bytes(fm), stored_weight_bytes(qm)
                tally.case(tag + " constants not larger", w_out <= w_in,
                           "%d bytes of constants from %d" % (w_out, w_in))
                if os.path.getsize(path) >= MIN_FILE_CHECKED:
                    tally.case(tag + " file not larger", os.path.getsize(out) <= os.path.getsize(path),
                               "%d bytes from %d" % (os.path.getsize(out), os.path.getsize(path)))
                if name == "constant_of_shape":
                    counts = json.load(open(report))["node_counts"]
                    tally.case(tag + " all quantized", counts["quantized"] == counts["candidates"] == 2,
                               "%d of %d Conv/MatMul with ConstantOfShape weights quantized"
                               % (counts["quantized"], counts["candidates"]))
                if name == "cntk_style" and fmt == "qoperator":
                    cntk_checks(tag, qm, rep_path=report, ratio=os.path.getsize(path) / os.path.getsize(out),
                                tally=tally)
                try:
                    onnx.checker.check_model(qm, full_check=True)
                    tally.case(tag + " checker", True, "full_check passes")
                except Exception as e:  # the checker's exception types vary by version
                    tally.case(tag + " checker", False, str(e).splitlines()[0])
                ops = [(n.domain, n.op_type) for n in qm.graph.node]
                convt = [n for n in fm.graph.node if n.op_type == "ConvTranspose"]
                if convt:
                    tally.case(tag + " ConvTranspose", transposed_convs_quantized(qm, qdq=fmt == "qdq") == len(convt),
                               "%d of %d ConvTranspose weights int8 behind a per-channel DequantizeLinear%s"
                               % (transposed_convs_quantized(qm, qdq=fmt == "qdq"), len(convt),
                                  ", their inputs dequantized 8-bit tensors" if fmt == "qdq" else ""))
                if name == "einsum":
                    made = {o: n for n in qm.graph.node for o in n.output}
                    int8 = {t.name for t in qm.graph.initializer if t.data_type == onnx.TensorProto.INT8}
                    dq = [any(i in made and made[i].op_type == "DequantizeLinear" and made[i].input[0] in int8
                              for i in n.input) for n in qm.graph.node if n.op_type == "Einsum"]
                    tally.case(tag + " Einsum kernels", dq == [True, True, False],
                               "which Einsums read an int8 kernel behind a DequantizeLinear: %s (want the first two)"
                               % dq)
                if name == "position_table":
                    made = {o: n for n in qm.graph.node for o in n.output}
                    int8 = {t.name for t in qm.graph.initializer if t.data_type == onnx.TensorProto.INT8}
                    dqs = [[made[i] for i in n.input if i in made and made[i].op_type == "DequantizeLinear" and
                            made[i].input[0] in int8] for n in qm.graph.node if n.op_type == "Add"]
                    dq = [[a.i for a in d[0].attribute if a.name == "axis"] if d else None for d in dqs]
                    reasons = [n.get("reason") for n in json.load(open(report))["nodes"] if n["op"] == "Add"]
                    masked = [n for n in qm.graph.node if n.op_type == "Add" and "mask" in n.input]
                    if fmt in ("qoperator", "contrib"):  # no 8-bit op reads the product: it stays float
                        tally.case(tag + " float product", len(masked) == 1 and
                                   made[[i for i in masked[0].input if i != "mask"][0]].op_type != "DequantizeLinear",
                                   "the MatMul before the mask Add writes float, not 8-bit and a DequantizeLinear")
                    tally.case(tag + " table Add", dq == [[1], None, None] and reasons[0] is None and
                               "infinite" in (reasons[1] or "") and "mask values" in (reasons[2] or ""),
                               "DequantizeLinear axes of the Adds' constants %s (want the position table per row, "
                               "[1], and both masks float: None); reasons %s" % (dq, reasons))
                recurrent = [n for n in fm.graph.node if n.op_type in RECURRENT]
                if recurrent:
                    tally.case(tag + " recurrent weights", recurrent_weights_quantized(qm) == len(recurrent),
                               "%d of %d LSTM/GRU/RNN nodes read W and R as int8 behind per-row DequantizeLinears"
                               % (recurrent_weights_quantized(qm), len(recurrent)))
                if fmt == "contrib":  # the Gemms of the prepared model (a MatMul + Add of a 2-D input is one)
                    prepared = out + ".prepared.onnx"
                    subprocess.run([exe, "prepare", path, "-o", prepared, "-q"], check=True)
                    gemms = sum(n.op_type == "Gemm" for n in onnx.load(prepared).graph.node)
                if fmt == "contrib" and gemms:
                    tally.case(tag + " QGemm", ops.count(("com.microsoft", "QGemm")) == gemms and
                               ("", "MatMulInteger") not in ops, "every Gemm became com.microsoft QGemm")
                if fmt == "contrib" and name in QLINEAR_CONCAT:
                    tally.case(tag + " QLinearConcat", ("com.microsoft", "QLinearConcat") in ops and
                               ("", "Concat") not in ops, "the Concat of differently scaled inputs stays 8-bit")
                if fmt in ("qoperator", "contrib") and name in SHARED_CONCAT:
                    conv = [(n.op_type, n.input[0]) for n in qm.graph.node if n.op_type in CONVERSIONS]
                    shape_reads = [n.input[0] for n in qm.graph.node if n.op_type == "Shape"]
                    tally.case(tag + " shared concat", sorted(conv) == [("DequantizeLinear", "y_quantized"),
                                                                        ("QuantizeLinear", "x")] and
                               ("", "Concat") in ops and ("com.microsoft", "QLinearConcat") not in ops and
                               shape_reads == ["cat_quantized"],
                               "the Concat and the Shape read 8-bit tensors, one QuantizeLinear at the input and "
                               "one DequantizeLinear at the output: %s, Shape reads %s" % (conv, shape_reads))
                if fmt == "contrib" and name in CONTRIB_OPS:
                    want, gone, n_ops, n_factors = CONTRIB_OPS[name]
                    got = {op: ops.count(("com.microsoft", op)) for op in want}
                    left = sorted(op for op in gone if ("", op) in ops)
                    counts = json.load(open(report))["node_counts"]
                    tally.case(tag + " QLinear contrib ops", got == want and not left and
                               (counts["contrib_ops"], counts["contrib_no_range"], counts["folded_factors"]) ==
                               (n_ops, 0, n_factors),
                               "com.microsoft ops %s (expected %s), float ones left: %s, report contrib_ops %d "
                               "(expected %d), folded_factors %d (expected %d)"
                               % (got, want, left or "none", counts["contrib_ops"], n_ops, counts["folded_factors"],
                                  n_factors))
                if fmt == "dynamic":
                    tally.case(tag + " ops", not any(op.startswith("QLinear") or op == "QuantizeLinear"
                                                     for _, op in ops),
                               "no calibrated QLinear/QuantizeLinear ops (%d DynamicQuantizeLinear)" %
                               ops.count(("", "DynamicQuantizeLinear")))
                rep = json.load(open(report))
                if fmt == "qdq":  # each node's output SQNR is one `compare` measures on a Q/DQ pair
                    cmp_path = out + ".compare.json"
                    subprocess.run([exe, "compare", path, out, "--data", data, "--report", cmp_path, "-q"],
                                   capture_output=True)
                    cmp = json.load(open(cmp_path)) if os.path.exists(cmp_path) else {"tensors": [], "outputs": []}
                    pairs = [t["sqnr_db"] for t in cmp["tensors"] + cmp["outputs"]  # (a pair may write an output)
                             if t.get("op", "DequantizeLinear") in ("QuantizeLinear", "DequantizeLinear")
                             and t["sqnr_db"] is not None]
                    # (recurrent ops, Einsum and table Adds write float; above 80 dB both sides are float rounding, which
                    # the executor's fusions move: mobile_block's squeeze-excite Conv reads 143 and 105)
                    odd = {e["name"]: e["output_sqnr_db"] for e in rep["nodes"]
                           if isinstance(e.get("output_sqnr_db"), float) and e["op"] not in RECURRENT + ("Einsum", "Add")
                           and not any(abs(e["output_sqnr_db"] - v) < 0.01 or min(e["output_sqnr_db"], v) > 80
                                       for v in pairs)}
                    tally.case(tag + " node SQNR", os.path.exists(cmp_path) and not odd,
                               "report's output_sqnr_db of nodes that no Q/DQ pair of `compare` measures: %s"
                               % (odd or "none"))
                if name in FOLDABLE:
                    folded = rep["node_counts"].get("folded_batchnorm")
                    tally.case(tag + " folded", folded == FOLDABLE[name],
                               "%s BatchNormalizations folded into Convs (expected %d)" % (folded, FOLDABLE[name]))
                if name in HARD_SWISH:
                    fused, factors = HARD_SWISH[name]
                    counts = rep["node_counts"]
                    opset = [o.version for o in qm.opset_import if o.domain in ("", "ai.onnx")]
                    # contrib: QLinearMul, or HardSwish after an Add of a constant (not a whole number
                    # of steps), which stays float
                    made = ops.count(("", "HardSwish")) + (ops.count(("com.microsoft", "QLinearMul"))
                                                          if fmt == "contrib" else 0)
                    tally.case(tag + " hard-swish", made == fused == counts["fused_hard_swish"]
                               and not {("", "Clip"), ("", "Div"), ("", "HardSigmoid")} & set(ops) and opset == [14],
                               "%d HardSwish nodes (contrib: or QLinearMul; expected %d), no Clip/Div/HardSigmoid left, "
                               "opset %s (expected 14)"
                               % (counts["fused_hard_swish"], fused, opset))
                    expect = 0 if fmt == "dynamic" else factors
                    tally.case(tag + " factors", counts["folded_factors"] == expect,
                               "%d scalar factors moved into (de)quantization scales (expected %d)"
                               % (counts["folded_factors"], expect))
                consts = {i.name for i in qm.graph.initializer} | {o for n in qm.graph.node
                                                                    if n.op_type == "Constant" for o in n.output}
                on_acts = {op: sum(n.op_type == op and n.input[0] not in consts for n in qm.graph.node)
                           for op in ("QuantizeLinear", "DequantizeLinear")}
                b = rep.get("boundaries", "missing")
                if fmt in ("qoperator", "contrib"):
                    tally.case(tag + " boundaries", isinstance(b, dict) and
                               (b["quantize_linear"], b["dequantize_linear"]) ==
                               (on_acts["QuantizeLinear"], on_acts["DequantizeLinear"]),
                               "report %s; the graph has %d QuantizeLinear and %d DequantizeLinear on activations"
                               % (b, on_acts["QuantizeLinear"], on_acts["DequantizeLinear"]))
                else:
                    tally.case(tag + " boundaries", b is None, "null outside the QOperator format (got %s)" % (b,))
                work = (rep.get("evaluation") or {}).get("work_per_sample")
                if work:
                    macs, converted = work_in_ort(qm, cases)
                    tally.case(tag + " work", abs(work["int8_macs"] - macs) <= 1e-9 * macs and
                               abs(work["converted_elements"] - converted) <= 1e-9 * max(converted, 1),
                               "report: %.0f multiply-adds and %.0f elements converted per sample; ONNX Runtime's "
                               "tensors give %.0f and %.0f" % (work["int8_macs"], work["converted_elements"], macs,
                                                               converted))
                else:
                    tally.case(tag + " work", False, "the report's evaluation has no work_per_sample")
                outlook = rep.get("speed_outlook", "missing")
                if fmt in ("qoperator", "contrib"):
                    tally.case(tag + " speed outlook", isinstance(outlook, dict) and
                               isinstance(outlook.get("faster_expected"), bool) and outlook.get("why"),
                               "report: %s" % (outlook,))
                else:
                    tally.case(tag + " speed outlook", outlook is None,
                               "null outside the static QOperator format (got %s)" % (outlook,))
                quantized = [n for n in rep["nodes"] if n["quantized"]]
                tally.case(tag + " report", rep["node_counts"]["candidates"] == len(rep["nodes"]) and
                           all("reason" in n for n in rep["nodes"] if not n["quantized"]),
                           "%d of %d candidates quantized" % (len(quantized), len(rep["nodes"])))
                for k, case in enumerate(cases):
                    try:
                        ref_fp32 = harness.run_ort(path, case)
                        ref_q = harness.run_ort(out, case)
                        exact_q = harness.run_ort(out, case, level="basic")
                    except harness.RunError as e:
                        tally.case("%s case %d ORT" % (tag, k), False, str(e))
                        continue
                    try:
                        got = harness.run_onnxq(exe, out, case)
                    except harness.RunError as e:
                        tally.case("%s case %d onnxq" % (tag, k), False, str(e))
                        continue
                    for j, (g, q, e, f) in enumerate(zip(got, ref_q, exact_q, ref_fp32)):
                        step = output_step(qm, qm.graph.output[j].name)
                        bound = 1.001 * step + 1e-6 if step else 1e-3 * float(np.abs(e).max()) + 1e-6
                        diff = float(np.abs(g.astype(np.float64) - e).max()) if g.shape == e.shape else np.inf
                        tally.case("%s case %d output %d vs ORT (basic)" % (tag, k, j), diff <= bound,
                                   "max abs %.3g, bound %.3g (%s)" % (diff, bound,
                                                                   "one step upstream" if step else "1e-3 relative"))
                        c = cosine(q, f)
                        tally.case("%s case %d output %d vs fp32" % (tag, k, j), c >= MIN_COSINE,
                                   "cosine %.5f (at least %.2f)" % (c, MIN_COSINE))
            tally.case(name + " input unchanged", sha(path) == before, "the float model's bytes")
    return tally.finish()


if __name__ == "__main__":
    sys.exit(main())
