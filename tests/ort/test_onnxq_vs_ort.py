#!/usr/bin/python3
"""test_onnxq_vs_ort.py ONNXQ: `onnxq run` against ONNX Runtime on small models.

Models: the bundled example (models/example/tiny_cnn.onnx) on every bundled
calibration sample, the 16 samples stacked as one batch, and
models/gen_test_models.py's miniatures of the real models' structures, two
input shapes each, one model of ONNX Runtime's com.microsoft elementwise
and pooling QLinear kernels (contrib_kernels_model), and one of depthwise
QLinearConv and ConvInteger geometries (depthwise_model), NonMaxSuppression
and RoiAlign at two opsets (detection_model), GridSample in every mode
(grid_sample_model), one of two squeeze-excite blocks as the quantizer
leaves them (se_block_model), and LSTM, GRU and RNN with every activation
ONNX lists for them, alpha and beta given or defaulted (recurrent_model). Outputs must agree within
rtol 1e-3, integer outputs exactly (see harness.py), and the example's
predicted digits must be the same.
"""
import os
import sys
import tempfile

import numpy as np
import onnx
from onnx import numpy_helper

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


def contrib_kernels_model():
    """ONNX Runtime's com.microsoft QLinearAdd, QLinearMul, QLinearSigmoid,
    QLinearLeakyRelu, QLinearGlobalAveragePool (NCHW and channels_last) and
    QLinearAveragePool (pads counted or not, ceil_mode, strides, auto_pad) on
    uint8 inputs with broadcasting and on int8 inputs, with scales and zero
    points that are not round numbers: what `quantize --contrib` emits, here
    in forms it does not (yet) emit as well."""
    h, ms = onnx.helper, "com.microsoft"

    def q(name, scale, zp, dtype):
        return [numpy_helper.from_array(np.array(scale, np.float32), name + "_s"),
                numpy_helper.from_array(np.array(zp, dtype), name + "_z")]

    def io(name):
        return [name, name + "_s", name + "_z"]

    inits = (q("a", 0.037, 121, np.uint8) + q("b", 0.11, 30, np.uint8) + q("y", 0.061, 97, np.uint8) +
             q("m", 0.29, 5, np.uint8) + q("g", 1 / 255, 0, np.uint8) + q("p", 0.02, 140, np.uint8) +
             q("c", 0.05, -7, np.int8) + q("cy", 0.031, 3, np.int8) + q("cg", 1 / 255, -128, np.int8))
    nodes = [h.make_node("QLinearAdd", io("a") + io("b") + ["y_s", "y_z"], ["add"], domain=ms),
             h.make_node("QLinearMul", io("a") + io("b") + ["m_s", "m_z"], ["mul"], domain=ms),
             h.make_node("QLinearSigmoid", io("a") + ["g_s", "g_z"], ["sig"], domain=ms),
             h.make_node("QLinearLeakyRelu", io("a") + ["y_s", "y_z"], ["leaky"], domain=ms, alpha=0.2),
             h.make_node("QLinearGlobalAveragePool", io("a") + ["p_s", "p_z"], ["gap"], domain=ms, channels_last=0),
             h.make_node("QLinearGlobalAveragePool", io("c") + ["cy_s", "cy_z"], ["gap_last"], domain=ms,
                         channels_last=1),
             h.make_node("QLinearAdd", io("c") + io("c") + ["cy_s", "cy_z"], ["add8"], domain=ms),
             h.make_node("QLinearSigmoid", io("c") + ["cg_s", "cg_z"], ["sig8"], domain=ms),
             h.make_node("QLinearAveragePool", io("a") + ["p_s", "p_z"], ["avg"], domain=ms, kernel_shape=[3, 3],
                         pads=[1, 1, 1, 1]),
             h.make_node("QLinearAveragePool", io("a") + ["y_s", "y_z"], ["avg_incl"], domain=ms,
                         kernel_shape=[2, 3], strides=[2, 2], pads=[0, 1, 1, 0], count_include_pad=1, ceil_mode=1),
             h.make_node("QLinearAveragePool", io("c") + ["cy_s", "cy_z"], ["avg8"], domain=ms, kernel_shape=[3, 2],
                         auto_pad="SAME_UPPER")]
    u8, i8 = onnx.TensorProto.UINT8, onnx.TensorProto.INT8
    g = h.make_graph(nodes, "contrib_kernels",
                     [h.make_tensor_value_info("a", u8, [2, 3, 5, 7]), h.make_tensor_value_info("b", u8, [1, 3, 1, 1]),
                      h.make_tensor_value_info("c", i8, [2, 4, 6, 3])],
                     [h.make_tensor_value_info(n, t, None) for n, t in
                      (("add", u8), ("mul", u8), ("sig", u8), ("leaky", u8), ("gap", u8), ("gap_last", i8),
                       ("add8", i8), ("sig8", i8), ("avg", u8), ("avg_incl", u8), ("avg8", i8))], inits)
    m = h.make_model(g, opset_imports=[h.make_opsetid("", 13), h.make_opsetid(ms, 1)])
    m.ir_version = 7
    rng = np.random.default_rng(5)
    return m, [rng.integers(0, 256, (2, 3, 5, 7)).astype(np.uint8), rng.integers(0, 256, (1, 3, 1, 1)).astype(np.uint8),
               rng.integers(-128, 128, (2, 4, 6, 3)).astype(np.int8)]


def depthwise_model():
    """Depthwise QLinearConv (one channel per group, which the executor sums
    on its own path) at 3x3 stride 1, 5x5 stride 2 with uneven pads, 3x3
    dilated and 3x3 stride (1, 2) on int8 activations, with per-channel weight
    scales; and a depthwise ConvInteger with uint8 weights and a weight zero
    point. Output rows of 18 to 41 columns are summed 16 at a time from
    zero-point padded rows (the last 16 overlapping), rows of 12 8 at a time
    (int8 at stride 1, uint8 at stride 2), rows of 6 tap by tap; the top and
    bottom rows have kernel rows outside the input."""
    h = onnx.helper
    rng = np.random.default_rng(9)
    C = 6
    inits = [numpy_helper.from_array(v, n) for n, v in (
        ("xs", np.array(0.023, np.float32)), ("xz", np.array(131, np.uint8)),
        ("ys", np.array(0.19, np.float32)), ("yz", np.array(117, np.uint8)),
        ("s8xs", np.array(0.031, np.float32)), ("s8xz", np.array(-9, np.int8)),
        ("s8ys", np.array(0.27, np.float32)), ("s8yz", np.array(4, np.int8)),
        ("ws", rng.uniform(0.002, 0.02, C).astype(np.float32)), ("wz", np.zeros(C, np.int8)),
        ("w3", rng.integers(-127, 128, (C, 1, 3, 3)).astype(np.int8)),
        ("w5", rng.integers(-127, 128, (C, 1, 5, 5)).astype(np.int8)),
        ("b", rng.integers(-3000, 3000, C).astype(np.int32)),
        ("wu", rng.integers(0, 256, (C, 1, 3, 3)).astype(np.uint8)), ("wuz", np.array(119, np.uint8)))]

    def qconv(x, xq, w, out, **attrs):
        return h.make_node("QLinearConv", [x, xq + "xs", xq + "xz", w, "ws", "wz", xq + "ys", xq + "yz", "b"], [out],
                           group=C, **attrs)
    nodes = [qconv("x", "", "w3", "dw3", pads=[1, 1, 1, 1]),
             qconv("x", "", "w5", "dw5s2", strides=[2, 2], pads=[2, 1, 0, 2]),
             qconv("x", "", "w3", "dw3d2", dilations=[2, 2], pads=[2, 2, 2, 2]),
             qconv("x8", "s8", "w3", "dw3s8", pads=[1, 0, 1, 0], strides=[1, 2]),
             h.make_node("ConvInteger", ["x", "wu", "xz", "wuz"], ["dwint"], group=C, pads=[1, 1, 1, 1]),
             qconv("xn", "s8", "w3", "dw3n", pads=[1, 1, 1, 1]),
             qconv("xw", "", "w3", "dw3s2n", strides=[2, 2], pads=[1, 1, 1, 1]),
             qconv("xn", "s8", "w5", "dw5s2n", strides=[2, 2], pads=[2, 2, 2, 2])]
    u8, i8, i32 = onnx.TensorProto.UINT8, onnx.TensorProto.INT8, onnx.TensorProto.INT32
    shapes = {"x": (2, C, 7, 41), "x8": (1, C, 8, 37), "xn": (1, C, 5, 12), "xw": (1, C, 6, 24)}
    g = h.make_graph(nodes, "depthwise",
                     [h.make_tensor_value_info(n, i8 if n in ("x8", "xn") else u8, shape) for n, shape in shapes.items()],
                     [h.make_tensor_value_info(n, t, None) for n, t in
                      (("dw3", u8), ("dw5s2", u8), ("dw3d2", u8), ("dw3s8", i8), ("dwint", i32), ("dw3n", i8),
                       ("dw3s2n", u8), ("dw5s2n", i8))], inits)
    m = h.make_model(g, opset_imports=[h.make_opsetid("", 13)])
    m.ir_version = 7
    return m, [rng.integers(-128, 128, shape).astype(np.int8) if n in ("x8", "xn") else
               rng.integers(0, 256, shape).astype(np.uint8) for n, shape in shapes.items()]


def detection_model(opset):
    """NonMaxSuppression in both box formats (scores on a coarse grid, so that
    many tie; overlapping boxes with corners in either order) and RoiAlign in
    both modes, with the opset's default and the other coordinate mode, on
    ROIs that reach over the map's border and ROIs below one pixel."""
    from onnx import TensorProto, helper
    rng = np.random.default_rng(5)
    nb, n, nc = 2, 40, 3
    corners = rng.integers(0, 12, (nb, n, 4)).astype(np.float32)
    centers = np.concatenate([rng.integers(2, 10, (nb, n, 2)), rng.integers(1, 6, (nb, n, 2))], 2).astype(np.float32)
    scores = (rng.integers(0, 10, (nb, nc, n)) / 10).astype(np.float32)
    x = rng.standard_normal((2, 3, 9, 11)).astype(np.float32)
    rois = np.array([[0, 0, 10, 8], [2.5, 1.25, 6, 7.5], [-3, -2, 14, 12], [4, 4, 4.5, 4.2],
                     [7, 3, 1, 1], [1, 2, 21, 17]], np.float32)
    batch = np.array([0, 1, 1, 0, 1, 0], np.int64)
    other = "output_half_pixel" if opset >= 16 else None
    nodes = [
        helper.make_node("NonMaxSuppression", ["corners", "scores", "max3", "iou", "thr"], ["sel_corner"]),
        helper.make_node("NonMaxSuppression", ["centers", "scores", "max9", "iou"], ["sel_center"],
                         center_point_box=1),
        helper.make_node("NonMaxSuppression", ["corners", "scores"], ["sel_none"]),
        helper.make_node("RoiAlign", ["x", "rois", "batch"], ["avg"], output_height=3, output_width=4,
                         spatial_scale=0.5),
        helper.make_node("RoiAlign", ["x", "rois", "batch"], ["max"], mode="max", output_height=2,
                         output_width=2, sampling_ratio=2),
    ]
    if other:
        nodes.append(helper.make_node("RoiAlign", ["x", "rois", "batch"], ["avg_other"], output_height=2,
                                      output_width=3, coordinate_transformation_mode=other))
    consts = [numpy_helper.from_array(np.array([3], np.int64), "max3"),
              numpy_helper.from_array(np.array([9], np.int64), "max9"),
              numpy_helper.from_array(np.array([0.3], np.float32), "iou"),
              numpy_helper.from_array(np.array([0.25], np.float32), "thr")]
    f = TensorProto.FLOAT
    ins = [helper.make_tensor_value_info("corners", f, [nb, n, 4]),
           helper.make_tensor_value_info("centers", f, [nb, n, 4]),
           helper.make_tensor_value_info("scores", f, [nb, nc, n]),
           helper.make_tensor_value_info("x", f, list(x.shape)),
           helper.make_tensor_value_info("rois", f, [6, 4]),
           helper.make_tensor_value_info("batch", TensorProto.INT64, [6])]
    outs = [helper.make_tensor_value_info(o, TensorProto.INT64, None) for o in ("sel_corner", "sel_center",
                                                                                "sel_none")]
    outs += [helper.make_tensor_value_info(nd.output[0], f, None) for nd in nodes[3:]]
    g = helper.make_graph(nodes, f"detection{opset}", ins, outs, consts)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 7
    return m, [corners, centers, scores, x, rois, batch]
def se_block_model():
    """Squeeze-excite blocks as `onnxq quantize` leaves them in its default
    (QOperator) form: y8 = QuantizeLinear(x * gate) with x =
    HardSwish(DequantizeLinear(x8)) (uint8) or x = DequantizeLinear(x8)
    (int8), and gate = HardSigmoid(DequantizeLinear(QLinearConv(QLinearConv(
    QuantizeLinear(GlobalAveragePool(x)))))); the gate is Mul's second input
    in one block and its first in the other. The executor runs each Mul with
    its QuantizeLinear in one pass. Outputs dequantized to float."""
    h = onnx.helper
    rng = np.random.default_rng(12)
    C, R = 24, 6
    inits = [numpy_helper.from_array(v, n) for n, v in (
        ("xs", np.array(0.047, np.float32)), ("xz", np.array(119, np.uint8)),
        ("cs", np.array(0.031, np.float32)), ("cz", np.array(-11, np.int8)),
        ("ps", np.array(0.013, np.float32)), ("pz", np.array(96, np.uint8)),
        ("rs", np.array(0.021, np.float32)), ("rz", np.array(0, np.uint8)),
        ("es", np.array(0.09, np.float32)), ("ez", np.array(131, np.uint8)),
        ("ys", np.array(0.035, np.float32)), ("yz", np.array(108, np.uint8)),
        ("w1", rng.integers(-127, 128, (R, C, 1, 1)).astype(np.int8)),
        ("w1s", rng.uniform(0.002, 0.01, R).astype(np.float32)), ("w1z", np.zeros(R, np.int8)),
        ("b1", rng.integers(-500, 500, R).astype(np.int32)),
        ("w2", rng.integers(-127, 128, (C, R, 1, 1)).astype(np.int8)),
        ("w2s", rng.uniform(0.002, 0.01, C).astype(np.float32)), ("w2z", np.zeros(C, np.int8)),
        ("b2", rng.integers(-500, 500, C).astype(np.int32)))]

    def block(p, x8, xs, xz, hardswish, gate_first):
        n = [h.make_node("DequantizeLinear", [x8, xs, xz], [p + "d"])]
        x = p + "d"
        if hardswish:
            n.append(h.make_node("HardSwish", [x], [p + "x"]))
            x = p + "x"
        n += [h.make_node("GlobalAveragePool", [x], [p + "m"]),
              h.make_node("QuantizeLinear", [p + "m", "ps", "pz"], [p + "m8"]),
              h.make_node("QLinearConv", [p + "m8", "ps", "pz", "w1", "w1s", "w1z", "rs", "rz", "b1"], [p + "r8"]),
              h.make_node("QLinearConv", [p + "r8", "rs", "rz", "w2", "w2s", "w2z", "es", "ez", "b2"], [p + "e8"]),
              h.make_node("DequantizeLinear", [p + "e8", "es", "ez"], [p + "e"]),
              h.make_node("HardSigmoid", [p + "e"], [p + "g"], alpha=1 / 6),
              h.make_node("Mul", [p + "g", x] if gate_first else [x, p + "g"], [p + "p"]),
              h.make_node("QuantizeLinear", [p + "p", "ys", "yz"], [p + "y8"]),
              h.make_node("DequantizeLinear", [p + "y8", "ys", "yz"], [p + "y"])]
        return n
    nodes = block("a", "x8", "xs", "xz", True, False) + block("b", "c8", "cs", "cz", False, True)
    u8, i8, f32 = onnx.TensorProto.UINT8, onnx.TensorProto.INT8, onnx.TensorProto.FLOAT
    g = h.make_graph(nodes, "se_blocks",
                     [h.make_tensor_value_info("x8", u8, ("n", C, "h", "w")),
                      h.make_tensor_value_info("c8", i8, ("n", C, "h", "w"))],
                     [h.make_tensor_value_info("ay", f32, None), h.make_tensor_value_info("by", f32, None)], inits)
    m = h.make_model(g, opset_imports=[h.make_opsetid("", 14)])
    m.ir_version = 7
    cases = [[rng.integers(0, 256, shape).astype(np.uint8), rng.integers(-128, 128, shape).astype(np.int8)]
             for shape in ((1, C, 12, 96), (2, C, 7, 7))]
    return m, cases


def grid_sample_model():
    """GridSample (opset 16) in every mode, padding and align_corners, with
    grid points up to 3.5 plane widths outside (reflection folds several
    times) and on exact pixel centres and half-way points (nearest's ties)."""
    from onnx import TensorProto, helper
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 3, 5, 7)).astype(np.float32)
    g = rng.uniform(-3.5, 3.5, (2, 6, 8, 2)).astype(np.float32)
    g[:, 0] = np.round(g[:, 0] * 4) / 4  # ties between pixels
    nodes, outs = [], []
    for mode in ("bilinear", "nearest", "bicubic"):
        for pad in ("zeros", "border", "reflection"):
            for align in (0, 1):
                name = f"{mode}_{pad}_{align}"
                nodes.append(helper.make_node("GridSample", ["x", "g"], [name], mode=mode, padding_mode=pad,
                                              align_corners=align))
                outs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
    graph = helper.make_graph(nodes, "grid_sample", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape),
                                                     helper.make_tensor_value_info("g", TensorProto.FLOAT, g.shape)],
                              outs)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 16)])
    m.ir_version = 8
    return m, [x, g]


def recurrent_model():
    """LSTM, GRU and RNN nodes whose `activations` cover every name ONNX allows
    (Keras exports, e.g., LSTMs with HardSigmoid gates), some with
    activation_alpha/beta (taken in list order by the activations that have
    them), some on their defaults, across directions, with clip on one.
    ThresholdedRelu's alpha is given: ONNX Runtime defaults it to 0 where the
    ONNX operator's default, which onnxq follows, is 1; and ONNX Runtime's RNN
    reads alpha by direction, which agrees with list order when each direction's
    activation takes one, as here."""
    from onnx import TensorProto, helper
    rng = np.random.default_rng(10)
    S, B, I, H = 5, 2, 6, 4
    x = rng.standard_normal((S, B, I)).astype(np.float32)
    specs = [  # (op, direction, activations, alpha, beta, clip)
        ("LSTM", "forward", ["HardSigmoid", "Tanh", "Tanh"], None, None, None),
        ("LSTM", "bidirectional", ["HardSigmoid", "Softsign", "ScaledTanh", "Sigmoid", "Elu", "Affine"],
         [0.3, 0.7, 0.9, 1.1], [0.4, 1.2, 0.1], None),
        ("GRU", "forward", ["Relu", "LeakyRelu"], [0.2], None, None),
        ("GRU", "reverse", ["Softplus", "ThresholdedRelu"], [0.3], None, 2.0),
        ("RNN", "bidirectional", ["LeakyRelu", "LeakyRelu"], [0.1, 0.3], None, None),
        ("RNN", "bidirectional", ["Relu", "Tanh"], None, None, None),
        ("RNN", "forward", ["Affine"], [0.5], [0.25], None),
    ]
    nodes, inits, outs = [], [], []
    for k, (op, direction, acts, alpha, beta, clip) in enumerate(specs):
        gates = {"LSTM": 4, "GRU": 3, "RNN": 1}[op]
        dirs = 2 if direction == "bidirectional" else 1
        w, r = f"w{k}", f"r{k}"
        inits += [numpy_helper.from_array((rng.standard_normal((dirs, gates * H, I)) * 0.5).astype(np.float32), w),
                  numpy_helper.from_array((rng.standard_normal((dirs, gates * H, H)) * 0.5).astype(np.float32), r)]
        attrs = dict(hidden_size=H, direction=direction, activations=acts)
        for key, val in (("activation_alpha", alpha), ("activation_beta", beta), ("clip", clip)):
            if val is not None:
                attrs[key] = val
        nodes.append(helper.make_node(op, ["x", w, r], [f"y{k}", f"h{k}"], **attrs))
        outs += [helper.make_tensor_value_info(f"y{k}", TensorProto.FLOAT, None),
                 helper.make_tensor_value_info(f"h{k}", TensorProto.FLOAT, None)]
    graph = helper.make_graph(nodes, "recurrent", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape)],
                              outs, inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return m, [x]


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
        m, inputs = contrib_kernels_model()
        path = os.path.join(tmp, "contrib_kernels.onnx")
        onnx.save(m, path)
        run_case(t, exe, "com.microsoft QLinear kernels", path, inputs, ["a", "b", "c"])
        m, inputs = depthwise_model()
        path = os.path.join(tmp, "depthwise.onnx")
        onnx.save(m, path)
        run_case(t, exe, "depthwise QLinearConv and ConvInteger", path, inputs, ["x", "x8", "xn", "xw"])
        for opset in (11, 16):
            m, inputs = detection_model(opset)
            path = os.path.join(tmp, f"detection{opset}.onnx")
            onnx.save(m, path)
            run_case(t, exe, f"NonMaxSuppression and RoiAlign, opset {opset}", path, inputs,
                     ["corners", "centers", "scores", "x", "rois", "batch"])
        m, inputs = grid_sample_model()
        path = os.path.join(tmp, "grid_sample.onnx")
        onnx.save(m, path)
        run_case(t, exe, "GridSample, every mode and padding", path, inputs, ["x", "g"])
        m, inputs = recurrent_model()
        path = os.path.join(tmp, "recurrent.onnx")
        onnx.save(m, path)
        run_case(t, exe, "LSTM, GRU and RNN with every activation", path, inputs, ["x"])
        m, cases = se_block_model()
        path = os.path.join(tmp, "se_blocks.onnx")
        onnx.save(m, path)
        for k, inputs in enumerate(cases):
            run_case(t, exe, f"squeeze-excite blocks case {k} {list(inputs[0].shape)}", path, inputs, ["x8", "c8"])
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
