// Transformers.js's encode speed inside a Web Worker, for
// bench/wasm_threads.mjs: the peer with onnxruntime-web's own threads
// (`numThreads`, its threaded wasm on a cross-origin isolated page), timed by
// the protocol our builds are timed by (bench/encode_measure.mjs).
import { timeEncoders } from "../encode_measure.mjs";

self.onmessage = async ({ data }) => {
  try {
    const { dist, ort, models, passages, threads } = data;
    const { pipeline, env } = await import(dist);
    env.allowRemoteModels = false;
    env.allowLocalModels = true;
    env.localModelPath = models;
    env.backends.onnx.wasm.wasmPaths = ort;
    env.backends.onnx.wasm.numThreads = threads;
    const extract = await pipeline("feature-extraction", "all-MiniLM-L6-v2", { device: "wasm", dtype: "q8" });
    const embed = (x) => extract(x, { pooling: "mean", normalize: true });
    const texts = (await (await fetch(passages)).text()).split("\n").filter(Boolean).map((l) => JSON.parse(l).text);
    const [figures] = await timeEncoders([{ query: embed, batch: embed }], texts);
    postMessage({ kernel: `Transformers.js ${env.version}, onnxruntime-web wasm`, num_threads: env.backends.onnx.wasm.numThreads, ...figures });
  } catch (e) {
    postMessage({ error: String(e?.stack ?? e) });
  }
};
