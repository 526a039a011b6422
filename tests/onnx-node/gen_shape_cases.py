"""gen_shape_cases.py: writes extra operator cases for the shape and
data-movement kernels (ops_shape.c, ops_resize.c) in the libonnx-testdata
layout: newer opsets than the installed test data (Pad 18/19, Split 18,
Resize 18), 8-bit and other element types, tensors large enough to take the
tiled and multi-threaded paths. Expected outputs come from numpy and ONNX's
own Resize reference (onnx.backend.test.case.node.resize).

usage: /usr/bin/python3 gen_shape_cases.py OUT_DIR
       run_node_tests OUT_DIR"""
import os, shutil, sys
import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto
from onnx.backend.test.case.node.resize import (interpolate_nd, interpolate_nd_with_x,
    linear_coeffs, cubic_coeffs, nearest_coeffs)

OUT = sys.argv[1]
rng = np.random.default_rng(0)

def case(name, op, inputs, outputs, opset, **attrs):
    """inputs: list of (name, array or None); outputs: list of (name, array)."""
    d = os.path.join(OUT, 'test_x_' + name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(os.path.join(d, 'test_data_set_0'))
    node = helper.make_node(op, [n if a is not None else '' for n, a in inputs], [n for n, _ in outputs], **attrs)
    vi = lambda n, a: helper.make_tensor_value_info(n, onnx.mapping.NP_TYPE_TO_TENSOR_TYPE[a.dtype], a.shape)
    g = helper.make_graph([node], name, [vi(n, a) for n, a in inputs if a is not None],
                          [vi(n, a) for n, a in outputs])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid('', opset)])
    m.ir_version = 8
    onnx.save(m, os.path.join(d, 'model.onnx'))
    k = 0
    for n, a in inputs:
        if a is None:
            continue
        onnx.save_tensor(numpy_helper.from_array(a, n), os.path.join(d, 'test_data_set_0', f'input_{k}.pb'))
        k += 1
    for k, (n, a) in enumerate(outputs):
        onnx.save_tensor(numpy_helper.from_array(a, n), os.path.join(d, 'test_data_set_0', f'output_{k}.pb'))

i64 = lambda *v: np.array(v, dtype=np.int64)

# ---- Transpose: big, tiled, parallel, several element sizes
for dt in (np.float32, np.int8, np.float16, np.int64):
    x = (rng.standard_normal((2, 300, 257)) * 50).astype(dt)
    case(f'transpose_021_{np.dtype(dt).name}', 'Transpose', [('x', x)], [('y', x.transpose(0, 2, 1).copy())], 13, perm=[0, 2, 1])
x = rng.standard_normal((3, 40, 50, 7)).astype(np.float32)
for perm in ([0, 2, 3, 1], [0, 3, 1, 2], [3, 2, 1, 0], [1, 0, 3, 2], [0, 2, 1, 3]):
    case('transpose_' + ''.join(map(str, perm)), 'Transpose', [('x', x)], [('y', x.transpose(perm).copy())], 13, perm=perm)
x = rng.integers(0, 255, (1, 1024, 1024), dtype=np.uint8)
case('transpose_2d_u8_big', 'Transpose', [('x', x)], [('y', x.transpose(0, 2, 1).copy())], 13, perm=[0, 2, 1])

# ---- Pad: opset 2 attrs, 11 inputs, 18 axes, 19 wrap; negative pads; int8
x = rng.integers(-100, 100, (2, 3, 5, 6), dtype=np.int8)
def nppad(x, pads, mode, value=0):
    r = x.ndim
    lo, hi = pads[:r], pads[r:]
    cropped = x[tuple(slice(max(-l, 0), x.shape[i] - max(-h, 0)) for i, (l, h) in enumerate(zip(lo, hi)))]
    w = [(max(l, 0), max(h, 0)) for l, h in zip(lo, hi)]
    if mode == 'constant':
        return np.pad(cropped, w, mode='constant', constant_values=value)
    return np.pad(cropped, w, mode={'reflect': 'reflect', 'edge': 'edge', 'wrap': 'wrap'}[mode])
for mode in ('constant', 'reflect', 'edge'):
    pads = [0, 1, 2, -1, 0, 0, 3, 2]
    case(f'pad2_{mode}', 'Pad', [('x', x)], [('y', nppad(x, pads, mode, 7 if mode == 'constant' else 0))], 2,
         mode=mode, pads=pads, value=7.0)
    case(f'pad11_{mode}', 'Pad', [('x', x), ('pads', i64(*pads)), ('v', np.array(-5, np.int8))],
         [('y', nppad(x, pads, mode, -5))], 11, mode=mode)
wrap_pads = [0, 0, 3, 4, 0, 0, 2, 5]
case('pad19_wrap', 'Pad', [('x', x), ('pads', i64(*wrap_pads))], [('y', nppad(x, wrap_pads, 'wrap'))], 19, mode='wrap')
case('pad18_axes', 'Pad', [('x', x), ('pads', i64(1, 2, 3, 4)), ('v', None), ('axes', i64(-1, 1))],
     [('y', nppad(x, [0, 2, 0, 1, 0, 4, 0, 3], 'constant'))], 18)
xf = rng.standard_normal((1, 64, 120, 130)).astype(np.float32)
case('pad_big_reflect', 'Pad', [('x', xf), ('pads', i64(0, 0, 3, 3, 0, 0, 3, 3))],
     [('y', nppad(xf, [0, 0, 3, 3, 0, 0, 3, 3], 'reflect'))], 13, mode='reflect')
case('pad_big_const', 'Pad', [('x', xf), ('pads', i64(0, 0, 1, 1, 0, 0, 1, 1))],
     [('y', nppad(xf, [0, 0, 1, 1, 0, 0, 1, 1], 'constant'))], 13)

# ---- Split: opset 2 attr, 11 equal, 18 num_outputs uneven
x = rng.standard_normal((4, 7, 3)).astype(np.float32)
case('split2_attr', 'Split', [('x', x)], [('a', x[:, :2]), ('b', x[:, 2:])], 2, axis=1, split=[2, 5])
case('split18_uneven', 'Split', [('x', x)], [('a', x[:, :3]), ('b', x[:, 3:6]), ('c', x[:, 6:])], 18, axis=1, num_outputs=3)
case('split13_input', 'Split', [('x', x), ('s', i64(1, 6))], [('a', x[:, :1]), ('b', x[:, 1:])], 13, axis=-2)

# ---- Slice: opset 1 attrs, negative steps on big data
x = rng.standard_normal((20, 10, 5)).astype(np.float32)
case('slice1_attrs', 'Slice', [('x', x)], [('y', x[2:-3, :, 1:100])], 1, starts=[2, 1], ends=[-3, 100], axes=[0, 2])
xb = rng.integers(0, 255, (64, 200, 300), dtype=np.uint8)
case('slice_negstep_big', 'Slice', [('x', xb), ('s', i64(-1, 250, 5)), ('e', i64(-1000, 3, 100)), ('a', i64(2, 1, 0)), ('st', i64(-1, -3, 2))],
     [('y', xb[5:100:2, 250:3:-3, ::-1].copy())], 13)
case('slice_empty', 'Slice', [('x', x), ('s', i64(5)), ('e', i64(2)), ('a', i64(0))], [('y', x[5:2])], 13)

# ---- Gather / GatherElements: other axes, int32 negative indices, uint8
x = rng.integers(0, 255, (3, 5, 4), dtype=np.uint8)
ind = np.array([[0, -1], [2, -5]], dtype=np.int32)
case('gather_axis1_i32', 'Gather', [('x', x), ('i', ind)], [('y', np.take(x, ind, axis=1))], 13, axis=1)
case('gather_scalar_idx', 'Gather', [('x', x), ('i', np.array(-1, np.int64))], [('y', np.take(x, -1, axis=2))], 13, axis=-1)
x2 = rng.standard_normal((2, 6, 7)).astype(np.float32)
ind2 = rng.integers(-6, 6, (2, 3, 7)).astype(np.int64)
case('gather_elements_axis1', 'GatherElements', [('x', x2), ('i', ind2)],
     [('y', np.take_along_axis(x2, np.where(ind2 < 0, ind2 + 6, ind2), axis=1))], 13, axis=1)

# ---- Expand / Tile big and 8-bit
x = rng.integers(-128, 127, (3, 1, 5, 1), dtype=np.int8)
case('expand_i8', 'Expand', [('x', x), ('s', i64(2, 1, 3, 40, 1, 70))], [('y', x * np.ones((2, 1, 3, 40, 1, 70), np.int8))], 13)
x = rng.standard_normal((1, 256, 1)).astype(np.float32)
case('expand_big', 'Expand', [('x', x), ('s', i64(8, 256, 300))], [('y', np.broadcast_to(x, (8, 256, 300)).copy())], 13)
x = rng.integers(0, 255, (2, 3, 4), dtype=np.uint8)
case('tile_u8', 'Tile', [('x', x), ('r', i64(3, 1, 50))], [('y', np.tile(x, (3, 1, 50)))], 13)

# ---- Squeeze/Unsqueeze opset 11 attrs, Flatten, Reshape int8
x = rng.standard_normal((1, 3, 1, 4)).astype(np.float32)
case('squeeze11', 'Squeeze', [('x', x)], [('y', x.reshape(3, 1, 4))], 11, axes=[-4])
case('squeeze13_all', 'Squeeze', [('x', x)], [('y', x.reshape(3, 4))], 13)
case('unsqueeze11', 'Unsqueeze', [('x', x)], [('y', x.reshape(1, 1, 3, 1, 4, 1))], 11, axes=[-1, 0])
x8 = rng.integers(-128, 127, (2, 3, 4), dtype=np.int8)
case('reshape_i8', 'Reshape', [('x', x8), ('s', i64(-1, 0, 2))], [('y', x8.reshape(4, 3, 2))], 13)

# ---- Concat 8-bit, several inputs, middle axis
xs = [rng.integers(0, 255, (2, k, 3), dtype=np.uint8) for k in (1, 0, 4, 2)]
case('concat_u8', 'Concat', [(f'x{k}', a) for k, a in enumerate(xs)], [('y', np.concatenate(xs, axis=1))], 13, axis=1)

# ---- DepthToSpace / SpaceToDepth int8 bigger
x = rng.integers(-128, 127, (2, 36, 10, 12), dtype=np.int8)
def d2s(x, b, mode):
    n, c, h, w = x.shape
    if mode == 'DCR':
        t = x.reshape(n, b, b, c // b // b, h, w).transpose(0, 3, 4, 1, 5, 2)
    else:
        t = x.reshape(n, c // b // b, b, b, h, w).transpose(0, 1, 4, 2, 5, 3)
    return t.reshape(n, c // b // b, h * b, w * b)
case('d2s_dcr_i8', 'DepthToSpace', [('x', x)], [('y', d2s(x, 3, 'DCR'))], 13, blocksize=3)
case('d2s_crd_i8', 'DepthToSpace', [('x', x)], [('y', d2s(x, 3, 'CRD'))], 13, blocksize=3, mode='CRD')
y = x.reshape(2, 36, 5, 2, 6, 2).transpose(0, 3, 5, 1, 2, 4).reshape(2, 144, 5, 6)
case('s2d_i8', 'SpaceToDepth', [('x', x)], [('y', y)], 13, blocksize=2)

# ---- Resize: 8-bit nearest, uint8 linear, 3-D linear, opset 10, 18 axes, keep_aspect
def ref_resize(x, coeffs, sizes, scales, **kw):
    out = np.zeros(sizes)
    for idx in np.ndindex(*sizes):
        out[idx] = interpolate_nd_with_x(x, x.ndim, scales, list(idx), coeffs, **kw)
    return out
x = rng.integers(-128, 127, (1, 2, 5, 7), dtype=np.int8)
sc = np.array([1, 1, 2.5, 1.5], np.float32)
case('resize_nearest_i8', 'Resize', [('x', x), ('roi', None), ('sc', sc)],
     [('y', interpolate_nd(x, nearest_coeffs, scale_factors=sc).astype(np.int8))], 13, mode='nearest')
xu = rng.integers(0, 255, (1, 3, 6, 5), dtype=np.uint8)
sz = i64(1, 3, 12, 10)  # 2x: dyadic weights, so fp32 and fp64 round alike
ref = interpolate_nd(xu.astype(np.float64), linear_coeffs, output_size=sz)
case('resize_linear_u8', 'Resize', [('x', xu), ('roi', None), ('sc', None), ('sz', sz)],
     [('y', np.clip(np.rint(ref), 0, 255).astype(np.uint8))], 13, mode='linear')
x3 = rng.standard_normal((1, 4, 5, 6)).astype(np.float32)
sc = np.array([1, 2, 0.6, 1.5], np.float32)
case('resize_linear_3d', 'Resize', [('x', x3), ('roi', None), ('sc', sc)],
     [('y', interpolate_nd(x3, linear_coeffs, scale_factors=sc).astype(np.float32))], 13, mode='linear')
case('resize_cubic_3d_align', 'Resize', [('x', x3), ('roi', None), ('sc', sc)],
     [('y', interpolate_nd(x3, cubic_coeffs, scale_factors=sc, coordinate_transformation_mode='align_corners').astype(np.float32))], 13,
     mode='cubic', coordinate_transformation_mode='align_corners')
x = rng.standard_normal((1, 1, 4, 4)).astype(np.float32)
sc = np.array([1, 1, 2, 3], np.float32)
case('resize10_nearest', 'Resize', [('x', x), ('sc', sc)],
     [('y', interpolate_nd(x, lambda r: nearest_coeffs(r, 'floor'), scale_factors=sc, coordinate_transformation_mode='asymmetric').astype(np.float32))], 10, mode='nearest')
sc = np.array([1, 1, 0.5, 0.75], np.float32)
case('resize10_linear_down', 'Resize', [('x', x), ('sc', sc)],
     [('y', interpolate_nd(x, linear_coeffs, scale_factors=sc, coordinate_transformation_mode='asymmetric').astype(np.float32))], 10, mode='linear')
case('upsample7', 'Upsample', [('x', x)],
     [('y', interpolate_nd(x, lambda r: nearest_coeffs(r, 'floor'), scale_factors=np.array([1, 1, 2, 3.]), coordinate_transformation_mode='asymmetric').astype(np.float32))], 7, mode='nearest', scales=[1., 1., 2., 3.])
case('upsample9_linear', 'Upsample', [('x', x), ('sc', np.array([1, 1, 2, 2], np.float32))],
     [('y', interpolate_nd(x, linear_coeffs, scale_factors=np.array([1, 1, 2, 2.]), coordinate_transformation_mode='asymmetric').astype(np.float32))], 9, mode='linear')
x = rng.standard_normal((1, 1, 2, 4)).astype(np.float32)
# opset 18: axes + sizes + not_larger: common scale min(3/2, 3/4) = 0.75, out (2, 3)
s = 0.75
case('resize18_axes_not_larger', 'Resize', [('x', x), ('roi', None), ('sc', None), ('sz', i64(3, 3))],
     [('y', ref_resize(x, linear_coeffs, (1, 1, 2, 3), [1, 1, s, s]).astype(np.float32))], 18,
     mode='linear', axes=[2, 3], keep_aspect_ratio_policy='not_larger')
case('resize18_axes_scales', 'Resize', [('x', x), ('roi', None), ('sc', np.array([2, 0.5], np.float32))],
     [('y', interpolate_nd(x, cubic_coeffs, scale_factors=np.array([1, 1, 2, 0.5])).astype(np.float32))], 18,
     mode='cubic', axes=[2, -1])
x = rng.standard_normal((1, 1, 5, 5)).astype(np.float32)
roi = np.array([0, 0, 0.4, 0.6, 1, 1, 1.2, 1.7], np.float32)
case('resize_crop_extrap', 'Resize', [('x', x), ('roi', roi), ('sc', None), ('sz', i64(1, 1, 3, 3))],
     [('y', interpolate_nd(x, linear_coeffs, output_size=i64(1, 1, 3, 3), roi=roi, coordinate_transformation_mode='tf_crop_and_resize', extrapolation_value=10.0).astype(np.float32))], 13,
     mode='linear', coordinate_transformation_mode='tf_crop_and_resize', extrapolation_value=10.0)
case('resize_crop_extrap_nearest', 'Resize', [('x', x), ('roi', roi), ('sc', None), ('sz', i64(1, 1, 4, 3))],
     [('y', interpolate_nd(x, nearest_coeffs, output_size=i64(1, 1, 4, 3), roi=roi, coordinate_transformation_mode='tf_crop_and_resize', extrapolation_value=10.0).astype(np.float32))], 13,
     mode='nearest', coordinate_transformation_mode='tf_crop_and_resize', extrapolation_value=10.0)
xb = rng.standard_normal((1, 16, 64, 64)).astype(np.float32)
yb = np.repeat(np.repeat(xb, 2, axis=2), 2, axis=3)
case('resize_nearest_big', 'Resize', [('x', xb), ('roi', None), ('sc', np.array([1, 1, 2, 2], np.float32))], [('y', yb)], 13, mode='nearest')
# bilinear 2x half_pixel on a big tensor: separable numpy reference
def lin1d(a, axis, out):
    n = a.shape[axis]
    xs = (np.arange(out) + 0.5) * n / out - 0.5
    x0 = np.floor(xs).astype(int); r = xs - x0
    i0 = np.clip(x0, 0, n - 1); i1 = np.clip(x0 + 1, 0, n - 1)
    sh = [1] * a.ndim; sh[axis] = out
    return np.take(a, i0, axis) * (1 - r).reshape(sh) + np.take(a, i1, axis) * r.reshape(sh)
yl = lin1d(lin1d(xb.astype(np.float64), 2, 128), 3, 128).astype(np.float32)
case('resize_linear_big', 'Resize', [('x', xb), ('roi', None), ('sc', np.array([1, 1, 2, 2], np.float32))], [('y', yl)], 13, mode='linear')
print('ok')
