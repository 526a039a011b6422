#!/usr/bin/python3
"""All or nothing: `quantize` and `convert` write the model, the report and
the HTML page together, `calibrate -o` its table, or nothing at all. Every
run below fails at some point (a missing folder for any file, a path that
is a folder or under a file, a bad labels file or evaluation folder found
after the rewrite, bad calibration data); each must exit 1 with one error
line and leave every folder involved exactly as it was: the files that
existed byte-identical, no new file, no temporary. A run whose report cannot
be written once the model is in place must put the model back (a failed
report write used to delete an output model that existed before). Then a run
that succeeds replaces all three.

usage: test_commit.py ONNXQ_BINARY
"""
import hashlib
import json
import os
import shutil
import sys
import tempfile

from checks import check, finish, run

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL = os.path.join(ROOT, "models", "example", "tiny_cnn.onnx")
DATA = os.path.join(ROOT, "calibration", "example")


def snapshot(*folders):
    """{path: sha256 or 'dir'} of everything under the folders."""
    out = {}
    for top in folders:
        for d, dirs, files in os.walk(top):
            for name in dirs:
                out[os.path.join(d, name)] = "dir"
            for name in files:
                p = os.path.join(d, name)
                out[p] = hashlib.sha256(open(p, "rb").read()).hexdigest()
    return out


def one_error_line(p):
    lines = p.stderr.splitlines()
    return p.returncode == 1 and len(lines) == 1 and lines[0].startswith("onnxq: error: ")


def fails_cleanly(binary, what, args, folders, earlier=()):
    for path, text in earlier:  # each case starts from the same files
        open(path, "wb").write(text)
    before = snapshot(*folders)
    p = run(binary, *args)
    after = snapshot(*folders)
    check(one_error_line(p), "%s: exit 1 and one error line (exit %d, stderr %r)" % (what, p.returncode, p.stderr[-300:]))
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    check(not changed, "%s: folders unchanged (changed: %s)" % (what, changed))


def main():
    binary = sys.argv[1]
    with tempfile.TemporaryDirectory(prefix="oq-commit-") as tmp:
        out = os.path.join(tmp, "out")
        other = os.path.join(tmp, "other")
        os.makedirs(out)
        os.makedirs(other)
        table = os.path.join(tmp, "table.json")
        p = run(binary, "calibrate", MODEL, "--data", DATA, "-o", table, "-q")
        check(p.returncode == 0, "calibrate the table: " + p.stderr)
        q, rep, tab = os.path.join(out, "q.onnx"), os.path.join(out, "q.json"), os.path.join(out, "t.json")
        page = os.path.join(out, "q.html")
        earlier = ((q, b"an earlier model\n"), (rep, b"an earlier report\n"), (tab, b"an earlier table\n"),
                   (page, b"an earlier page\n"))
        os.makedirs(os.path.join(out, "a_folder"))
        open(os.path.join(out, "a_file"), "wb").write(b"not a folder\n")
        bad_labels = os.path.join(tmp, "labels.txt")
        open(bad_labels, "w").write("sample_000 three\n")
        nodir = os.path.join(tmp, "no", "such")
        folders = (out, other)
        both = [("convert", [MODEL, "--calib", table]), ("quantize", [MODEL, "--data", DATA])]
        for cmd, base in both:
            def case(what, *args):
                fails_cleanly(binary, "%s: %s" % (cmd, what), [cmd, *base, *args, "-q"], folders, earlier)

            case("report folder missing", "-o", q, "--report", os.path.join(nodir, "r.json"))
            case("output folder missing", "-o", os.path.join(nodir, "q.onnx"), "--report", rep)
            case("report folder missing, no earlier model", "-o", os.path.join(other, "new.onnx"), "--report",
                 os.path.join(nodir, "r.json"))
            case("report path is a folder (the model was renamed into place first)", "-o", q, "--report",
                 os.path.join(out, "a_folder"))
            case("output path is a folder", "-o", os.path.join(out, "a_folder"), "--report", rep)
            case("report under a file", "-o", q, "--report", os.path.join(out, "a_file", "r.json"))
            case("html folder missing", "-o", q, "--report", rep, "--html", os.path.join(nodir, "r.html"))
            case("html path is a folder (model and report were renamed into place first)", "-o", q, "--report", rep,
                 "--html", os.path.join(out, "a_folder"))
            case("labels unreadable after the rewrite", "-o", q, "--report", rep, "--eval-data", DATA, "--labels",
                 bad_labels)
            case("evaluation data missing after the rewrite", "-o", q, "--report", rep, "--eval-data", nodir)
        fails_cleanly(binary, "convert: report is the table",
                      ["convert", MODEL, "--calib", table, "-o", q, "--report", table, "-q"], folders + (tmp,), earlier)
        if os.geteuid() != 0:  # root writes into read-only folders anyway
            os.chmod(other, 0o555)
            fails_cleanly(binary, "convert: report folder not writable",
                          ["convert", MODEL, "--calib", table, "-o", q, "--report", os.path.join(other, "r.json"),
                           "-q"], folders, earlier)
            os.chmod(other, 0o755)
        else:
            print("note: running as root, so the read-only folder case is left out")

        # calibrate -o: one file, the same promise
        bad_data = os.path.join(tmp, "empty_data")
        os.makedirs(bad_data)
        for what, args in (("table folder missing", ["-o", os.path.join(nodir, "t.json")]),
                           ("table path is a folder", ["-o", os.path.join(out, "a_folder")]),
                           ("no samples in the data", ["-o", tab, "--data", bad_data]),
                           ("table is the model", ["-o", MODEL])):
            data = [] if "--data" in args else ["--data", DATA]
            fails_cleanly(binary, "calibrate: " + what, ["calibrate", MODEL, *data, *args, "-q"], folders + (tmp,),
                          earlier)

        # a run that succeeds replaces both files, and leaves nothing else
        for path, text in earlier:
            open(path, "wb").write(text)
        before = set(os.listdir(out))
        p = run(binary, "convert", MODEL, "--calib", table, "-o", q, "--report", rep, "--html", page, "-q")
        check(p.returncode == 0 and p.stderr == "", "convert succeeds quietly: " + p.stderr)
        check(p.returncode == 0 and open(q, "rb").read() != earlier[0][1] and
              json.load(open(rep))["model"]["output"] == q and open(page, "rb").read().startswith(b"<!DOCTYPE html>"),
              "the model, the report and the page were replaced")
        check(set(os.listdir(out)) == before, "no other file appeared: %s" % (set(os.listdir(out)) ^ before))
        p = run(binary, "calibrate", MODEL, "--data", DATA, "-o", tab, "-q")
        check(p.returncode == 0 and json.load(open(tab))["format"] == "onnxq-calibration", "calibrate replaces the table")
        shutil.rmtree(out)
    return finish("commit")


if __name__ == "__main__":
    sys.exit(main())
