// What BM25's term blocks cost a site's visitor per question, for folders
// built with different block sizes (index-site --block-kib): gzip bytes of
// the blocks the first question needs, of those questions 2-11 add to a
// cache, and of any question's from a cold cache. Questions: one a line.
//   node bench/term_blocks.mjs QUESTIONS.txt SITE/_ernie [SITE/_ernie_other...]
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import init, { Engine } from "../pkg/ernie_search_light.js";

const [questions, ...dirs] = process.argv.slice(2);
if (!questions || dirs.length === 0) {
  console.error("usage: node bench/term_blocks.mjs QUESTIONS.txt SITE/_ernie [SITE/_ernie_other...]");
  process.exit(2);
}
await init({ module_or_path: readFileSync(new URL("../pkg/ernie_search_light_bg.wasm", import.meta.url)) });
const qs = readFileSync(questions, "utf8").trim().split("\n");
for (const dir of dirs) {
  const m = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8"));
  const read = (p) => new Uint8Array(readFileSync(join(dir, p)));
  const e = Engine.loadTableOnly(read(m.clusters.head), read(m.table.head));
  e.loadLexical(read(m.lexical.meta));
  const gz = new Map();
  const size = (b) => { if (!gz.has(b)) gz.set(b, gzipSync(readFileSync(join(dir, `lexical/terms.${m.lexical.blocks.hash}.${b}.bin`)), { level: 6 }).length); return gz.get(b); };
  let first = 0, next10 = 0, cold = 0, coldReq = 0;
  const cache = new Set();
  qs.forEach((q, i) => {
    const need = Array.from(e.missingBlocks(q));
    const bytes = need.reduce((s, b) => s + size(b), 0);
    cold += bytes; coldReq += need.length;
    if (i === 0) first = bytes;
    if (i >= 1 && i <= 10) next10 += need.filter((b) => !cache.has(b)).reduce((s, b) => s + size(b), 0);
    if (i <= 10) need.forEach((b) => cache.add(b));
  });
  console.log(dir, `blocks ${m.lexical.blocks.count}: first question ${(first / 1000).toFixed(1)} KB gzip; questions 2-11 (cached) mean ${(next10 / 10000).toFixed(1)} KB; any question cold: mean ${(cold / qs.length / 1000).toFixed(1)} KB in ${(coldReq / qs.length).toFixed(2)} blocks`);
}
