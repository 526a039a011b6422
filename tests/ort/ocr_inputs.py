"""ocr_inputs.py: realistic inputs for the PaddleOCR models, rendered with PIL.

Text is drawn with the DejaVu fonts of fonts-dejavu-core, on paper-like
backgrounds with mild seeded noise, and normalized the way PaddleOCR does:
  det:      RGB/255, minus ImageNet mean, over ImageNet std; H, W multiples of 32
  rec, cls: (RGB/255 - 0.5) / 0.5, height 48, right-padded with zeros
All functions return float32 NCHW arrays.
"""
import os

import numpy as np
from PIL import Image, ImageDraw, ImageFont

FONT_DIR = "/usr/share/fonts/truetype/dejavu"
FONTS = ["DejaVuSans.ttf", "DejaVuSerif.ttf", "DejaVuSansMono.ttf", "DejaVuSans-Bold.ttf"]
MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


def font(i, size):
    path = os.path.join(FONT_DIR, FONTS[i % len(FONTS)])
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} is missing (apt-get install fonts-dejavu-core)")
    return ImageFont.truetype(path, size)


def _noisy(img, rng, amount=6.0):
    a = np.asarray(img, np.float32) + rng.normal(0, amount, (img.height, img.width, 1))
    return np.clip(a, 0, 255)


def render_page(h, w, lines, seed):
    """An RGB page [h, w, 3] (uint8 range, float32) with the given lines of text."""
    rng = np.random.default_rng(seed)
    paper = tuple(int(v) for v in rng.integers(225, 250, 3))
    img = Image.new("RGB", (w, h), paper)
    d = ImageDraw.Draw(img)
    y = int(rng.integers(8, 24))
    for i, text in enumerate(lines):
        size = int(rng.integers(14, 30))
        x = int(rng.integers(8, max(9, w // 6)))
        ink = tuple(int(v) for v in rng.integers(0, 70, 3))
        d.text((x, y), text, font=font(i, size), fill=ink)
        y += int(size * 1.6) + int(rng.integers(2, 14))
        if y > h - 30:
            break
    d.rectangle((w - 70, h - 40, w - 12, h - 12), outline=(120, 120, 120), width=2)  # a non-text shape
    return _noisy(img, rng)


def det_input(pages):
    """Stack [h, w, 3] pages (same size, multiples of 32) into the det model's input."""
    x = np.stack([(p / 255.0 - MEAN) / STD for p in pages]).astype(np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def render_line(text, seed, height=48):
    """A tight RGB text-line crop [height, w, 3], as a detector would cut it out."""
    rng = np.random.default_rng(seed)
    f = font(seed, int(rng.integers(26, 34)))
    left, top, right, bottom = f.getbbox(text)
    pad = int(rng.integers(3, 8))
    img = Image.new("RGB", (right - left + 2 * pad, bottom - top + 2 * pad),
                    tuple(int(v) for v in rng.integers(215, 250, 3)))
    ImageDraw.Draw(img).text((pad - left, pad - top), text, font=f,
                             fill=tuple(int(v) for v in rng.integers(0, 80, 3)))
    w = max(1, round(img.width * height / img.height))
    return _noisy(img.resize((w, height), Image.BILINEAR), rng, 4.0)


def line_input(lines, width, rotate180=()):
    """rec/cls input [N, 3, 48, width] from line crops, each scaled to fit and
    right-padded with 0 (PaddleOCR's resize_norm_img). Lines whose index is in
    rotate180 are turned upside down first (for the orientation classifier)."""
    out = np.zeros((len(lines), 3, 48, width), np.float32)
    for i, a in enumerate(lines):
        img = Image.fromarray(a.astype(np.uint8))
        if i in rotate180:
            img = img.rotate(180)
        w = min(width, img.width)
        img = img.resize((w, 48), Image.BILINEAR)
        x = (np.asarray(img, np.float32) / 255.0 - 0.5) / 0.5
        out[i, :, :, :w] = x.transpose(2, 0, 1)
    return out


def ctc_decode(probs, charset):
    """Greedy CTC decode of [T, C] probabilities: class 0 is blank, class k is
    charset[k-1], and the class after the charset is a space."""
    ids = probs.argmax(axis=1)
    text = []
    prev = 0
    for k in ids:
        if k != prev and k != 0:
            text.append(charset[k - 1] if k - 1 < len(charset) else " ")
        prev = k
    return "".join(text)
