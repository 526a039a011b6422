#!/usr/bin/python3
"""`meson install` as a user of the C library would meet it: the build is
installed into a temporary DESTDIR, then

- the tree holds the onnxq tool, liboq static and shared (with its soname
  and its links), every public header byte for byte, onnxq.pc, the man page
  and the Python module;
- each installed header compiles on its own, with nothing on the include
  path but what `pkg-config --cflags onnxq` gives (no source tree);
- the shared library exports exactly the functions and data the headers
  declare (src/export_map.py reads them), nothing internal;
- quantize_example.c, a program outside the tree, builds against the
  installed tree with `pkg-config --cflags --libs onnxq` (and once with
  --static against liboq.a), loads the installed liboq.so, and quantizes the
  bundled example through oq_job_run: its model and HTML report equal those
  of the installed `onnxq quantize`, byte for byte; so do those of the
  installed Python module, imported from the tree's site-packages folder.

usage: test_install.py --build DIR --source DIR --version V --cc "CC ARGS" [--sanitize FLAGS]
"""
import argparse
import glob
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cli"))
from checks import check, finish  # noqa: E402


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def one(pattern, what):
    found = sorted(glob.glob(pattern, recursive=True))
    check(len(found) == 1, "%s: one installed (%s)" % (what, found))
    return found[0] if found else None


def read(path):
    with open(path, "rb") as f:
        return f.read()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--source", required=True)
    ap.add_argument("--version", required=True)
    ap.add_argument("--cc", required=True)
    ap.add_argument("--sanitize", default="")
    a = ap.parse_args()
    cc = shlex.split(a.cc) + (["-fsanitize=" + a.sanitize] if a.sanitize and a.sanitize != "none" else [])
    src = os.path.abspath(a.source)
    sys.path.insert(0, os.path.join(src, "src"))
    import export_map  # the parser that made the shared library's version script

    model = os.path.join(src, "models", "example", "tiny_cnn.onnx")
    data = os.path.join(src, "calibration", "example")
    with tempfile.TemporaryDirectory(prefix="oq-install-") as tmp:
        dest = os.path.join(tmp, "dest")
        p = run(["meson", "install", "-C", a.build, "--destdir", dest, "--no-rebuild", "--quiet"])
        check(p.returncode == 0, "meson install --destdir: " + p.stdout[-500:] + p.stderr[-500:])
        if p.returncode:
            return finish("install")

        # ---- the tree
        onnxq = one(dest + "/**/bin/onnxq", "bin/onnxq")
        pc = one(dest + "/**/pkgconfig/onnxq.pc", "onnxq.pc")
        static = one(dest + "/**/liboq.a", "liboq.a")
        shared = one(dest + "/**/liboq.so", "liboq.so")
        man = one(dest + "/**/man1/onnxq.1", "man1/onnxq.1")
        module = one(dest + "/**/onnxq/__init__.py", "the Python module")
        if not (onnxq and pc and static and shared and man and module):
            return finish("install")
        libdir = os.path.dirname(shared)
        major_minor = ".".join(a.version.split(".")[:2])
        soname = "liboq.so." + major_minor
        check(os.readlink(shared) == soname and os.readlink(os.path.join(libdir, soname)) == "liboq.so." + a.version,
              "liboq.so -> %s -> liboq.so.%s" % (soname, a.version))
        p = run(["readelf", "-d", shared])
        check("Library soname: [%s]" % soname in p.stdout, "the shared library's soname is %s" % soname)
        headers = sorted(glob.glob(os.path.join(src, "include", "onnxq", "*.h")))
        inc = one(dest + "/**/include/onnxq", "include/onnxq")
        installed = sorted(os.listdir(inc)) if inc else []
        check(installed == [os.path.basename(h) for h in headers], "every public header installed (%s)" % installed)
        check(all(read(h) == read(os.path.join(inc, os.path.basename(h))) for h in headers if inc),
              "installed headers equal the sources")
        check(read(man) == read(os.path.join(src, "docs", "onnxq.1")), "the man page installed")

        env = dict(os.environ, PKG_CONFIG_PATH=os.path.dirname(pc), PKG_CONFIG_SYSROOT_DIR=dest)
        pkg = {}
        for key, flags in (("cflags", ["--cflags"]), ("libs", ["--libs"]), ("static", ["--libs", "--static"])):
            p = run(["pkg-config", *flags, "onnxq"], env=env)
            check(p.returncode == 0, "pkg-config %s onnxq: %s" % (" ".join(flags), p.stderr))
            pkg[key] = shlex.split(p.stdout)
        check(any(f.startswith("-I" + dest) for f in pkg["cflags"]) and "-loq" in pkg["libs"],
              "pkg-config points into the installed tree: %s %s" % (pkg["cflags"], pkg["libs"]))

        # ---- headers on their own
        work = os.path.join(tmp, "work")
        os.makedirs(work)
        for h in installed:
            c = os.path.join(work, "h.c")
            with open(c, "w") as f:
                f.write("#include <onnxq/%s>\n#include <onnxq/%s>\nint main(void) { return 0; }\n" % (h, h))
            p = run([*cc, "-std=c11", "-Wall", "-Wextra", "-Wpedantic", "-Werror", "-fsyntax-only",
                     *pkg["cflags"], c], cwd=work)
            check(p.returncode == 0, "<onnxq/%s> compiles on its own (twice): %s" % (h, p.stderr.strip()[:300]))

        # ---- what the shared library exports
        declared = set()
        for h in headers:
            declared.update(export_map.exported(read(h).decode()))
        p = run(["nm", "-D", "--defined-only", shared])
        exported = {parts[2] for parts in (line.split() for line in p.stdout.splitlines())
                    if len(parts) == 3 and parts[1] in "TDBRV"}
        exported -= {"_init", "_fini"}
        check(exported == declared, "liboq.so exports what the headers declare: %d symbols; not declared %s, "
              "declared but missing %s" % (len(exported), sorted(exported - declared)[:8],
                                           sorted(declared - exported)[:8]))

        # ---- a program built against the installed tree
        prog = os.path.join(src, "tests", "install", "quantize_example.c")
        warn = ["-std=c11", "-Wall", "-Wextra", "-Werror"]
        shared_exe, static_exe = os.path.join(work, "quantize_shared"), os.path.join(work, "quantize_static")
        p = run([*cc, *warn, prog, *pkg["cflags"], *pkg["libs"], "-o", shared_exe], cwd=work)
        check(p.returncode == 0, "cc quantize_example.c $(pkg-config --cflags --libs onnxq): " + p.stderr[-600:])
        static_libs = ["-l:liboq.a" if f == "-loq" else f for f in pkg["static"]]
        p2 = run([*cc, *warn, prog, *pkg["cflags"], *static_libs, "-o", static_exe], cwd=work)
        check(p2.returncode == 0, "cc quantize_example.c with --static against liboq.a: " + p2.stderr[-600:])
        if p.returncode or p2.returncode:
            return finish("install")
        run_env = dict(os.environ, LD_LIBRARY_PATH=libdir)
        p = run([shared_exe], env=dict(run_env, LD_TRACE_LOADED_OBJECTS="1"))
        loaded = re.findall(r"liboq\.so\S* => (\S+)", p.stdout)
        check(loaded and os.path.realpath(loaded[0]).startswith(os.path.realpath(dest)),
              "the program loads the installed liboq.so (%s)" % loaded)
        check("liboq.so" not in run([static_exe], env=dict(run_env, LD_TRACE_LOADED_OBJECTS="1")).stdout,
              "the static build does not load liboq.so")

        out_model, out_page = os.path.join(tmp, "q.onnx"), os.path.join(tmp, "q.html")
        results = {}
        for name, cmd in (("onnxq quantize", [onnxq, "quantize", model, "--data", data, "-o", out_model,
                                              "--html", out_page, "-q"]),
                          ("shared program", [shared_exe, model, data, out_model, out_page, a.version]),
                          ("static program", [static_exe, model, data, out_model, out_page, a.version])):
            p = run(cmd, env=run_env)
            check(p.returncode == 0, "%s runs: %s" % (name, p.stderr.strip()[-400:]))
            results[name] = (read(out_model), read(out_page)) if p.returncode == 0 else (None, None)
            for f in (out_model, out_page):
                if os.path.exists(f):
                    os.remove(f)
        # ---- the installed Python module, finding the installed library by its name
        site = os.path.dirname(os.path.dirname(module))
        script = ("import sys, onnxq\n"
                  "assert onnxq.__file__.startswith(sys.argv[1]), onnxq.__file__\n"
                  "onnxq.quantize(sys.argv[2], sys.argv[4], data=sys.argv[3], html=sys.argv[5])\n"
                  "print(onnxq.version())\n")
        py_env = dict(run_env, PYTHONPATH=site, PYTHONDONTWRITEBYTECODE="1")
        py_env.pop("ONNXQ_LIBRARY", None)
        if "address" in a.sanitize:  # the sanitizer's runtime must come first in a plain python
            py_env["LD_PRELOAD"] = run([*shlex.split(a.cc), "-print-file-name=libasan.so"]).stdout.strip()
            py_env["ASAN_OPTIONS"] = "detect_leaks=0:abort_on_error=1"
        p = run(["/usr/bin/python3", "-c", script, dest, model, data, out_model, out_page], env=py_env)
        check(p.returncode == 0 and p.stdout.strip() == a.version,
              "the installed module imports from the tree and quantizes: %s" % (p.stdout + p.stderr).strip()[-400:])
        results["python module"] = (read(out_model), read(out_page)) if p.returncode == 0 else (None, None)

        cli = results["onnxq quantize"]
        for name in ("shared program", "static program", "python module"):
            check(cli[0] is not None and results[name][0] == cli[0], "%s: the model equals onnxq quantize's" % name)
            check(cli[1] is not None and results[name][1] == cli[1], "%s: the HTML report equals onnxq's" % name)
    return finish("install")


if __name__ == "__main__":
    sys.exit(main())
