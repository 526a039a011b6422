'use strict';
// ort_latency.js MODEL IN_DIR RUNS
//
// Times MODEL in ONNX Runtime (CPU provider, default graph optimizations, one
// thread) on IN_DIR/input_K.npy: one warm-up run, then RUNS timed runs. Prints
// one JSON line {"median_ms", "min_ms", "runs"}. Informational only: the zoo
// suite reports these numbers and never asserts on them.

const path = require('path');
const npy = require('../ort/npy');

async function main(argv) {
  if (argv.length !== 3) {
    process.stderr.write('usage: node ort_latency.js MODEL IN_DIR RUNS\n');
    process.exit(2);
  }
  const [modelPath, inDir, runsArg] = argv;
  const runs = Math.max(1, parseInt(runsArg, 10) || 1);
  const ort = require(path.join(__dirname, '..', 'node_modules', 'onnxruntime-node'));
  const session = await ort.InferenceSession.create(modelPath, {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
  });
  const feeds = {};
  session.inputNames.forEach((name, k) => {
    const t = npy.load(path.join(inDir, `input_${k}.npy`));
    feeds[name] = new ort.Tensor(t.dtype, t.data, t.shape);
  });
  await session.run(feeds);
  const ms = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    await session.run(feeds);
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  ms.sort((a, b) => a - b);
  const median = runs % 2 ? ms[(runs - 1) / 2] : (ms[runs / 2 - 1] + ms[runs / 2]) / 2;
  process.stdout.write(JSON.stringify({ median_ms: median, min_ms: ms[0], runs }) + '\n');
}

main(process.argv.slice(2)).catch((e) => {
  process.stderr.write(`ort_latency: error: ${e.message}\n`);
  process.exit(1);
});
