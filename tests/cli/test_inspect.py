#!/usr/bin/python3
"""`onnxq inspect --json` agrees with python onnx on every model of ONNX's
operator test suite: inputs, outputs, opsets, op histogram, node count,
initializers, parameter counts (initializers and Constant nodes) and the
MatMul/Gemm/Conv/ConvTranspose/LSTM/GRU/RNN/Einsum quantizable counts (a weight
shared through an Identity counts as constant: a model built here). The text form
must succeed on a sample.

usage: test_inspect.py ONNXQ_BINARY [NODE_TEST_DIR]
"""
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

NODE_DIR = "/usr/share/libonnx-testdata/data/node"
TEXT_EVERY = 8  # the text form is checked on every 8th model (each run costs a process start)

# Storage bits per element, keyed by onnx's TensorProto.DataType name (lower case).
BITS = {
    "float": 32, "uint8": 8, "int8": 8, "uint16": 16, "int16": 16, "int32": 32, "int64": 64,
    "bool": 8, "float16": 16, "double": 64, "uint32": 32, "uint64": 64, "complex64": 64,
    "complex128": 128, "bfloat16": 16, "float8e4m3fn": 8, "float8e4m3fnuz": 8, "float8e5m2": 8,
    "float8e5m2fnuz": 8, "uint4": 4, "int4": 4,
}


def dtype_name(elem_type):
    return onnx.TensorProto.DataType.Name(elem_type).lower() if elem_type else None


def expect_value(vi):
    """The {name, kind, dtype, shape} object onnxq should print for a ValueInfoProto."""
    t = vi.type
    which = t.WhichOneof("value")
    if which is None:
        return {"name": vi.name, "kind": "undeclared", "dtype": None, "shape": None}
    if which != "tensor_type":
        return {"name": vi.name, "kind": "non-tensor", "dtype": None, "shape": None}
    tt = t.tensor_type
    shape = None
    if tt.HasField("shape"):
        shape = []
        for d in tt.shape.dim:
            if d.HasField("dim_value"):
                shape.append(d.dim_value)
            elif d.HasField("dim_param") and d.dim_param:
                shape.append(d.dim_param)
            else:
                shape.append(None)
    return {"name": vi.name, "kind": "tensor", "dtype": dtype_name(tt.elem_type), "shape": shape}


def constant_node_tensor(node):
    """(element count, storage bytes or None for strings) of a Constant node's value."""
    a = node.attribute[0]
    if a.name == "value":
        t = a.t
        n = int(np.prod(t.dims, dtype=np.int64)) if len(t.dims) else 1
        name = dtype_name(t.data_type)
        return n, None if name == "string" else (n * BITS[name] + 7) // 8
    if a.name == "sparse_value":
        n = int(np.prod(a.sparse_tensor.dims, dtype=np.int64))
        name = dtype_name(a.sparse_tensor.values.data_type)
        return n, None if name == "string" else (n * BITS[name] + 7) // 8
    counts = {"value_float": (1, 4), "value_int": (1, 8), "value_string": (1, None),
              "value_floats": (len(a.floats), 4 * len(a.floats)),
              "value_ints": (len(a.ints), 8 * len(a.ints)), "value_strings": (len(a.strings), None)}
    return counts[a.name]


def expect_summary(path):
    m = onnx.load(path)
    g = m.graph
    init_names = {t.name for t in g.initializer}
    ops = collections.Counter()
    for n in g.node:
        dom = "" if n.domain in ("", "ai.onnx") else n.domain
        ops[f"{dom}:{n.op_type}" if dom else n.op_type] += 1
    elements, nbytes, tensors = 0, 0, 0
    consts = set(init_names)
    for t in g.initializer:
        n = int(np.prod(t.dims, dtype=np.int64)) if len(t.dims) else 1
        elements += n
        name = dtype_name(t.data_type)
        nbytes = None if nbytes is None or name == "string" else nbytes + (n * BITS[name] + 7) // 8
        tensors += 1
    for n in g.node:
        if n.op_type == "Constant" and n.domain in ("", "ai.onnx"):
            e, b = constant_node_tensor(n)
            elements += e
            nbytes = None if nbytes is None or b is None else nbytes + b
            tensors += 1
            consts.add(n.output[0])
    for n in g.node:  # a weight shared through an Identity, as PyTorch exports it, counts as constant
        if n.op_type == "Identity" and n.domain in ("", "ai.onnx") and n.input[0] in consts:
            consts.add(n.output[0])
    quant = {}
    for op in ("MatMul", "Gemm", "Conv", "ConvTranspose", "LSTM", "GRU", "RNN", "Einsum"):
        nodes = [n for n in g.node if n.op_type == op and n.domain in ("", "ai.onnx")]
        weights = (0, 1) if op == "Einsum" else (1,)  # either operand of an Einsum may be its kernel
        quant[op] = {"total": len(nodes),
                     "constant_weight": sum(1 for n in nodes if any(len(n.input) > k and n.input[k] in consts
                                                                    for k in weights))}
    opsets = {}
    for o in m.opset_import:
        opsets.setdefault(o.domain if o.domain else "ai.onnx", o.version)
    return {
        "model": path,
        "ir_version": m.ir_version,
        "producer_name": m.producer_name,
        "producer_version": m.producer_version,
        "opsets": opsets,
        "inputs": [expect_value(v) for v in g.input if v.name not in init_names],
        "outputs": [expect_value(v) for v in g.output],
        "node_count": len(g.node),
        "op_types": dict(sorted(ops.items())),
        "initializer_count": len(g.initializer),
        "constant_tensors": tensors,
        "parameter_count": elements,
        "parameter_bytes": nbytes,  # None: holds strings, whose storage onnxq counts its own way
        "quantizable": quant,
    }


def shared_weight_model():
    """Two MatMuls sharing one weight, the second through an Identity (as PyTorch exports
    a tied weight): both have a constant weight."""
    w = numpy_helper.from_array(np.ones((4, 4), np.float32), "w")
    nodes = [helper.make_node("Identity", ["w"], ["w_copy"]),
             helper.make_node("MatMul", ["x", "w"], ["h"]),
             helper.make_node("MatMul", ["h", "w_copy"], ["y"])]
    g = helper.make_graph(nodes, "shared", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], [w])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


def main():
    binary = sys.argv[1]
    node_dir = sys.argv[2] if len(sys.argv) > 2 else NODE_DIR
    cases = sorted(d for d in os.listdir(node_dir) if os.path.isfile(os.path.join(node_dir, d, "model.onnx")))
    if not cases:
        print(f"no models under {node_dir}")
        return 1
    passed = failed = 0
    tmp = tempfile.mkdtemp(prefix="oq_inspect_")
    shared = os.path.join(tmp, "shared_weight.onnx")
    onnx.save(shared_weight_model(), shared)
    for index, (case, path) in enumerate([(c, os.path.join(node_dir, c, "model.onnx")) for c in cases] +
                                         [("shared_weight", shared)]):
        problems = []
        r = subprocess.run([binary, "inspect", "--json", path], capture_output=True, text=True)
        if r.returncode != 0 or r.stderr:
            problems.append(f"exit {r.returncode}: {r.stderr.strip()}")
        else:
            got = json.loads(r.stdout)
            want = expect_summary(path)
            if list(got.keys()) != list(want.keys()):
                problems.append(f"keys {list(got.keys())}")
            if want["parameter_bytes"] is None:
                want["parameter_bytes"] = got.get("parameter_bytes")
            for k, v in want.items():
                if got.get(k) != v:
                    problems.append(f"{k}: got {got.get(k)!r}, want {v!r}")
            if list(got["op_types"]) != sorted(got["op_types"]):
                problems.append("op_types keys are not sorted")
            if case == "shared_weight" and got["quantizable"]["MatMul"] != {"total": 2, "constant_weight": 2}:
                problems.append(f"a weight shared through an Identity: {got['quantizable']['MatMul']}")
        if not problems and index % TEXT_EVERY == 0:
            t = subprocess.run([binary, "inspect", path], capture_output=True, text=True)
            if t.returncode != 0 or t.stderr or f"\nnodes{' ' * 11}{want['node_count']}\n" not in t.stdout:
                problems.append(f"text form: exit {t.returncode}, stderr {t.stderr.strip()!r}")
        if problems:
            failed += 1
            print(f"FAIL {case}: " + "; ".join(problems))
        else:
            passed += 1
    shutil.rmtree(tmp)
    print(f"inspect: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
