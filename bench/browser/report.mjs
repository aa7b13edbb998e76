#!/usr/bin/env node
// Folds the pytrec_eval re-scores (OUT/<system>.pytrec.json) into
// OUT/results.json, checks they agree with h2h.mjs's own metrics, judges the
// goals (the light site bundle's, issue 20; the encoder's, when the encoding
// comparison ran) and prints the markdown tables.
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
const SYSTEMS = Object.keys(R);

let mismatch = false;
for (const s of SYSTEMS) {
  const f = join(out, `${s}.pytrec.json`);
  if (!existsSync(f)) continue;
  const p = JSON.parse(readFileSync(f, "utf8")).scores;
  R[s].pytrec = p;
  for (const k of ["mrr_10", "recall_10"]) {
    if (Math.abs(R[s][k] - p[k]) > 1e-6) {
      mismatch = true;
      console.error(`report: ${s} ${k} ${R[s][k]} differs from pytrec_eval's ${p[k]}`);
    }
  }
}

const mb = (b) => `${(b / 1e6).toFixed(2)} MB`;
const kb = (b) => `${(b / 1e3).toFixed(1)} KB`;
const f3 = (x) => x.toFixed(3);
const ms = (x) => (x == null ? "-" : `${x.toFixed(1)} ms`);
const s1 = (x) => (x == null ? "-" : `${(x / 1000).toFixed(2)} s`);

const L = R.ernie;
const F = R["ernie-full"];
const bestPf = Math.max(R.pagefind.recall_10, R["pagefind-kw"].recall_10);
const goals = {
  first_answer_bytes_gzip: { ours: L.through_first_query.gzip, goal: "<= 500 KB gzip until the first answer", met: L.through_first_query.gzip <= 500e3 },
  later_query_gzip: {
    median: L.further_queries.gzip_median, p95: L.further_queries.gzip_p95, mean_queries_2_to_11: L.further_queries.gzip_mean_next10,
    goal: "median <= 100 KB, p95 <= 300 KB (over every later query)",
    met: L.further_queries.gzip_median <= 100e3 && L.further_queries.gzip_p95 <= 300e3,
  },
  quality: { ours: { mrr_10: L.mrr_10, recall_10: L.recall_10 }, full_build: F && { mrr_10: F.mrr_10, recall_10: F.recall_10 }, goal: "MRR@10 >= 0.60 and R@10 >= 0.80 (set for NQ)", met: L.mrr_10 >= 0.6 && L.recall_10 >= 0.8 },
  slow_4g: { ours_ms: L.first_answer_slow_4g?.ms, goal: "<= 3 s to the first answer from a cold cache, HTTP/1.1", met: (L.first_answer_slow_4g?.ms ?? Infinity) <= 3000 },
  slow_4g_h2: { ours_ms: L.first_answer_slow_4g_h2?.ms, goal: "<= 3 s to the first answer from a cold cache, HTTP/2 (TLS)", met: (L.first_answer_slow_4g_h2?.ms ?? Infinity) <= 3000 },
  recall_over_pagefind: { margin_points: (L.recall_10 - bestPf) * 100, goal: ">= 15 points over Pagefind (its better variant)", met: (L.recall_10 - bestPf) * 100 >= 15 },
};
if (E) {
  goals.encoder_first_load = { ratio: E.ernie.load.bytes / E.tjs.load.bytes, goal: "<= 0.5 of Transformers.js (its defaults)", met: E.ernie.load.bytes / E.tjs.load.bytes <= 0.5 };
  for (const [key, build] of [["ernie", "simd128"], ["ernie-relaxed", "relaxed_simd"]]) {
    if (!E[key]) continue;
    const q = E[key].latency.median_ms / E.tjs.latency.median_ms;
    goals[`encode_latency_${build}`] = { ratio: q, goal: "<= 0.5 of Transformers.js (wasm, its defaults; issue 21)", met: q <= 0.5 };
    if (E.passages?.[key]) {
      const r = E.passages[key].passages_per_s / E.passages.tjs.passages_per_s;
      goals[`passage_throughput_${build}`] = { ratio: r, goal: ">= 2x Transformers.js's passages/s (batch 32; issue 21)", met: r >= 2 };
    }
  }
}
res.goals = goals;
res.pytrec_agrees = !mismatch;
writeFileSync(join(out, "results.json"), JSON.stringify(res, null, 2) + "\n");

const label = res.subset ? ` (SUBSET: ${res.site.pages} pages, ${res.site.questions} questions)` : "";
const lines = [];
lines.push(`Retrieval${label}: dev, ${res.site.questions} questions over ${res.site.pages} pages, top 10, Chromium ${res.machine.chromium}; bytes as served (gzip -6 in brackets)`);
lines.push("");
lines.push("| engine | MRR@10 | R@10 | R@1 | no result | median (p95) query | until the first answer | queries 2-11: mean | all later queries: median (p95) | slow 4G, cold: first answer, median of 3 visits (HTTP/1.1; HTTP/2) |");
lines.push("|---|---|---|---|---|---|---|---|---|---|");
const NAMES = {
  ernie: "ernie-search, as a site's visitor gets it (light engine: token table, vectors by cluster)",
  "ernie-full": "ernie-search, full build (the transformer, the whole vector file)",
  pagefind: `Pagefind ${res.versions.pagefind} (peer)`,
  "pagefind-kw": `Pagefind ${res.versions.pagefind}, question as keywords (peer)`,
};
for (const s of SYSTEMS) {
  const r = R[s];
  const l = r.further_queries.latency;
  const q = r.further_queries;
  const cold = r.first_answer_slow_4g;
  const coldH2 = r.first_answer_slow_4g_h2;
  const told = (c) => (c.ms == null ? "none within 120 s" : s1(c.ms));
  lines.push(
    `| ${NAMES[s] ?? s} | ${f3(r.mrr_10)} | ${f3(r.recall_10)} | ${f3(r.recall_1)} | ${r.empty_results} | ${ms(l.median_ms)} (${ms(l.p95_ms)}) | ${kb(r.through_first_query.bytes)} (${kb(r.through_first_query.gzip)}) | ${kb(q.bytes_mean_next10)} (${kb(q.gzip_mean_next10)}) | ${kb(q.bytes_median)} (${kb(q.gzip_median)}); p95 ${kb(q.bytes_p95)} (${kb(q.gzip_p95)}) | ${cold ? `${told(cold)}; ${coldH2 ? told(coldH2) : "-"}, ${kb(cold.bytes)}` : "-"} |`,
  );
}
const split = SYSTEMS.filter((s) => R[s].further_queries.phases_median_ms).map((s) => {
  const p = R[s].further_queries.phases_median_ms;
  return `${s} ${ms(p.fetch_ms)} fetching, ${ms(p.search_ms)} searching, ${ms(p.texts_ms)} loading texts`;
});
if (split.length) {
  lines.push("");
  lines.push(`Later queries in the worker (medians of its \`timings\`): ${split.join("; ")}.`);
}
const loads = SYSTEMS.filter((s) => R[s].info?.load_timings).map((s) => {
  const t = R[s].info.load_timings;
  return `${s} ${ms(t.parts_ms)} until its files were in, then ${ms(t.engine_ms)} reading them`;
});
if (loads.length) {
  lines.push("");
  lines.push(`The load in the worker (its \`info().load_timings\`, one load on the local server): ${loads.join("; ")}.`);
}
if (E) {
  lines.push("");
  lines.push(`Query encoding${label}: ${res.site.encode_questions} questions, one at a time, same model; cosine between the two engines' vectors: mean ${E.cosine_tjs_vs_ernie.mean}, min ${E.cosine_tjs_vs_ernie.min}`);
  lines.push("");
  lines.push("| engine | first-load bytes (gzip -6) | ready in | encode median (p95) |");
  lines.push("|---|---|---|---|");
  for (const [key, build] of [["ernie", "simd128"], ["ernie-relaxed", "relaxed-SIMD"]]) {
    if (E[key]) lines.push(`| ernie-search wasm Engine, Q8_0 GGUF, ${build} build (${E[key].kernel}) | ${mb(E[key].load.bytes)} (${mb(E[key].load.gzip)}) | ${ms(E[key].load.ready_ms)} | ${ms(E[key].latency.median_ms)} (${ms(E[key].latency.p95_ms)}) |`);
  }
  lines.push(`| Transformers.js ${res.versions.transformers_js}, int8 ONNX, defaults (peer) | ${mb(E.tjs.load.bytes)} (${mb(E.tjs.load.gzip)}) | ${ms(E.tjs.load.ready_ms)} | ${ms(E.tjs.latency.median_ms)} (${ms(E.tjs.latency.p95_ms)}) |`);
  lines.push(`| the same, onnxruntime-web's plain wasm build (peer) | ${mb(E["tjs-plain"].load.bytes)} (${mb(E["tjs-plain"].load.gzip)}) | ${ms(E["tjs-plain"].load.ready_ms)} | ${ms(E["tjs-plain"].latency.median_ms)} (${ms(E["tjs-plain"].latency.p95_ms)}) |`);
  const P = E.passages;
  if (P) {
    lines.push("");
    lines.push(`Passages: ${P.batches} batches of ${P.batch} (${P.words} words each), one thread, engines in turn per batch`);
    lines.push("");
    lines.push("| engine | passages/s | batch median (p95) |");
    lines.push("|---|---|---|");
    for (const [n, label] of [["ernie", "ernie-search wasm Engine, simd128 build"], ["ernie-relaxed", "ernie-search wasm Engine, relaxed-SIMD build"], ["tjs", "Transformers.js, defaults (peer)"], ["tjs-plain", "Transformers.js, plain ORT wasm (peer)"]]) {
      if (P[n]) lines.push(`| ${label} | ${P[n].passages_per_s} | ${ms(P[n].median_ms)} (${ms(P[n].p95_ms)}) |`);
    }
  }
}
lines.push("");
const yes = (m) => (m ? "**met**" : "**NOT met**");
lines.push("Goals (the light engine):");
for (const [k, g] of Object.entries(goals)) lines.push(`- ${k}: ${g.goal}: ${yes(g.met)} (${JSON.stringify({ ...g, goal: undefined, met: undefined })})`);
lines.push(`- pytrec_eval re-score of the run files: ${res.pytrec_agrees ? "agrees" : "DISAGREES"}`);
console.log(lines.join("\n"));
if (mismatch) process.exit(1);
