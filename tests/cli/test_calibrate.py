#!/usr/bin/python3
"""`onnxq calibrate` end to end on a small MLP whose activations numpy can
compute: exact min/max per tensor, percentile ranges near numpy's
percentiles, the same table from test-data folders and from .npy stacks
([S, 1, 16] and, for an input [N, 16] or [1, 16], [S, 16]; with the input's name or, the model
having one input, without; byte-identical), shard tables that merge to the full table's min/max, image
folders through the preprocessing flags, an input empty in every sample (a KV
cache's past at the first step) kept in the table without values so that the
Concat it feeds still has a range, and bad data refused with one error line and
no table left behind.

usage: test_calibrate.py ONNXQ_BINARY
"""
import json
import os
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from checks import check, finish, run

RNG = np.random.default_rng(11)
D_IN, D_HID, D_OUT, SAMPLES = 16, 32, 4, 20
W1 = RNG.standard_normal((D_IN, D_HID)).astype(np.float32)
B1 = RNG.standard_normal(D_HID).astype(np.float32)
W2 = RNG.standard_normal((D_HID, D_OUT)).astype(np.float32)


def relu_image_model(path, h, w):
    """Writes a model of one Relu on an image input img [1, 3, h, w] to path; returns path."""
    m = helper.make_model(helper.make_graph(
        [helper.make_node("Relu", ["img"], ["r"], name="relu")], "img",
        [helper.make_tensor_value_info("img", TensorProto.FLOAT, [1, 3, h, w])],
        [helper.make_tensor_value_info("r", TensorProto.FLOAT, [1, 3, h, w])]),
        opset_imports=[helper.make_opsetid("", 13)])
    onnx.save(m, path)
    return path


def mlp_model():
    """x[N,16] -> MatMul -> Add -> Relu -> MatMul -> y"""
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h0"], name="fc1"),
        helper.make_node("Add", ["h0", "b1"], ["h1"], name="bias1"),
        helper.make_node("Relu", ["h1"], ["h2"], name="relu"),
        helper.make_node("MatMul", ["h2", "w2"], ["y"], name="fc2"),
    ]
    g = helper.make_graph(
        nodes, "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", D_IN])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", D_OUT])],
        [numpy_helper.from_array(W1, "w1"), numpy_helper.from_array(B1, "b1"),
         numpy_helper.from_array(W2, "w2")])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


def kv_cache_model():
    """One attention step with a cache: k = x Wk, present = Concat(past, k) along the
    sequence, scores = x present^T (a MatMul of two activations)."""
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "wk"], ["k"]), helper.make_node("Concat", ["past", "k"], ["present"], axis=1),
         helper.make_node("Transpose", ["present"], ["pt"], perm=[0, 2, 1]),
         helper.make_node("MatMul", ["x", "pt"], ["scores"])], "kv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "t", 8]),
         helper.make_tensor_value_info("past", TensorProto.FLOAT, [1, "p", 8])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, "t", "s"])],
        [numpy_helper.from_array(RNG.standard_normal((8, 8)).astype(np.float32), "wk")])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


def activations(x):
    h0 = x @ W1
    h1 = h0 + B1
    h2 = np.maximum(h1, 0)
    return {"x": x, "h0": h0, "h1": h1, "h2": h2, "y": h2 @ W2}


def write_pb_samples(root, xs):
    for i, x in enumerate(xs):
        d = os.path.join(root, "s%03d" % i)
        os.makedirs(d)
        with open(os.path.join(d, "input_0.pb"), "wb") as f:
            f.write(numpy_helper.from_array(x, "x").SerializeToString())


def one_error_line(p):
    lines = p.stderr.strip().splitlines()
    return len(lines) == 1 and lines[0].startswith("onnxq: error: ")


def main():
    binary = sys.argv[1]
    tmp = tempfile.mkdtemp(prefix="oq_calib_")
    model = os.path.join(tmp, "mlp.onnx")
    onnx.save(mlp_model(), model)
    model_bytes = open(model, "rb").read()
    xs = [RNG.standard_normal((1 + i % 3, D_IN)).astype(np.float32) * 2 for i in range(SAMPLES)]
    xs_fixed = [RNG.standard_normal((1, D_IN)).astype(np.float32) for _ in range(SAMPLES)]

    # ---- minmax over folders of test-data folders: exact extremes
    samples = os.path.join(tmp, "samples")
    write_pb_samples(samples, xs)
    table = os.path.join(tmp, "minmax.json")
    # the model as written (--no-prepare): its value names are numpy's below
    p = run(binary, "calibrate", model, "--data", samples, "--method", "minmax", "-o", table, "-q", "--all-tensors",
            "--no-prepare")
    check(p.returncode == 0, "calibrate minmax exits 0: " + p.stderr)
    t = json.load(open(table))
    check(t["samples"] == SAMPLES and t["method"] == "minmax" and t["version"] == 1 and t["prepared"] is False,
          "table header")
    ref = {k: np.concatenate([activations(x)[k].ravel() for x in xs]) for k in activations(xs[0])}
    check(set(t["tensors"]) == set(ref), "--all-tensors: observed tensors %s" % sorted(t["tensors"]))
    # by default only what quantization reads: the MatMuls' inputs and outputs
    # and the Relu output feeding fc2 (the bias Add's output is never quantized)
    table_q = os.path.join(tmp, "minmax_q.json")
    p = run(binary, "calibrate", model, "--data", samples, "--method", "minmax", "-o", table_q, "-q", "--no-prepare")
    check(p.returncode == 0, "calibrate minmax (default tensors) exits 0: " + p.stderr)
    tq = json.load(open(table_q))
    check(set(tq["tensors"]) == {"x", "h0", "h2", "y"}, "default: observed tensors %s" % sorted(tq["tensors"]))
    check(all(tq["tensors"][k] == t["tensors"][k] for k in tq["tensors"]),
          "default: each recorded tensor's statistics equal the --all-tensors table's")
    for name, vals in ref.items():
        e = t["tensors"].get(name)
        if not e:
            continue
        check(abs(e["min"] - vals.min()) <= 1e-5 * max(1, abs(vals.min())), "%s min %g vs %g" % (name, e["min"], vals.min()))
        check(abs(e["max"] - vals.max()) <= 1e-5 * max(1, abs(vals.max())), "%s max %g vs %g" % (name, e["max"], vals.max()))
        check(e["count"] == vals.size and sum(e["hist"]["counts"]) == vals.size, "%s counts" % name)
        check(e["range"][0] == min(e["min"], 0) and e["range"][1] == max(e["max"], 0), "%s minmax range" % name)
    check(t["tensors"]["h2"]["range"][0] == 0, "relu output range starts at 0")
    import hashlib
    check(t["model_sha256"] == hashlib.sha256(model_bytes).hexdigest(), "model hash is the file's sha256")
    # prepared (the default): MatMul + Add became one Gemm writing h1, whose range
    # the Relu after it gives (h2): h0 no longer exists
    table_prep = os.path.join(tmp, "minmax_prepared.json")
    p = run(binary, "calibrate", model, "--data", samples, "--method", "minmax", "-o", table_prep, "-q")
    check(p.returncode == 0, "calibrate minmax (prepared) exits 0: " + p.stderr)
    tprep = json.load(open(table_prep))
    check(tprep["prepared"] is True and set(tprep["tensors"]) == {"x", "h2", "y"},
          "prepared: observed tensors %s, prepared %s" % (sorted(tprep["tensors"]), tprep["prepared"]))
    check(tprep["model_sha256"] == t["model_sha256"], "prepared: the hash is still the file's")
    # convert follows the table: a --no-prepare table converts the model as written, a
    # prepared one refuses --no-prepare (its value names are the prepared graph's)
    for tab, extra, ok, prepared in ((table_q, [], True, False), (table_prep, [], True, True),
                                     (table_prep, ["--no-prepare"], False, None)):
        out, rep = os.path.join(tmp, "conv.onnx"), os.path.join(tmp, "conv.json")
        for f in (out, rep):
            if os.path.exists(f):
                os.remove(f)
        p = run(binary, "convert", model, "--calib", tab, "-o", out, "--report", rep, "-q", *extra)
        if ok:
            r = json.load(open(rep)) if p.returncode == 0 else {}
            check(p.returncode == 0 and (r.get("prepare") is not None) == prepared and
                  r.get("node_counts", {}).get("quantized") == 2,
                  "convert with a %s table: prepares %s, quantizes both products: %s" % (
                      "prepared" if prepared else "--no-prepare", prepared, p.stderr))
        else:
            check(p.returncode == 1 and one_error_line(p) and "--no-prepare" in p.stderr and
                  not os.path.exists(out) and not os.path.exists(rep),
                  "convert --no-prepare with a prepared table: one error line, no output: " + p.stderr)

    # ---- percentile: close to numpy's percentile of the same values
    table_p = os.path.join(tmp, "pct.json")
    p = run(binary, "calibrate", model, "--data", samples, "--method", "percentile", "--percentile", "99",
            "-o", table_p, "-q", "--no-prepare")
    check(p.returncode == 0, "calibrate percentile exits 0: " + p.stderr)
    tp = json.load(open(table_p))
    # percentile definitions differ by up to one order statistic (numpy
    # interpolates between sorted values, the histogram within a bin), so the
    # range end must lie between the neighbouring order statistics, give or
    # take two bins
    for name in ("h0", "y"):
        e, vals = tp["tensors"][name], np.sort(ref[name])
        width, n = e["hist"]["width"], vals.size
        for end, q in ((1, 0.99), (0, 0.01)):
            k = q * (n - 1)
            lo = vals[max(0, int(np.floor(k)) - 1)] - 2 * width
            hi = vals[min(n - 1, int(np.ceil(k)) + 1)] + 2 * width
            check(lo <= e["range"][end] <= hi, "%s p%g %g not within [%g, %g] (numpy %g)" % (
                name, 100 * q, e["range"][end], lo, hi, np.percentile(vals, 100 * q)))
    for method in ("entropy", "mse"):
        out = os.path.join(tmp, method + ".json")
        p = run(binary, "calibrate", model, "--data", samples, "--method", method, "-o", out, "-q")
        check(p.returncode == 0, method + " exits 0: " + p.stderr)
        e = json.load(open(out))["tensors"]["y"]
        check(e["min"] <= e["range"][0] <= 0 <= e["range"][1] <= e["max"], method + " range inside min/max")

    # ---- the same samples as folders and as an .npy stack give byte-identical tables
    fixed = os.path.join(tmp, "fixed")
    write_pb_samples(fixed, xs_fixed)
    npy = os.path.join(tmp, "x.npy")
    np.save(npy, np.stack(xs_fixed))
    t1, t2 = os.path.join(tmp, "a.json"), os.path.join(tmp, "b.json")
    p1 = run(binary, "calibrate", model, "--data", fixed, "-o", t1, "-q")
    p2 = run(binary, "calibrate", model, "--data", "x=" + npy, "-o", t2, "-q", "--threads", "1")
    check(p1.returncode == 0 and p2.returncode == 0, "folder and npy calibrations exit 0: " + p1.stderr + p2.stderr)
    check(open(t1, "rb").read() == open(t2, "rb").read(), "folder and .npy data give byte-identical tables")
    # a model of one input also takes the file without the input's name
    t2b = os.path.join(tmp, "b_bare.json")
    p2b = run(binary, "calibrate", model, "--data", npy, "-o", t2b, "-q", "--threads", "1")
    check(p2b.returncode == 0 and open(t2b, "rb").read() == open(t2, "rb").read(),
          "FILE.npy and x=FILE.npy give byte-identical tables: " + p2b.stderr)
    # x is declared [N, 16]: an [S, 16] stack holds S samples of [1, 16], the same as [S, 1, 16]
    rows = os.path.join(tmp, "rows.npy")
    np.save(rows, np.concatenate(xs_fixed))
    t3 = os.path.join(tmp, "rows.json")
    p3 = run(binary, "calibrate", model, "--data", "x=" + rows, "-o", t3, "-q", "--threads", "1")
    check(p3.returncode == 0 and open(t3, "rb").read() == open(t2, "rb").read(),
          "[S, 16] and [S, 1, 16] stacks give byte-identical tables: " + p3.stderr)
    # the same model with x declared [1, 16] (a batch of one, as most exporters write it):
    # [S, 16] holds S samples there too, and [S, 1, 16] keeps working; a fixed batch of
    # two takes only [S, 2, 16]
    fixed_model, pair_model = os.path.join(tmp, "mlp_one.onnx"), os.path.join(tmp, "mlp_two.onnx")
    for path, batch in ((fixed_model, 1), (pair_model, 2)):
        m1 = mlp_model()
        m1.graph.input[0].type.tensor_type.shape.dim[0].dim_value = batch
        onnx.save(m1, path)
    t4, t5 = os.path.join(tmp, "one_rows.json"), os.path.join(tmp, "one_stacked.json")
    p4 = run(binary, "calibrate", fixed_model, "--data", "x=" + rows, "-o", t4, "-q")
    p5 = run(binary, "calibrate", fixed_model, "--data", "x=" + npy, "-o", t5, "-q")
    check(p4.returncode == 0 and p5.returncode == 0 and open(t4, "rb").read() == open(t5, "rb").read(),
          "for an input [1, 16], [S, 16] and [S, 1, 16] stacks give byte-identical tables: " + p4.stderr + p5.stderr)
    short, flat = os.path.join(tmp, "short.npy"), os.path.join(tmp, "flat.npy")
    np.save(short, np.concatenate(xs_fixed)[:, :15])
    np.save(flat, np.concatenate(xs_fixed)[:, 0])
    for m, data, what, says in ((model, short, "[S, 15] for [N, 16]", "[S, N, 16] or [S, 16]"),
                                (model, flat, "[S] for [N, 16]", "[S, N, 16] or [S, 16]"),
                                (fixed_model, short, "[S, 15] for [1, 16]", "[S, 1, 16] or [S, 16]"),
                                (pair_model, rows, "[S, 16] for [2, 16]", "expected [S, 2, 16] (")):
        out = os.path.join(tmp, "bad_rows.json")
        p = run(binary, "calibrate", m, "--data", "x=" + data, "-o", out, "-q")
        check(p.returncode == 1 and one_error_line(p) and "'x'" in p.stderr and says in p.stderr
              and not os.path.exists(out), "%s: one error line naming the forms: %r" % (what, p.stderr))

    # ---- threads run blocks of 32 samples side by side: the table must not
    # depend on how many (70 samples = 3 blocks; 3 threads take one each)
    many = RNG.standard_normal((70, 2, D_IN)).astype(np.float32) * 3
    many[45] *= 4  # a later block reaches past the first sample's bins
    many_npy = os.path.join(tmp, "many.npy")
    np.save(many_npy, many)
    by_threads = []
    for n in (1, 2, 3):
        out = os.path.join(tmp, "threads%d.json" % n)
        p = run(binary, "calibrate", model, "--data", "x=" + many_npy, "-o", out, "-q", "--threads", str(n))
        check(p.returncode == 0, "calibrate --threads %d exits 0: %s" % (n, p.stderr))
        by_threads.append(open(out, "rb").read() if p.returncode == 0 else b"")
    check(by_threads[0] == by_threads[1] == by_threads[2], "--threads 1, 2 and 3 give byte-identical tables")
    tt = json.loads(by_threads[0] or b"{}")
    many_ref = activations(many.reshape(-1, D_IN))
    for name, e in tt.get("tensors", {}).items():
        # blocks merge bin for bin: every count stays a whole number
        check(all(c == int(c) for c in e["hist"]["counts"]) and sum(e["hist"]["counts"]) == many_ref[name].size,
              "%s: a 3-block run's histogram counts are whole and add up to the values seen" % name)
    check(tt.get("tensors", {}).get("x", {}).get("min") == float(many.min()) and
          tt["tensors"]["x"]["max"] == float(many.max()), "x: exact min/max over 3 blocks")
    # the data hash as the README defines it: SHA-256 over each sample's hex hash
    sample_hashes = "".join(
        hashlib.sha256(np.array([TensorProto.FLOAT, x.ndim], "<i4").tobytes() +
                       np.array(x.shape, "<i8").tobytes() + x.astype("<f4").tobytes()).hexdigest() for x in many)
    check(tt.get("data_sha256") == hashlib.sha256(sample_hashes.encode()).hexdigest(),
          "data_sha256 is the SHA-256 of the samples' hashes in order")

    # ---- shards merge to the full table's extremes
    shard_a, shard_b = os.path.join(tmp, "shard_a"), os.path.join(tmp, "shard_b")
    write_pb_samples(shard_a, xs[:8])
    write_pb_samples(shard_b, xs[8:])
    ta, tb, tm = (os.path.join(tmp, n) for n in ("ta.json", "tb.json", "tm.json"))
    for d, o in ((shard_a, ta), (shard_b, tb)):
        p = run(binary, "calibrate", model, "--data", d, "--method", "minmax", "-o", o, "-q", "--all-tensors",
                "--no-prepare")
        check(p.returncode == 0, "shard calibrate exits 0: " + p.stderr)
    p = run(binary, "calibrate", "merge", ta, table_prep, "-o", tm, "-q")
    check(p.returncode == 1 and one_error_line(p) and "--no-prepare" in p.stderr and not os.path.exists(tm),
          "a prepared and a --no-prepare table do not merge: " + p.stderr)
    p = run(binary, "calibrate", "merge", ta, tb, "-o", tm, "-q")
    check(p.returncode == 0, "merge exits 0: " + p.stderr)
    m = json.load(open(tm))
    check(m["samples"] == SAMPLES, "merged sample count")
    for name in ref:
        check(m["tensors"][name]["min"] == t["tensors"][name]["min"] and
              m["tensors"][name]["max"] == t["tensors"][name]["max"], "merged %s min/max exact" % name)
        check(m["tensors"][name]["count"] == t["tensors"][name]["count"], "merged %s count" % name)
    # a shard made with other options does not merge: one error line naming the
    # option and both tables' values, exit 1, no output
    shard_opts = ["--method", "minmax", "--all-tensors", "--no-prepare"]
    tv = os.path.join(tmp, "tv.json")
    for opts, said in (  # said: how the error names tv's option, then ta's
            (["--method", "entropy", "--all-tensors", "--no-prepare"], ("--method entropy", "--method minmax")),
            (shard_opts + ["--percentile", "99.9"], ("--percentile 99.9", "--percentile 99.999")),
            (shard_opts + ["--symmetric"], ("--symmetric", "asymmetric ranges")),
            (shard_opts + ["--activation-type", "int8"], ("--activation-type int8", "--activation-type uint8")),
            (shard_opts + ["--bins", "64"], ("--bins 64", "--bins 2048")),
            # without --all-tensors the bias Add's output h1 is not recorded
            (["--method", "minmax", "--no-prepare"], None)):
        p = run(binary, "calibrate", model, "--data", shard_b, "-o", tv, "-q", *opts)
        check(p.returncode == 0, "shard calibrate %s exits 0: %s" % (opts, p.stderr))
        for first, second in ((ta, tv), (tv, ta)):
            if said:
                says = "%s was made with %s, %s with %s" % (second, said[second == ta], first, said[first == ta])
            else:
                says = f"{ta} records tensor 'h1' and {tv} does not"
            p = run(binary, "calibrate", "merge", first, second, "-o", tm + ".new", "-q")
            check(p.returncode == 1 and one_error_line(p) and says in p.stderr and not os.path.exists(tm + ".new"),
                  "merge of tables made with %s and %s: exit %d, %r (wants %r)" % (
                      " ".join(opts), " ".join(shard_opts), p.returncode, p.stderr, says))
    # --contrib records the Sigmoid's output of x * sigmoid(x) besides what convert reads
    silu = os.path.join(tmp, "silu.onnx")
    wc1 = RNG.standard_normal((4, D_IN, 1)).astype(np.float32)
    wc2 = RNG.standard_normal((2, 4, 1)).astype(np.float32)
    onnx.save(helper.make_model(helper.make_graph(
        [helper.make_node("Conv", ["x", "wc1"], ["a"]), helper.make_node("Sigmoid", ["a"], ["g"]),
         helper.make_node("Mul", ["a", "g"], ["s"]), helper.make_node("Conv", ["s", "wc2"], ["z"])], "silu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, D_IN, 5])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 2, 5])],
        [numpy_helper.from_array(wc1, "wc1"), numpy_helper.from_array(wc2, "wc2")]),
        opset_imports=[helper.make_opsetid("", 13)]), silu)
    silu_x = os.path.join(tmp, "silu_x.npy")
    np.save(silu_x, RNG.standard_normal((6, 1, D_IN, 5)).astype(np.float32))
    tc, tp8 = os.path.join(tmp, "contrib.json"), os.path.join(tmp, "plain8.json")
    p1 = run(binary, "calibrate", silu, "--data", silu_x, "-o", tc, "-q", "--contrib")
    p2 = run(binary, "calibrate", silu, "--data", silu_x, "-o", tp8, "-q")
    check(p1.returncode == 0 and p2.returncode == 0, "silu calibrations exit 0: " + p1.stderr + p2.stderr)
    p = run(binary, "calibrate", "merge", tp8, tc, "-o", tm + ".new", "-q")
    check(p.returncode == 1 and one_error_line(p) and f"{tc} records tensor 'g' and {tp8} does not" in p.stderr and
          "--contrib" in p.stderr and not os.path.exists(tm + ".new"),
          "a --contrib table and a plain one do not merge: " + p.stderr)

    # ---- images through preprocessing into a conv-shaped input
    try:
        from PIL import Image
    except ImportError:
        Image = None
    if Image is not None:
        cnn_path = relu_image_model(os.path.join(tmp, "img.onnx"), 8, 8)
        imgs = os.path.join(tmp, "imgs")
        os.makedirs(imgs)
        pix = []
        for i in range(3):
            a = RNG.integers(0, 256, (8, 8, 3), dtype=np.uint8)
            Image.fromarray(a).save(os.path.join(imgs, "im%d.png" % i))
            pix.append(a)
        big = RNG.integers(0, 256, (20, 30, 3), dtype=np.uint8)  # resized to 8x8 by default
        Image.fromarray(big).save(os.path.join(imgs, "im9.jpg"), quality=95)
        ti = os.path.join(tmp, "img.json")
        p = run(binary, "calibrate", cnn_path, "--data", imgs, "--method", "minmax", "--scale", "1",
                "--mean", "10,20,30", "--std", "2,2,2", "-o", ti, "-q", "--all-tensors")
        check(p.returncode == 0, "image calibrate exits 0: " + p.stderr)
        if p.returncode == 0:
            e = json.load(open(ti))["tensors"]["img"]
            mean = np.array([10, 20, 30], np.float32)
            lo = min(((a.astype(np.float32) - mean) / 2).min() for a in pix)
            hi = max(((a.astype(np.float32) - mean) / 2).max() for a in pix)
            check(e["count"] == 4 * 3 * 64, "image sample count")
            check(e["min"] <= lo + 1e-4 and e["max"] >= hi - 1e-4, "image pixel range covers the PNGs'")
            check(-15 - 1e-4 <= e["min"] and e["max"] <= 127.5 + 1e-4, "image range within the preprocessing bounds")

        # --crop keeps the default resize to the input's fixed size, with the image's aspect:
        # the smallest size that covers the input, then the crop (a 12x6 image held no 8x8 crop)
        def image_table(model_path, folder, *opts):
            out = os.path.join(tmp, "crop.json")
            if os.path.exists(out):
                os.remove(out)
            p = run(binary, "calibrate", model_path, "--data", folder, "--method", "minmax", "--all-tensors",
                    "-o", out, "-q", *opts)
            return (open(out, "rb").read() if p.returncode == 0 else None), p.stderr

        def image_folder(name, *sizes):
            folder = os.path.join(tmp, name)
            os.makedirs(folder)
            for k, (w, h) in enumerate(sizes):
                Image.fromarray(RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(
                    os.path.join(folder, "im%d.png" % k))
            return folder

        odd = image_folder("odd_sizes", (12, 6), (10, 16))
        got, err = image_table(cnn_path, odd, "--crop", "8")
        want, _ = image_table(cnn_path, odd, "--resize", "8", "--crop", "8")
        check(got is not None and got == want,
              "--crop 8 alone for an 8x8 input gives --resize 8 --crop 8's table: " + err)
        # the default scale is the fraction 1/255, which --scale also takes
        got, err = image_table(cnn_path, odd, "--resize", "8", "--crop", "8", "--scale", "1/255")
        check(got is not None and got == want, "--scale 1/255 gives the default scale's table: " + err)
        # a 4x8 (HxW) input: a portrait image is covered by its width, a landscape one by its height
        wide_path = relu_image_model(os.path.join(tmp, "wide.onnx"), 4, 8)
        for name, size, resize in (("portrait", (6, 10), "8"), ("landscape", (24, 6), "4")):
            folder = image_folder(name, size)
            got, err = image_table(wide_path, folder, "--crop", "8x4")
            want, _ = image_table(wide_path, folder, "--resize", resize, "--crop", "8x4")
            check(got is not None and got == want, "%s %dx%d image, --crop 8x4 alone for a 4x8 input: the table of "
                  "--resize %s --crop 8x4: %s" % (name, size[0], size[1], resize, err))

        # --mean and --std list red, green, blue whatever the channel order: a pure red
        # image's red channel, first or last (--bgr), is (1 - 0.5) / 0.25, the others 0
        split = helper.make_model(helper.make_graph(
            [helper.make_node("Split", ["img"], ["c0", "c1", "c2"], axis=1, name="split")], "split",
            [helper.make_tensor_value_info("img", TensorProto.FLOAT, [1, 3, 8, 8])],
            [helper.make_tensor_value_info(c, TensorProto.FLOAT, [1, 1, 8, 8]) for c in ("c0", "c1", "c2")]),
            opset_imports=[helper.make_opsetid("", 13)])
        split_path = os.path.join(tmp, "split.onnx")
        onnx.save(split, split_path)
        red = os.path.join(tmp, "red")
        os.makedirs(red)
        Image.fromarray(np.tile(np.array([255, 0, 0], np.uint8), (8, 8, 1))).save(os.path.join(red, "red.png"))
        for order, want in (([], (2, 0, 0)), (["--bgr"], (0, 0, 2))):
            got, err = image_table(split_path, red, "--mean", "0.5,0,0", "--std", "0.25,1,1", "--no-prepare", *order)
            t_red = json.loads(got)["tensors"] if got else {}
            seen = [(t_red[c]["min"], t_red[c]["max"]) if c in t_red else None for c in ("c0", "c1", "c2")]
            check(all(s and abs(s[0] - w) < 1e-5 and abs(s[1] - w) < 1e-5 for s, w in zip(seen, want)),
                  "red image, --mean 0.5,0,0 --std 0.25,1,1 %s: channels %s, want %s %s" % (
                      " ".join(order), seen, want, err))

    # ---- bad data: one error line, exit 1, no table written
    def refused(args, what, code=1):
        out = os.path.join(tmp, "bad.json")
        if os.path.exists(out):
            os.remove(out)
        p = run(binary, "calibrate", *args, "-o", out, "-q")
        check(p.returncode == code and one_error_line(p) and not os.path.exists(out),
              "%s: exit %d, stderr %r" % (what, p.returncode, p.stderr))
        return p

    empty = os.path.join(tmp, "empty")
    os.makedirs(empty)
    refused([model, "--data", empty], "empty folder")
    refused([model, "--data", os.path.join(tmp, "missing")], "missing folder")
    wrong = os.path.join(tmp, "wrong.npy")
    np.save(wrong, np.zeros((4, 1, D_IN + 1), np.float32))
    p = refused([model, "--data", "x=" + wrong], "wrong width")
    check("wrong.npy" in p.stderr and "'x'" in p.stderr, "shape error names file and input: " + p.stderr)
    wrong_t = os.path.join(tmp, "wrong_t.npy")
    np.save(wrong_t, np.zeros((4, 1, D_IN), np.int32))
    refused([model, "--data", "x=" + wrong_t], "wrong dtype")
    refused([model, "--data", "nosuch=" + npy], "unknown input name")
    two_inputs = os.path.join(tmp, "two_inputs.onnx")
    m2 = mlp_model()
    m2.graph.input.append(helper.make_tensor_value_info("x2", TensorProto.FLOAT, ["N", D_IN]))
    m2.graph.node.append(helper.make_node("Identity", ["x2"], ["x2_out"]))
    m2.graph.output.append(helper.make_tensor_value_info("x2_out", TensorProto.FLOAT, ["N", D_IN]))
    onnx.save(m2, two_inputs)
    p = refused([two_inputs, "--data", npy], "FILE.npy for a model of two inputs")
    check("NAME=" in p.stderr, "the error says to name the input: " + p.stderr)
    truncated = os.path.join(tmp, "truncated.npy")
    open(truncated, "wb").write(open(npy, "rb").read()[:-7])
    p = refused([model, "--data", "x=" + truncated], "truncated .npy stack")
    check("truncated" in p.stderr, "truncated .npy named as such: " + p.stderr)
    refused([model, "--data", samples, "--method", "bogus"], "unknown method", 2)
    refused([model, "--data", samples, "--bins", "7"], "odd bins", 2)
    garbage = os.path.join(tmp, "garbage.json")
    open(garbage, "w").write("{not json")
    p = run(binary, "calibrate", "merge", ta, garbage, "-o", os.path.join(tmp, "m2.json"), "-q")
    check(p.returncode == 1 and one_error_line(p) and not os.path.exists(os.path.join(tmp, "m2.json")),
          "merge of a corrupt table refused: " + p.stderr)
    p = run(binary, "calibrate", model, "--data", samples, "-o", os.path.join(tmp, "nodir", "t.json"), "-q")
    check(p.returncode == 1 and one_error_line(p), "output in a missing folder refused")
    p = run(binary, "calibrate", model, "--data", samples, "-o", model, "-q")
    check(p.returncode != 0 and open(model, "rb").read() == model_bytes, "output equal to the model is refused")

    # ---- NaN data: warned by tensor name, left out of the ranges
    nan_x = np.stack(xs_fixed).copy()
    nan_x[3, 0, 5] = np.nan
    nan_npy = os.path.join(tmp, "nan.npy")
    np.save(nan_npy, nan_x)
    tn = os.path.join(tmp, "nan.json")
    p = run(binary, "calibrate", model, "--data", "x=" + nan_npy, "--method", "minmax", "-o", tn, "-q")
    check(p.returncode == 0 and "warning" in p.stderr and "'x'" in p.stderr, "NaN warning names x: " + p.stderr)
    if p.returncode == 0:
        e = json.load(open(tn))["tensors"]["x"]
        finite = nan_x[np.isfinite(nan_x)]
        check(e["nonfinite"] >= 1 and e["max"] == float(finite.max()), "NaN left out of x's range")

    # ---- a KV cache at its first step: the past is empty in every sample
    kv = os.path.join(tmp, "kv.onnx")
    onnx.save(kv_cache_model(), kv)
    xk = os.path.join(tmp, "kv_x.npy")
    pk = os.path.join(tmp, "kv_past.npy")
    np.save(xk, RNG.standard_normal((6, 1, 4, 8)).astype(np.float32))
    np.save(pk, np.zeros((6, 1, 0, 8), np.float32))
    tk, rk = os.path.join(tmp, "kv.json"), os.path.join(tmp, "kv_report.json")
    p = run(binary, "calibrate", kv, "--data", "x=" + xk, "--data", "past=" + pk, "-o", tk, "-q")
    e = json.load(open(tk))["tensors"].get("past") if p.returncode == 0 else None
    check(e is not None and e["count"] == 0, "an input empty in every sample is in the table with no values: %s %s"
          % (p.stderr, e))
    p = run(binary, "convert", kv, "--calib", tk, "-o", os.path.join(tmp, "kv_q.onnx"), "--report", rk, "-q")
    counts = json.load(open(rk))["node_counts"] if p.returncode == 0 else {}
    check(counts.get("quantized") == counts.get("candidates") == 2,
          "both MatMuls quantized, the one reading Concat(empty past, k) too: %s %s" % (p.stderr, counts))

    return finish("test_calibrate")


if __name__ == "__main__":
    sys.exit(main())
