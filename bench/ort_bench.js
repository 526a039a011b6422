'use strict';
// ort_bench.js MODEL INPUT.npy THREADS RUNS
// ort_bench.js -
//
// Times ONNX Runtime (onnxruntime-node from tests/node_modules, CPU provider,
// default graph optimizations "all", THREADS intra-op threads, one inter-op
// thread) on one input fed to the model's first input: one warm-up run, then
// RUNS timed runs. Prints one JSON line {median_ms, min_ms, runs, threads,
// peak_rss_mb}. With "-" it only loads the runtime and prints its peak RSS
// (the baseline of node + ORT before any model).

const path = require('path');
const tests = path.join(__dirname, '..', 'tests');
const ort = require(path.join(tests, 'node_modules', 'onnxruntime-node'));
const npy = require(path.join(tests, 'ort', 'npy'));

function peakMb() {
  return process.resourceUsage().maxRSS / 1024; // maxRSS is in KiB
}

async function main(argv) {
  if (argv[0] === '-') {
    console.log(JSON.stringify({peak_rss_mb: peakMb()}));
    return;
  }
  if (argv.length < 4) throw new Error('usage: node ort_bench.js MODEL INPUT.npy THREADS RUNS');
  const [model, input, threads, runs] = [argv[0], argv[1], Number(argv[2]), Number(argv[3])];
  const session = await ort.InferenceSession.create(model, {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
  });
  const t = npy.load(input);
  const feeds = {[session.inputNames[0]]: new ort.Tensor(t.dtype, t.data, t.shape)};
  await session.run(feeds); // warm-up
  const ms = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    await session.run(feeds);
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  ms.sort((a, b) => a - b);
  const mid = ms.length >> 1;
  const median = ms.length % 2 ? ms[mid] : (ms[mid - 1] + ms[mid]) / 2;
  console.log(JSON.stringify({median_ms: median, min_ms: ms[0], runs, threads, peak_rss_mb: peakMb()}));
}

main(process.argv.slice(2)).catch((e) => {
  process.stderr.write(`ort_bench.js: ${e.message}\n`);
  process.exit(1);
});
