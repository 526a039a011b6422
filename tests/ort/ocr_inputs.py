"""ocr_inputs.py: realistic inputs for the PaddleOCR models, rendered with PIL.

Text is drawn with the DejaVu fonts of fonts-dejavu-core, on paper-like
backgrounds with mild seeded noise, and normalized the way PaddleOCR does:
  det:      RGB/255, minus ImageNet mean, over ImageNet std; H, W multiples of 32
  rec, cls: (RGB/255 - 0.5) / 0.5, height 48, right-padded with zeros
All functions return float32 NCHW arrays.
"""
import os

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

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


# ---- a held-out recognizer set rendered unlike the calibration lines -------------------
# Calibration lines (render_line) are tight DejaVu crops of a 30-word list on light
# paper. These words come from other texts (the licenses in /usr/share/common-licenses,
# plus numbers, dates, times, prices and codes) and are drawn in other fonts (Liberation,
# Noto), at sizes 20-44, at random positions in loose padding, on tinted backgrounds with
# a gradient, some blurred, all with noise of varying strength.

VARIED_FONTS = [
    "liberation/LiberationSans-Regular.ttf", "liberation/LiberationSerif-Regular.ttf",
    "liberation/LiberationMono-Regular.ttf", "liberation/LiberationSans-Bold.ttf",
    "liberation/LiberationSerif-Italic.ttf", "liberation/LiberationSansNarrow-Regular.ttf",
    "liberation/LiberationSerif-Bold.ttf", "liberation/LiberationMono-Bold.ttf",
    "noto/NotoSans-Regular.ttf", "noto/NotoSerif-Regular.ttf", "noto/NotoSans-Italic.ttf",
    "noto/NotoSerif-Bold.ttf", "noto/NotoSans-Bold.ttf", "noto/NotoSerif-Italic.ttf",
]
LICENSE_DIR = "/usr/share/common-licenses"


def varied_font(seed, size):
    path = os.path.join("/usr/share/fonts/truetype", VARIED_FONTS[seed % len(VARIED_FONTS)])
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} is missing (apt-get install fonts-liberation fonts-noto-core)")
    return ImageFont.truetype(path, size)


def license_vocabulary(exclude=()):
    """Sorted words of 3-11 letters from the license texts of base-files, minus exclude (any case)."""
    import re
    skip = {w.lower() for w in exclude}
    words = set()
    for name in sorted(os.listdir(LICENSE_DIR)):
        path = os.path.join(LICENSE_DIR, name)
        if os.path.isfile(path):
            with open(path, encoding="utf-8", errors="replace") as f:
                words |= set(re.findall(r"\b[A-Za-z]{3,11}\b", f.read()))
    return sorted(w for w in words if w.lower() not in skip)


def varied_text(rng, vocab):
    """A word (as written, capitalized or upper case) or a number, date, time, price or code."""
    k = rng.random()
    if k < 0.08:
        return "%d.%02d" % (rng.integers(0, 9999), rng.integers(0, 100))
    if k < 0.14:
        return "%04d-%02d-%02d" % (rng.integers(1990, 2030), rng.integers(1, 13), rng.integers(1, 29))
    if k < 0.18:
        return "%02d:%02d" % (rng.integers(0, 24), rng.integers(0, 60))
    if k < 0.22:
        return "%d%%" % rng.integers(1, 100)
    if k < 0.26:
        return "%s%d" % ("".join(chr(65 + int(c)) for c in rng.integers(0, 26, 2)), rng.integers(10, 99999))
    w = vocab[int(rng.integers(len(vocab)))]
    k = rng.random()
    return w.capitalize() if k < 0.2 else w.upper() if k < 0.3 else w


def render_varied(text, seed, height=48):
    """An RGB crop [height, w, 3] of text in the held-out style (see above)."""
    rng = np.random.default_rng(seed)
    f = varied_font(seed, int(rng.integers(20, 45)))
    left, top, right, bottom = f.getbbox(text)
    padl, padr = int(rng.integers(2, 31)), int(rng.integers(2, 31))
    padt, padb = int(rng.integers(1, 13)), int(rng.integers(1, 13))
    w, h = right - left + padl + padr, bottom - top + padt + padb
    paper = np.array(rng.integers(170, 256, 3), np.float32)
    ramp = np.linspace(0, rng.uniform(-30, 30), w if rng.random() < 0.7 else h, dtype=np.float32)
    ramp = ramp[None, :, None] if ramp.size == w else ramp[:, None, None]
    img = Image.fromarray(np.clip(np.ones((h, w, 3), np.float32) * paper + ramp, 0, 255).astype(np.uint8))
    ImageDraw.Draw(img).text((padl - left, padt - top), text, font=f,
                             fill=tuple(int(v) for v in rng.integers(0, 110, 3)))
    if rng.random() < 0.5:
        img = img.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.3, 1.1))))
    w = max(1, round(img.width * height / img.height))
    a = np.asarray(img.resize((w, height), Image.BILINEAR), np.float32)
    return np.clip(a + rng.normal(0, float(rng.uniform(2, 10)), a.shape), 0, 255)


def varied_rec_set(n, seed, exclude=()):
    """(texts, rec input [n, 3, 48, 320]) of n held-out words, none of them in exclude."""
    vocab = license_vocabulary(exclude)
    rng = np.random.default_rng(seed)
    texts = [varied_text(rng, vocab) for _ in range(n)]
    return texts, line_input([render_varied(t, seed * 100003 + i) for i, t in enumerate(texts)], 320)
