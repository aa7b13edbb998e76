// Encode speed of the wasm Engine in Node's V8 (one thread): the quick loop
// used while tuning the simd128 kernel; the browser figures come from
// bench/browser/run.sh. Needs pkg/ built (scripts/build-wasm.sh).
//   node bench/wasm_encode.mjs PKG_DIR MODEL.gguf PASSAGES.jsonl
// PASSAGES.jsonl: one {"text": ...} per line (bench/run.sh writes
// target/bench/passages.jsonl). Prints the kernel, the median of 60 query
// encodes (12-word windows) and passages/s over one batch of 8.
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";

const [pkgDir, modelPath, passagesPath] = process.argv.slice(2);
if (!passagesPath) {
  console.error("usage: node bench/wasm_encode.mjs PKG_DIR MODEL.gguf PASSAGES.jsonl");
  process.exit(2);
}
const pkg = resolve(pkgDir);
const glue = await import(pathToFileURL(`${pkg}/ernie_search.js`).href);
glue.initSync({ module: readFileSync(`${pkg}/ernie_search_bg.wasm`) });
const engine = glue.Engine.load(readFileSync(modelPath));
const texts = readFileSync(passagesPath, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l).text);
const queries = texts.map((t) => t.split(" ").slice(0, 12).join(" "));
for (const q of queries.slice(0, 5)) engine.embedQuery(q); // warm-up
const ms = queries.slice(0, 60).map((q) => {
  const t = performance.now();
  engine.embedQuery(q);
  return performance.now() - t;
});
ms.sort((a, b) => a - b);
const t = performance.now();
engine.embed(texts.slice(0, 8));
const batchMs = performance.now() - t;
console.log(JSON.stringify({
  kernel: engine.backend().cpu_kernel,
  query_ms_median: +ms[ms.length >> 1].toFixed(2),
  passages_per_s: +(8000 / batchMs).toFixed(2),
}));
