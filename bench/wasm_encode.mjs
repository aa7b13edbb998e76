// Encode speed of the wasm Engine, one thread: in Node's V8 (the quick loop
// used while tuning the wasm kernels) or, with --chromium, in headless
// Chromium (the browser the figures are for; bench/browser/run.sh gives the
// head-to-head with Transformers.js). Needs pkg/ built (scripts/build-wasm.sh).
//   node bench/wasm_encode.mjs PKG_DIR MODEL.gguf PASSAGES.jsonl [BUILD...] [--chromium]
// BUILD: ernie_search (simd128, the default) and/or ernie_search_relaxed
// (Node 20 needs --experimental-wasm-relaxed-simd for it); several take
// turns query by query in one page. PASSAGES.jsonl: one
// {"text": ...} per line (bench/run.sh writes target/bench/passages.jsonl).
// Prints the kernel, the kernels checked bit for bit against the scalar
// reference, the median of 100 query encodes (12-word windows), passages/s
// (median of 3 batches of 16), after a warm-up, and the wasm memory held. PKG_DIR, MODEL and PASSAGES must lie inside the
// repository with --chromium (the page is served from there).
import { readFileSync } from "node:fs";
import { relative, resolve, sep } from "node:path";
import { pathToFileURL } from "node:url";

const args = process.argv.slice(2);
const chromium = args.includes("--chromium");
const [pkgDir, modelPath, passagesPath, ...named] = args.filter((a) => a !== "--chromium");
const builds = named.length ? named : ["ernie_search"];
if (!passagesPath) {
  console.error("usage: node bench/wasm_encode.mjs PKG_DIR MODEL.gguf PASSAGES.jsonl [ernie_search|ernie_search_relaxed] [--chromium]");
  process.exit(2);
}

/**
 * The measurement, run where the engines live (Node, or the page): every
 * build given, taking turns query by query and batch by batch, so that the
 * machine's noise falls on all alike.
 */
async function measure(builds, model, jsonl) {
  const engines = [];
  for (const [name, glue, wasm] of builds) {
    const { memory } = await glue.default({ module_or_path: wasm });
    engines.push({ name, glue, memory, engine: glue.Engine.load(model), ms: [], batchMs: [] });
  }
  const texts = jsonl.split("\n").filter(Boolean).map((l) => JSON.parse(l).text);
  const queries = texts.map((t) => t.split(" ").slice(0, 12).join(" "));
  // Warm-up long enough for V8 to tier the hot loops up from Liftoff.
  for (const e of engines) {
    e.engine.embed(texts.slice(8, 16));
    for (const q of queries.slice(0, 20)) e.engine.embedQuery(q);
  }
  for (const [i, q] of queries.slice(0, 100).entries()) {
    for (const e of i % 2 ? engines.slice().reverse() : engines) {
      const t = performance.now();
      e.engine.embedQuery(q);
      e.ms.push(performance.now() - t);
    }
  }
  for (let b = 0; b < 3; b++) {
    for (const e of b % 2 ? engines.slice().reverse() : engines) {
      const t = performance.now();
      e.engine.embed(texts.slice(16 + 16 * b, 32 + 16 * b));
      e.batchMs.push(performance.now() - t);
    }
  }
  const median = (xs) => xs.slice().sort((a, b) => a - b)[xs.length >> 1];
  return engines.map((e) => ({
    build: e.name,
    kernel: e.engine.backend().cpu_kernel,
    kernels_checked: e.glue.Engine.checkKernels(),
    query_ms_median: +median(e.ms).toFixed(2),
    passages_per_s: +(16000 / median(e.batchMs)).toFixed(2),
    // The instance's linear memory after the runs (it only grows): the
    // weights in the kernel's layout plus the buffers.
    wasm_memory_mb: +(e.memory.buffer.byteLength / 1e6).toFixed(1),
  }));
}

const pkg = resolve(pkgDir);
let result;
if (!chromium) {
  const loaded = [];
  for (const b of builds) loaded.push([b, await import(pathToFileURL(`${pkg}/${b}.js`).href), readFileSync(`${pkg}/${b}_bg.wasm`)]);
  result = await measure(loaded, readFileSync(modelPath), readFileSync(passagesPath, "utf8"));
} else {
  const { launch, root, serveFiles } = await import("../tests/browser/harness.mjs");
  const url = (p) => {
    const rel = relative(root, resolve(p));
    if (rel.startsWith("..")) throw new Error(`${p} is outside the repository`);
    return "/" + rel.split(sep).join("/");
  };
  const server = await serveFiles({ mount: (path) => [[root, path]] });
  const browser = await launch(process.env.CHROMIUM ?? "/usr/bin/chromium", { profile: "encode" });
  try {
    const page = await browser.context.newPage();
    await page.goto(`http://127.0.0.1:${server.address().port}/bench/encode.html`);
    result = await page.evaluate(
      async ([src, pkgUrl, builds, modelUrl, passagesUrl]) => {
        const measure = new Function(`return (${src})`)();
        const bytes = async (u) => new Uint8Array(await (await fetch(u)).arrayBuffer());
        const loaded = [];
        for (const b of builds) loaded.push([b, await import(`${pkgUrl}/${b}.js`), `${pkgUrl}/${b}_bg.wasm`]);
        return measure(loaded, await bytes(modelUrl), await (await fetch(passagesUrl)).text());
      },
      [measure.toString(), url(pkg), builds, url(modelPath), url(passagesPath)],
    );
  } finally {
    await browser.close();
    server.close();
  }
}
for (const r of result) console.log(JSON.stringify({ where: chromium ? "chromium" : `node ${process.version}`, ...r }));
