#!/usr/bin/python3
"""`onnxq convert --calib TABLE` with each range option, on tables made with
each range method: an option given re-chooses every range from the table's
histograms, whatever its value (also when it equals the default), and the
options not given keep the table's. The bundled digit CNN and its 16 samples.

For a table made with method A and `convert --method B`:
  - the report's calibration method is B;
  - the model is byte-identical to `convert` of a table made with method B
    (same data, same histograms, so the same ranges), and it differs from
    `convert` of the table alone exactly when the two tables' ranges differ.
The same for --percentile (which also selects the percentile method),
--activation-type and --symmetric-activations (and --symmetric), each
against a table calibrated with that option. Before the given flags, convert
compared --method and --percentile with their defaults, so `--method
percentile` on a minmax table kept minmax.

usage: test_range_options.py ONNXQ_BINARY
"""
import hashlib
import json
import os
import sys
import tempfile

from checks import check, finish, run

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL = os.path.join(ROOT, "models", "example", "tiny_cnn.onnx")
DATA = os.path.join(ROOT, "calibration", "example")
METHODS = ["minmax", "percentile", "entropy", "mse"]


def sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest() if os.path.exists(path) else None


def ranges(table):
    return {k: v["range"] for k, v in json.load(open(table))["tensors"].items()}


class Runner:
    def __init__(self, binary, tmp):
        self.binary, self.tmp, self.n = binary, tmp, 0

    def calibrate(self, *opts):
        self.n += 1
        out = os.path.join(self.tmp, "t%d.json" % self.n)
        p = run(self.binary, "calibrate", MODEL, "--data", DATA, "-o", out, "-q", *opts)
        check(p.returncode == 0, "calibrate %s: %s" % (" ".join(opts), p.stderr.strip()))
        return out

    def convert(self, table, *opts):
        """(model hash, report) of convert TABLE with opts."""
        self.n += 1
        out = os.path.join(self.tmp, "q%d.onnx" % self.n)
        p = run(self.binary, "convert", MODEL, "--calib", table, "-o", out, "--report", out + ".json", "-q", *opts)
        check(p.returncode == 0, "convert %s: %s" % (" ".join(opts), p.stderr.strip()))
        rep = json.load(open(out + ".json")) if p.returncode == 0 else {}
        return sha(out), rep


def main():
    binary = sys.argv[1]
    with tempfile.TemporaryDirectory(prefix="oq-range-opts-") as tmp:
        r = Runner(binary, tmp)
        tables = {m: r.calibrate("--method", m) for m in METHODS}
        plain = {m: r.convert(tables[m]) for m in METHODS}
        for m in METHODS:
            check(plain[m][1].get("calibration", {}).get("method") == m,
                  "convert of a %s table without options reports %s" % (m, m))
        differing = 0
        for a in METHODS:
            for b in METHODS:
                got, rep = r.convert(tables[a], "--method", b)
                method = rep.get("calibration", {}).get("method")
                same_ranges = ranges(tables[a]) == ranges(tables[b])
                differing += not same_ranges
                check(method == b, "%s table, --method %s: report says %s" % (a, b, method))
                check(got == plain[b][0], "%s table, --method %s: the model of a %s table" % (a, b, b))
                check((got == plain[a][0]) == same_ranges,
                      "%s table, --method %s: the model changes exactly when the ranges do (ranges %s)"
                      % (a, b, "equal" if same_ranges else "differ"))
        check(differing >= 6, "the methods give different ranges on this data (%d of 16 pairs differ)" % differing)

        # --percentile: selects the percentile method at that percentile, also when it is the default
        p999 = r.calibrate("--method", "percentile", "--percentile", "99.9")
        ref_p999 = r.convert(p999)[0]
        check(ref_p999 != plain["percentile"][0], "99.9 and 99.999 percentiles give different models here")
        for a in METHODS:
            got, rep = r.convert(tables[a], "--percentile", "99.9")
            check(rep.get("calibration", {}).get("method") == "percentile" and got == ref_p999,
                  "%s table, --percentile 99.9: percentile at 99.9" % a)
        got, rep = r.convert(p999, "--percentile", "99.999")
        check(got == plain["percentile"][0], "99.9 table, --percentile 99.999 (the default value): percentile at 99.999")
        got, rep = r.convert(p999, "--method", "percentile")
        check(got == ref_p999, "99.9 table, --method percentile: the table's percentile is kept")

        # --activation-type, --symmetric-activations / --symmetric: against tables calibrated so
        for a in METHODS:
            int8 = r.calibrate("--method", a, "--activation-type", "int8")
            sym = r.calibrate("--method", a, "--symmetric")
            ref_int8, ref_sym = r.convert(int8)[0], r.convert(sym)[0]
            got, rep = r.convert(tables[a], "--activation-type", "int8")
            check(got == ref_int8 and rep.get("options", {}).get("activation_type") == "int8" and got != plain[a][0],
                  "%s table, --activation-type int8: the int8 table's model" % a)
            got, rep = r.convert(int8, "--activation-type", "uint8")
            check(got == plain[a][0] and rep.get("options", {}).get("activation_type") == "uint8",
                  "%s int8 table, --activation-type uint8 (the default value): the uint8 model" % a)
            for flag in ("--symmetric-activations", "--symmetric"):
                got, rep = r.convert(tables[a], flag)
                check(got == ref_sym and rep.get("options", {}).get("symmetric_activations") is True and
                      got != plain[a][0], "%s table, %s: the symmetric table's model" % (a, flag))
            got, rep = r.convert(int8, "--method", "minmax", "--activation-type", "uint8")
            check(got == plain["minmax"][0] and rep.get("calibration", {}).get("method") == "minmax",
                  "%s int8 table, --method minmax --activation-type uint8: both re-chosen" % a)
    return finish("range options")


if __name__ == "__main__":
    sys.exit(main())
