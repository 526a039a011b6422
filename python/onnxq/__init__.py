"""onnxq: post-training INT8 quantization of ONNX models, from Python.

    import onnxq

    def samples():                      # calibration data: dicts of arrays
        for image in images:
            yield {"input": preprocess(image)}   # shaped as the model input, e.g. [1, 3, 224, 224]

    report = onnxq.quantize("model.onnx", "model.int8.onnx", data=samples(),
                            format="qdq", per_tensor=False, html="report.html")
    print(report["evaluation"]["outputs"][0]["sqnr_db"])

The module calls the shared library liboq through ctypes (no compiled
extension): the same pipeline as `onnxq quantize`, so the same model, samples
and options give the same bytes. It finds the library through the
environment variable ONNXQ_LIBRARY (a path), else where `meson install` put
it, else by its name on the loader's path. numpy is needed only to feed
arrays.
"""
import ctypes
import json
import os
import warnings

__all__ = ["quantize", "version", "OnnxqError", "OnnxqWarning"]

# oq_dtype values (ONNX's TensorProto.DataType numbers) of the numpy types liboq reads
_DTYPES = {"float32": 1, "uint8": 2, "int8": 3, "uint16": 4, "int16": 5, "int32": 6, "int64": 7, "bool": 9,
           "float16": 10, "float64": 11, "uint32": 12, "uint64": 13}


class OnnxqError(Exception):
    """A failure liboq reported: .status is its kind ("invalid input", ...), the message its error line."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


class OnnxqWarning(UserWarning):
    """A warning of the run (NaN values in the data, nodes left in float for want of a range, ...)."""


class _Err(ctypes.Structure):  # oq_err in <onnxq/oq_err.h>
    _fields_ = [("status", ctypes.c_int), ("msg", ctypes.c_char * 512)]


_lib = None


def _library_path():
    path = os.environ.get("ONNXQ_LIBRARY")
    if path:
        return path
    try:
        from . import _install  # written by meson at install time
    except ImportError:
        return "liboq.so"
    return _install.LIBRARY if os.path.exists(_install.LIBRARY) else _install.SONAME


def _library():
    global _lib
    if _lib is not None:
        return _lib
    lib = ctypes.CDLL(_library_path())
    vp, err, i64p = ctypes.c_void_p, ctypes.POINTER(_Err), ctypes.POINTER(ctypes.c_int64)
    for name, restype, argtypes in (
            ("oq_version", ctypes.c_char_p, []),
            ("oq_status_name", ctypes.c_char_p, [ctypes.c_int]),
            ("oq_free", None, [vp]),
            ("oq_samples_create", ctypes.c_int, [ctypes.POINTER(vp), err]),
            ("oq_samples_destroy", None, [vp]),
            ("oq_samples_begin", ctypes.c_int, [vp, err]),
            ("oq_samples_put", ctypes.c_int, [vp, ctypes.c_char_p, ctypes.c_int, ctypes.c_int, i64p, vp, err]),
            ("oq_job_builder_create", ctypes.c_int, [ctypes.POINTER(vp), err]),
            ("oq_job_builder_destroy", None, [vp]),
            ("oq_job_builder_set", ctypes.c_int, [vp, ctypes.c_char_p, ctypes.c_char_p, err]),
            ("oq_job_builder_set_samples", None, [vp, ctypes.c_bool, vp]),
            ("oq_job_builder_run", ctypes.c_int, [vp, ctypes.POINTER(vp), ctypes.POINTER(vp), err])):
        f = getattr(lib, name)
        f.restype, f.argtypes = restype, argtypes
    _lib = lib
    return lib


def version():
    """The version of the liboq in use."""
    return _library().oq_version().decode()


def _check(status, err):
    if status:
        raise OnnxqError(_library().oq_status_name(status).decode(), err.msg.decode("utf-8", "replace"))


def _text(x):
    """x as the bytes liboq takes: paths (str, bytes, os.PathLike) as the file system spells them."""
    return os.fsencode(x) if isinstance(x, (bytes, os.PathLike)) else str(x).encode()


def _is_spec(x):
    return isinstance(x, (str, bytes, os.PathLike))


class _Samples:
    """Samples copied into liboq (oq_samples), from dicts of arrays; close() frees them."""

    def __init__(self):
        err = _Err()
        self.handle = ctypes.c_void_p()
        _check(_library().oq_samples_create(ctypes.byref(self.handle), ctypes.byref(err)), err)

    def add(self, source):
        import numpy as np
        lib, err = _library(), _Err()
        for k, sample in enumerate(source):
            if not hasattr(sample, "items"):
                raise TypeError("sample %d is a %s; expected a dict of input name -> array" % (k, type(sample).__name__))
            _check(lib.oq_samples_begin(self.handle, ctypes.byref(err)), err)
            for name, value in sample.items():
                a = np.asarray(value)
                if a.dtype.name not in _DTYPES:
                    raise TypeError("sample %d: input '%s' is an array of %s, which onnxq cannot feed"
                                    % (k, name, a.dtype))
                a = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("="))
                dims = (ctypes.c_int64 * max(a.ndim, 1))(*a.shape)
                _check(lib.oq_samples_put(self.handle, str(name).encode(), _DTYPES[a.dtype.name], a.ndim, dims,
                                          ctypes.c_void_p(a.ctypes.data), ctypes.byref(err)), err)

    def close(self):
        if self.handle:
            _library().oq_samples_destroy(self.handle)
            self.handle = ctypes.c_void_p()


def _reader_items(reader):
    """The samples of an object with get_next() (ONNX Runtime's CalibrationDataReader), until it returns None."""
    while True:
        sample = reader.get_next()
        if sample is None:
            return
        yield sample


def _option_value(value):
    if isinstance(value, bool):
        return b"true" if value else b"false"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value).encode()
    return _text(value)


def quantize(model, output, data=None, *, eval_data=None, **options):
    """Quantizes the ONNX model at path `model` into `output` and returns the report as a dict.

    data: the calibration samples, as any of
      - an iterable of dicts {input name: numpy array}, each array shaped as
        the model's input (a batch of one: [1, 3, 224, 224]);
      - an object with get_next() returning such dicts and then None (ONNX
        Runtime's CalibrationDataReader);
      - a data spec or a list of them, as `onnxq quantize --data` takes (a
        folder of samples or images, "NAME=FILE.npy").
      Not needed in dynamic mode (mode="dynamic") or with a table (calib=...).
    eval_data: the evaluation samples in the same forms (default: data).
    options: the long options of `onnxq quantize` and `convert`, with "_" for
      "-": mode, format, contrib, per_tensor, activation_type,
      symmetric_activations, op_types, exclude, method, percentile, bins,
      samples, all_tensors, no_prepare, eval_samples, labels, threads, report
      (also write the JSON report), html (the HTML page), calib (a calibration
      table instead of data), the accuracy targets max_drop, min_agreement,
      min_sqnr (with sensitivity: a ranking from `onnxq analyze`; target_output:
      the one graph output min_agreement or min_sqnr reads), and the
      image options.
      Flags take True/False, lists take lists.

    The model and the report files are written together or not at all.
    Raises OnnxqError with liboq's message on any failure, TypeError for an
    argument of the wrong Python type (a sample that is not a dict, an array
    onnxq cannot feed, an unknown keyword); warnings of the run are issued as
    OnnxqWarning.
    """
    lib, err = _library(), _Err()
    builder = ctypes.c_void_p()
    held = []
    _check(lib.oq_job_builder_create(ctypes.byref(builder), ctypes.byref(err)), err)
    try:
        def set_option(name, value):
            _check(lib.oq_job_builder_set(builder, name.encode(), value, ctypes.byref(err)), err)

        set_option("model", _text(model))
        set_option("output", _text(output))
        for key, value in options.items():
            if value is None:
                continue
            if key in ("model", "output", "data", "eval_data"):
                raise TypeError("quantize() got %s as an option" % key)
            set_option(key.replace("_", "-"), _option_value(value))
        for name, source, is_eval in (("data", data, False), ("eval-data", eval_data, True)):
            if source is None:
                continue
            if _is_spec(source) or (isinstance(source, (list, tuple)) and source and all(map(_is_spec, source))):
                for spec in [source] if _is_spec(source) else source:
                    set_option(name, _text(spec))
                continue
            samples = _Samples()
            held.append(samples)
            samples.add(_reader_items(source) if hasattr(source, "get_next") else source)
            lib.oq_job_builder_set_samples(builder, is_eval, samples.handle)
        report, lines = ctypes.c_void_p(), ctypes.c_void_p()
        status = lib.oq_job_builder_run(builder, ctypes.byref(report), ctypes.byref(lines), ctypes.byref(err))
        try:
            for line in (ctypes.string_at(lines).decode("utf-8", "replace").splitlines() if lines else []):
                warnings.warn(line, OnnxqWarning, stacklevel=2)
            _check(status, err)
            return json.loads(ctypes.string_at(report).decode()) if report else None
        finally:
            lib.oq_free(report)
            lib.oq_free(lines)
    finally:
        lib.oq_job_builder_destroy(builder)
        for samples in held:
            samples.close()
