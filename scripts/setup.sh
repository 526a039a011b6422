#!/usr/bin/env bash
# setup.sh: installs what onnxq needs to build and test on Debian 12 (bookworm),
# from Debian's own repositories. Runs apt-get as root, or through sudo.
# Node.js and npm are installed only when missing, so a newer node already on
# the machine (e.g. from NodeSource, which bundles npm) is left alone.
set -euo pipefail

pkgs=(
  meson ninja-build pkg-config                      # build
  libprotobuf-c-dev protobuf-c-compiler libcjson-dev # onnx_io (protobuf), reports (JSON)
  libpng-dev libjpeg-dev                             # image calibration data
  python3-onnx python3-numpy libonnx-testdata        # test oracles and ONNX's operator test data
  python3-pil fonts-dejavu-core fonts-liberation fonts-noto-core  # rendered text for the real-model tests
  python3-torch python3-sklearn                      # zoo: models trained here, PyTorch's INT8 as the peer
  clang libclang-rt-14-dev                           # clang build; libFuzzer and sanitizer runtimes (fuzz build)
  time                                               # GNU time: peak memory in tests and benchmarks
  chromium                                           # the HTML reports opened in a real browser (tests/browser)
)
command -v node >/dev/null 2>&1 || pkgs+=(nodejs)    # ONNX Runtime reference (tests/ort)
command -v npm >/dev/null 2>&1 || pkgs+=(npm)

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "setup.sh: run as root or install sudo" >&2; exit 1; }
  sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${pkgs[@]}"
echo "setup.sh: installed or already present: ${pkgs[*]}"
echo "setup.sh: node $(node --version), npm $(npm --version 2>/dev/null)"
