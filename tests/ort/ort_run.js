'use strict';
// ort_run.js MODEL IN_DIR OUT_DIR [LEVEL]
//
// Runs MODEL once with ONNX Runtime (CPU execution provider, graph
// optimizations at LEVEL: all (the default, what users get), extended, basic
// or disabled; without LEVEL, the environment variable ORT_GRAPH_OPT, else
// all) on IN_DIR/input_K.npy (K in graph-input order) and writes
// OUT_DIR/output_K.npy in graph-output order. This is the reference the onnxq
// tests compare against. Exit status: 0 ok, 1 failure, 2 usage.

const fs = require('fs');
const path = require('path');
const npy = require('./npy');

function usage() {
  process.stderr.write('usage: node ort_run.js MODEL IN_DIR OUT_DIR [all|extended|basic|disabled]\n');
  process.exit(2);
}

async function main(argv) {
  if (argv.length !== 3 && argv.length !== 4) usage();
  const [modelPath, inDir, outDir] = argv;
  const level = argv[3] || process.env.ORT_GRAPH_OPT || 'all';
  if (!['all', 'extended', 'basic', 'disabled'].includes(level)) usage();
  let ort;
  try {
    ort = require('onnxruntime-node');
  } catch (e) {
    throw new Error(`onnxruntime-node is not installed (run 'npm ci --ignore-scripts' in tests/): ${e.message}`);
  }
  const session = await ort.InferenceSession.create(modelPath, {
    executionProviders: ['cpu'],
    graphOptimizationLevel: level,
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
  });
  const feeds = {};
  session.inputNames.forEach((name, k) => {
    const file = path.join(inDir, `input_${k}.npy`);
    if (!fs.existsSync(file)) throw new Error(`${file}: missing (model input ${k} is '${name}')`);
    const t = npy.load(file);
    feeds[name] = new ort.Tensor(t.dtype, t.data, t.shape);
  });
  const extra = path.join(inDir, `input_${session.inputNames.length}.npy`);
  if (fs.existsSync(extra)) throw new Error(`${extra}: the model has only ${session.inputNames.length} inputs`);
  const results = await session.run(feeds);
  fs.mkdirSync(outDir, { recursive: true });
  session.outputNames.forEach((name, k) => {
    const r = results[name];
    npy.save(path.join(outDir, `output_${k}.npy`), { dtype: r.type, shape: r.dims, data: r.data });
  });
}

main(process.argv.slice(2)).catch((e) => {
  process.stderr.write(`ort_run: error: ${e.message}\n`);
  process.exit(1);
});
