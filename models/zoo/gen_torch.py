#!/usr/bin/python3
"""gen_torch.py: the zoo models built here with Debian's PyTorch (python3-torch).

    /usr/bin/python3 models/zoo/gen_torch.py [--cache DIR] [NAME ...]

Two kinds of model, each exported with torch.onnx.export (opset 13, dynamic batch):

  trained on real data
    digits_cnn      CNN on scikit-learn's 8x8 handwritten digits (real scans)
    langid_encoder  2-layer transformer encoder that names the language (de es fr it
                    nl pl pt sv) of a UI message, as UTF-8 bytes, taken from the
                    gettext catalogues that Debian's required packages install
  architecture only, seeded random weights (BatchNorm statistics measured on real
  photo crops, BatchNorm scales spread log-uniformly, so that per-channel weight ranges
  differ as in trained networks)
    resnet_style    basic-block ResNet, 3x64x64 input, 100 classes
    mobilenetv2_style  inverted residuals with depthwise 3x3 convs and ReLU6
    bert_style      4-layer BERT-style encoder (attention, LayerNorm, GELU) on byte tokens

Each model is written to CACHE/NAME-KEY/ (CACHE: $ONNXQ_ZOO_CACHE, else
${XDG_CACHE_HOME:-~/.cache}/onnxq/zoo; KEY: a hash of this file, the model name
and the torch version; the data set's sha256 is in meta.json), never into the repository:
  model.onnx, calib.npy (calibration inputs), test.npy (+ labels.npy when the task
  has labels), meta.json (data set description and sha256; for trained models the
  FP32 accuracy in PyTorch; and the peer: PyTorch's own post-training INT8 model's
  accuracy, or its top-1 agreement with FP32 for the random-weight models, and the SQNR
  of its last output against FP32).
Everything is deterministic: fixed seeds, one thread, torch.use_deterministic_algorithms.
"""
import argparse
import gettext
import hashlib
import io
import json
import os
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = ["digits_cnn", "langid_encoder", "gru_langid", "resnet_style", "mobilenetv2_style", "bert_style",
          "gpt_decoder"]


def default_cache():
    if os.environ.get("ONNXQ_ZOO_CACHE"):
        return os.environ["ONNXQ_ZOO_CACHE"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "onnxq", "zoo")


def sha256_arrays(*arrays):
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(a.tobytes())
    return h.hexdigest()


# ---- data sets ---------------------------------------------------------------------

def digits_data():
    """sklearn's 8x8 digits as [N,1,8,8] in [0,1]: (train x, y, test x, y); a fixed
    shuffle puts 1437 in train and 360 in test."""
    from sklearn.datasets import load_digits
    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]
    y = d.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(y))
    x, y = x[order], y[order]
    return x[:1437], y[:1437], x[1437:], y[1437:]


LANGS = ["de", "es", "fr", "it", "nl", "pl", "pt", "sv"]
# gettext domains of Debian's required packages (coreutils, dpkg, apt, ...): they are on
# every Debian system, in all eight languages
DOMAINS = ["apt", "bash", "coreutils", "diffutils", "dpkg", "findutils", "grep", "sed", "tar"]
SEQ = 32


def langid_data():
    """Translated UI messages as UTF-8 byte ids [N,32] (0 = padding) and language labels.
    A message is used when its translation has at least 16 letters; it is cut at 32
    bytes. Messages are split into train/test by a hash of the English msgid, so one
    message's translations all land on the same side."""
    xs, ys, split = [], [], []
    for li, lang in enumerate(LANGS):
        for dom in DOMAINS:
            path = f"/usr/share/locale/{lang}/LC_MESSAGES/{dom}.mo"
            if not os.path.exists(path):
                raise FileNotFoundError(f"{path} is missing (the langid data set reads the gettext "
                                        f"catalogues of Debian's required packages)")
            with open(path, "rb") as f:
                cat = gettext.GNUTranslations(f)._catalog
            for msgid in sorted(k for k in cat if isinstance(k, str) and k):
                text = " ".join(cat[msgid].split())
                if sum(c.isalpha() for c in text) < 16:
                    continue
                b = text.encode("utf-8")[:SEQ]
                row = np.zeros(SEQ, np.int64)
                row[:len(b)] = np.frombuffer(b, np.uint8)
                xs.append(row)
                ys.append(li)
                split.append(hashlib.sha256(f"{dom}\0{msgid}".encode()).digest()[0] < 52)  # ~20% test
    x, y, t = np.stack(xs), np.array(ys, np.int64), np.array(split)
    return x[~t], y[~t], x[t], y[t]


def photo_crops(n, seed, size=64):
    """n real-photo crops [n,3,size,size], ImageNet-normalized: random squares of 64 to
    160 pixels from scikit-learn's two sample photographs, resized to size."""
    from PIL import Image
    from sklearn.datasets import load_sample_images
    imgs = load_sample_images().images
    rng = np.random.default_rng(seed)
    mean = np.array([0.485, 0.456, 0.406], np.float32)
    std = np.array([0.229, 0.224, 0.225], np.float32)
    out = np.zeros((n, 3, size, size), np.float32)
    for i in range(n):
        img = imgs[i % len(imgs)]
        s = int(rng.integers(64, 161))
        y0 = int(rng.integers(0, img.shape[0] - s))
        x0 = int(rng.integers(0, img.shape[1] - s))
        crop = Image.fromarray(img[y0:y0 + s, x0:x0 + s]).resize((size, size), Image.BILINEAR)
        out[i] = ((np.asarray(crop, np.float32) / 255.0 - mean) / std).transpose(2, 0, 1)
    return out


def license_tokens(n, seed, seq=64):
    """n windows of seq bytes from the GPL-3 text of base-files, as int64 token ids."""
    with open("/usr/share/common-licenses/GPL-3", "rb") as f:
        text = np.frombuffer(b" ".join(f.read().split()), np.uint8)
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, len(text) - seq, n)
    return np.stack([text[s:s + seq] for s in starts]).astype(np.int64)


GPT_SEQ = 64


def python_source_data():
    """The .py files of Debian's Python standard library (/usr/lib/python3.N, top
    level) as bytes: (train text, test text), split by a hash of the file name
    (about 15% of the files held out)."""
    import glob
    files = sorted(glob.glob("/usr/lib/python3.[0-9]*/*.py"))
    if not files:
        raise FileNotFoundError("/usr/lib/python3.N/*.py is missing (the gpt_decoder data set reads "
                                "the sources of Debian's python3)")
    train, test = [], []
    for path in files:
        with open(path, "rb") as f:
            text = np.frombuffer(f.read(), np.uint8)
        held_out = hashlib.sha256(os.path.basename(path).encode()).digest()[0] < 40
        (test if held_out else train).append(text)
    return np.concatenate(train), np.concatenate(test)


def windows(text, n, seed, seq=GPT_SEQ):
    """n random windows of seq + 1 bytes of text as int64 [n, seq + 1]."""
    starts = np.random.default_rng(seed).integers(0, len(text) - seq - 1, n)
    return np.stack([text[s:s + seq + 1] for s in starts]).astype(np.int64)


# ---- models ----------------------------------------------------------------------

def torch_setup():
    import torch
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(0)
    return torch


def build_modules():
    """The model classes (defined here so that importing this file does not need torch)."""
    import torch
    import torch.nn as nn
    from torch.ao.quantization import DeQuantStub, QuantStub

    class DigitsCNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.quant = QuantStub()
            self.c1, self.r1 = nn.Conv2d(1, 16, 3, padding=1), nn.ReLU()
            self.c2, self.r2 = nn.Conv2d(16, 32, 3, padding=1), nn.ReLU()
            self.p2 = nn.MaxPool2d(2)
            self.c3, self.r3 = nn.Conv2d(32, 64, 3, padding=1), nn.ReLU()
            self.p3 = nn.MaxPool2d(2)
            self.f1, self.r4 = nn.Linear(256, 64), nn.ReLU()
            self.f2 = nn.Linear(64, 10)
            self.dequant = DeQuantStub()

        def forward(self, x):
            x = self.quant(x)
            x = self.p2(self.r2(self.c2(self.r1(self.c1(x)))))
            x = self.p3(self.r3(self.c3(x)))
            x = self.r4(self.f1(torch.flatten(x, 1)))
            return self.dequant(self.f2(x))

        fuse = [["c1", "r1"], ["c2", "r2"], ["c3", "r3"], ["f1", "r4"]]

    class QLinear(nn.Module):
        """A Linear between quant/dequant stubs: the layers that both onnxq and PyTorch's
        eager post-training quantization make INT8 in an attention block (matrix products
        of two activations, softmax and LayerNorm stay float in both)."""

        def __init__(self, i, o, conv_train=False):
            super().__init__()
            self.quant, self.lin, self.dequant = QuantStub(), nn.Linear(i, o), DeQuantStub()
            self.conv_train = conv_train

        def forward(self, x):
            if self.conv_train and self.training:
                # the same product of [B, T, i] as a 1x1 convolution: about 20x faster to
                # train with Debian's torch than Linear; evaluation and export use Linear
                w = self.lin.weight.unsqueeze(-1)
                return torch.nn.functional.conv1d(x.transpose(1, 2), w, self.lin.bias).transpose(1, 2)
            return self.dequant(self.lin(self.quant(x)))

    class EncoderLayer(nn.Module):
        def __init__(self, d, heads, ff, act):
            super().__init__()
            self.h, self.dk = heads, d // heads
            self.q, self.k, self.v, self.o = (QLinear(d, d) for _ in range(4))
            self.n1, self.n2 = nn.LayerNorm(d), nn.LayerNorm(d)
            self.f1, self.f2, self.act = QLinear(d, ff), QLinear(ff, d), act

        def split(self, t):
            return t.reshape(t.shape[0], t.shape[1], self.h, self.dk).transpose(1, 2)

        def forward(self, x):  # post-norm, as BERT
            q, k, v = self.split(self.q(x)), self.split(self.k(x)), self.split(self.v(x))
            a = torch.softmax(torch.matmul(q, k.transpose(2, 3)) / (self.dk ** 0.5), dim=-1)
            a = torch.matmul(a, v).transpose(1, 2).reshape(x.shape)
            x = self.n1(x + self.o(a))
            return self.n2(x + self.f2(self.act(self.f1(x))))

    class Encoder(nn.Module):
        """Byte embeddings + learned positions, post-norm encoder layers, mean-pooled
        (langid) or first-token tanh-pooled (bert) classification head."""

        def __init__(self, seq, d, heads, ff, layers, classes, act, bert=False):
            super().__init__()
            self.tok, self.pos = nn.Embedding(256, d), nn.Parameter(torch.zeros(1, seq, d))
            self.norm = nn.LayerNorm(d)
            self.layers = nn.ModuleList(EncoderLayer(d, heads, ff, act) for _ in range(layers))
            self.bert = bert
            self.pool = QLinear(d, d) if bert else None
            self.head = QLinear(d, classes)
            if bert:  # BERT's initialization: N(0, 0.02) weights, zero biases
                for m in self.modules():
                    if isinstance(m, (nn.Linear, nn.Embedding)):
                        nn.init.normal_(m.weight, 0.0, 0.02)
                    if isinstance(m, nn.Linear):
                        nn.init.zeros_(m.bias)
                nn.init.normal_(self.pos, 0.0, 0.02)
            else:
                nn.init.normal_(self.pos, 0.0, 0.1)

        def forward(self, ids):
            x = self.norm(self.tok(ids) + self.pos)
            for layer in self.layers:
                x = layer(x)
            if self.bert:
                return x, self.head(torch.tanh(self.pool(x[:, 0])))
            return self.head(x.mean(1))

    class DecoderLayer(nn.Module):
        def __init__(self, d, heads, ff):
            super().__init__()
            self.h, self.dk = heads, d // heads
            self.q, self.k, self.v, self.o = (QLinear(d, d, conv_train=True) for _ in range(4))
            self.n1, self.n2 = nn.LayerNorm(d), nn.LayerNorm(d)
            self.f1, self.f2 = QLinear(d, ff, conv_train=True), QLinear(ff, d, conv_train=True)

        def split(self, t):
            return t.reshape(t.shape[0], t.shape[1], self.h, self.dk).transpose(1, 2)

        def forward(self, x, mask):  # pre-norm, as GPT-2
            y = self.n1(x)
            q, k, v = self.split(self.q(y)), self.split(self.k(y)), self.split(self.v(y))
            a = torch.softmax(torch.matmul(q, k.transpose(2, 3)) / (self.dk ** 0.5) + mask, dim=-1)
            x = x + self.o(torch.matmul(a, v).transpose(1, 2).reshape(x.shape))
            return x + self.f2(torch.nn.functional.gelu(self.f1(self.n2(x))))

    class Decoder(nn.Module):
        """Byte and position embeddings, pre-norm causal decoder layers, next-byte
        logits [N, seq, 256] at every position."""

        def __init__(self, seq, d, heads, ff, layers):
            super().__init__()
            self.tok, self.pos = nn.Embedding(256, d), nn.Embedding(seq, d)
            self.layers = nn.ModuleList(DecoderLayer(d, heads, ff) for _ in range(layers))
            self.norm = nn.LayerNorm(d)
            self.head = QLinear(d, 256, conv_train=True)
            self.register_buffer("mask", torch.triu(torch.full((seq, seq), -1e4), 1))

        def forward(self, ids):
            # position ids counted from the input (as for left-padded batches), so
            # that both tables are looked up by Gather in the exported graph
            positions = torch.cumsum(torch.ones_like(ids), 1) - 1
            x = self.tok(ids) + self.pos(positions)
            for layer in self.layers:
                x = layer(x, self.mask)
            return self.head(self.norm(x))

    def conv_bn(i, o, k, s, groups=1, act="relu"):
        layers = [nn.Conv2d(i, o, k, s, k // 2, groups=groups, bias=False), nn.BatchNorm2d(o)]
        if act == "relu":
            layers.append(nn.ReLU())
        elif act == "relu6":
            layers.append(nn.ReLU6())
        return nn.Sequential(*layers)

    class Basic(nn.Module):
        def __init__(self, i, o, s):
            super().__init__()
            self.a, self.b = conv_bn(i, o, 3, s), conv_bn(o, o, 3, 1, act=None)
            self.skip = conv_bn(i, o, 1, s, act=None) if (s != 1 or i != o) else nn.Identity()

        def forward(self, x):
            return torch.relu(self.b(self.a(x)) + self.skip(x))

    class ResNetStyle(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = conv_bn(3, 32, 3, 2)
            blocks, c = [], 32
            for o, s in [(32, 1), (32, 1), (64, 2), (64, 1), (128, 2), (128, 1)]:
                blocks.append(Basic(c, o, s))
                c = o
            self.blocks = nn.Sequential(*blocks)
            self.fc = nn.Linear(128, 100)

        def forward(self, x):
            return self.fc(self.blocks(self.stem(x)).mean((2, 3)))

    class Inverted(nn.Module):
        def __init__(self, i, o, s, t=6):
            super().__init__()
            h = i * t
            self.body = nn.Sequential(conv_bn(i, h, 1, 1, act="relu6"),
                                      conv_bn(h, h, 3, s, groups=h, act="relu6"),
                                      conv_bn(h, o, 1, 1, act=None))
            self.res = s == 1 and i == o

        def forward(self, x):
            y = self.body(x)
            return x + y if self.res else y

    class MobileNetV2Style(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = conv_bn(3, 16, 3, 2, act="relu6")
            blocks, c = [], 16
            for o, s in [(16, 1), (24, 2), (24, 1), (32, 2), (32, 1), (64, 2), (64, 1), (96, 1)]:
                blocks.append(Inverted(c, o, s, t=1 if c == 16 and o == 16 else 6))
                c = o
            self.blocks = nn.Sequential(*blocks)
            self.last = conv_bn(96, 320, 1, 1, act="relu6")
            self.fc = nn.Linear(320, 100)

        def forward(self, x):
            return self.fc(self.last(self.blocks(self.stem(x))).mean((2, 3)))

    class GRUClassifier(nn.Module):
        """Byte embedding -> GRU -> its last state -> Linear."""

        def __init__(self, dim, hidden, classes):
            super().__init__()
            self.emb = nn.Embedding(256, dim)
            self.rnn = nn.GRU(dim, hidden, batch_first=True)
            self.head = nn.Linear(hidden, classes)

        def forward(self, x):
            _, h = self.rnn(self.emb(x))
            return self.head(h[-1])

    return {"DigitsCNN": DigitsCNN, "Encoder": Encoder, "Decoder": Decoder, "ResNetStyle": ResNetStyle,
            "MobileNetV2Style": MobileNetV2Style, "GRUClassifier": GRUClassifier}


# ---- training and the PyTorch peer --------------------------------------------------

def train(torch, model, x, y, epochs, lr, batch, seed):
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(yt), generator=g).split(batch):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
    model.eval()
    return model


def train_lm(torch, model, text, steps, batch, lr, seed):
    """Next-byte training on random windows of text: Adam, a 30-step warm-up, then
    a cosine decay of the learning rate to zero over `steps` steps."""
    import math
    rng = np.random.default_rng(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda i: min(1.0, (i + 1) / 30) * 0.5 * (1 + math.cos(math.pi * i / steps)))
    model.train()
    for i in range(steps):
        w = torch.from_numpy(windows(text, batch, int(rng.integers(1 << 31))))
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(w[:, :-1]).reshape(-1, 256), w[:, 1:].reshape(-1))
        loss.backward()
        opt.step()
        sched.step()
    model.eval()
    return model


def predictions(torch, model, x):
    """Top-1 class of the model's last output for every row of x (in chunks of 256)."""
    out = []
    with torch.no_grad():
        for c in np.array_split(x, max(1, len(x) // 256)):
            y = model(torch.from_numpy(c))
            out.append((y[-1] if isinstance(y, tuple) else y).argmax(-1).numpy())
    return np.concatenate(out)


def last_output(torch, model, x):
    with torch.no_grad():
        y = model(torch.from_numpy(x))
    return (y[-1] if isinstance(y, tuple) else y).numpy().astype(np.float64)


def accuracy(torch, model, x, y):
    return float((predictions(torch, model, x) == y).mean())


def peer_int8(torch, model, calib, fuse=None):
    """PyTorch's eager post-training static quantization of a copy of model: fbgemm's
    default qconfig (HistogramObserver activations, per-channel symmetric int8
    weights), observers run on the calibration inputs, then convert. Debian's
    python3-torch is built without the fbgemm kernels, so the converted model runs on
    the oneDNN engine (same int8 arithmetic; the qconfig is fbgemm's)."""
    import copy
    import warnings
    from torch.ao.quantization import convert, fuse_modules, get_default_qconfig, prepare
    m = copy.deepcopy(model).eval()
    torch.backends.quantized.engine = "onednn"
    if fuse:
        m = fuse_modules(m, fuse)
    qc = get_default_qconfig("fbgemm")
    if fuse:  # the whole CNN runs quantized
        m.qconfig = qc
    else:  # only the QLinear blocks (see QLinear)
        for sub in m.modules():
            if type(sub).__name__ == "QLinear":
                sub.qconfig = qc
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # reduce_range deprecation notice
        p = prepare(m)
        with torch.no_grad():
            for chunk in np.array_split(calib, max(1, len(calib) // 16)):
                p(torch.from_numpy(chunk))
        return convert(p)


def peer_int8_dynamic(torch, model):
    """PyTorch's post-training dynamic quantization of a copy of model, its usual
    form for recurrent nets: GRU/LSTM and Linear weights int8, activations
    quantized per call at run time (oneDNN engine, as peer_int8)."""
    import copy
    from torch.ao.quantization import quantize_dynamic
    torch.backends.quantized.engine = "onednn"
    return quantize_dynamic(copy.deepcopy(model).eval(), {torch.nn.GRU, torch.nn.LSTM, torch.nn.Linear},
                            dtype=torch.qint8)


def peer_int8_fx(torch, model, calib):
    """The same for the architecture-only CNNs, whose residual adds eager mode cannot
    quantize without rewriting the model: FX graph mode (prepare_fx/convert_fx) with
    fbgemm's default qconfig mapping, which fuses Conv+BatchNorm(+ReLU) itself."""
    import copy
    import warnings
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx
    torch.backends.quantized.engine = "onednn"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = prepare_fx(copy.deepcopy(model).eval(), get_default_qconfig_mapping("fbgemm"),
                       (torch.from_numpy(calib[:1]),))
        with torch.no_grad():
            for chunk in np.array_split(calib, max(1, len(calib) // 16)):
                p(torch.from_numpy(chunk))
        return convert_fx(p)


def export(torch, model, example, path, in_name, out_names):
    axes = {in_name: {0: "N"}}
    for n in out_names:
        axes[n] = {0: "N"}
    buf = io.BytesIO()
    torch.onnx.export(model, (torch.from_numpy(example),), buf, opset_version=13,
                      input_names=[in_name], output_names=out_names, dynamic_axes=axes,
                      do_constant_folding=True)
    with open(path, "wb") as f:
        f.write(buf.getvalue())


def measure_bn(torch, model, x):
    """Sets every BatchNorm's running statistics to those of x (cumulative average)."""
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
            # a seeded affine part whose scale spreads over a factor of about 30 across
            # channels, as in trained networks: folded into the convolution it gives each
            # output channel its own weight range (what per-channel scales are for)
            m.weight.data.uniform_(-3.0, 0.5).exp_()
            m.bias.data.uniform_(-0.2, 0.2)
    model.train()
    with torch.no_grad():
        for chunk in np.array_split(x, 4):
            model(torch.from_numpy(chunk))
    return model.eval()


def build(name, out):
    """Builds model `name` into folder out; returns its meta dict."""
    torch = torch_setup()
    cls = build_modules()
    meta = {"name": name, "generator": "models/zoo/gen_torch.py", "torch": torch.__version__}
    t0 = time.time()
    if name == "digits_cnn":
        xtr, ytr, xte, yte = digits_data()
        model = train(torch, cls["DigitsCNN"](), xtr, ytr, epochs=30, lr=2e-3, batch=32, seed=0)
        calib = xtr[:64]
        meta["data"] = {"what": "scikit-learn load_digits: 1437 train, 360 test (fixed shuffle, seed 0); "
                                "calibration: the first 64 training digits",
                        "sha256": sha256_arrays(xtr, ytr, xte, yte)}
        peer = peer_int8(torch, model, calib, fuse=cls["DigitsCNN"].fuse)
        export(torch, model, xte[:1], os.path.join(out, "model.onnx"), "image", ["logits"])
    elif name == "langid_encoder":
        xtr, ytr, xte, yte = langid_data()
        # 12000 of the training messages, two epochs: about a minute on one core
        sub = np.random.default_rng(2).choice(len(ytr), 12000, replace=False)
        model = cls["Encoder"](SEQ, 32, 2, 64, 2, len(LANGS), torch.nn.ReLU())
        model = train(torch, model, xtr[sub], ytr[sub], epochs=2, lr=2e-3, batch=32, seed=0)
        rng = np.random.default_rng(1)
        calib = xtr[rng.choice(len(xtr), 64, replace=False)]
        meta["data"] = {"what": f"gettext catalogues of {', '.join(DOMAINS)} in {', '.join(LANGS)}: "
                                f"{len(ytr)} train, {len(yte)} test messages (split by msgid hash); "
                                "calibration: 64 random training messages",
                        "sha256": sha256_arrays(xtr, ytr, xte, yte)}
        peer = peer_int8(torch, model, calib)
        export(torch, model, xte[:1], os.path.join(out, "model.onnx"), "bytes", ["logits"])
    elif name == "gru_langid":
        xtr, ytr, xte, yte = langid_data()
        sub = np.random.default_rng(3).choice(len(ytr), 12000, replace=False)
        model = train(torch, cls["GRUClassifier"](32, 64, len(LANGS)), xtr[sub], ytr[sub], epochs=3, lr=3e-3,
                      batch=64, seed=0)
        calib = xtr[np.random.default_rng(4).choice(len(xtr), 64, replace=False)]
        meta["data"] = {"what": f"gettext catalogues of {', '.join(DOMAINS)} in {', '.join(LANGS)}: "
                                f"{len(ytr)} train, {len(yte)} test messages (split by msgid hash); "
                                "calibration: 64 random training messages",
                        "sha256": sha256_arrays(xtr, ytr, xte, yte)}
        peer = peer_int8_dynamic(torch, model)
        export(torch, model, xte[:1], os.path.join(out, "model.onnx"), "bytes", ["logits"])
    elif name == "gpt_decoder":
        train_text, test_text = python_source_data()
        model = cls["Decoder"](GPT_SEQ, 96, 4, 384, 2)
        model = train_lm(torch, model, train_text, steps=300, batch=16, lr=3e-3, seed=0)
        calib = windows(train_text, 64, seed=1)[:, :-1]
        test = windows(test_text, 256, seed=2)
        xte, yte = test[:, :-1], test[:, 1:]
        meta["data"] = {"what": f"bytes of Debian's Python standard library sources: {len(train_text)} "
                                f"train, {len(test_text)} test (held-out files); calibration: 64 training "
                                f"windows of {GPT_SEQ} bytes; test: next-byte predictions at every position "
                                f"of 256 held-out windows",
                        "sha256": sha256_arrays(train_text, test_text)}
        peer = peer_int8(torch, model, calib)
        export(torch, model, xte[:1], os.path.join(out, "model.onnx"), "ids", ["logits"])
    elif name in ("resnet_style", "mobilenetv2_style"):
        torch.manual_seed(1 if name == "resnet_style" else 2)
        model = cls["ResNetStyle" if name == "resnet_style" else "MobileNetV2Style"]()
        model = measure_bn(torch, model, photo_crops(64, seed=10))
        calib, xte, yte = photo_crops(32, seed=11), photo_crops(64, seed=12), None
        meta["data"] = {"what": "crops (64..160 px squares, resized to 64x64, ImageNet-normalized) of "
                                "scikit-learn's two sample photographs; BatchNorm statistics from 64 "
                                "crops (seed 10), calibration 32 (seed 11), evaluation 64 (seed 12)",
                        "sha256": sha256_arrays(calib, xte)}
        peer = peer_int8_fx(torch, model, calib)
        export(torch, model, xte[:1], os.path.join(out, "model.onnx"), "image", ["logits"])
    elif name == "bert_style":
        torch.manual_seed(3)
        model = cls["Encoder"](64, 128, 4, 512, 4, 8, torch.nn.GELU(), bert=True).eval()
        calib, xte, yte = license_tokens(32, seed=11), license_tokens(64, seed=12), None
        meta["data"] = {"what": "64-byte windows of /usr/share/common-licenses/GPL-3 (whitespace "
                                "collapsed) as byte tokens: calibration 32 (seed 11), evaluation 64 (seed 12)",
                        "sha256": sha256_arrays(calib, xte)}
        peer = peer_int8(torch, model, calib)
        export(torch, model, xte[:1], os.path.join(out, "model.onnx"), "ids", ["hidden", "logits"])
    else:
        raise KeyError(name)
    what = ("torch.ao.quantization post-training static quantization (%s mode), fbgemm's default "
            "qconfig (per-channel weights), run on the oneDNN engine")
    if name == "gru_langid":
        what = ("torch.ao.quantization post-training dynamic quantization (%s mode: GRU and Linear weights "
                "int8, activations quantized at run time), run on the oneDNN engine")
    ref, got = last_output(torch, model, xte), last_output(torch, peer, xte)
    peer_sqnr = float(10 * np.log10((ref ** 2).sum() / ((ref - got) ** 2).sum()))
    if yte is not None:  # task accuracy
        meta["fp32_accuracy_torch"] = accuracy(torch, model, xte, yte)
        meta["peer"] = {"what": what % "eager", "metric": "accuracy", "int8_metric": accuracy(torch, peer, xte, yte),
                        "sqnr_db": peer_sqnr}
        np.save(os.path.join(out, "labels.npy"), yte)
    else:  # top-1 agreement with the FP32 model
        mode = "FX graph" if name in ("resnet_style", "mobilenetv2_style") else "eager"
        agree = float((predictions(torch, peer, xte) == predictions(torch, model, xte)).mean())
        meta["peer"] = {"what": what % mode, "metric": "agreement", "int8_metric": agree, "sqnr_db": peer_sqnr}
    np.save(os.path.join(out, "calib.npy"), calib)
    np.save(os.path.join(out, "test.npy"), xte)
    meta["build_seconds"] = round(time.time() - t0, 1)
    with open(os.path.join(out, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    return meta


def cache_key(name):
    h = hashlib.sha256()
    with open(os.path.abspath(__file__), "rb") as f:
        h.update(f.read())
    import torch
    h.update(f"\0{name}\0{torch.__version__}".encode())
    return h.hexdigest()[:12]


def get(name, cache=None):
    """Folder of model `name`, built on first use and cached (see the module doc)."""
    if name not in MODELS:
        raise KeyError(f"unknown zoo model {name!r} (known: {', '.join(MODELS)})")
    cache = cache or default_cache()
    dest = os.path.join(cache, f"{name}-{cache_key(name)}")
    if os.path.exists(os.path.join(dest, "meta.json")):
        return dest
    os.makedirs(cache, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=cache, prefix=f".{name}-")
    try:
        build(name, tmp)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            import shutil
            shutil.rmtree(tmp)
    return dest


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", default=default_cache())
    ap.add_argument("names", nargs="*")
    args = ap.parse_args()
    for n in args.names or MODELS:
        d = get(n, args.cache)
        with open(os.path.join(d, "meta.json")) as f:
            m = json.load(f)
        extra = ""
        if "peer" in m:
            extra = (f"  peer int8 {m['peer']['metric']} {m['peer']['int8_metric']:.4f}, "
                     f"SQNR {m['peer']['sqnr_db']:.2f} dB")
        print(f"{n} {d}  ({m['build_seconds']} s){extra}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
