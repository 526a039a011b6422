"""Assertion helpers shared by the cli tests: check() counts every check and
prints each failure as it happens; finish() prints the closing line
'LABEL: N passed, N failed' and returns the exit status."""
import subprocess

_counts = {"checks": 0}
_failures = []


def check(cond, what):
    _counts["checks"] += 1
    if not cond:
        _failures.append(what)
        print("FAIL " + what)


def finish(label):
    print(f"{label}: {_counts['checks'] - len(_failures)} passed, {len(_failures)} failed")
    return 1 if _failures else 0


def run(binary, *args):
    """Runs the onnxq binary with args, capturing text stdout and stderr."""
    return subprocess.run([binary, *args], capture_output=True, text=True)
