#!/usr/bin/python3
"""onnxq's command-line contract: help and version output, and for every kind
of bad invocation or input the documented exit code (1 bad input, 2 usage),
exactly one stderr line "onnxq: error: ...", nothing on stdout and no file
left in the output folder.

usage: test_errors.py ONNXQ_BINARY VERSION
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from checks import check, finish


def make_model(path):
    """z = Relu(x) + s, with x and s float [N, 3, H, W]."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "H", "W"])
    s = helper.make_tensor_value_info("s", TensorProto.FLOAT, ["N", 3, "H", "W"])
    z = helper.make_tensor_value_info("z", TensorProto.FLOAT, ["N", 3, "H", "W"])
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Add", ["r", "s"], ["z"])]
    graph = helper.make_graph(nodes, "relu_add", [x, s], [z])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)


def expect_error(binary, args, code, contains, outdir=None, env=None):
    """Runs onnxq args and checks the failure contract; contains must appear in the message."""
    r = subprocess.run([binary, *args], capture_output=True, text=True, env={**os.environ, **(env or {})})
    what = "onnxq " + " ".join(args)
    lines = r.stderr.splitlines()
    check(r.returncode == code, f"{what}: exit {r.returncode}, want {code} (stderr {r.stderr!r})")
    check(len(lines) == 1 and lines[0].startswith("onnxq: error: ") and r.stderr.endswith("\n"),
          f"{what}: stderr must be one 'onnxq: error: ' line, got {r.stderr!r}")
    check(contains in r.stderr, f"{what}: stderr {r.stderr!r} does not mention {contains!r}")
    check(r.stdout == "", f"{what}: stdout should be empty, got {r.stdout!r}")
    if outdir is not None:
        left = os.listdir(outdir) if os.path.isdir(outdir) else []
        check(left == [], f"{what}: files left in OUTDIR: {left}")


def expect_ok(binary, args, stdout_has=(), env=None):
    r = subprocess.run([binary, *args], capture_output=True, text=True, env={**os.environ, **(env or {})})
    what = "onnxq " + " ".join(args)
    check(r.returncode == 0 and r.stderr == "", f"{what}: exit {r.returncode}, stderr {r.stderr!r}")
    for s in stdout_has:
        check(s in r.stdout, f"{what}: stdout lacks {s!r}")
    return r.stdout


def npy_bytes(header, data=b"", version=1):
    """A hand-made .npy image with the given header dict text."""
    h = header.encode("latin1")
    h += b" " * ((64 - (len(h) + 1 + (10 if version == 1 else 12)) % 64) % 64) + b"\n"
    size = len(h).to_bytes(2 if version == 1 else 4, "little")
    return b"\x93NUMPY" + bytes([version, 0]) + size + h + data


def test_help(binary, version):
    out = expect_ok(binary, ["--help"], ["Usage: onnxq", "inspect", "run", "Exit status", "onnxq: error:"])
    # Every command --help lists exists and has its own help.
    listed = out.split("Commands:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    names = [line.split()[0] for line in listed if line.split() and line.split()[0] != "help"]
    check("inspect" in names and "run" in names, f"--help lists commands {names}")
    for cmd in names:
        text = expect_ok(binary, [cmd, "--help"], [f"Usage: onnxq {cmd}"])
        check(expect_ok(binary, ["help", cmd]) == text, f"'help {cmd}' differs from '{cmd} --help'")
    check(expect_ok(binary, ["-h"]) == out, "-h differs from --help")
    check(expect_ok(binary, ["help"]) == out, "'help' differs from --help")
    check(expect_ok(binary, ["--version"]) == f"onnxq {version}\n", "--version output")
    for cmd, key in (("inspect", "parameter_count"), ("run", "--bench")):
        text = expect_ok(binary, [cmd, "--help"], [f"Usage: onnxq {cmd}", key])
        check(expect_ok(binary, [cmd, "-h"]) == text, f"'{cmd} -h' differs from '{cmd} --help'")


def test_usage_errors(binary, model, data):
    expect_error(binary, [], 2, "missing command")
    expect_error(binary, ["--bogus"], 2, "--bogus")
    expect_error(binary, ["frobnicate"], 2, "frobnicate")
    expect_error(binary, ["help", "frobnicate"], 2, "frobnicate")
    expect_error(binary, ["inspect"], 2, "MODEL")
    expect_error(binary, ["inspect", model, "--bogus"], 2, "--bogus")
    expect_error(binary, ["inspect", "-x", model], 2, "-x")
    expect_error(binary, ["inspect", model, model], 2, "one MODEL")
    expect_error(binary, ["inspect", "--json=yes", model], 2, "--json")
    expect_error(binary, ["run", model], 2, "--data")
    expect_error(binary, ["run", "--data", data], 2, "MODEL")
    expect_error(binary, ["run", model, "--data"], 2, "--data")
    expect_error(binary, ["run", model, "--data", data, "--bogus"], 2, "--bogus")
    expect_error(binary, ["run", model, "--data", data, "--threads", "many"], 2, "--threads")
    expect_error(binary, ["run", model, "--data", data, "--threads", "-1"], 2, "--threads")
    expect_error(binary, ["run", model, "--data", data, "--bench", "0"], 2, "--bench")
    expect_error(binary, ["run", model, "--input", "x.npy"], 2, "NAME=FILE")
    expect_error(binary, ["run", model, "--data", data, "--npy"], 2, "-o")
    expect_error(binary, ["quantize", model, "--data", data, "--bias-correction", "yes"], 2, "--bias-correction")
    expect_error(binary, ["convert", model, "--bias-correction"], 2, "--bias-correction")


def test_bad_models(binary, tmp):
    missing = os.path.join(tmp, "missing.onnx")
    expect_error(binary, ["inspect", missing], 1, missing)
    expect_error(binary, ["run", missing, "--data", tmp], 1, missing)
    expect_error(binary, ["inspect", tmp], 1, tmp)
    junk = os.path.join(tmp, "junk.onnx")
    with open(junk, "wb") as f:
        f.write(np.random.default_rng(3).bytes(4096))
    expect_error(binary, ["inspect", junk], 1, "")
    expect_error(binary, ["run", junk, "--data", tmp], 1, "")
    empty = os.path.join(tmp, "empty.onnx")
    open(empty, "wb").close()
    expect_error(binary, ["inspect", empty], 1, "")


def test_bad_inputs(binary, model, tmp):
    x = np.zeros((1, 3, 4, 4), np.float32)
    good = os.path.join(tmp, "good")
    os.mkdir(good)
    for k, name in enumerate(["x", "s"]):
        with open(os.path.join(good, f"input_{k}.pb"), "wb") as f:
            f.write(numpy_helper.from_array(x, name).SerializeToString())
    half = os.path.join(tmp, "half")
    os.mkdir(half)
    with open(os.path.join(half, "input_0.pb"), "wb") as f:
        f.write(numpy_helper.from_array(x, "x").SerializeToString())

    def npy(name, arr=None, raw=None):
        path = os.path.join(tmp, name)
        if raw is not None:
            with open(path, "wb") as f:
                f.write(raw)
        else:
            np.save(path, arr)
        return path

    out = os.path.join(tmp, "out")
    os.mkdir(out)
    o = ["-o", out]
    sx = "s=" + npy("s.npy", x)
    cases = [
        (["--data", half], "'s' is not fed"),
        (["--input", sx], "'x' is not fed"),
        (["--data", good, "--input", sx], "fed twice"),
        (["--data", half, "--input", "nope=" + npy("n.npy", x)], "no input named 'nope'"),
        (["--data", half, "--input", "s=" + npy("f64.npy", x.astype(np.float64))], "expects float"),
        (["--data", half, "--input", "s=" + npy("i64.npy", x.astype(np.int64))], "expects float"),
        (["--data", half, "--input", "s=" + npy("rank3.npy", x[0])], "rank"),
        (["--data", half, "--input", "s=" + npy("rank5.npy", x[None])], "rank"),
        (["--data", half, "--input", "s=" + npy("chan.npy", np.zeros((1, 2, 4, 4), np.float32))], "shape"),
        (["--data", half, "--input", "s=" + os.path.join(tmp, "absent.npy")], "absent.npy"),
        (["--data", os.path.join(tmp, "nodir")], "nodir"),
        (["--data", model], "folder"),
        (["--data", half, "--input", "s=" + npy("fortran.npy", np.asfortranarray(np.zeros((1, 3, 4, 2), np.float32)))],
         "Fortran"),
        (["--data", half, "--input", "s=" + npy("big.npy", x.astype(">f4"))], "big-endian"),
        (["--data", half, "--input", "s=" + npy("trunc.npy", raw=open(npy("t0.npy", x), "rb").read()[:-5])],
         "truncated"),
        (["--data", half, "--input", "s=" + npy("hdr.npy", raw=npy_bytes("{'descr': '<f4', 'shape': (1, 3, 4, 4), }",
                                                                       x.tobytes()))], "fortran_order"),
        (["--data", half, "--input", "s=" + npy("hdr2.npy", raw=npy_bytes("{'descr': '<f4' 'fortran_order': False}"))],
         "bad .npy header"),
        (["--data", half, "--input", "s=" + npy("c8.npy", x.astype(np.complex64))], "not supported"),
        (["--data", half, "--input", "s=" + npy("magic.npy", raw=b"PK\x03\x04" + bytes(200))], "not an .npy"),
        (["--data", half, "--input", "s=" + npy("extra.npy", raw=open(npy("t1.npy", x), "rb").read() + b"xx")],
         "unexpected bytes"),
    ]
    for args, contains in cases:
        expect_error(binary, ["run", model, *args, *o], 1, contains, outdir=out)
    # More input files than the model has inputs.
    extra = os.path.join(tmp, "extra")
    os.mkdir(extra)
    for k in range(3):
        with open(os.path.join(extra, f"input_{k}.pb"), "wb") as f:
            f.write(numpy_helper.from_array(x, "").SerializeToString())
    expect_error(binary, ["run", model, "--data", extra, *o], 1, "input_2.pb", outdir=out)
    # OUTDIR whose parent is missing, and OUTDIR that is a file.
    expect_error(binary, ["run", model, "--data", good, "-o", os.path.join(tmp, "no", "such")], 1, "no/such")
    expect_error(binary, ["run", model, "--data", good, "-o", model], 1, "not a folder")


def test_isa_cap(binary, model, tmp):
    """ONNXQ_ISA caps the instruction sets kernels use: every level gives the
    same results; a name that is no level is a usage error."""
    rng = np.random.default_rng(3)
    ins = []
    for name in ("x", "s"):
        path = os.path.join(tmp, f"isa_{name}.npy")
        np.save(path, rng.standard_normal((2, 3, 17, 33)).astype(np.float32))
        ins += ["--input", f"{name}={path}"]
    want = expect_ok(binary, ["run", model, *ins])
    for isa in ("baseline", "sha", "avx2", "avxvnni", "avx512", "avx512vnni"):
        got = expect_ok(binary, ["run", model, *ins], env={"ONNXQ_ISA": isa})
        check(got == want, f"ONNXQ_ISA={isa}: run printed {got!r}, without it {want!r}")
    expect_error(binary, ["inspect", model], 2, "ONNXQ_ISA is 'sse9'", env={"ONNXQ_ISA": "sse9"})


def main():
    binary, version = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory(prefix="onnxq-err-") as tmp:
        model = os.path.join(tmp, "model.onnx")
        make_model(model)
        data = os.path.join(tmp, "data")
        os.mkdir(data)
        test_help(binary, version)
        test_usage_errors(binary, model, data)
        test_bad_models(binary, tmp)
        test_bad_inputs(binary, model, tmp)
        test_isa_cap(binary, model, tmp)
    return finish("errors")


if __name__ == "__main__":
    sys.exit(main())
