#!/usr/bin/python3
"""`onnxq run` end to end: a Conv+Relu+Add model with dynamic batch and image
dims, fed from ONNX test-data folders and .npy files at several shapes,
compared with numpy; outputs read back with onnx.numpy_helper and np.load;
the summary lines, --bench JSON, thread-count invariance, .npy round trips for
every supported dtype and format version, a few of ONNX's node test-data
folders, and a model without inputs.

usage: test_run.py ONNXQ_BINARY
"""
import json
import os
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from checks import check, finish, run

RNG = np.random.default_rng(7)
C_IN, C_OUT, K = 3, 4, 3


# ---- the model and its numpy twin -------------------------------------------------

def conv_model(path, weight, bias):
    """y = Conv(x, W, B, pads=1); r = Relu(y); z = r + skip. Outputs z then r."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", C_IN, "H", "W"])
    skip = helper.make_tensor_value_info("skip", TensorProto.FLOAT, ["N", C_OUT, "H", "W"])
    z = helper.make_tensor_value_info("z", TensorProto.FLOAT, ["N", C_OUT, "H", "W"])
    r = helper.make_tensor_value_info("r", TensorProto.FLOAT, ["N", C_OUT, "H", "W"])
    nodes = [
        helper.make_node("Conv", ["x", "W", "B"], ["y"], name="conv", pads=[1, 1, 1, 1], kernel_shape=[K, K]),
        helper.make_node("Relu", ["y"], ["r"], name="relu"),
        helper.make_node("Add", ["r", "skip"], ["z"], name="add"),
    ]
    graph = helper.make_graph(nodes, "conv_relu_add", [x, skip], [z, r],
                              initializer=[numpy_helper.from_array(weight, "W"),
                                           numpy_helper.from_array(bias, "B")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="onnxq-test")
    onnx.checker.check_model(model)
    onnx.save(model, path)


def conv_reference(x, weight, bias, skip):
    n, _, h, w = x.shape
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
    y = np.zeros((n, C_OUT, h, w)) + bias.reshape(1, C_OUT, 1, 1)
    for i in range(K):
        for j in range(K):
            patch = xp[:, :, i:i + h, j:j + w]  # (n, c_in, h, w)
            y += np.einsum("nchw,oc->nohw", patch, weight[:, :, i, j].astype(np.float64))
    r = np.maximum(y, 0)
    return r + skip, r


def write_pb(path, arr, name):
    with open(path, "wb") as f:
        f.write(numpy_helper.from_array(arr, name).SerializeToString())


def read_pb(path):
    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return t.name, numpy_helper.to_array(t)


# ---- tests -------------------------------------------------------------------------------

def test_conv(binary, tmp):
    weight = RNG.standard_normal((C_OUT, C_IN, K, K)).astype(np.float32)
    bias = RNG.standard_normal(C_OUT).astype(np.float32)
    model = os.path.join(tmp, "conv.onnx")
    conv_model(model, weight, bias)

    for n, h, w in [(1, 8, 8), (3, 8, 8), (2, 5, 7), (1, 16, 12)]:
        tag = f"N={n} H={h} W={w}"
        x = RNG.standard_normal((n, C_IN, h, w)).astype(np.float32)
        skip = RNG.standard_normal((n, C_OUT, h, w)).astype(np.float32)
        want_z, want_r = conv_reference(x, weight, bias, skip)
        data = tempfile.mkdtemp(dir=tmp)
        write_pb(os.path.join(data, "input_0.pb"), x, "x")
        write_pb(os.path.join(data, "input_1.pb"), skip, "skip")

        # --data, -o OUTDIR (created by onnxq) with the .npy copies.
        out = os.path.join(data, "out")
        r = run(binary, "run", model, "--data", data, "-o", out, "--npy")
        check(r.returncode == 0 and not r.stderr and not r.stdout,
              f"{tag}: run -o: exit {r.returncode} stderr {r.stderr!r} stdout {r.stdout!r}")
        if r.returncode == 0:
            for k, (name, want) in enumerate([("z", want_z), ("r", want_r)]):
                got_name, got = read_pb(os.path.join(out, f"output_{k}.pb"))
                check(got_name == name, f"{tag}: output_{k}.pb is named {got_name!r}, want {name!r}")
                check(got.dtype == np.float32 and got.shape == want.shape,
                      f"{tag}: output_{k}.pb is {got.dtype} {got.shape}, want float32 {want.shape}")
                check(np.allclose(got, want, rtol=1e-4, atol=1e-4),
                      f"{tag}: output_{k} differs from numpy by {np.abs(got - want).max()}")
                npy = np.load(os.path.join(out, f"output_{k}.npy"))
                check(npy.dtype == got.dtype and np.array_equal(npy, got), f"{tag}: output_{k}.npy != output_{k}.pb")
            check(sorted(os.listdir(out)) == ["output_0.npy", "output_0.pb", "output_1.npy", "output_1.pb"],
                  f"{tag}: OUTDIR holds {sorted(os.listdir(out))}")

        # Half from the folder, half from .npy; an unnamed tensor feeds by position.
        data2 = tempfile.mkdtemp(dir=tmp)
        write_pb(os.path.join(data2, "input_0.pb"), x, "")
        np.save(os.path.join(data2, "skip.npy"), skip)
        out2 = os.path.join(data2, "out")
        r = run(binary, "run", model, "--data", data2, "--input", "skip=" + os.path.join(data2, "skip.npy"),
                "-o", out2, "--threads", "1")
        check(r.returncode == 0, f"{tag}: --data + --input: exit {r.returncode} {r.stderr!r}")
        if r.returncode == 0:
            check(np.allclose(read_pb(os.path.join(out2, "output_0.pb"))[1], want_z, rtol=1e-4, atol=1e-4),
                  f"{tag}: --data + --input result differs from numpy")

        # Only .npy inputs, no -o: one summary line per output.
        np.save(os.path.join(data2, "x.npy"), x)
        r = run(binary, "run", model, "--input", "x=" + os.path.join(data2, "x.npy"),
                "--input", "skip=" + os.path.join(data2, "skip.npy"))
        check(r.returncode == 0 and not r.stderr, f"{tag}: summary run: exit {r.returncode} {r.stderr!r}")
        lines = r.stdout.splitlines()
        check(len(lines) == 2, f"{tag}: summary has {len(lines)} lines, want 2: {r.stdout!r}")
        for line, (name, want) in zip(lines, [("z", want_z), ("r", want_r)]):
            fields = line.split()
            stats = dict(f.split("=") for f in fields if "=" in f)
            check(fields[0] == name and fields[1] == "float" and f"[{n}, {C_OUT}, {h}, {w}]" in line,
                  f"{tag}: summary line {line!r}")
            for key, v in (("min", want.min()), ("max", want.max()), ("mean", want.mean())):
                check(key in stats and abs(float(stats[key]) - v) <= 1e-4 * max(1, abs(v)),
                      f"{tag}: summary {key} in {line!r}, want {v:.6g}")

        # Thread count does not change the numbers.
        outs = []
        for threads in ("1", "2"):
            o = os.path.join(data, "t" + threads)
            r = run(binary, "run", model, "--data", data, "-o", o, "--threads", threads)
            check(r.returncode == 0, f"{tag}: --threads {threads}: exit {r.returncode} {r.stderr!r}")
            if r.returncode == 0:
                outs.append(read_pb(os.path.join(o, "output_0.pb"))[1])
        if len(outs) == 2:
            check(np.array_equal(outs[0], outs[1]), f"{tag}: results differ between 1 and 2 threads")

    # --bench: exactly one JSON line with the documented keys.
    r = run(binary, "run", model, "--data", data, "--bench", "3", "--threads", "1")
    check(r.returncode == 0 and not r.stderr, f"bench: exit {r.returncode} {r.stderr!r}")
    lines = r.stdout.splitlines()
    check(len(lines) == 1, f"bench: {len(lines)} stdout lines, want 1")
    if r.returncode == 0 and len(lines) == 1:
        b = json.loads(lines[0])
        keys = ["median_ms", "min_ms", "mean_ms", "cpu_ms", "runs", "threads", "peak_rss_mb", "planned_peak_mb", "naive_mb"]
        check(sorted(b) == sorted(keys), f"bench keys {sorted(b)}")
        check(b.get("runs") == 3 and b.get("threads") == 1, f"bench runs/threads {b}")
        check(all(isinstance(b.get(k), (int, float)) and b[k] >= 0 for k in keys), f"bench values {b}")
        check(b.get("min_ms", 1) <= b.get("median_ms", 0) and b.get("peak_rss_mb", 0) > 0, f"bench values {b}")
        check(0 < b.get("planned_peak_mb", 0) <= b.get("naive_mb", 0), f"bench memory {b}")


def identity_model(path, elem_type):
    x = helper.make_tensor_value_info("x", elem_type, None)
    y = helper.make_tensor_value_info("y", elem_type, None)
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "identity", [x], [y])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)


def test_npy_dtypes(binary, tmp):
    """Every .npy dtype onnxq reads goes in and comes back out unchanged."""
    cases = [np.float32, np.float64, np.float16, np.uint8, np.int8, np.int16, np.uint16, np.int32,
             np.uint32, np.int64, np.uint64, np.bool_]
    for i, dt in enumerate(cases):
        elem = onnx.mapping.NP_TYPE_TO_TENSOR_TYPE[np.dtype(dt)]
        model = os.path.join(tmp, f"id_{i}.onnx")
        identity_model(model, elem)
        shape = [(2, 3, 4), (5,), (), (0, 3)][i % 4]
        if dt == np.bool_:
            arr = RNG.integers(0, 2, shape).astype(dt)
        elif np.issubdtype(dt, np.integer):
            info = np.iinfo(dt)
            arr = RNG.integers(info.min, info.max, shape, dtype=dt, endpoint=True)
        else:
            arr = RNG.standard_normal(shape).astype(dt)
        for version in ((1, 0), (2, 0), (3, 0)):
            tag = f"npy {np.dtype(dt).str} v{version[0]} shape {shape}"
            src = os.path.join(tmp, f"in_{i}_{version[0]}.npy")
            with open(src, "wb") as f:
                np.lib.format.write_array(f, arr, version=version)
            out = os.path.join(tmp, f"out_{i}_{version[0]}")
            r = run(binary, "run", model, "--input", "x=" + src, "-o", out, "--npy")
            check(r.returncode == 0 and not r.stderr, f"{tag}: exit {r.returncode} {r.stderr!r}")
            if r.returncode != 0:
                continue
            back = np.load(os.path.join(out, "output_0.npy"))
            check(back.dtype == arr.dtype and back.shape == arr.shape and np.array_equal(back, arr),
                  f"{tag}: .npy round trip gave {back.dtype} {back.shape}")
            name, pb = read_pb(os.path.join(out, "output_0.pb"))
            check(name == "y" and pb.dtype == arr.dtype and np.array_equal(pb, arr), f"{tag}: output_0.pb differs")


def test_node_data(binary, tmp):
    """ONNX's own test-data folders feed --data; outputs match their output_K.pb."""
    node = "/usr/share/libonnx-testdata/data/node"
    for case in ("test_conv_with_strides_padding", "test_gemm_default_matrix_bias", "test_add_bcast",
                 "test_matmul_3d", "test_concat_3d_axis_1"):
        data = os.path.join(node, case, "test_data_set_0")
        out = os.path.join(tmp, case)
        r = run(binary, "run", os.path.join(node, case, "model.onnx"), "--data", data, "-o", out)
        check(r.returncode == 0, f"{case}: exit {r.returncode} {r.stderr!r}")
        if r.returncode != 0:
            continue
        k = 0
        while os.path.exists(os.path.join(data, f"output_{k}.pb")):
            want_name, want = read_pb(os.path.join(data, f"output_{k}.pb"))
            got_name, got = read_pb(os.path.join(out, f"output_{k}.pb"))
            check(got_name == want_name and got.shape == want.shape and np.allclose(got, want, rtol=1e-4, atol=1e-5),
                  f"{case}: output_{k} differs from the expected output")
            k += 1
        check(k > 0, f"{case}: no expected outputs found")


def test_no_inputs(binary, tmp):
    """A model without inputs runs with neither --data nor --input."""
    value = numpy_helper.from_array(np.arange(6, dtype=np.int64).reshape(2, 3), "c")
    y = helper.make_tensor_value_info("y", TensorProto.INT64, [2, 3])
    graph = helper.make_graph([helper.make_node("Constant", [], ["c"], value=value),
                               helper.make_node("Identity", ["c"], ["y"])], "const", [], [y])
    model = os.path.join(tmp, "const.onnx")
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), model)
    r = run(binary, "run", model)
    check(r.returncode == 0 and r.stdout.split() == ["y", "int64", "[2,", "3]", "min=0", "max=5", "mean=2.5"],
          f"no-input model: exit {r.returncode} stdout {r.stdout!r} stderr {r.stderr!r}")


def main():
    binary = sys.argv[1]
    with tempfile.TemporaryDirectory(prefix="onnxq-run-") as tmp:
        test_conv(binary, tmp)
        test_npy_dtypes(binary, tmp)
        test_node_data(binary, tmp)
        test_no_inputs(binary, tmp)
    return finish("run")


if __name__ == "__main__":
    sys.exit(main())
