#!/usr/bin/python3
"""Writes the fuzz targets' seed corpora into OUTDIR/TARGET/ (see scripts/fuzz.sh).

    /usr/bin/python3 tests/fuzz/make_seeds.py OUTDIR [--onnxq PATH]

model:       ONNX's node test models (libonnx-testdata) and models/example; then
             models written here to reach what those do not: control flow (If,
             Loop, Scan, nested), recurrent ops (LSTM, GRU, RNN; both directions,
             sequence lengths, initial states, layouts), IR-3 models whose
             initializers are also graph inputs, opset 7-9 exports (attribute
             forms of Pad, Slice, Clip, Upsample, BatchNormalization...),
             initializers in external data (ext.bin, the file fuzz_model.c
             provides; ranges inside, past the end, outside the folder), and,
             with --onnxq, models/gen_test_models.py's models quantized by onnxq
             in every output form (qoperator, qdq, dynamic, contrib, per-tensor,
             int8 activations); files under 64 KB
tensor_pb:   the node models' input_K.pb / output_K.pb and calibration/example's samples
npy:         numpy arrays of every supported dtype, .npy versions 1, 2 and 3
calib_table: small onnxq calibration tables (4 bins) in the documented format and,
             with --onnxq, tables onnxq calibrate writes (16 bins, each method)
image:       PNG (gray, RGB, RGBA, palette, 16-bit, interlaced) and JPEG (gray, RGB, progressive)
"""
import glob
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NODE = '/usr/share/libonnx-testdata/data/node'
MAX_SEED = 64 << 10
F = TensorProto.FLOAT


def put(outdir, target, data):
    d = os.path.join(outdir, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()), 'wb') as f:
        f.write(data)


def copy_files(outdir, target, paths, limit):
    n = 0
    for p in sorted(paths):
        if n >= limit:
            break
        data = open(p, 'rb').read()
        if len(data) <= MAX_SEED:
            put(outdir, target, data)
            n += 1


# ---- models written here ------------------------------------------------------------

def vi(name, shape, elem=F):
    return helper.make_tensor_value_info(name, elem, shape)


def model(nodes, inputs, outputs, inits=(), opset=13, ir=7, graph_inputs_from_inits=False, name='seed'):
    inits = [numpy_helper.from_array(np.asarray(v), k) for k, v in inits]
    if graph_inputs_from_inits:  # IR 3: every initializer is also listed as a graph input
        inputs = list(inputs) + [vi(t.name, list(t.dims), t.data_type) for t in inits]
    g = helper.make_graph(nodes, name, inputs, outputs, inits)
    m = helper.make_model(g, producer_name='onnxq tests/fuzz/make_seeds.py',
                          opset_imports=[helper.make_opsetid('', opset)])
    m.ir_version = ir
    return m


def rnd(rng, *shape, scale=0.5):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def control_flow(rng):
    """If on a bool input and on a computed condition, Loop with a trip count,
    a condition and scan outputs, Loop around an If, and Scan."""
    out = []
    for opset in (11, 13):
        then_g = helper.make_graph([helper.make_node('Add', ['x', 'one'], ['t'])], 'then', [], [vi('t', [2, 3])],
                                   [numpy_helper.from_array(np.ones((2, 3), np.float32), 'one')])
        else_g = helper.make_graph([helper.make_node('Mul', ['x', 'x'], ['e'])], 'else', [], [vi('e', [2, 3])])
        out.append(model([helper.make_node('If', ['c'], ['y'], then_branch=then_g, else_branch=else_g)],
                         [vi('c', [], TensorProto.BOOL), vi('x', [2, 3])], [vi('y', [2, 3])], opset=opset))
        # the condition computed from x: ReduceSum(x) > 0
        cond_nodes = [helper.make_node('ReduceSum', ['x'], ['s'], keepdims=0),
                      helper.make_node('Greater', ['s', 'zero'], ['c'])]
        out.append(model(cond_nodes + [helper.make_node('If', ['c'], ['y'], then_branch=then_g, else_branch=else_g)],
                         [vi('x', [2, 3])], [vi('y', [2, 3])], [('zero', np.float32(0))], opset=opset))
        # Loop: carried value += x, scan output of each step; trip count 3 and a condition
        body = helper.make_graph(
            [helper.make_node('Add', ['acc_in', 'x'], ['acc_out']),
             helper.make_node('Identity', ['cond_in'], ['cond_out']),
             helper.make_node('Cast', ['i'], ['fi'], to=F),
             helper.make_node('Mul', ['acc_out', 'fi'], ['scan'])],
            'body', [vi('i', [], TensorProto.INT64), vi('cond_in', [], TensorProto.BOOL), vi('acc_in', [2, 3])],
            [vi('cond_out', [], TensorProto.BOOL), vi('acc_out', [2, 3]), vi('scan', [2, 3])])
        out.append(model([helper.make_node('Loop', ['n', 'c', 'x0'], ['acc', 'steps'], body=body)],
                         [vi('x0', [2, 3]), vi('x', [2, 3])], [vi('acc', [2, 3]), vi('steps', [3, 2, 3])],
                         [('n', np.array(3, np.int64)), ('c', np.array(True))], opset=opset))
        # Loop whose body holds an If on the iteration number
        inner_then = helper.make_graph([helper.make_node('Add', ['v_in', 'x'], ['v1'])], 'it', [], [vi('v1', [4])])
        inner_else = helper.make_graph([helper.make_node('Sub', ['v_in', 'x'], ['v2'])], 'ie', [], [vi('v2', [4])])
        body2 = helper.make_graph(
            [helper.make_node('Mod', ['i', 'two'], ['m']),
             helper.make_node('Equal', ['m', 'zero'], ['even']),
             helper.make_node('If', ['even'], ['v_out'], then_branch=inner_then, else_branch=inner_else),
             helper.make_node('Identity', ['cond_in'], ['cond_out'])],
            'body2', [vi('i', [], TensorProto.INT64), vi('cond_in', [], TensorProto.BOOL), vi('v_in', [4])],
            [vi('cond_out', [], TensorProto.BOOL), vi('v_out', [4])],
            [numpy_helper.from_array(np.array(2, np.int64), 'two'),
             numpy_helper.from_array(np.array(0, np.int64), 'zero')])
        out.append(model([helper.make_node('Loop', ['n', '', 'v0'], ['v'], body=body2)],
                         [vi('v0', [4]), vi('x', [4])], [vi('v', [4])], [('n', np.array(5, np.int64))], opset=opset))
    # Scan (opset 11): running sum over the first axis
    scan_body = helper.make_graph([helper.make_node('Add', ['s_in', 'row'], ['s_out']),
                                   helper.make_node('Identity', ['s_out'], ['y_row'])], 'scan',
                                  [vi('s_in', [3]), vi('row', [3])], [vi('s_out', [3]), vi('y_row', [3])])
    out.append(model([helper.make_node('Scan', ['s0', 'xs'], ['s', 'ys'], body=scan_body, num_scan_inputs=1)],
                     [vi('s0', [3]), vi('xs', [4, 3])], [vi('s', [3]), vi('ys', [4, 3])], opset=11))
    return out


def recurrent(rng):
    """LSTM, GRU and RNN: forward, reverse and bidirectional, with sequence
    lengths and initial states, opset 7 and opset 14 (batch-first layout)."""
    out = []
    seq, batch, inp, hid = 3, 2, 4, 5
    for op, gates in (('LSTM', 4), ('GRU', 3), ('RNN', 1)):
        for opset in (7, 14):
            for direction, ndir in (('forward', 1), ('reverse', 1), ('bidirectional', 2)):
                layout = 1 if opset == 14 and direction != 'reverse' else 0
                xs = [batch, seq, inp] if layout else [seq, batch, inp]
                hs = [batch, ndir, hid] if layout else [ndir, batch, hid]
                ins = ['x', 'w', 'r', 'b', 'lens', 'h0'] + (['c0'] if op == 'LSTM' else [])
                inits = [('w', rnd(rng, ndir, gates * hid, inp)), ('r', rnd(rng, ndir, gates * hid, hid)),
                         ('b', rnd(rng, ndir, 2 * gates * hid)), ('lens', np.array([3, 2], np.int32)),
                         ('h0', rnd(rng, *hs))]
                if op == 'LSTM':
                    inits.append(('c0', rnd(rng, *hs)))
                attrs = {'hidden_size': hid, 'direction': direction}
                if layout:
                    attrs['layout'] = 1
                if op == 'GRU':
                    attrs['linear_before_reset'] = 1 if direction == 'forward' else 0
                outs = ['y', 'yh'] + (['yc'] if op == 'LSTM' else [])
                ys = [batch, seq, ndir, hid] if layout else [seq, ndir, batch, hid]
                outputs = [vi('y', ys), vi('yh', hs)] + ([vi('yc', hs)] if op == 'LSTM' else [])
                out.append(model([helper.make_node(op, ins, outs, **attrs)], [vi('x', xs)], outputs, inits,
                                 opset=opset))
    return out


def ir3(rng):
    """IR version 3 (opset 8) with every initializer also a graph input, as
    old exporters wrote them: Conv, BatchNormalization, Relu, MaxPool, Gemm."""
    nodes = [helper.make_node('Conv', ['x', 'w', 'b'], ['c'], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node('BatchNormalization', ['c', 'g', 'beta', 'mean', 'var'], ['n']),
             helper.make_node('Relu', ['n'], ['r']),
             helper.make_node('MaxPool', ['r'], ['p'], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node('Flatten', ['p'], ['f']),
             helper.make_node('Gemm', ['f', 'fw', 'fb'], ['y'], transB=1)]
    inits = [('w', rnd(rng, 4, 1, 3, 3)), ('b', rnd(rng, 4)), ('g', rnd(rng, 4) + 1), ('beta', rnd(rng, 4)),
             ('mean', rnd(rng, 4)), ('var', np.abs(rnd(rng, 4)) + 0.5), ('fw', rnd(rng, 3, 4 * 4 * 4)),
             ('fb', rnd(rng, 3))]
    a = model(nodes, [vi('x', [1, 1, 8, 8])], [vi('y', [1, 3])], inits, opset=8, ir=3, graph_inputs_from_inits=True)
    mm = model([helper.make_node('MatMul', ['x', 'w'], ['h']), helper.make_node('Add', ['h', 'b'], ['y'])],
               [vi('x', [2, 6])], [vi('y', [2, 5])], [('w', rnd(rng, 6, 5)), ('b', rnd(rng, 5))], opset=7, ir=3,
               graph_inputs_from_inits=True)
    return [a, mm]


def old_opsets(rng):
    """Ops in the attribute forms of opsets 1-9, which exporters of that time
    wrote and later opsets moved into inputs."""
    out = []
    x4 = vi('x', [1, 2, 4, 4])
    out.append(model([helper.make_node('Upsample', ['x'], ['y'], scales=[1.0, 1.0, 2.0, 2.0], mode='nearest')],
                     [x4], [vi('y', [1, 2, 8, 8])], opset=7))
    out.append(model([helper.make_node('Upsample', ['x', 's'], ['y'], mode='linear')], [x4], [vi('y', [1, 2, 8, 8])],
                     [('s', np.array([1, 1, 2, 2], np.float32))], opset=9))
    out.append(model([helper.make_node('BatchNormalization', ['x', 'g', 'b', 'm', 'v'], ['y'], spatial=1,
                                       epsilon=1e-3)], [x4], [vi('y', [1, 2, 4, 4])],
                     [('g', rnd(rng, 2)), ('b', rnd(rng, 2)), ('m', rnd(rng, 2)), ('v', np.abs(rnd(rng, 2)) + 1)],
                     opset=7))
    out.append(model([helper.make_node('Pad', ['x'], ['y'], pads=[0, 0, 1, 2, 0, 0, 2, 1], mode='reflect')], [x4],
                     [vi('y', [1, 2, 7, 7])], opset=2))
    out.append(model([helper.make_node('Slice', ['x'], ['y'], axes=[2, 3], starts=[1, -3], ends=[3, 100])], [x4],
                     [vi('y', [1, 2, 2, 3])], opset=1))
    out.append(model([helper.make_node('Clip', ['x'], ['y'], min=-0.5, max=0.5)], [x4], [vi('y', [1, 2, 4, 4])],
                     opset=6))
    out.append(model([helper.make_node('Dropout', ['x'], ['y', 'mask'], ratio=0.3)], [x4],
                     [vi('y', [1, 2, 4, 4]), vi('mask', [1, 2, 4, 4], TensorProto.BOOL)], opset=7))
    out.append(model([helper.make_node('MaxPool', ['x'], ['y', 'i'], kernel_shape=[2, 2], storage_order=1)], [x4],
                     [vi('y', [1, 2, 3, 3]), vi('i', [1, 2, 3, 3], TensorProto.INT64)], opset=8))
    out.append(model([helper.make_node('Reshape', ['x', 's'], ['y']), helper.make_node('Softmax', ['y'], ['z'])],
                     [x4], [vi('z', [2, 16])], [('s', np.array([2, -1], np.int64))], opset=5))
    out.append(model([helper.make_node('Unsqueeze', ['x'], ['u'], axes=[0]),
                      helper.make_node('Squeeze', ['u'], ['s'], axes=[0]),
                      helper.make_node('ReduceMean', ['s'], ['y'], axes=[2, 3], keepdims=1)],
                     [x4], [vi('y', [1, 2, 1, 1])], opset=1))
    out.append(model([helper.make_node('Gemm', ['a', 'b', 'c'], ['y'], transA=1, alpha=0.5)], [vi('a', [3, 2])],
                     [vi('y', [2, 4])], [('b', rnd(rng, 3, 4)), ('c', rnd(rng, 4))], opset=7))
    out.append(model([helper.make_node('Shape', ['x'], ['s']), helper.make_node('Cast', ['s'], ['f'], to=F),
                      helper.make_node('Where', ['c', 'f', 'z'], ['y']),
                      helper.make_node('Expand', ['y', 'four'], ['e'])],
                     [x4, vi('c', [4], TensorProto.BOOL)], [vi('e', [4, 4])],
                     [('z', np.zeros(4, np.float32)), ('four', np.array([4, 4], np.int64))], opset=9))
    out.append(model([helper.make_node('Constant', [], ['k'], value=numpy_helper.from_array(rnd(rng, 2, 4, 4), 'k')),
                      helper.make_node('Sum', ['x', 'k', 'x'], ['y']), helper.make_node('Shrink', ['y'], ['z'])],
                     [x4], [vi('z', [1, 2, 4, 4])], opset=9))
    return out


EXT_BYTES = 4096  # size of ext.bin, which fuzz_model.c writes beside the models it loads


def external_data(rng):
    """Initializers kept in ext.bin: whole, at an offset, without a length,
    past its end, in a file that is not there, and outside the folder."""
    out = []

    def ext_model(entries_per_init, dtype=np.float32):
        inits, nodes, k = [], [], 0
        for shape, entries in entries_per_init:
            t = numpy_helper.from_array(np.zeros(shape, dtype), f'w{k}')
            t.ClearField('raw_data')
            t.data_location = TensorProto.EXTERNAL
            for key, value in entries:
                e = t.external_data.add()
                e.key, e.value = key, value
            inits.append(t)
            nodes.append(helper.make_node('Add', ['x' if k == 0 else f'y{k - 1}', f'w{k}'], [f'y{k}']))
            k += 1
        shape, elem = entries_per_init[0][0], onnx.mapping.NP_TYPE_TO_TENSOR_TYPE[np.dtype(dtype)]
        g = helper.make_graph(nodes, 'ext', [vi('x', list(shape), elem)], [vi(f'y{k - 1}', list(shape), elem)], inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid('', 13)])
        m.ir_version = 7
        return m

    out.append(ext_model([((4, 8), [('location', 'ext.bin'), ('offset', '0'), ('length', '128')]),
                          ((4, 8), [('location', 'ext.bin'), ('offset', '1024'), ('length', '128')])]))
    out.append(ext_model([((16,), [('location', 'ext.bin'), ('offset', str(EXT_BYTES - 64))])]))  # to the end
    out.append(ext_model([((16,), [('location', 'ext.bin'), ('offset', str(EXT_BYTES - 32)), ('length', '64')])]))
    out.append(ext_model([((8,), [('location', 'ext.bin'), ('offset', '4'), ('length', '32'),
                                  ('checksum', 'ab')])]))
    out.append(ext_model([((8,), [('location', 'missing.bin'), ('length', '32')])]))
    out.append(ext_model([((8,), [('location', '../ext.bin'), ('length', '32')])]))
    out.append(ext_model([((2, 4), [('location', 'ext.bin'), ('offset', '64'), ('length', '64')])], np.int64))
    return out


def written_models(outdir, rng):
    made = control_flow(rng) + recurrent(rng) + ir3(rng) + old_opsets(rng) + external_data(rng)
    for m in made:
        data = m.SerializeToString()
        if len(data) <= MAX_SEED:
            put(outdir, 'model', data)
    return len(made)


# ---- quantized models and tables, made by onnxq -----------------------------------------

QUANT_FORMS = [
    ['--format', 'qoperator'],
    ['--format', 'qdq'],
    ['--format', 'qoperator', '--contrib'],
    ['--mode', 'dynamic'],
    ['--format', 'qoperator', '--per-tensor', '--activation-type', 'int8', '--symmetric-activations'],
    ['--format', 'qdq', '--activation-type', 'int8'],
]


def quantized(outdir, onnxq, rng):
    """Each model of models/gen_test_models.py quantized in every form, and
    the tables onnxq calibrate writes for it with each method."""
    sys.path.insert(0, os.path.join(ROOT, 'models'))
    import gen_test_models
    n_models = n_tables = 0
    with tempfile.TemporaryDirectory(prefix='onnxq-seeds-') as tmp:
        for name, m, cases in gen_test_models.models():
            path = os.path.join(tmp, name + '.onnx')
            onnx.save(m, path)
            data = []
            for i, (inp, x) in enumerate(zip(m.graph.input, cases[0])):
                samples = np.stack([x + (0.1 * s * rng.standard_normal(x.shape)).astype(x.dtype) for s in range(4)])
                npy = os.path.join(tmp, f'{name}_{i}.npy')
                np.save(npy, samples)
                data += ['--data', f'{inp.name}={npy}']
            for k, form in enumerate(QUANT_FORMS):
                out = os.path.join(tmp, f'{name}_q{k}.onnx')
                r = subprocess.run([onnxq, 'quantize', path, *data, '-o', out, '-q', '--threads', '1', *form],
                                   capture_output=True, text=True)
                if r.returncode != 0:
                    sys.exit(f'make_seeds: onnxq quantize {name} {" ".join(form)} failed: {r.stderr.strip()}')
                blob = open(out, 'rb').read()
                if len(blob) <= MAX_SEED:
                    put(outdir, 'model', blob)
                    n_models += 1
            for method in ('minmax', 'percentile', 'entropy', 'mse'):
                table = os.path.join(tmp, f'{name}_{method}.json')
                r = subprocess.run([onnxq, 'calibrate', path, *data, '-o', table, '-q', '--bins', '16',
                                    '--method', method, '--threads', '1'], capture_output=True, text=True)
                if r.returncode != 0:
                    sys.exit(f'make_seeds: onnxq calibrate {name} --method {method} failed: {r.stderr.strip()}')
                blob = open(table, 'rb').read()
                if len(blob) <= MAX_SEED:
                    put(outdir, 'calib_table', blob)
                    n_tables += 1
    return n_models, n_tables


# ---- other targets ----------------------------------------------------------------------

def npy_bytes(a, version):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, a, version=version)
    return buf.getvalue()


def npy_seeds(outdir):
    rng = np.random.default_rng(0)
    dtypes = ['float16', 'float32', 'float64', 'int8', 'int16', 'int32', 'int64',
              'uint8', 'uint16', 'uint32', 'uint64', 'bool']
    shapes = [(), (0,), (3,), (2, 3), (4, 1, 2, 2)]
    for i, dt in enumerate(dtypes):
        for j, shape in enumerate(shapes):
            a = (rng.standard_normal(shape) * 10).astype(dt)
            put(outdir, 'npy', npy_bytes(a, (1, 0) if (i + j) % 3 == 0 else (2, 0) if (i + j) % 3 == 1 else (3, 0)))


def table_seeds(outdir):
    hexa, hexb = 'ab' * 32, '01' * 32
    for method, sym in [('minmax', False), ('percentile', True), ('entropy', False), ('mse', True)]:
        t = {'format': 'onnxq-calibration', 'version': 1, 'model_sha256': hexa, 'data_sha256': hexb,
             'samples': 2, 'method': method, 'percentile': 99.9, 'symmetric': sym,
             'qmin': -128 if sym else 0, 'qmax': 127 if sym else 255, 'bins': 4,
             'tensors': {
                 'x': {'min': -1.0, 'max': 2.0, 'count': 6, 'nonfinite': 0,
                       'hist': {'lo': -1.0, 'width': 0.75, 'counts': [1, 2, 0, 3]}, 'range': [-1.0, 2.0]},
                 'y': {'min': 0, 'max': 0, 'count': 0, 'nonfinite': 1,
                       'hist': {'lo': 0, 'width': 0, 'counts': [0, 0, 0, 0]}, 'range': [0, 0]}}}
        put(outdir, 'calib_table', (json.dumps(t, indent=2) + '\n').encode())


def image_seeds(outdir):
    from PIL import Image
    rng = np.random.default_rng(1)
    rgb = Image.fromarray(rng.integers(0, 256, (6, 9, 3), dtype=np.uint8), 'RGB')
    for im, kw in [(rgb, {}), (rgb.convert('L'), {}), (rgb.convert('RGBA'), {}),
                   (rgb.convert('P'), {}), (rgb.convert('LA'), {}), (rgb.convert('1'), {}),
                   (rgb, {'interlace': 1}), (Image.fromarray(rng.integers(0, 65536, (5, 4), dtype=np.uint16)), {})]:
        buf = io.BytesIO()
        im.save(buf, 'PNG', **kw)
        put(outdir, 'image', buf.getvalue())
    for im, kw in [(rgb, {'quality': 90}), (rgb.convert('L'), {}), (rgb, {'progressive': True}),
                   (rgb, {'subsampling': 0}), (rgb.convert('CMYK'), {})]:
        buf = io.BytesIO()
        im.save(buf, 'JPEG', **kw)
        put(outdir, 'image', buf.getvalue())


def main():
    args = sys.argv[1:]
    onnxq = None
    if '--onnxq' in args:
        k = args.index('--onnxq')
        onnxq = os.path.abspath(args[k + 1])
        del args[k:k + 2]
    if len(args) != 1:
        sys.exit(__doc__)
    outdir = args[0]
    shutil.rmtree(outdir, ignore_errors=True)
    rng = np.random.default_rng(2)
    models = glob.glob(NODE + '/*/model.onnx') + glob.glob(ROOT + '/models/example/*.onnx')
    copy_files(outdir, 'model', models, 2000)
    written = written_models(outdir, rng)
    print(f'seeds: model: {written} models written here')
    if onnxq:
        n_models, n_tables = quantized(outdir, onnxq, rng)
        print(f'seeds: model: {n_models} quantized by onnxq; calib_table: {n_tables} tables by onnxq calibrate')
    pbs = glob.glob(NODE + '/*/test_data_set_0/*.pb') + glob.glob(ROOT + '/calibration/example/*/*.pb')
    copy_files(outdir, 'tensor_pb', pbs, 600)
    npy_seeds(outdir)
    table_seeds(outdir)
    image_seeds(outdir)
    for t in sorted(os.listdir(outdir)):
        print(f'seeds: {t}: {len(os.listdir(os.path.join(outdir, t)))} files')


if __name__ == '__main__':
    main()
