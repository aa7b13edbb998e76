// Encode speed of the threaded wasm build against the one-thread simd128
// build, in headless Chromium on a cross-origin isolated page, each build in
// its own Web Worker, taking turns ROUNDS times (the machine's speed drifts).
// Needs pkg/ with the threaded build (scripts/build-wasm.sh).
//   node bench/wasm_threads.mjs MODEL.gguf PASSAGES.jsonl [THREADS] [ROUNDS]
// MODEL and PASSAGES must lie inside the repository (the page is served from
// there). Prints one JSON line per build and round, then the medians, and
// checks that both builds give the same vectors bit for bit.
// Where target/h2h/tjs-models/ exists (bench/browser/run.sh writes it: the
// int8 ONNX of the same model), the peer runs too, in the same turns:
// Transformers.js with onnxruntime-web's threads (THREADS of them) and with 1.
import { existsSync } from "node:fs";
import { relative, resolve, sep } from "node:path";

const [modelPath, passagesPath, threadsArg = "2", roundsArg = "3"] = process.argv.slice(2);
if (!passagesPath) {
  console.error("usage: node bench/wasm_threads.mjs MODEL.gguf PASSAGES.jsonl [THREADS] [ROUNDS]");
  process.exit(2);
}
const { launch, root, serveFiles } = await import("../tests/browser/harness.mjs");
if (!existsSync(resolve(root, "pkg/ernie_search_threads.js"))) {
  console.error("wasm_threads: pkg/ernie_search_threads.js is missing: scripts/build-wasm.sh builds it where Debian's rustc-web toolchain is installed (scripts/setup.sh --browser)");
  process.exit(1);
}
const url = (p) => {
  const rel = relative(root, resolve(p));
  if (rel.startsWith("..")) throw new Error(`${p} is outside the repository`);
  return "/" + rel.split(sep).join("/");
};
const tjsModels = resolve(root, "target/h2h/tjs-models");
const peer = existsSync(resolve(tjsModels, "all-MiniLM-L6-v2/onnx/model_quantized.onnx"));
if (!peer) console.error("wasm_threads: no target/h2h/tjs-models (bench/browser/run.sh writes it): Transformers.js is not measured");
const isolated = { "cross-origin-opener-policy": "same-origin", "cross-origin-embedder-policy": "require-corp" };
const server = await serveFiles({ mount: (path) => [[root, path]], headers: () => isolated });
const browser = await launch(process.env.CHROMIUM ?? "/usr/bin/chromium", { profile: "threads-bench" });
try {
  const page = await browser.context.newPage();
  await page.goto(`http://127.0.0.1:${server.address().port}/bench/encode.html`);
  const runs = await page.evaluate(
    async ([model, passages, threads, rounds, peer, tjsModels]) => {
      const inWorker = (script, message) =>
        new Promise((ok) => {
          const w = new Worker(script, { type: "module" });
          w.onmessage = ({ data }) => {
            w.terminate();
            ok(data);
          };
          w.postMessage(message);
        });
      const ours = (glue, n) => () => inWorker("/bench/threads/worker.js", { glue, model, passages, threads: n });
      const modules = new URL("/bench/browser/node_modules/", location.href).href;
      const tjs = (n) => () =>
        inWorker("/bench/threads/tjs_worker.js", { dist: `${modules}@huggingface/transformers/dist/transformers.min.js`, ort: `${modules}onnxruntime-web/dist/`, models: tjsModels, passages, threads: n });
      const builds = [["simd128", ours("/pkg/ernie_search.js", 0)], ["threads", ours("/pkg/ernie_search_threads.js", threads)]];
      if (peer) builds.push(["tjs-1", tjs(1)], [`tjs-${threads}`, tjs(threads)]);
      const out = [];
      for (let r = 0; r < rounds; r++) {
        for (const [build, run] of r % 2 ? builds.slice().reverse() : builds) out.push({ build, round: r + 1, ...(await run()) });
      }
      return { isolated: self.crossOriginIsolated, cores: navigator.hardwareConcurrency, out };
    },
    [url(modelPath), url(passagesPath), Number(threadsArg), Number(roundsArg), peer, url(tjsModels) + "/"],
  );
  if (!runs.isolated) throw new Error("the page is not cross-origin isolated");
  const failed = runs.out.find((r) => r.error);
  if (failed) throw new Error(`${failed.build}: ${failed.error}`);
  for (const { check, ...r } of runs.out) console.log(JSON.stringify({ where: `chromium, ${runs.cores} cores`, ...r }));
  const median = (xs) => xs.slice().sort((a, b) => a - b)[xs.length >> 1];
  const of = (b, k) => median(runs.out.filter((r) => r.build === b).map((r) => r[k]));
  const [s, t] = [runs.out.find((r) => r.build === "simd128").check, runs.out.find((r) => r.build === "threads").check];
  const same = s.length === t.length && s.every((x, i) => Object.is(x, t[i]));
  const names = [...new Set(runs.out.map((r) => r.build))];
  // `a`'s median over `b`'s, for the query time and for passages/s.
  const ratios = (a, b) => ({ query: +(of(a, "query_ms_median") / of(b, "query_ms_median")).toFixed(2), passages: +(of(a, "passages_per_s") / of(b, "passages_per_s")).toFixed(2) });
  const summary = {
    query_ms: Object.fromEntries(names.map((b) => [b, of(b, "query_ms_median")])),
    passages_per_s: Object.fromEntries(names.map((b) => [b, of(b, "passages_per_s")])),
    // Speed-ups of the threaded build: 1-thread query time over its own, its passages/s over 1-thread's.
    speedup: { query: ratios("simd128", "threads").query, passages: ratios("threads", "simd128").passages },
    same_vectors: same,
  };
  if (peer) {
    // Ours over the peer's, each with the same threads (medians of the rounds).
    summary.vs_transformers_js = { one_thread: ratios("simd128", "tjs-1"), [`${threadsArg}_threads`]: ratios("threads", `tjs-${threadsArg}`) };
  }
  console.log(JSON.stringify(summary));
  if (!same) process.exitCode = 1;
} finally {
  await browser.close();
  server.close();
}
