// The light engine's CPU work in Node (one thread), for comparing wasm builds:
// the load (vector head + table head, then BM25's meta), and a search once
// every file the questions need is in (table chunks, term blocks, cluster
// lists). Medians over RUNS.
//   node bench/light_engine.mjs SITE_ERNIE_FOLDER QUESTIONS.jsonl [RUNS] [PKG_DIR]
// e.g. node bench/light_engine.mjs target/h2h/wiki/site/_ernie ~/.cache/ernie-search/data/wiki/queries.jsonl 30 pkg
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";

const [dir, questionsPath, runsArg, pkgArg] = process.argv.slice(2);
if (!dir || !questionsPath) {
  console.error("usage: node bench/light_engine.mjs SITE_ERNIE_FOLDER QUESTIONS.jsonl [RUNS] [PKG_DIR]");
  process.exit(2);
}
const runs = Number(runsArg ?? 30);
const pkg = resolve(pkgArg ?? "pkg");
const { default: init, Engine } = await import(pathToFileURL(join(pkg, "ernie_search_light.js")).href);
await init({ module_or_path: readFileSync(join(pkg, "ernie_search_light_bg.wasm")) });

const m = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8"));
const read = (p) => new Uint8Array(readFileSync(join(dir, p)));
const numbered = (folder, stem, set, n) => read(`${folder}/${stem}.${set.hash}.${n}.bin`);
const vhead = read(m.clusters.head);
const thead = read(m.table.head);
const meta = read(m.lexical.meta);
const questions = readFileSync(questionsPath, "utf8").trim().split("\n").slice(0, 200).map((l) => JSON.parse(l).text);

const median = (xs) => xs.slice().sort((a, b) => a - b)[xs.length >> 1];
const time = (f) => { const s = performance.now(); f(); return performance.now() - s; };
const loadMs = [], lexMs = [];
for (let i = 0; i < runs; i++) {
  let e;
  loadMs.push(time(() => { e = Engine.loadTableOnly(vhead, thead); }));
  lexMs.push(time(() => e.loadLexical(meta)));
  e.free();
}
// One engine with every file the questions need, then the searches alone.
const e = Engine.loadTableOnly(vhead, thead);
e.loadLexical(meta);
for (const q of questions) {
  for (const c of e.missingTableChunks(q)) e.addTableChunk(c, numbered("table", "rows", { hash: m.table.head.split(".")[1] }, c));
  for (const b of e.missingBlocks(q)) e.addBlock(numbered("lexical", "terms", m.lexical.blocks, b));
  for (const c of e.missingClusters(q, "table")) e.addCluster(numbered("vectors", "list", m.clusters.lists, c));
}
const searchMs = [];
for (let i = 0; i < Math.max(1, Math.round(runs / 10)); i++) {
  for (const q of questions) searchMs.push(time(() => e.searchWith(q, 10, "hybrid", "table")));
}
console.log(JSON.stringify({
  bench: `light engine (node ${process.version}, ${pkg})`,
  runs,
  load_ms: +median(loadMs).toFixed(2),
  lexical_meta_ms: +median(lexMs).toFixed(2),
  questions: questions.length,
  search_median_ms: +median(searchMs).toFixed(3),
  search_mean_ms: +(searchMs.reduce((s, x) => s + x, 0) / searchMs.length).toFixed(3),
}));
