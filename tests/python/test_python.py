#!/usr/bin/python3
"""The Python module (python/onnxq) against the command line: the same model,
samples and options give the same bytes.

Samples go to onnxq.quantize as dicts of numpy arrays (a list, a generator,
an object with get_next() like ONNX Runtime's CalibrationDataReader) and to
`onnxq quantize` as the same arrays stacked in .npy files; then the quantized
models, the HTML pages and the JSON reports (timings aside) must be equal,
for the default options, for several other option sets, in dynamic mode, with
separate evaluation samples and labels, for a model with two inputs fed in
another order than the model's, and with a data folder given as a spec.
Errors become OnnxqError with liboq's message and write nothing; warnings
become OnnxqWarning with the command line's text.

usage: test_python.py --onnxq ONNXQ --library LIBOQ.so --source ROOT
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import warnings

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from checks import check, finish

ROOT = None


def read(path):
    with open(path, "rb") as f:
        return f.read()


def example_samples(source):
    data = os.path.join(source, "calibration", "example")
    out = []
    for name in sorted(os.listdir(data)):
        pb = os.path.join(data, name, "input_0.pb")
        if os.path.exists(pb):
            t = TensorProto()
            t.ParseFromString(read(pb))
            out.append({"image": numpy_helper.to_array(t)})
    return out


def save_stack(path, samples, name):
    np.save(path, np.concatenate([s[name] for s in samples]))


class Reader:
    """ONNX Runtime's CalibrationDataReader protocol: get_next() until None."""

    def __init__(self, samples):
        self.it = iter(samples)

    def get_next(self):
        return next(self.it, None)


class Runner:
    """Runs the CLI and the module into the same output paths, one after the other."""

    def __init__(self, onnxq, tmp):
        import onnxq as module
        self.module, self.exe, self.tmp = module, onnxq, tmp
        self.out = os.path.join(tmp, "out.onnx")
        self.report = os.path.join(tmp, "out.json")
        self.page = os.path.join(tmp, "out.html")

    def _take(self):
        got = {}
        for key, path in (("model", self.out), ("report", self.report), ("html", self.page)):
            if os.path.exists(path):
                got[key] = read(path)
                os.remove(path)
        return got

    def cli(self, command, model, args):
        p = subprocess.run([self.exe, command, model, "-o", self.out, "--report", self.report, "--html", self.page,
                            "-q", *args], capture_output=True, text=True)
        check(p.returncode == 0, "cli %s %s: %s" % (command, " ".join(args), p.stderr.strip()))
        return self._take(), p.stderr

    def py(self, model, **kw):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            returned = self.module.quantize(model, self.out, report=self.report, html=self.page, **kw)
        got = self._take()
        got["returned"] = returned
        got["warnings"] = [str(w.message) for w in caught if issubclass(w.category, self.module.OnnxqWarning)]
        return got


def without_timings(report_bytes_or_dict):
    r = json.loads(report_bytes_or_dict) if isinstance(report_bytes_or_dict, bytes) else dict(report_bytes_or_dict)
    r.pop("timings_s", None)
    return r


def same(what, cli, py):
    check(cli.get("model") is not None and cli.get("model") == py.get("model"), "%s: the same model bytes" % what)
    check(cli.get("html") is not None and cli.get("html") == py.get("html"), "%s: the same HTML page" % what)
    check("report" in cli and "report" in py and without_timings(cli["report"]) == without_timings(py["report"]),
          "%s: the same JSON report (timings aside)" % what)
    check(py.get("returned") is not None and "report" in py and
          without_timings(py["returned"]) == without_timings(py["report"]),
          "%s: quantize() returns the report it wrote" % what)


def two_input_model(path):
    rng = np.random.default_rng(5)
    w1 = numpy_helper.from_array(rng.normal(size=(4, 6)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.normal(size=(6, 3)).astype(np.float32), "w2")
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"], name="mm1"),
             helper.make_node("Add", ["h", "y"], ["s"], name="add"),
             helper.make_node("Relu", ["s"], ["r"], name="relu"),
             helper.make_node("MatMul", ["r", "w2"], ["out"], name="mm2")]
    g = helper.make_graph(nodes, "two_inputs",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4]),
                           helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 6])],
                          [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 3])], [w1, w2])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), path)


def errors(run, model, samples, tmp):
    module = run.module
    cases = (
        ("an unknown option", dict(data=samples, colour="red"), "colour"),
        ("a malformed value", dict(data=samples, bins="many"), "bins"),
        ("float64 samples for a float input", dict(data=[{"image": s["image"].astype(np.float64)} for s in samples]),
         "image"),
        ("a sample without the model's input", dict(data=[{"img": samples[0]["image"]}]), "image"),
        ("a sample with an input the model lacks", dict(data=[dict(samples[0], extra=samples[0]["image"])]), "extra"),
        ("contrib with the qdq format", dict(data=samples, format="qdq", contrib=True), "contrib"),
        ("a format in dynamic mode", dict(mode="dynamic", format="qdq"), "format"),
        ("static mode without samples", dict(), "samples"),
        ("labels without samples", dict(mode="dynamic", labels=os.path.join(tmp, "labels.txt")), "labels"),
        ("--max-drop without labels", dict(data=samples, max_drop=1), "labels"),
        ("two accuracy targets", dict(data=samples, min_sqnr=30, min_agreement=99), "one accuracy target"),
    )
    for what, kw, word in cases:
        try:
            run.py(model, **kw)
            check(False, "%s: raises OnnxqError" % what)
        except module.OnnxqError as e:
            check(word in str(e) and "\n" not in str(e), "%s: OnnxqError naming %r: %s" % (what, word, e))
        check(not os.listdir(tmp) or not any(f.startswith("out.") for f in os.listdir(tmp)),
              "%s: nothing written" % what)
    before = read(model)
    try:
        module.quantize(model, model, data=samples)
        check(False, "output = model: raises OnnxqError")
    except module.OnnxqError as e:
        check(read(model) == before and "input" in str(e), "output = model: refused, model unchanged: %s" % e)
    try:
        module.quantize(os.path.join(tmp, "missing.onnx"), run.out, data=samples)
        check(False, "a missing model: raises OnnxqError")
    except module.OnnxqError as e:
        check("missing.onnx" in str(e) and e.status, "a missing model: %s (%s)" % (e, e.status))
    try:
        module.quantize(model, run.out, data=[samples[0]["image"]])
        check(False, "a sample that is not a dict: raises TypeError")
    except TypeError as e:
        check("dict" in str(e), "a sample that is not a dict: TypeError: %s" % e)


def every_option_taken(module, exe):
    """Every long option `onnxq quantize --help` and `onnxq convert --help` list
    is a name the module takes (liboq's job builder knows it), but those that
    only concern the command line. The command line parses its job options
    through the builder, so this fails when --help lists an option that the
    command line handles on its own."""
    import ctypes
    import re
    cli_only = {"--help", "--quiet"}
    lib = module._library()
    builder, err = ctypes.c_void_p(), module._Err()
    check(lib.oq_job_builder_create(ctypes.byref(builder), ctypes.byref(err)) == 0, "a job builder")
    unknown, listed = [], set()
    for command in ("quantize", "convert"):
        text = subprocess.run([exe, command, "--help"], capture_output=True, text=True).stdout
        listed.update(re.findall(r"^\s+(?:-\w, )?(--[a-z][\w-]*)", text, re.M))
    for option in sorted(listed - cli_only):
        err = module._Err()
        status = lib.oq_job_builder_set(builder, option[2:].encode(), None, ctypes.byref(err))
        if status and err.msg.decode().startswith("unknown option"):
            unknown.append(option)
    lib.oq_job_builder_destroy(builder)
    check(len(listed) > 20 and not unknown, "the module takes every option of quantize's and convert's --help "
          "(%d; not taken: %s)" % (len(listed - cli_only), unknown))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--onnxq", required=True)
    ap.add_argument("--library", required=True)
    ap.add_argument("--source", required=True)
    a = ap.parse_args()
    os.environ["ONNXQ_LIBRARY"] = os.path.abspath(a.library)
    sys.path.insert(0, os.path.join(a.source, "python"))
    import onnxq
    check(onnxq.version() == subprocess.run([a.onnxq, "--version"], capture_output=True, text=True).stdout.split()[-1],
          "onnxq.version() is the tool's version")
    every_option_taken(onnxq, a.onnxq)
    model = os.path.join(a.source, "models", "example", "tiny_cnn.onnx")
    samples = example_samples(a.source)
    with tempfile.TemporaryDirectory(prefix="oq-python-") as tmp:
        run = Runner(os.path.abspath(a.onnxq), tmp)
        stack = os.path.join(tmp, "image.npy")
        save_stack(stack, samples, "image")
        spec = "image=" + stack

        # ---- the same options, the same bytes
        option_sets = (
            ("default options", {}, []),
            ("qdq, per tensor, int8 symmetric, minmax", dict(format="qdq", per_tensor=True, activation_type="int8",
                                                             symmetric_activations=True, method="minmax"),
             ["--format", "qdq", "--per-tensor", "--activation-type", "int8", "--symmetric-activations",
              "--method", "minmax"]),
            ("Conv only, one excluded, 512 bins, percentile 99.9, 12 samples, 1 thread",
             dict(op_types=["Conv"], exclude=["conv2"], bins=512, percentile=99.9, samples=12, threads=1),
             ["--op-types", "Conv", "--exclude", "conv2", "--bins", "512", "--percentile", "99.9", "--samples", "12",
              "--threads", "1"]),
            ("contrib, entropy, no preparation", dict(contrib=True, method="entropy", no_prepare=True),
             ["--contrib", "--method", "entropy", "--no-prepare"]),
        )
        for what, kw, args in option_sets:
            cli, _ = run.cli("quantize", model, ["--data", spec, *args])
            same(what, cli, run.py(model, data=samples, **kw))
        # an accuracy target: the analysis and the search read the samples held in memory
        cli, _ = run.cli("quantize", model, ["--data", spec, "--min-sqnr", "40"])
        py = run.py(model, data=samples, min_sqnr=40)
        same("an accuracy target on samples held in memory", cli, py)
        mixed = (py["returned"] or {}).get("mixed_precision") or {}
        check(mixed.get("kept_float") and mixed.get("metric_after", 0) >= 40,
              "the target kept nodes float and holds: %s" % mixed.get("kept_float"))
        cli, _ = run.cli("quantize", model, ["--mode", "dynamic", "--op-types", "Gemm,Conv"])
        same("dynamic mode, no samples", cli, run.py(model, mode="dynamic", op_types="Gemm,Conv"))

        # ---- the forms data comes in
        cli, _ = run.cli("quantize", model, ["--data", spec])
        same("a CalibrationDataReader", cli, run.py(model, data=Reader(samples)))
        same("a generator", cli, run.py(model, data=(s for s in samples)))
        folder = os.path.join(a.source, "calibration", "example")
        cli_folder, _ = run.cli("quantize", model, ["--data", folder])
        same("a data folder as a spec", cli_folder, run.py(model, data=folder))
        same("paths as bytes", cli_folder, run.py(os.fsencode(model), data=os.fsencode(folder)))
        check(cli_folder.get("model") == cli.get("model"), "the folder and the .npy stack are the same samples")

        # ---- evaluation samples and labels
        labels = os.path.join(tmp, "labels.txt")
        with open(os.path.join(folder, "labels.txt")) as f:
            lines = f.read().splitlines()[8:]
        with open(labels, "w") as f:
            f.write("\n".join(lines) + "\n")
        save_stack(os.path.join(tmp, "calib.npy"), samples[:8], "image")
        save_stack(os.path.join(tmp, "eval.npy"), samples[8:], "image")
        cli, _ = run.cli("quantize", model, ["--data", "image=" + os.path.join(tmp, "calib.npy"), "--eval-data",
                                             "image=" + os.path.join(tmp, "eval.npy"), "--labels", labels])
        py = run.py(model, data=samples[:8], eval_data=samples[8:], labels=labels)
        same("separate evaluation samples with labels", cli, py)
        check(py["returned"] and py["returned"]["evaluation"]["accuracy"]["labeled_samples"] == 8,
              "the report has the accuracy on the 8 labeled samples")

        # ---- two inputs, fed in another order
        two = os.path.join(tmp, "two.onnx")
        two_input_model(two)
        rng = np.random.default_rng(9)
        pairs = [{"y": rng.normal(size=(1, 6)).astype(np.float32), "x": rng.normal(size=(1, 4)).astype(np.float32)}
                 for _ in range(10)]
        save_stack(os.path.join(tmp, "x.npy"), pairs, "x")
        save_stack(os.path.join(tmp, "y.npy"), pairs, "y")
        cli, _ = run.cli("quantize", two, ["--data", "y=" + os.path.join(tmp, "y.npy"), "--data",
                                           "x=" + os.path.join(tmp, "x.npy")])
        same("two inputs", cli, run.py(two, data=pairs))

        # ---- warnings
        nan = [dict(s) for s in samples]
        nan[3] = {"image": nan[3]["image"].copy()}
        nan[3]["image"][0, 0, 0, 0] = np.nan
        save_stack(os.path.join(tmp, "nan.npy"), nan, "image")
        cli, stderr = run.cli("quantize", model, ["--data", "image=" + os.path.join(tmp, "nan.npy")])
        cli_warnings = [line[len("onnxq: warning: "):] for line in stderr.splitlines()
                        if line.startswith("onnxq: warning: ")]
        py = run.py(model, data=nan)
        check(cli_warnings and py["warnings"] == cli_warnings,
              "NaN in the data: the same warnings (%s / %s)" % (py["warnings"], cli_warnings))
        same("NaN in the data", cli, py)

        # ---- errors
        for f in os.listdir(tmp):
            if f.startswith("out."):
                os.remove(os.path.join(tmp, f))
        errors(run, model, samples, tmp)
        shutil.rmtree(tmp, ignore_errors=True)
    return finish("python")


if __name__ == "__main__":
    sys.exit(main())
