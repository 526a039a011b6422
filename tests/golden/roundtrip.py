#!/usr/bin/python3
"""Round trip of every ONNX node-test model through onnxq's loader and saver.

For each data/node/*/model.onnx: `oq_roundtrip` loads it and saves it to a
temporary folder; python's onnx then loads the result, runs the checker, and
compares it with the original: model fields, opsets, and for the graph (and
every subgraph) nodes in order with all attributes, initializers (values,
types, dims), inputs, outputs and value_info types.

usage: roundtrip.py path/to/oq_roundtrip [node-test data folder]
"""
import glob
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

DATA = "/usr/share/libonnx-testdata/data/node"


def dom(d):
    return "" if d in ("", "ai.onnx") else d


def tensor_key(t):
    a = numpy_helper.to_array(t)
    if a.dtype == object:
        payload = [x if isinstance(x, bytes) else str(x).encode() for x in a.ravel()]
    else:
        payload = a.tobytes()
    return (t.data_type, tuple(t.dims), payload)


def type_key(tp):
    if tp.WhichOneof("value") == "tensor_type":
        tt = tp.tensor_type
        shape = None
        if tt.HasField("shape"):
            shape = tuple(d.dim_value if d.HasField("dim_value") else
                          d.dim_param if d.HasField("dim_param") else None for d in tt.shape.dim)
        return ("tensor", tt.elem_type, shape)
    return ("other", tp.SerializeToString(deterministic=True))


def attr_key(a):
    v = helper.get_attribute_value(a)
    if a.type == onnx.AttributeProto.TENSOR:
        return (a.type, tensor_key(v))
    if a.type == onnx.AttributeProto.TENSORS:
        return (a.type, [tensor_key(t) for t in v])
    if a.type == onnx.AttributeProto.GRAPH:
        return (a.type, graph_key(v))
    if a.type == onnx.AttributeProto.GRAPHS:
        return (a.type, [graph_key(g) for g in v])
    if a.type == onnx.AttributeProto.FLOAT:
        return (a.type, np.float32(v).tobytes())
    if a.type == onnx.AttributeProto.FLOATS:
        return (a.type, np.array(v, dtype=np.float32).tobytes())
    if a.type in (onnx.AttributeProto.SPARSE_TENSOR, onnx.AttributeProto.SPARSE_TENSORS,
                  onnx.AttributeProto.TYPE_PROTO, onnx.AttributeProto.TYPE_PROTOS):
        return (a.type, a.SerializeToString(deterministic=True))
    return (a.type, v, a.ref_attr_name)


def graph_key(g):
    return {
        "name": g.name,
        "nodes": [(n.op_type, dom(n.domain), n.name, list(n.input), list(n.output),
                   sorted((a.name, attr_key(a)) for a in n.attribute)) for n in g.node],
        "initializers": sorted((t.name, tensor_key(t)) for t in g.initializer),
        "inputs": [(v.name, type_key(v.type)) for v in g.input],
        "outputs": [(v.name, type_key(v.type)) for v in g.output],
        "value_info": sorted((v.name, type_key(v.type)) for v in g.value_info),
    }


def model_key(m):
    return {
        "ir_version": m.ir_version,
        "opsets": sorted((dom(o.domain), o.version) for o in m.opset_import),
        "producer": (m.producer_name, m.producer_version, m.domain, m.model_version, m.doc_string),
        "metadata": sorted((p.key, p.value) for p in m.metadata_props),
        "functions": [f.SerializeToString(deterministic=True) for f in m.functions],
        "graph": graph_key(m.graph),
    }


def first_difference(a, b, path="model"):
    if isinstance(a, dict) and isinstance(b, dict):
        for k in a:
            if a[k] != b.get(k):
                return first_difference(a[k], b.get(k), f"{path}.{k}")
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if len(a) != len(b):
            return f"{path}: {len(a)} entries vs {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            if x != y:
                return first_difference(x, y, f"{path}[{i}]")
    return f"{path}: {str(a)[:200]} != {str(b)[:200]}"


def synthetic_models():
    """(name, model, expect_ok) for the cases the node tests do not cover."""
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [2])
    y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [2])
    fn = helper.make_function("custom", "Twice", ["a"], ["b"],
                              [helper.make_node("Add", ["a", "a"], ["b"])],
                              [helper.make_opsetid("", 13)])
    g = helper.make_graph([helper.make_node("Twice", ["X"], ["Y"], domain="custom")], "f", [x], [y])
    with_fn = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("custom", 1)],
                                functions=[fn])
    ti = with_fn.training_info.add()
    ti.algorithm.CopyFrom(helper.make_graph([helper.make_node("Identity", ["X"], ["Z"])], "step", [x],
                                            [helper.make_tensor_value_info("Z", TensorProto.FLOAT, [2])]))
    with_fn.metadata_props.add(key="k", value="v")

    sp = helper.make_sparse_tensor(numpy_helper.from_array(np.array([5.0], np.float32), "S"),
                                   numpy_helper.from_array(np.array([1], np.int64)), [2])
    g = helper.make_graph([helper.make_node("Constant", [], ["S"], sparse_value=sp),
                           helper.make_node("Add", ["X", "S"], ["Y"])], "sparse_const", [x], [y])
    sparse_const = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])

    seq = helper.make_tensor_sequence_value_info("Q", TensorProto.FLOAT, None)
    g = helper.make_graph([helper.make_node("SequenceConstruct", ["X", "X"], ["Q"])], "seq", [x], [seq])
    seq_model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])

    g = helper.make_graph([helper.make_node("Add", ["X", "S"], ["Y"])], "sparse_init", [x], [y],
                          sparse_initializer=[sp])
    sparse_init = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    return [("function+training_info", with_fn, True), ("sparse_value Constant", sparse_const, True),
            ("sequence type", seq_model, True), ("sparse initializer", sparse_init, False)]


def check_synthetic(tool, tmp, failures):
    passed = 0
    src, out = os.path.join(tmp, "syn.onnx"), os.path.join(tmp, "syn_out.onnx")
    for name, model, expect_ok in synthetic_models():
        onnx.save(model, src)
        r = subprocess.run([tool, src, out], capture_output=True, text=True)
        if not expect_ok:
            if r.returncode == 1 and "sparse initializer 'S' is not supported" in r.stderr:
                passed += 1
            else:
                failures.append(f"{name}: expected a clean refusal, got rc={r.returncode} {r.stderr.strip()}")
            continue
        if r.returncode != 0:
            failures.append(f"{name}: oq_roundtrip failed: {r.stderr.strip()}")
            continue
        saved = onnx.load(out)
        try:
            onnx.checker.check_model(saved)
        except Exception as e:  # the checker raises several exception types
            failures.append(f"{name}: checker: {str(e).splitlines()[0]}")
            continue
        a, b = model_key(model), model_key(saved)
        a["training_info"] = [t.SerializeToString(deterministic=True) for t in model.training_info]
        b["training_info"] = [t.SerializeToString(deterministic=True) for t in saved.training_info]
        if a != b:
            failures.append(f"{name}: differs: {first_difference(a, b)}")
            continue
        passed += 1
    return passed


def main():
    tool = sys.argv[1]
    data = sys.argv[2] if len(sys.argv) > 2 else DATA
    models = sorted(glob.glob(os.path.join(data, "*", "model.onnx")))
    if not models:
        print(f"no models under {data}")
        return 1
    counts = {"loaded+saved": 0, "checker": 0, "equal": 0}
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out.onnx")
        for path in models:
            name = os.path.basename(os.path.dirname(path))
            r = subprocess.run([tool, path, out], capture_output=True, text=True)
            if r.returncode != 0:
                failures.append(f"{name}: oq_roundtrip failed: {r.stderr.strip()}")
                continue
            counts["loaded+saved"] += 1
            saved = onnx.load(out)
            try:
                onnx.checker.check_model(saved)
                counts["checker"] += 1
            except Exception as e:  # the checker raises several exception types
                failures.append(f"{name}: checker: {str(e).splitlines()[0]}")
                continue
            a, b = model_key(onnx.load(path)), model_key(saved)
            if a != b:
                failures.append(f"{name}: differs: {first_difference(a, b)}")
                continue
            counts["equal"] += 1
        synthetic = check_synthetic(tool, tmp, failures)
    for f in failures:
        print("FAIL", f)
    n = len(models)
    print(f"{n} node-test models: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    n_syn = len(synthetic_models())
    print(f"{n_syn} synthetic models: {synthetic} as expected")
    passed = counts["equal"] + synthetic
    print(f"roundtrip: {passed} passed, {n + n_syn - passed} failed")
    return 0 if passed == n + n_syn else 1


if __name__ == "__main__":
    sys.exit(main())
