'use strict';
// npy.js: numpy .npy files (format 1.0, 2.0 and 3.0) to and from plain
// {dtype, shape, data} records, where dtype is an ONNX Runtime tensor type
// name and data a typed array. Little-endian, C-order only; the dtypes are the
// ones the onnxq tests exchange with ONNX Runtime.

const fs = require('fs');

// numpy descr (without byte-order mark) <-> ORT type name and typed array.
const TYPES = [
  { descr: 'f4', ort: 'float32', array: Float32Array },
  { descr: 'f8', ort: 'float64', array: Float64Array },
  { descr: 'i8', ort: 'int64', array: BigInt64Array },
  { descr: 'i4', ort: 'int32', array: Int32Array },
  { descr: 'u1', ort: 'uint8', array: Uint8Array },
  { descr: 'i1', ort: 'int8', array: Int8Array },
  { descr: 'b1', ort: 'bool', array: Uint8Array },
];

const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // "\x93NUMPY"

function typeByDescr(descr, path) {
  const order = descr[0];
  const key = descr.slice(1);
  const t = TYPES.find((x) => x.descr === key);
  if (!t) throw new Error(`${path}: unsupported npy dtype '${descr}'`);
  const single = t.array.BYTES_PER_ELEMENT === 1;
  if (order === '>' && !single) throw new Error(`${path}: big-endian npy data is not supported`);
  if (!['<', '|', '='].includes(order) && !(order === '>' && single))
    throw new Error(`${path}: bad npy byte order in '${descr}'`);
  return t;
}

// Pulls one `'key': value` entry out of the header dict (numpy writes a
// Python literal; the three keys it always writes are all we need).
function headerField(header, key, path) {
  const m = header.match(new RegExp(`['"]${key}['"]\\s*:\\s*('[^']*'|"[^"]*"|True|False|\\([^)]*\\))`));
  if (!m) throw new Error(`${path}: npy header has no '${key}'`);
  return m[1];
}

// Decodes the .npy image in buf. Returns {dtype, shape (array of numbers), data}.
function parse(buf, path = '<buffer>') {
  if (buf.length < 10 || !buf.subarray(0, 6).equals(MAGIC)) throw new Error(`${path}: not an npy file`);
  const major = buf[6];
  let hlen;
  let off;
  if (major === 1) {
    hlen = buf.readUInt16LE(8);
    off = 10;
  } else if (major === 2 || major === 3) {
    if (buf.length < 12) throw new Error(`${path}: truncated npy header`);
    hlen = buf.readUInt32LE(8);
    off = 12;
  } else {
    throw new Error(`${path}: npy format version ${major} is not supported`);
  }
  if (off + hlen > buf.length) throw new Error(`${path}: truncated npy header`);
  const header = buf.toString(major === 3 ? 'utf8' : 'latin1', off, off + hlen);
  const descr = headerField(header, 'descr', path).slice(1, -1);
  if (headerField(header, 'fortran_order', path) !== 'False')
    throw new Error(`${path}: Fortran-order npy arrays are not supported`);
  const shapeText = headerField(header, 'shape', path).slice(1, -1).trim();
  const shape = shapeText === '' ? [] : shapeText.split(',').filter((s) => s.trim() !== '').map((s) => {
    const n = Number(s.trim().replace(/L$/, ''));
    if (!Number.isInteger(n) || n < 0) throw new Error(`${path}: bad npy shape '(${shapeText})'`);
    return n;
  });
  const t = typeByDescr(descr, path);
  const count = shape.reduce((a, b) => a * b, 1);
  const start = off + hlen;
  const nbytes = count * t.array.BYTES_PER_ELEMENT;
  if (buf.length - start !== nbytes)
    throw new Error(`${path}: npy data is ${buf.length - start} bytes, shape needs ${nbytes}`);
  // Copy into a fresh, aligned buffer so any element size views it safely.
  const raw = new ArrayBuffer(nbytes);
  new Uint8Array(raw).set(buf.subarray(start, start + nbytes));
  let data = new t.array(raw);
  if (t.ort === 'bool') data = data.map((v) => (v ? 1 : 0));
  return { dtype: t.ort, shape, data };
}

// Encodes {dtype, shape, data} as a version 1.0 .npy image (2.0 if the header is long).
function serialize(tensor) {
  const t = TYPES.find((x) => x.ort === tensor.dtype);
  if (!t) throw new Error(`cannot write dtype '${tensor.dtype}' as npy`);
  const order = t.array.BYTES_PER_ELEMENT === 1 ? '|' : '<';
  const dims = tensor.shape.map((d) => String(Number(d)));
  const shapeText = dims.length === 1 ? `(${dims[0]},)` : `(${dims.join(', ')})`;
  let dict = `{'descr': '${order}${t.descr}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  let major = 1;
  let pre = 10;
  if (dict.length + 1 + pre > 0xffff) {
    major = 2;
    pre = 12;
  }
  // Pad with spaces so the data starts on a 64-byte boundary; end with '\n'.
  const pad = (64 - ((pre + dict.length + 1) % 64)) % 64;
  dict = dict + ' '.repeat(pad) + '\n';
  const head = Buffer.alloc(pre);
  MAGIC.copy(head, 0);
  head[6] = major;
  head[7] = 0;
  if (major === 1) head.writeUInt16LE(dict.length, 8);
  else head.writeUInt32LE(dict.length, 8);
  const data = tensor.data;
  const body = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.concat([head, Buffer.from(dict, 'latin1'), body]);
}

function load(path) {
  return parse(fs.readFileSync(path), path);
}

function save(path, tensor) {
  fs.writeFileSync(path, serialize(tensor));
}

module.exports = { parse, serialize, load, save, TYPES };
