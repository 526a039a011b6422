#!/usr/bin/python3
"""Generates the bundled example: a small CNN digit classifier and its sample inputs.

    /usr/bin/python3 models/gen_example.py [--out-model PATH] [--out-calib DIR]

The network is trained here, with numpy, on scikit-learn's 8x8 handwritten
digits (python3-sklearn), so its activations look like a real model's:

    image [N,1,8,8] -> Conv 3x3 (16) -> Relu -> MaxPool 2x2 -> Conv 3x3 (32)
          -> Relu -> GlobalAveragePool -> Flatten -> Gemm (10) -> logits [N,10]

5,130 parameters. Everything is seeded, so a rerun on the same numpy gives the
same weights. The script writes models/example/tiny_cnn.onnx and
calibration/example/sample_NNN/input_0.pb (held-out digits, never trained on)
with calibration/example/labels.txt (sample name, true digit).
"""
import argparse
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

SEED = 20240601
N_TRAIN = 1500          # the rest of the 1,797 digits is held out
N_SAMPLES = 16          # bundled calibration samples, from the held-out part
C1, C2, N_CLASSES = 16, 32, 10
EPOCHS, BATCH, LR = 40, 32, 3e-3


def load_digits():
    """(images [N,8,8,1] float32 in [0,1], labels [N] int64)."""
    try:
        from sklearn.datasets import load_digits as sk_load_digits
    except ImportError:
        sys.exit("gen_example: needs python3-sklearn (apt-get install python3-sklearn)")
    d = sk_load_digits()
    x = (d.images.astype(np.float32) / 16.0)[..., None]
    return x, d.target.astype(np.int64)


# ---- layers, NHWC inside the trainer ------------------------------------------------

def im2col3(x):
    """3x3 patches with zero padding 1: [B,H,W,C] -> [B,H,W,9*C], (di, dj, c) order."""
    _, h, w, _ = x.shape
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    return np.concatenate([xp[:, di:di + h, dj:dj + w, :] for di in range(3) for dj in range(3)], axis=3)


def col2im3(dcols, c):
    """Adjoint of im2col3: [B,H,W,9*C] -> [B,H,W,C]."""
    b, h, w, _ = dcols.shape
    dxp = np.zeros((b, h + 2, w + 2, c), dtype=dcols.dtype)
    k = 0
    for di in range(3):
        for dj in range(3):
            dxp[:, di:di + h, dj:dj + w, :] += dcols[..., k * c:(k + 1) * c]
            k += 1
    return dxp[:, 1:-1, 1:-1, :]


def maxpool2(x):
    """2x2 stride-2 max pool: returns (y [B,H/2,W/2,C], argmax index [B,H/2,W/2,C] in 0..3)."""
    b, h, w, c = x.shape
    win = x.reshape(b, h // 2, 2, w // 2, 2, c).transpose(0, 1, 3, 5, 2, 4).reshape(b, h // 2, w // 2, c, 4)
    idx = win.argmax(axis=4)
    return np.take_along_axis(win, idx[..., None], axis=4)[..., 0], idx


def maxpool2_back(dy, idx):
    b, h2, w2, c = dy.shape
    dwin = np.zeros((b, h2, w2, c, 4), dtype=dy.dtype)
    np.put_along_axis(dwin, idx[..., None], dy[..., None], axis=4)
    return dwin.reshape(b, h2, w2, c, 2, 2).transpose(0, 1, 4, 2, 5, 3).reshape(b, h2 * 2, w2 * 2, c)


def init_params(rng):
    def he(fan_in, shape):
        return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)
    return {
        "w1": he(9, (9, C1)), "b1": np.zeros(C1, np.float32),
        "w2": he(9 * C1, (9 * C1, C2)), "b2": np.zeros(C2, np.float32),
        "w3": he(C2, (C2, N_CLASSES)), "b3": np.zeros(N_CLASSES, np.float32),
    }


def forward(p, x):
    cols1 = im2col3(x)
    a1 = cols1 @ p["w1"] + p["b1"]
    r1 = np.maximum(a1, 0)
    m1, idx1 = maxpool2(r1)
    cols2 = im2col3(m1)
    a2 = cols2 @ p["w2"] + p["b2"]
    r2 = np.maximum(a2, 0)
    g = r2.mean(axis=(1, 2))
    logits = g @ p["w3"] + p["b3"]
    return logits, (cols1, a1, idx1, cols2, a2, r2, g)


def loss_and_grads(p, x, y):
    logits, (cols1, a1, idx1, cols2, a2, r2, g) = forward(p, x)
    b = x.shape[0]
    z = logits - logits.max(axis=1, keepdims=True)
    prob = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    loss = -np.log(prob[np.arange(b), y] + 1e-12).mean()
    dlog = prob
    dlog[np.arange(b), y] -= 1
    dlog /= b
    gr = {"w3": g.T @ dlog, "b3": dlog.sum(0)}
    dg = dlog @ p["w3"].T
    _, h2, w2, _ = r2.shape
    da2 = np.broadcast_to(dg[:, None, None, :] / (h2 * w2), r2.shape) * (a2 > 0)
    gr["w2"] = cols2.reshape(-1, cols2.shape[-1]).T @ da2.reshape(-1, C2)
    gr["b2"] = da2.sum(axis=(0, 1, 2))
    dm1 = col2im3(da2 @ p["w2"].T, C1)
    da1 = maxpool2_back(dm1, idx1) * (a1 > 0)
    gr["w1"] = cols1.reshape(-1, 9).T @ da1.reshape(-1, C1)
    gr["b1"] = da1.sum(axis=(0, 1, 2))
    return loss, gr


def train(x, y, rng):
    p = init_params(rng)
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v = {k: np.zeros_like(v) for k, v in p.items()}
    step = 0
    for epoch in range(EPOCHS):
        order = rng.permutation(len(x))
        total = 0.0
        for i in range(0, len(x), BATCH):
            sel = order[i:i + BATCH]
            loss, gr = loss_and_grads(p, x[sel], y[sel])
            total += loss * len(sel)
            step += 1
            for k in p:  # Adam
                m[k] = 0.9 * m[k] + 0.1 * gr[k]
                v[k] = 0.999 * v[k] + 0.001 * gr[k] ** 2
                mh = m[k] / (1 - 0.9 ** step)
                vh = v[k] / (1 - 0.999 ** step)
                p[k] = (p[k] - LR * mh / (np.sqrt(vh) + 1e-8)).astype(np.float32)
        if epoch % 10 == 9 or epoch == EPOCHS - 1:
            print(f"epoch {epoch + 1}: train loss {total / len(x):.4f}")
    return p


# ---- export ---------------------------------------------------------------------------

def to_onnx(p):
    def conv_w(w, cin, cout):  # [(di,dj,cin), cout] -> [cout, cin, 3, 3]
        return np.ascontiguousarray(w.reshape(3, 3, cin, cout).transpose(3, 2, 0, 1))

    inits = [
        numpy_helper.from_array(conv_w(p["w1"], 1, C1), "conv1.weight"),
        numpy_helper.from_array(p["b1"], "conv1.bias"),
        numpy_helper.from_array(conv_w(p["w2"], C1, C2), "conv2.weight"),
        numpy_helper.from_array(p["b2"], "conv2.bias"),
        numpy_helper.from_array(np.ascontiguousarray(p["w3"].T), "fc.weight"),  # (10, 32)
        numpy_helper.from_array(p["b3"], "fc.bias"),
    ]
    nodes = [
        helper.make_node("Conv", ["image", "conv1.weight", "conv1.bias"], ["conv1"], name="conv1",
                         kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["conv1"], ["relu1"], name="relu1"),
        helper.make_node("MaxPool", ["relu1"], ["pool1"], name="pool1", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["pool1", "conv2.weight", "conv2.bias"], ["conv2"], name="conv2",
                         kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["conv2"], ["relu2"], name="relu2"),
        helper.make_node("GlobalAveragePool", ["relu2"], ["gap"], name="gap"),
        helper.make_node("Flatten", ["gap"], ["flat"], name="flatten", axis=1),
        helper.make_node("Gemm", ["flat", "fc.weight", "fc.bias"], ["logits"], name="fc", transB=1),
    ]
    graph = helper.make_graph(
        nodes, "tiny_cnn",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 1, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", N_CLASSES])],
        inits)
    graph.doc_string = "8x8 grayscale digit (0 = background, 1 = ink) -> logits for digits 0-9"
    model = helper.make_model(graph, producer_name="onnxq models/gen_example.py",
                              opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    onnx.checker.check_model(model)
    onnx.shape_inference.infer_shapes(model, strict_mode=True)
    return model


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out-model", default=os.path.join(HERE, "example", "tiny_cnn.onnx"))
    ap.add_argument("--out-calib", default=os.path.join(ROOT, "calibration", "example"))
    args = ap.parse_args()

    x, y = load_digits()
    rng = np.random.default_rng(SEED)
    perm = rng.permutation(len(x))
    tr, te = perm[:N_TRAIN], perm[N_TRAIN:]
    p = train(x[tr], y[tr], rng)
    acc = (forward(p, x[te])[0].argmax(1) == y[te]).mean()
    print(f"held-out accuracy: {acc * 100:.1f}% on {len(te)} digits")

    os.makedirs(os.path.dirname(args.out_model), exist_ok=True)
    onnx.save(to_onnx(p), args.out_model)
    print(f"wrote {args.out_model}")

    os.makedirs(args.out_calib, exist_ok=True)
    lines = []
    for i, idx in enumerate(te[:N_SAMPLES]):
        name = f"sample_{i:03d}"
        d = os.path.join(args.out_calib, name)
        os.makedirs(d, exist_ok=True)
        img = np.ascontiguousarray(x[idx].transpose(2, 0, 1)[None])  # [1,1,8,8]
        with open(os.path.join(d, "input_0.pb"), "wb") as f:
            f.write(numpy_helper.from_array(img, "image").SerializeToString())
        lines.append(f"{name} {y[idx]}\n")
    with open(os.path.join(args.out_calib, "labels.txt"), "w") as f:
        f.writelines(lines)
    print(f"wrote {N_SAMPLES} samples to {args.out_calib}")


if __name__ == "__main__":
    main()
