"""model_set.py: the benchmark model set of bench/bench_models.py.

Twelve torchvision architectures (Debian's python3-torchvision), a GPT-style
decoder and the three PaddleOCR models of models/zoo.json. The torchvision
models get seeded random weights; their BatchNorm statistics are set by
running them in train mode (cumulative averages, momentum None) over
synthetic images (synthetic_images below: there is no image data set on the
machine); weight matrices that torchvision initializes to zero (vit_b_16's
head) get small random values. Each is exported once by Debian's torch (opset 17, eval mode,
input "x", output "y") into ~/.cache/onnxq/bench/ and reused; RECIPE is part
of the file name, so changing how models are made makes new files.
"""
import os
import sys

import numpy as np

RECIPE = "r2"
CACHE = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
                     "onnxq", "bench")
MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)

# name: (torchvision constructor, input side); all take [1, 3, side, side]
TORCHVISION = {
    "resnet50": ("resnet50", 224),
    "mobilenet_v2": ("mobilenet_v2", 224),
    "mobilenet_v3_large": ("mobilenet_v3_large", 224),
    "efficientnet_b0": ("efficientnet_b0", 224),
    "densenet121": ("densenet121", 224),
    "shufflenet_v2_x1_0": ("shufflenet_v2_x1_0", 224),
    "squeezenet1_1": ("squeezenet1_1", 224),
    "regnet_y_400mf": ("regnet_y_400mf", 224),
    "vgg16": ("vgg16", 224),
    "inception_v3": ("inception_v3", 299),
    "convnext_tiny": ("convnext_tiny", 224),
    "vit_b_16": ("vit_b_16", 224),
}
GPT = {"layers": 6, "dim": 384, "heads": 6, "seq": 128, "vocab": 8192}
OCR = ("det", "rec", "cls")
ALL = list(TORCHVISION) + ["gpt_decoder"] + list(OCR)
CNNS = [n for n in TORCHVISION if n != "vit_b_16"] + list(OCR)  # what the INT8 table quantizes


# ---- synthetic natural-looking images -------------------------------------------------

def _pink_noise(rng, h, w, exponent):
    """Noise with a 1/f^exponent power spectrum (natural images sit near 2),
    scaled to [0, 1]: structure at every scale."""
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    f = np.sqrt(fx * fx + fy * fy)
    f[0, 0] = 1.0
    spec = (rng.normal(size=f.shape) + 1j * rng.normal(size=f.shape)) / f ** (exponent / 2.0)
    spec[0, 0] = 0.0
    a = np.fft.irfft2(spec, s=(h, w))
    a -= a.min()
    return a / max(a.max(), 1e-12)


def synthetic_image(rng, h, w):
    """An RGB image [h, w, 3] in [0, 255] (float32): a two-colour gradient,
    coloured 1/f noise at a random spectral slope, then 4-40 filled shapes
    (ellipses, rectangles, polygons, thick lines) of random colours and
    opacity, some blurred, and fine sensor-like noise."""
    from PIL import Image, ImageDraw, ImageFilter
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ang = rng.uniform(0, 2 * np.pi)
    t = (np.cos(ang) * xx / w + np.sin(ang) * yy / h)
    t = (t - t.min()) / max(t.max() - t.min(), 1e-6)
    c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    img = c0 * (1 - t[..., None]) + c1 * t[..., None]
    for ch in range(3):
        img[..., ch] += rng.uniform(30, 110) * (_pink_noise(rng, h, w, rng.uniform(1.5, 2.5)) - 0.5)
    base = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    for _ in range(int(rng.integers(4, 40))):
        layer = Image.new("RGBA", (w, h), (0, 0, 0, 0))
        d = ImageDraw.Draw(layer)
        colour = tuple(int(v) for v in rng.integers(0, 256, 3)) + (int(rng.integers(90, 256)),)
        size = rng.uniform(0.03, 0.6) * min(h, w)
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        box = [cx - size, cy - size * rng.uniform(0.3, 1.0), cx + size, cy + size * rng.uniform(0.3, 1.0)]
        kind = int(rng.integers(0, 4))
        if kind == 0:
            d.ellipse(box, fill=colour)
        elif kind == 1:
            d.rectangle(box, fill=colour)
        elif kind == 2:
            pts = [(cx + size * np.cos(a), cy + size * np.sin(a))
                   for a in np.sort(rng.uniform(0, 2 * np.pi, int(rng.integers(3, 8))))]
            d.polygon(pts, fill=colour)
        else:
            d.line(box, fill=colour, width=int(rng.integers(1, max(2, int(size / 4)))))
        if rng.uniform() < 0.3:
            layer = layer.filter(ImageFilter.GaussianBlur(rng.uniform(1, 6)))
        base = Image.alpha_composite(base.convert("RGBA"), layer).convert("RGB")
    out = np.asarray(base, np.float32) + rng.normal(0, rng.uniform(1, 6), (h, w, 1))
    return np.clip(out, 0, 255).astype(np.float32)


def image_batch(n, side, seed):
    """[n, 3, side, side] synthetic images normalized as torchvision's
    ImageNet models expect."""
    rng = np.random.default_rng(seed)
    x = np.stack([(synthetic_image(rng, side, side) / 255.0 - MEAN) / STD for _ in range(n)])
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2)).astype(np.float32)


# ---- exports --------------------------------------------------------------------------

def _set_bn_statistics(model, images, batch=16):
    """BatchNorm running statistics from train-mode passes over images."""
    import torch
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over every batch
    model.train()
    with torch.no_grad():
        for b in range(0, len(images), batch):
            model(torch.from_numpy(images[b:b + batch]))
    model.eval()


def _export(model, example, path, **kw):
    import torch
    tmp = path + ".tmp"
    torch.onnx.export(model, example, tmp, opset_version=17, do_constant_folding=True, input_names=["x"],
                      output_names=["y"], **kw)
    os.replace(tmp, path)


def export_torchvision(name, path, calib_images=48):
    import torch
    import torchvision
    ctor, side = TORCHVISION[name]
    torch.manual_seed(0)
    kw = {"aux_logits": False, "init_weights": True} if name == "inception_v3" else {}
    model = getattr(torchvision.models, ctor)(weights=None, **kw)
    with torch.no_grad():  # zero-initialized weight matrices (vit_b_16's head) would make the output all zeros
        for prm in model.parameters():
            if prm.dim() >= 2 and not prm.any():
                prm.normal_(0.0, 0.02)
    _set_bn_statistics(model, image_batch(calib_images, side, seed=1000))
    model.eval()
    _export(model, torch.from_numpy(image_batch(1, side, seed=1)), path)


class _Decoder:
    """Builds the GPT-style decoder lazily (torch is imported only when exporting)."""

    @staticmethod
    def make():
        import torch
        import torch.nn as nn
        import torch.nn.functional as F
        c = GPT

        class Block(nn.Module):
            def __init__(self):
                super().__init__()
                d = c["dim"]
                self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
                self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
                self.fc1, self.fc2 = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)
                mask = torch.full((c["seq"], c["seq"]), float("-inf")).triu(1)
                self.register_buffer("mask", mask)

            def forward(self, x):
                b, t, d = x.shape
                h, hd = c["heads"], d // c["heads"]
                q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
                q, k, v = (z.reshape(b, t, h, hd).transpose(1, 2) for z in (q, k, v))
                s = q @ k.transpose(2, 3) * (1.0 / hd ** 0.5) + self.mask[:t, :t]
                a = (F.softmax(s, dim=-1) @ v).transpose(1, 2).reshape(b, t, d)
                x = x + self.proj(a)
                return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))

        class Decoder(nn.Module):
            def __init__(self):
                super().__init__()
                self.tok = nn.Embedding(c["vocab"], c["dim"])
                self.pos = nn.Parameter(torch.randn(1, c["seq"], c["dim"]) * 0.02)
                self.blocks = nn.ModuleList([Block() for _ in range(c["layers"])])
                self.ln = nn.LayerNorm(c["dim"])
                self.head = nn.Linear(c["dim"], c["vocab"], bias=False)

            def forward(self, ids):
                x = self.tok(ids) + self.pos[:, :ids.shape[1]]
                for blk in self.blocks:
                    x = blk(x)
                return self.head(self.ln(x))

        torch.manual_seed(0)
        return Decoder().eval()


def export_gpt(path):
    import torch
    model = _Decoder.make()
    _export(model, torch.from_numpy(gpt_input(0)), path)


def gpt_input(seed):
    return np.random.default_rng(seed).integers(0, GPT["vocab"], (1, GPT["seq"])).astype(np.int64)


# ---- the set --------------------------------------------------------------------------

def model_path(name):
    return os.path.join(CACHE, "%s-%s.onnx" % (name, RECIPE))


def ensure(name, log=print):
    """(model path, input array) for benchmark model `name`, exporting it into
    the cache first if needed (the OCR models come from the zoo's cache)."""
    if name in OCR:
        repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        sys.path.insert(0, os.path.join(repo, "bench"))
        import bench_ort
        path, x = bench_ort.real_inputs()[name]
        return path, x
    os.makedirs(CACHE, exist_ok=True)
    path = model_path(name)
    if not os.path.exists(path):
        log("exporting %s to %s ..." % (name, path))
        import torch
        torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
        if name == "gpt_decoder":
            export_gpt(path)
        else:
            export_torchvision(name, path)
    if name == "gpt_decoder":
        return path, gpt_input(1)
    return path, image_batch(1, TORCHVISION[name][1], seed=1)


def calibration_data(name, n):
    """n calibration samples for `onnxq quantize` of CNN `name`, stacked on a
    leading axis ([n, 3, H, W]), made with other seeds than the timed input."""
    if name in OCR:
        repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        sys.path.insert(0, os.path.join(repo, "tests", "ort"))
        import ocr_inputs as oi
        words = ["Invoice 2031", "total due", "Quantized", "kernel 3x3", "Lorem ipsum", "ONNX Runtime",
                 "calibrate", "per channel", "the end", "42.50 USD", "winograd", "depthwise"]
        if name == "det":
            return oi.det_input([oi.render_page(480, 640, words[i % 12:] + words[:i % 12], seed=50 + i)
                                 for i in range(n)])
        width = 320 if name == "rec" else 192
        return oi.line_input([oi.render_line(words[i % len(words)], seed=70 + i) for i in range(n)], width)
    return image_batch(n, TORCHVISION[name][1], seed=2000)


# ---- work per run ---------------------------------------------------------------------

def flops(path, x):
    """FLOP of one run (two per multiply-add) of Conv, ConvTranspose, MatMul
    and Gemm, from ONNX shape inference with the input fixed to x's shape;
    (flop, complete) where complete is False when some shape stayed unknown."""
    import onnx
    m = onnx.load(path)
    inits = {i.name: list(i.dims) for i in m.graph.initializer}
    feeds = [i for i in m.graph.input if i.name not in inits]
    for d, v in zip(feeds[0].type.tensor_type.shape.dim, x.shape):
        d.Clear()
        d.dim_value = int(v)
    m = onnx.shape_inference.infer_shapes(m, data_prop=True)
    shapes = dict(inits)
    for vi in list(m.graph.value_info) + list(m.graph.input) + list(m.graph.output):
        dims = [d.dim_value if d.HasField("dim_value") else None for d in vi.type.tensor_type.shape.dim]
        shapes[vi.name] = dims if vi.type.tensor_type.HasField("shape") else None

    def known(name):
        s = shapes.get(name)
        return s if s is not None and all(v is not None for v in s) else None

    total, complete = 0, True
    for n in m.graph.node:
        if n.op_type not in ("Conv", "ConvTranspose", "MatMul", "Gemm"):
            continue
        a, b, y = known(n.input[0]), known(n.input[1]), known(n.output[0])
        if a is None or b is None or y is None:
            complete = False
            continue
        if n.op_type == "Conv":
            total += 2 * int(np.prod(y)) * int(np.prod(b[1:]))
        elif n.op_type == "ConvTranspose":
            total += 2 * int(np.prod(a)) * int(np.prod(b[1:]))
        elif n.op_type == "MatMul":
            total += 2 * int(np.prod(y)) * a[-1]
        else:
            trans_a = any(at.name == "transA" and at.i for at in n.attribute)
            total += 2 * int(np.prod(y)) * (a[0] if trans_a else a[1])
    return total, complete
