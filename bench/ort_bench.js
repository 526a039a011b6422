'use strict';
// ort_bench.js MODEL INPUT.npy THREADS RUNS
// ort_bench.js -
//
// Times ONNX Runtime (onnxruntime-node from tests/node_modules, CPU provider,
// default graph optimizations "all", THREADS intra-op threads, one inter-op
// thread) on one input fed to the model's first input: one warm-up run, then
// RUNS timed runs. Prints one JSON line {median_ms, min_ms, cpu_ms (median
// CPU time of the process per run), runs, threads, peak_rss_mb}. With "-" it
// only loads the runtime and prints its peak RSS (the baseline of node + ORT
// before any model).

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
  const cpu = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    const c0 = process.cpuUsage();
    await session.run(feeds);
    const c = process.cpuUsage(c0);
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
    cpu.push((c.user + c.system) / 1e3);
  }
  const median = (v) => {
    v.sort((a, b) => a - b);
    const mid = v.length >> 1;
    return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
  };
  const med = median(ms);
  console.log(JSON.stringify({median_ms: med, min_ms: ms[0], cpu_ms: median(cpu), runs, threads,
    peak_rss_mb: peakMb()}));
}

main(process.argv.slice(2)).catch((e) => {
  process.stderr.write(`ort_bench.js: ${e.message}\n`);
  process.exit(1);
});
