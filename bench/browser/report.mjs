#!/usr/bin/env node
// Folds the pytrec_eval re-scores (OUT/<system>.pytrec.json) into
// OUT/results.json, checks they agree with h2h.mjs's own metrics, judges the
// issue's goals and prints the markdown tables.
//
//   node bench/browser/report.mjs OUT

import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const out = process.argv[2];
if (!out) {
  console.error("usage: report.mjs OUT (the folder holding results.json)");
  process.exit(2);
}
const res = JSON.parse(readFileSync(join(out, "results.json"), "utf8"));
const R = res.retrieval;
const E = res.encoding;

let mismatch = false;
for (const s of ["ernie", "pagefind", "pagefind-kw"]) {
  const f = join(out, `${s}.pytrec.json`);
  if (!existsSync(f)) continue;
  const p = JSON.parse(readFileSync(f, "utf8")).scores;
  R[s].pytrec = p;
  for (const [ours, theirs] of [["mrr_10", "mrr_10"], ["recall_10", "recall_10"]]) {
    if (Math.abs(R[s][ours] - p[theirs]) > 1e-6) {
      mismatch = true;
      console.error(`report: ${s} ${ours} ${R[s][ours]} differs from pytrec_eval's ${p[theirs]}`);
    }
  }
}

const mb = (b) => `${(b / 1e6).toFixed(2)} MB`;
const kb = (b) => `${(b / 1e3).toFixed(1)} KB`;
const f3 = (x) => x.toFixed(3);
const ms = (x) => (x == null ? "-" : `${x.toFixed(1)} ms`);

const bestPf = Math.max(R.pagefind.recall_10, R["pagefind-kw"].recall_10);
const goals = {
  recall: { ours: R.ernie.recall_10, pagefind: R.pagefind.recall_10, pagefind_keywords: R["pagefind-kw"].recall_10, margin_points: (R.ernie.recall_10 - bestPf) * 100, goal: ">= 15 points over Pagefind (its better variant)" },
  first_load: {
    ours: E.ernie.load.bytes, tjs: E.tjs.load.bytes, ratio: E.ernie.load.bytes / E.tjs.load.bytes,
    ours_gzip: E.ernie.load.gzip, tjs_gzip: E.tjs.load.gzip, ratio_gzip: E.ernie.load.gzip / E.tjs.load.gzip,
    ratio_vs_plain: E["tjs-plain"] ? E.ernie.load.bytes / E["tjs-plain"].load.bytes : null,
    ratio_gzip_vs_plain: E["tjs-plain"] ? E.ernie.load.gzip / E["tjs-plain"].load.gzip : null,
    goal: "<= 0.5 of Transformers.js (its defaults)",
  },
  encode_latency: {
    ours: E.ernie.latency.median_ms, tjs: E.tjs.latency.median_ms, ratio: E.ernie.latency.median_ms / E.tjs.latency.median_ms,
    ratio_vs_plain: E["tjs-plain"] ? E.ernie.latency.median_ms / E["tjs-plain"].latency.median_ms : null,
    goal: "<= Transformers.js (wasm, its defaults)",
  },
};
goals.recall.met = goals.recall.margin_points >= 15;
goals.first_load.met = goals.first_load.ratio <= 0.5;
goals.encode_latency.met = goals.encode_latency.ratio <= 1;
res.goals = goals;
res.pytrec_agrees = !mismatch;
writeFileSync(join(out, "results.json"), JSON.stringify(res, null, 2) + "\n");

const label = res.subset ? ` (SUBSET: ${res.site.pages} pages, ${res.site.questions} questions)` : "";
const lines = [];
lines.push(`Retrieval${label}: NQ dev, ${res.site.questions} questions over ${res.site.pages} pages, top 10, Chromium ${res.machine.chromium}`);
lines.push("");
lines.push("| engine | MRR@10 | R@10 | R@1 | no result | median (p95) query | load: bytes, time | first query: bytes, time | per query, queries 2-11: bytes (gzip) | per query, all further: bytes (gzip) |");
lines.push("|---|---|---|---|---|---|---|---|---|---|");
for (const [s, name] of [
  ["ernie", "ernie-search (npm Retriever, hybrid)"],
  ["pagefind", `Pagefind ${res.versions.pagefind} (peer)`],
  ["pagefind-kw", `Pagefind ${res.versions.pagefind}, question as keywords (peer)`],
]) {
  const r = R[s];
  const l = r.further_queries.latency;
  lines.push(
    `| ${name} | ${f3(r.mrr_10)} | ${f3(r.recall_10)} | ${f3(r.recall_1)} | ${r.empty_results} | ${ms(l.median_ms)} (${ms(l.p95_ms)}) | ${mb(r.load.bytes)}, ${ms(r.load.ms)} | ${kb(r.first_query.bytes)}, ${ms(r.first_query.ms)} | ${kb(r.further_queries.bytes_mean_next10)} (${kb(r.further_queries.gzip_mean_next10)}) | ${kb(r.further_queries.bytes_mean)} (${kb(r.further_queries.gzip_mean)}) |`,
  );
}
lines.push("");
lines.push(`Query encoding${label}: ${res.site.encode_questions} questions, one at a time, same model (all-MiniLM-L6-v2, 8-bit weights); cosine between the two engines' vectors: mean ${E.cosine_tjs_vs_ernie.mean}, min ${E.cosine_tjs_vs_ernie.min}`);
lines.push("");
lines.push("| engine | first-load bytes (gzip -6) | ready in | encode median (p95) |");
lines.push("|---|---|---|---|");
lines.push(`| ernie-search wasm Engine, Q8_0 GGUF | ${mb(E.ernie.load.bytes)} (${mb(E.ernie.load.gzip)}) | ${ms(E.ernie.load.ready_ms)} | ${ms(E.ernie.latency.median_ms)} (${ms(E.ernie.latency.p95_ms)}) |`);
lines.push(`| ernie-search Retriever.embed (worker round trip) | - | - | ${ms(E.retriever_embed.latency.median_ms)} (${ms(E.retriever_embed.latency.p95_ms)}) |`);
lines.push(`| Transformers.js ${res.versions.transformers_js} (onnxruntime-web ${res.versions.onnxruntime_web}, wasm, ${E.tjs.num_threads ?? "?"} thread), int8 ONNX, defaults (peer) | ${mb(E.tjs.load.bytes)} (${mb(E.tjs.load.gzip)}) | ${ms(E.tjs.load.ready_ms)} | ${ms(E.tjs.latency.median_ms)} (${ms(E.tjs.latency.p95_ms)}) |`);
const P = E["tjs-plain"];
if (P) lines.push(`| the same, onnxruntime-web's plain wasm build (peer) | ${mb(P.load.bytes)} (${mb(P.load.gzip)}) | ${ms(P.load.ready_ms)} | ${ms(P.latency.median_ms)} (${ms(P.latency.p95_ms)}) |`);
lines.push("");
const yes = (m) => (m ? "**met**" : "**NOT met**");
lines.push("Goals:");
lines.push(`- R@10 >= Pagefind + 15 points: ${yes(goals.recall.met)} (${f3(goals.recall.ours)} vs Pagefind's ${f3(goals.recall.pagefind)}, ${f3(goals.recall.pagefind_keywords)} as keywords: ${goals.recall.margin_points >= 0 ? "+" : ""}${goals.recall.margin_points.toFixed(1)} points)`);
lines.push(`- first-load bytes <= half of Transformers.js's: ${yes(goals.first_load.met)} (${goals.first_load.ratio.toFixed(2)}x as served, ${goals.first_load.ratio_gzip.toFixed(2)}x gzipped; against the plain ORT build ${goals.first_load.ratio_vs_plain?.toFixed(2)}x, ${goals.first_load.ratio_gzip_vs_plain?.toFixed(2)}x gzipped)`);
lines.push(`- query encode latency <= Transformers.js's: ${yes(goals.encode_latency.met)} (median ${goals.encode_latency.ratio.toFixed(2)}x Transformers.js's; ${goals.encode_latency.ratio_vs_plain?.toFixed(2)}x with the plain ORT build)`);
lines.push(`- pytrec_eval re-score of the run files: ${res.pytrec_agrees ? "agrees" : "DISAGREES"}${R.ernie.pytrec ? ` (ernie MRR@10 ${f3(R.ernie.pytrec.mrr_10)} R@10 ${f3(R.ernie.pytrec.recall_10)}; pagefind ${f3(R.pagefind.pytrec.mrr_10)} / ${f3(R.pagefind.pytrec.recall_10)}; as keywords ${f3(R["pagefind-kw"].pytrec.mrr_10)} / ${f3(R["pagefind-kw"].pytrec.recall_10)})` : ""}`);
console.log(lines.join("\n"));
if (mismatch) process.exit(1);
