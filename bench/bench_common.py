"""What the Python benchmarks share: where to find a built onnxq."""
import os

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# build-bench (a release build kept for benchmarks) first, then the quickstart's build,
# then the scratch build folders earlier benchmarks looked in
BUILD_DIRS = ("build-bench", "build", "build-perf", "build-lead", "build-q")


def find_onnxq():
    """The first onnxq binary found in BUILD_DIRS, or None."""
    for d in BUILD_DIRS:
        p = os.path.join(REPO, d, "src", "onnxq")
        if os.access(p, os.X_OK):
            return p
    return None
