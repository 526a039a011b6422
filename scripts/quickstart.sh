#!/usr/bin/env bash
# quickstart.sh: from a fresh clone on Debian 12 to onnxq working on the
# bundled example: installs the packages (scripts/setup.sh, via sudo unless
# root), builds into build/, then runs `onnxq inspect` and `onnxq run` on
# models/example/tiny_cnn.onnx (an 8x8 digit classifier) with the bundled
# samples in calibration/example, printing each prediction next to its label,
# and quantizes it to INT8 on those samples (model, JSON and HTML reports in
# build/example-out/).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
[ -f build/build.ninja ] || meson setup build
ninja -C build -j "$(nproc)"

onnxq=build/src/onnxq
model=models/example/tiny_cnn.onnx
out=build/example-out
mkdir -p "$out"

echo; echo "\$ $onnxq inspect $model"
"$onnxq" inspect "$model"

echo; echo "\$ $onnxq run $model --data calibration/example/sample_000"
"$onnxq" run "$model" --data calibration/example/sample_000

echo; echo "onnxq run on each bundled sample (-o $out/SAMPLE), predicted digit vs label:"
while read -r sample label; do
  "$onnxq" run "$model" --data "calibration/example/$sample" -o "$out/$sample" --npy
  /usr/bin/python3 -c 'import sys, numpy as np
logits = np.load(sys.argv[1])[0]
print(f"  {sys.argv[2]}: predicted {logits.argmax()}, label {sys.argv[3]}")' "$out/$sample/output_0.npy" "$sample" "$label"
done < calibration/example/labels.txt

echo; echo "\$ $onnxq run $model --data calibration/example/sample_000 --bench 100"
"$onnxq" run "$model" --data calibration/example/sample_000 --bench 100

echo; echo "\$ $onnxq quantize $model --data calibration/example -o $out/tiny_cnn.int8.onnx --labels calibration/example/labels.txt --report $out/report.json --html $out/report.html"
"$onnxq" quantize "$model" --data calibration/example -o "$out/tiny_cnn.int8.onnx" \
  --labels calibration/example/labels.txt --report "$out/report.json" --html "$out/report.html"
