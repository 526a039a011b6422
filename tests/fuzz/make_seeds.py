#!/usr/bin/python3
"""Writes the fuzz targets' seed corpora into OUTDIR/TARGET/ (see scripts/fuzz.sh).

model:       ONNX's node test models (libonnx-testdata) and models/example, files under 64 KB
tensor_pb:   their input_K.pb / output_K.pb test data and calibration/example's samples
npy:         numpy arrays of every supported dtype, .npy versions 1, 2 and 3
calib_table: small onnxq calibration tables (4 bins) in the documented format
image:       PNG (gray, RGB, RGBA, palette, 16-bit, interlaced) and JPEG (gray, RGB, progressive)
"""
import glob
import hashlib
import io
import json
import os
import shutil
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NODE = '/usr/share/libonnx-testdata/data/node'
MAX_SEED = 64 << 10


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
    outdir = sys.argv[1]
    shutil.rmtree(outdir, ignore_errors=True)
    models = glob.glob(NODE + '/*/model.onnx') + glob.glob(ROOT + '/models/example/*.onnx')
    copy_files(outdir, 'model', models, 2000)
    pbs = glob.glob(NODE + '/*/test_data_set_0/*.pb') + glob.glob(ROOT + '/calibration/example/*/*.pb')
    copy_files(outdir, 'tensor_pb', pbs, 600)
    npy_seeds(outdir)
    table_seeds(outdir)
    image_seeds(outdir)
    for t in sorted(os.listdir(outdir)):
        print(f'seeds: {t}: {len(os.listdir(os.path.join(outdir, t)))} files')


if __name__ == '__main__':
    main()
