#!/usr/bin/env node
// The head-to-head measurement itself, in ONE headless Chromium (run through
// bench/browser/run.sh, which builds the site and the indexes first):
//
// 1. Retrieval: Pagefind's JS API and ernie-search's npm API (Retriever,
//    hybrid) answer the same dev questions over the same site, taking
//    turns question by question (so machine noise falls on both alike), each
//    in its own browser context (own HTTP cache and storage). Top 10 each,
//    mapped back to passage ids by page URL; MRR@10, R@10, latency, bytes.
//    ernie-search twice: as a site's visitor gets it ("ernie": the light
//    engine, the token table, vectors by cluster) and with the transformer
//    over the same folder ("ernie-full").
// 1b. Time to the first answer from a cold cache on Chromium's "slow 4G"
//    (1.6 Mbps down, 150 ms latency), every file served gzipped (as static
//    hosts do; Pagefind's own files are compressed already): load, then one
//    question, per system, the median of three fresh visits; over HTTP/1.1 (six connections a host, so a
//    page's seventh request waits for a free one) and over HTTP/2 with TLS
//    (one connection, every request at once: what GitHub Pages, Netlify and
//    Cloudflare Pages serve), the same files from the same handler.
// 2. Encoding (skipped with --encode-queries 0): Transformers.js (feature-extraction pipeline, wasm backend,
//    mean pooling + normalisation, 8-bit ONNX) and ernie-search's wasm Engine
//    (Q8_0 GGUF) embed the same questions, again taking turns; first-load
//    bytes, load time, per-query encode latency, and the cosine between the
//    two vectors of each question (same model: should be near 1).
//
// Bytes are counted by this script's own HTTP server (uncompressed bodies,
// as served; what a visitor downloads once the browser's HTTP cache and the
// Cache API answer what they can), cross-checked against Chromium's own
// response sizes; a gzip -6 estimate per file is given beside.
//
//   node bench/browser/h2h.mjs --site DIR --out DIR --data NQ_DIR --tjs-models DIR
//       [--queries N] [--encode-queries N] [--subset N] [--chromium PATH]

import { createServer } from "node:http";
import { createSecureServer } from "node:http2";
import { createReadStream, existsSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { dirname, extname, join, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { chromium } from "playwright-core";
import { selfSignedTls } from "./tls.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "..", "..");
const QUERY_TIMEOUT_MS = 120_000;
/** Cold slow-4G visits per engine and protocol; the median is reported. */
const SLOW_4G_VISITS = 3;
/** Questions asked after the first answer in each slow-4G visit (part 1c). */
const SLOW_4G_LATER = 10;

function args() {
  const out = { site: null, out: null, data: null, "tjs-models": null, queries: "0", "encode-queries": "200", subset: "0", chromium: process.env.CHROMIUM || "/usr/bin/chromium" };
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) {
    const k = argv[i].replace(/^--/, "");
    if (!(k in out) || argv[i + 1] === undefined) die(`unknown argument ${argv[i]}`);
    out[k] = argv[i + 1];
  }
  for (const k of ["site", "out", "data"]) if (!out[k]) die(`--${k} is required`);
  if (out["encode-queries"] !== "0" && !out["tjs-models"]) die("--tjs-models is required unless --encode-queries 0");
  return out;
}

function die(msg) {
  console.error(`h2h: ${msg}`);
  process.exit(2);
}

const opt = args();
const site = resolve(root, opt.site);
const outDir = resolve(root, opt.out);
const tjsModels = opt["tjs-models"] ? resolve(root, opt["tjs-models"]) : null;
const nQueries = Number(opt.queries);
const nEncode = Number(opt["encode-queries"]);
const subset = Number(opt.subset);
const modules = join(here, "node_modules");
for (const [p, what] of [
  [join(site, "_ernie/manifest.json"), "the ernie-search index (index-site)"],
  [join(site, "pagefind/pagefind.js"), "the Pagefind index"],
  ...(nEncode > 0
    ? [
        [join(modules, "@huggingface/transformers/dist/transformers.min.js"), "Transformers.js (npm ci in bench/browser)"],
        [join(tjsModels, "all-MiniLM-L6-v2/onnx/model_quantized.onnx"), "the ONNX model in Transformers.js's layout"],
      ]
    : []),
  [opt.chromium, "Chromium"],
]) {
  if (!existsSync(p)) die(`${what} not found at ${p}`);
}
const version = (pkg) => JSON.parse(readFileSync(join(modules, pkg, "package.json"), "utf8")).version;

// ------------------------------------------------------------------ data

const readJsonl = (p) => readFileSync(p, "utf8").split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l));
const questions = new Map(readJsonl(join(opt.data, "queries.jsonl")).map((q) => [q._id, q.text]));
const onSite = new Set(readdirSync(join(site, "p")).filter((f) => f.endsWith(".html")).map((f) => f.slice(0, -5)));
/** qid -> Map(passage id -> relevance), dev split, only passages on the site. */
const qrels = new Map();
for (const line of readFileSync(join(opt.data, "qrels/dev.tsv"), "utf8").split("\n").slice(1)) {
  const [q, d, s] = line.split("\t");
  if (!q || !(Number(s) > 0) || !onSite.has(d)) continue;
  if (!qrels.has(q)) qrels.set(q, new Map());
  qrels.get(q).set(d, Number(s));
}
let qids = [...qrels.keys()];
for (const q of qids) if (!questions.has(q)) die(`qrels question ${q} is not in queries.jsonl`);
if (nQueries > 0) qids = qids.slice(0, nQueries);
if (!qids.length) die("no dev question has a judged passage on this site");
const encodeQids = qids.slice(0, Math.min(nEncode, qids.length));
// The qrels of exactly the questions run: what pytrec_eval scores against.
writeFileSync(join(outDir, "qrels.tsv"), "query-id\tcorpus-id\tscore\n" + qids.flatMap((q) => [...qrels.get(q)].map(([d, s]) => `${q}\t${d}\t${s}\n`)).join(""));

// ------------------------------------------------------------------ server

const MIME = {
  ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".mjs": "text/javascript; charset=utf-8",
  ".json": "application/json", ".wasm": "application/wasm", ".css": "text/css",
};
const BLANK = `<!doctype html><html><head><meta charset="utf-8"><title>h2h</title></head><body></body></html>\n`;
/** URL prefix -> [folder, system the bytes count for]. */
const ROUTES = [
  ["/pagefind/", join(site, "pagefind"), "pagefind"],
  // Pagefind's files under a second name for its keyword variant (pagefind.js finds its files beside itself).
  ["/pagefind-kw/", join(site, "pagefind"), "pagefind-kw"],
  ["/_ernie/", join(site, "_ernie"), "ernie"],
  // The same folder searched with the transformer (the full build).
  ["/_ernie-full/", join(site, "_ernie"), "ernie-full"],
  // And again for each cold slow-4G first answer (fresh names: nothing cached).
  ["/cold-ernie/", join(site, "_ernie"), "cold-ernie"],
  ["/cold-ernie-full/", join(site, "_ernie"), "cold-ernie-full"],
  ["/cold-pagefind/", join(site, "pagefind"), "cold-pagefind"],
  // The same files under a second name, for the encoding comparison: its own HTTP cache entries and byte count.
  ["/ernie-enc/", join(site, "_ernie"), "ernie-enc"],
  ["/tjs/", join(modules, "@huggingface/transformers/dist"), "tjs"],
  ["/ort/", join(modules, "onnxruntime-web/dist"), "tjs"],
  ["/tjs-models/", tjsModels, "tjs"],
  // Transformers.js again, told to use onnxruntime-web's plain wasm build
  // (its default is the bigger asyncify build, which WebGPU needs).
  ["/tjs2/", join(modules, "@huggingface/transformers/dist"), "tjs-plain"],
  ["/ort2/", join(modules, "onnxruntime-web/dist"), "tjs-plain"],
  ["/tjs-models2/", tjsModels, "tjs-plain"],
].filter(([, dir]) => dir);
/** Every request served: { system, path, status, bytes }. */
const served = [];
const bytesBy = {}; // system -> bytes served so far
const gzipCache = new Map(); // file -> gzip -6 size
const gzipBy = {};

/** Every request, HTTP/1.1 or HTTP/2 (node's compatibility API): the file, counted. */
function handle(req, res) {
    const path = decodeURIComponent(new URL(req.url, "http://x").pathname);
    if (path === "/h2h/blank.html") {
      res.writeHead(200, { "content-type": MIME[".html"], "content-length": Buffer.byteLength(BLANK), "cache-control": "no-store" });
      return res.end(BLANK);
    }
    const route = ROUTES.find(([p]) => path.startsWith(p));
    const system = route?.[2] ?? "other";
    let file = null;
    let st = null;
    if (route) {
      file = resolve(route[1], "." + path.slice(route[0].length - 1));
      try {
        st = file.startsWith(route[1] + sep) ? statSync(file) : null;
      } catch {}
    }
    if (!st?.isFile()) {
      served.push({ system, path, status: 404, bytes: 0 });
      return res.writeHead(404, { "content-type": "text/plain" }).end();
    }
    // Static hosting as on a CDN: everything may sit in the browser's HTTP cache.
    const type = MIME[extname(file)] || "application/octet-stream";
    served.push({ system, path, status: 200, bytes: st.size });
    bytesBy[system] = (bytesBy[system] ?? 0) + st.size;
    if (!gzipCache.has(file)) gzipCache.set(file, gzipSync(readFileSync(file), { level: 6 }).length);
    gzipBy[system] = (gzipBy[system] ?? 0) + gzipCache.get(file);
    // The slow-4G first answers are served gzipped (what any static host does),
    // so the throttled link carries what a visitor's would.
    if (system.startsWith("cold-") && /\bgzip\b/.test(req.headers["accept-encoding"] ?? "")) {
      const body = gzipSync(readFileSync(file), { level: 6 });
      res.writeHead(200, { "content-type": type, "content-encoding": "gzip", "content-length": body.length, "cache-control": "public, max-age=3600" });
      return res.end(body);
    }
    res.writeHead(200, { "content-type": type, "content-length": st.size, "cache-control": "public, max-age=3600" });
    createReadStream(file).pipe(res);
}

function listen(server) {
  return new Promise((ok, fail) => {
    server.once("error", fail);
    server.listen(0, "127.0.0.1", () => ok(server));
  });
}

/** The same files over HTTP/2: browsers speak it only over TLS, so a throwaway self-signed certificate. */
function serveH2() {
  return listen(createSecureServer(selfSignedTls(), handle));
}

const snap = (system) => ({ bytes: bytesBy[system] ?? 0, gzip: gzipBy[system] ?? 0, requests: served.filter((r) => r.system === system).length });
const diff = (a, b) => ({ bytes: b.bytes - a.bytes, gzip: b.gzip - a.gzip, requests: b.requests - a.requests });

// ------------------------------------------------------------------ stats

function pct(values, p) {
  const a = [...values].sort((x, y) => x - y);
  if (!a.length) return null;
  const i = (a.length - 1) * p;
  const lo = Math.floor(i);
  return a[lo] + (a[Math.min(lo + 1, a.length - 1)] - a[lo]) * (i - lo);
}
const r2 = (x) => (x == null ? null : Math.round(x * 100) / 100);
const latency = (ms) => ({ n: ms.length, median_ms: r2(pct(ms, 0.5)), p95_ms: r2(pct(ms, 0.95)), mean_ms: r2(ms.reduce((s, x) => s + x, 0) / ms.length) });
const mean = (a) => (a.length ? a.reduce((s, x) => s + x, 0) / a.length : null);

/** MRR@10 and R@10 over `qids` (a question without results scores 0). */
function score(run) {
  let mrr = 0;
  let rec = 0;
  let r1 = 0;
  for (const q of qids) {
    const rel = qrels.get(q);
    const top = (run.get(q) ?? []).slice(0, 10);
    const first = top.findIndex((d) => rel.has(d));
    if (first >= 0) mrr += 1 / (first + 1);
    rec += top.filter((d) => rel.has(d)).length / rel.size;
    if (top.length && rel.has(top[0])) r1++;
  }
  const n = qids.length;
  return { mrr_10: mrr / n, recall_10: rec / n, recall_1: r1 / n };
}

function writeRun(name, run) {
  // Scores are 10, 9, ... by rank: trec_eval sorts by score, so the ranking stays ours.
  const lines = [];
  for (const q of qids) (run.get(q) ?? []).slice(0, 10).forEach((d, i) => lines.push(`${q} Q0 ${d} ${i + 1} ${10 - i} ${name}`));
  writeFileSync(join(outDir, `${name}.trec`), lines.join("\n") + "\n");
}

// Lucene's 33 English stop words, question words and auxiliaries.
const STOP = new Set(
  ("a an and are as at be but by for if in into is it no not of on or such that the their then there these they this to was will with " +
    "who whom whose what which when where why how does did do has have had").split(" "),
);
/** A question as the keywords a person might type into a site's search box. */
function keywords(q) {
  const words = q.split(/\s+/).filter((w) => w && !STOP.has(w.toLowerCase().replace(/[^\p{L}\p{N}]/gu, "")));
  return words.length ? words.join(" ") : q;
}

const idOf = (url) => url?.match(/\/p\/([^/?#]+)\.html/)?.[1] ?? null;

// ------------------------------------------------------------------ browser

const t0 = Date.now();
const log = (msg) => console.log(`[${((Date.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${msg}`);

async function withTimeout(p, what) {
  let t;
  const timeout = new Promise((_, fail) => (t = setTimeout(() => fail(new Error(`${what}: no answer in ${QUERY_TIMEOUT_MS / 1000} s`)), QUERY_TIMEOUT_MS)));
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(t);
  }
}

async function main() {
  const server = await listen(createServer(handle));
  const origin = `http://127.0.0.1:${server.address().port}`;
  const serverH2 = await serveH2();
  const originH2 = `https://127.0.0.1:${serverH2.address().port}`;
  const browser = await chromium.launch({
    executablePath: opt.chromium,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"],
  });
  const pageErrors = [];
  /** Chromium's own count of response bodies, by system (a check on the server's). */
  const browserBytes = {};
  async function open(system, base = origin) {
    const context = await browser.newContext({ ignoreHTTPSErrors: base === originH2 });
    context.on("requestfinished", async (req) => {
      const sizes = await req.sizes().catch(() => null);
      const s = ROUTES.find(([p]) => new URL(req.url()).pathname.startsWith(p))?.[2] ?? "other";
      if (sizes) browserBytes[s] = (browserBytes[s] ?? 0) + sizes.responseBodySize;
    });
    const page = await context.newPage();
    page.on("pageerror", (e) => pageErrors.push(`${system}: ${e.message}`));
    page.on("console", (m) => m.type() === "error" && pageErrors.push(`${system} console: ${m.text()}`));
    await page.goto(base + "/h2h/blank.html");
    return page;
  }

  // ---------------------------------------------------------- 1. retrieval
  log(`retrieval: ${qids.length} questions, ${onSite.size} pages`);
  const pf = await open("pagefind");
  const pk = await open("pagefind-kw");
  const er = await open("ernie");
  const ef = await open("ernie-full");
  const load = {};
  for (const [system, page] of [["pagefind", pf], ["pagefind-kw", pk]]) {
    const a = snap(system);
    const ms = await page.evaluate(async (system) => {
      const t = performance.now();
      window.pagefind = await import(`/${system}/pagefind.js`);
      await window.pagefind.init();
      return performance.now() - t;
    }, system);
    load[system] = { ms: r2(ms), ...diff(a, snap(system)) };
  }
  for (const [system, page, encoder] of [["ernie", er, "auto"], ["ernie-full", ef, "transformer"]]) {
    const a = snap(system);
    const r = await page.evaluate(
      async ({ folder, encoder }) => {
        const t = performance.now();
        const { Retriever } = await import(`${folder}index.js`);
        window.retriever = await Retriever.load({ index: folder, encoder });
        const ms = performance.now() - t;
        return { ms, info: await window.retriever.info() };
      },
      { folder: `/${system === "ernie" ? "_ernie" : "_ernie-full"}/`, encoder },
    );
    load[system] = { ms: r2(r.ms), ...diff(a, snap(system)) };
    const i = r.info;
    load[`${system}_info`] = { build: i.build, encoder: i.encoder, backend: i.backend, model: i.model?.name, weights: i.model?.weights, index: i.index, lexical: i.lexical, table: i.table, fusion: i.fusion, sizes: i.sizes, cache: i.cache, load_timings: i.load_timings ?? null };
  }
  log(`loaded: pagefind ${load.pagefind.bytes} B in ${load.pagefind.ms} ms, ernie (${load.ernie_info.build}) ${load.ernie.bytes} B in ${load.ernie.ms} ms, ernie-full ${load["ernie-full"].bytes} B in ${load["ernie-full"].ms} ms`);

  const ernieAsk = (page, q) =>
    page.evaluate(async (q) => {
      const t = performance.now();
      const a = await window.retriever.search(q, { k: 10, details: true });
      const ms = performance.now() - t;
      return { ms, urls: a.hits.map((h) => h.url), matched: a.hits.length, partial: a.partial, timings: a.timings };
    }, q);
  const pagefindAsk = (page) => (q) =>
    page.evaluate(async (q) => {
      const t = performance.now();
      const s = await window.pagefind.search(q);
      const top = await Promise.all((s?.results ?? []).slice(0, 10).map((r) => r.data()));
      const ms = performance.now() - t;
      return { ms, urls: top.map((d) => d.url), matched: s?.results?.length ?? 0 };
    }, q);
  const ask = {
    pagefind: pagefindAsk(pf),
    // The same question as keywords: Pagefind matches pages holding every word,
    // so a person would type fewer; this drops stop and question words.
    "pagefind-kw": (q) => pagefindAsk(pk)(keywords(q)),
    ernie: (q) => ernieAsk(er, q),
    "ernie-full": (q) => ernieAsk(ef, q),
  };
  const SYSTEMS = ["ernie", "ernie-full", "pagefind", "pagefind-kw"];
  const runs = Object.fromEntries(SYSTEMS.map((s) => [s, new Map()]));
  const per = Object.fromEntries(SYSTEMS.map((s) => [s, []])); // { ms, bytes, gzip, requests, matched }
  const failures = Object.fromEntries(SYSTEMS.map((s) => [s, []]));
  const rotations = SYSTEMS.map((_, i) => SYSTEMS.slice(i).concat(SYSTEMS.slice(0, i)));
  for (const [i, q] of qids.entries()) {
    for (const system of rotations[i % SYSTEMS.length]) {
      const a = snap(system);
      try {
        const r = await withTimeout(ask[system](questions.get(q)), `${system} on ${q}`);
        runs[system].set(q, r.urls.map(idOf).filter(Boolean));
        per[system].push({ ms: r.ms, matched: r.matched, partial: r.partial ?? false, timings: r.timings, ...diff(a, snap(system)) });
      } catch (e) {
        failures[system].push({ q, error: String(e.message ?? e).slice(0, 300) });
        runs[system].set(q, []);
        per[system].push({ ms: null, matched: 0, ...diff(a, snap(system)) });
      }
    }
    if ((i + 1) % 100 === 0 || i + 1 === qids.length) {
      const m = (s) => score(new Map([...runs[s]].slice(0, i + 1))).mrr_10;
      log(`  ${i + 1}/${qids.length} questions (MRR@10 so far: ${SYSTEMS.map((s) => `${s} ${m(s).toFixed(3)}`).join(", ")})`);
    }
  }
  const retrieval = {};
  for (const system of SYSTEMS) {
    writeRun(system, runs[system]);
    const rest = per[system].slice(1);
    const ok = rest.filter((p) => p.ms != null);
    retrieval[system] = {
      ...score(runs[system]),
      questions: qids.length,
      failures: failures[system].length,
      failure_examples: failures[system].slice(0, 5),
      empty_results: per[system].filter((p) => p.matched === 0).length,
      load: load[system],
      first_query: { ms: r2(per[system][0].ms), bytes: per[system][0].bytes, gzip: per[system][0].gzip, requests: per[system][0].requests },
      through_first_query: { bytes: load[system].bytes + per[system][0].bytes, gzip: load[system].gzip + per[system][0].gzip },
      further_queries: {
        latency: latency(ok.map((p) => p.ms)),
        // ernie-search's own split of each search (the worker's `timings`): median ms.
        ...(ok[0]?.timings && { phases_median_ms: Object.fromEntries(Object.keys(ok[0].timings).map((k) => [k, r2(pct(ok.map((p) => p.timings[k]), 0.5))])) }),
        // Queries 2-11: a visitor's first few searches, before the caches hold much.
        bytes_mean_next10: Math.round(mean(rest.slice(0, 10).map((p) => p.bytes)) ?? 0),
        gzip_mean_next10: Math.round(mean(rest.slice(0, 10).map((p) => p.gzip)) ?? 0),
        // All further queries: the amortised cost over a long session.
        bytes_mean: Math.round(mean(rest.map((p) => p.bytes)) ?? 0),
        bytes_median: pct(rest.map((p) => p.bytes), 0.5),
        bytes_p95: pct(rest.map((p) => p.bytes), 0.95),
        gzip_mean: Math.round(mean(rest.map((p) => p.gzip)) ?? 0),
        gzip_median: pct(rest.map((p) => p.gzip), 0.5),
        gzip_p95: pct(rest.map((p) => p.gzip), 0.95),
        partial: per[system].filter((p) => p.partial).length,
        requests_mean: r2(mean(rest.map((p) => p.requests))),
      },
      total: snap(system),
    };
  }
  retrieval.ernie.info = load.ernie_info;
  retrieval["ernie-full"].info = load["ernie-full_info"];
  log(`retrieval: ${SYSTEMS.map((s) => `${s} MRR@10 ${retrieval[s].mrr_10.toFixed(3)} R@10 ${retrieval[s].recall_10.toFixed(3)}`).join("; ")}`);
  await pf.context().close();
  await pk.context().close();
  // The full build's retriever stays open to time Retriever.embed (part 2).
  if (nEncode === 0) await ef.context().close();

  // ---------------------------------------------------------- 1b. slow 4G
  const firstAnswer = {};
  const firstQ = questions.get(qids[0]);
  const laterQs = qids.slice(1, 1 + SLOW_4G_LATER).map((id) => questions.get(id));
  for (const [protocol, base] of [["http1", origin], ["h2", originH2]])
  for (const system of ["cold-ernie", "cold-ernie-full", "cold-pagefind"]) {
  // One cold visit swings by a tenth between runs: the median of three (the
  // full build once: it cannot finish within the timeout anyway).
  const visits = [];
  for (let visit = 0; visit < (system === "cold-ernie-full" ? 1 : SLOW_4G_VISITS); visit++) {
    const page = await open(system, base);
    const cdp = await page.context().newCDPSession(page);
    await cdp.send("Network.enable");
    // Chromium DevTools' "Slow 4G" preset.
    await cdp.send("Network.emulateNetworkConditions", { offline: false, latency: 150, downloadThroughput: (1.6 * 1024 * 1024) / 8, uploadThroughput: (750 * 1024) / 8 });
    const a = snap(system);
    const r = await withTimeout(
      page.evaluate(
        async ({ system, q }) => {
          const t = performance.now();
          let n;
          if (system === "cold-pagefind") {
            const pagefind = await import("/cold-pagefind/pagefind.js");
            await pagefind.init();
            // Kept for the later questions (part 1c), asked the same way.
            self.ask = async (q) => (await Promise.all(((await pagefind.search(q))?.results ?? []).slice(0, 10).map((x) => x.data()))).length;
          } else {
            const folder = `/${system}/`;
            const { Retriever } = await import(`${folder}index.js`);
            const r = await Retriever.load({ index: folder, encoder: system === "cold-ernie" ? "auto" : "transformer" });
            self.ask = async (q) => (await r.search(q, { k: 10 })).length;
          }
          n = await self.ask(q);
          return { ms: performance.now() - t, n };
        },
        { system, q: firstQ },
      ),
      `${system} first answer on slow 4G`,
    ).catch((e) => ({ ms: null, n: 0, error: String(e.message ?? e) }));
    // The full build's 30 MB cannot arrive within the timeout at 1.6 Mbps: said, not fatal.
    const visit = { ms: r2(r.ms), results: r.n, error: r.error, ...diff(a, snap(system)) };
    // 1c. The next questions on the same throttled page, one after another
    // (a visitor's later searches: what they fetch is what their caches lack).
    if (r.ms != null && system !== "cold-ernie-full") {
      const b = snap(system);
      const later = await withTimeout(
        page.evaluate(async (qs) => {
          const out = [];
          for (const q of qs) {
            const t = performance.now();
            await self.ask(q);
            out.push(performance.now() - t);
          }
          return out;
        }, laterQs),
        `${system} later questions on slow 4G`,
      ).catch(() => null);
      if (later) visit.later = { ms: later.map(r2), ...diff(b, snap(system)) };
    }
    visits.push(visit);
    await page.context().close();
  }
  const byTime = [...visits].sort((x, y) => (x.ms ?? Infinity) - (y.ms ?? Infinity));
  const median = byTime[Math.floor((byTime.length - 1) / 2)];
  const later = visits.flatMap((v) => v.later?.ms ?? []);
  const laterStats = later.length
    ? { later_questions: { n: later.length, median_ms: r2(pct(later, 0.5)), p90_ms: r2(pct(later, 0.9)), gzip_mean: Math.round(visits.reduce((s, v) => s + (v.later?.gzip ?? 0), 0) / later.length) } }
    : {};
  const { later: _, ...first } = median;
  (firstAnswer[system.slice("cold-".length)] ??= {})[protocol] = { ...first, visits_ms: visits.map((v) => v.ms), ...laterStats };
  }
  for (const [s, f] of Object.entries(firstAnswer)) {
    retrieval[s].first_answer_slow_4g = f.http1;
    retrieval[s].first_answer_slow_4g_h2 = f.h2;
  }
  const told = (f) => (f.ms == null ? `none within ${QUERY_TIMEOUT_MS / 1000} s` : `${(f.ms / 1000).toFixed(2)} s`);
  const all = (f) => f.visits_ms.map((ms) => (ms == null ? "-" : (ms / 1000).toFixed(2))).join("/");
  log(`first answer on slow 4G from a cold cache, median of ${SLOW_4G_VISITS} visits (HTTP/1.1; HTTP/2): ${Object.entries(firstAnswer).map(([s, f]) => `${s} ${told(f.http1)} [${all(f.http1)}]; ${told(f.h2)} [${all(f.h2)}] (${f.http1.bytes} B)`).join(", ")}`);
  const lat = (f) => (f.later_questions ? `${f.later_questions.median_ms.toFixed(0)} ms (p90 ${f.later_questions.p90_ms.toFixed(0)}, ${f.later_questions.gzip_mean} B gzip each)` : "-");
  log(`later questions on slow 4G, ${SLOW_4G_LATER} per visit, median (HTTP/1.1; HTTP/2): ${Object.entries(firstAnswer).map(([s, f]) => `${s} ${lat(f.http1)}; ${lat(f.h2)}`).join(", ")}`);

  // ---------------------------------------------------------- 2. encoding
  // Retriever.embed needs the transformer: the full-build retriever times it.
  const enc = nEncode > 0 ? await encoding(open, ef) : null;
  if (nEncode > 0) await ef.context().close();

  const chromiumVersion = browser.version();
  await browser.close();
  server.close();
  serverH2.close();
  report(retrieval, enc, chromiumVersion, pageErrors, browserBytes);
}

async function encoding(open, er) {
  log(`encoding: ${encodeQids.length} questions`);
  const tj = await open("tjs");
  const tp = await open("tjs-plain");
  const en = await open("ernie-enc");
  const firstText = questions.get(encodeQids[0]);
  const enc = {};
  for (const [system, page, dist, ort, models, plain] of [
    ["tjs", tj, "/tjs/", "/ort/", "/tjs-models/", false],
    ["tjs-plain", tp, "/tjs2/", "/ort2/", "/tjs-models2/", true],
  ]) {
    const a = snap(system);
    const r = await withTimeout(
      page.evaluate(
        async ({ q, dist, ort, models, plain }) => {
          const t = performance.now();
          const { pipeline, env } = await import(`${dist}transformers.min.js`);
          env.allowRemoteModels = false;
          env.allowLocalModels = true;
          env.localModelPath = models;
          const at = (f) => new URL(ort + f, location.href).href;
          env.backends.onnx.wasm.wasmPaths = plain ? { mjs: at("ort-wasm-simd-threaded.mjs"), wasm: at("ort-wasm-simd-threaded.wasm") } : at("");
          window.extract = await pipeline("feature-extraction", "all-MiniLM-L6-v2", { device: "wasm", dtype: "q8" });
          const ready = performance.now() - t;
          const out = await window.extract(q, { pooling: "mean", normalize: true });
          const first = performance.now() - t - ready;
          const w = env.backends.onnx.wasm;
          return { ready, first, dim: out.dims, version: env.version, numThreads: w.numThreads ?? null, isolated: crossOriginIsolated };
        },
        { q: firstText, dist, ort, models, plain },
      ),
      `Transformers.js load (${system})`,
    );
    enc[system] = { load: { ready_ms: r2(r.ready), first_encode_ms: r2(r.first), ...diff(a, snap(system)) }, version: r.version, dims: r.dim, num_threads: r.numThreads, cross_origin_isolated: r.isolated };
    enc[system].load.files = served.filter((s) => s.system === system).map((s) => `${s.status} ${s.path} ${s.bytes}`);
  }
  // Our engine twice in one page: the simd128 build (every browser) and its
  // relaxed-SIMD twin (what Chromium, Firefox and Edge visitors load).
  for (const [name, build] of [["ernie", "ernie_search"], ["ernie-relaxed", "ernie_search_relaxed"]]) {
    const a = snap("ernie-enc");
    const manifest = JSON.parse(readFileSync(join(site, "_ernie/manifest.json"), "utf8"));
    const r = await en.evaluate(
      async ({ q, modelFile, name, build }) => {
        const t = performance.now();
        const glue = await import(`/ernie-enc/${build}.js`);
        await glue.default();
        const bytes = new Uint8Array(await (await fetch("/ernie-enc/" + modelFile)).arrayBuffer());
        (window.engines ??= {})[name] = glue.Engine.load(bytes);
        const ready = performance.now() - t;
        const v = window.engines[name].embedQuery(q);
        const first = performance.now() - t - ready;
        const b = window.engines[name].backend();
        return { ready, first, dim: v.length, model: window.engines[name].info().model.name, kernel: b.cpu_kernel, choice: b.kernel_choice };
      },
      { q: firstText, modelFile: manifest.model_file, name, build },
    );
    enc[name] = { load: { ready_ms: r2(r.ready), first_encode_ms: r2(r.first), ...diff(a, snap("ernie-enc")) }, dim: r.dim, model: r.model, kernel: r.kernel, ...(r.choice ? { kernel_choice: r.choice } : {}) };
    enc[name].load.files = served.filter((s) => s.system === "ernie-enc").slice(a.requests).map((s) => `${s.status} ${s.path} ${s.bytes}`);
  }
  log(`loaded: transformers.js ${enc.tjs.load.bytes} B in ${enc.tjs.load.ready_ms} ms (plain ort wasm: ${enc["tjs-plain"].load.bytes} B in ${enc["tjs-plain"].load.ready_ms} ms), ernie engine ${enc.ernie.load.bytes} B in ${enc.ernie.load.ready_ms} ms`);

  const tjsEmbed = (page) => (q) =>
    page.evaluate(async (q) => {
      const t = performance.now();
      const out = await window.extract(q, { pooling: "mean", normalize: true });
      const v = out.data;
      return { ms: performance.now() - t, v: Array.from(v) };
    }, q);
  const embed = {
    tjs: tjsEmbed(tj),
    "tjs-plain": tjsEmbed(tp),
    ...Object.fromEntries(["ernie", "ernie-relaxed"].map((name) => [name, (q) =>
      en.evaluate(({ q, name }) => {
        const t = performance.now();
        const v = window.engines[name].embedQuery(q);
        return { ms: performance.now() - t, v: Array.from(v) };
      }, { q, name })])),
    // The npm API: Retriever.embed, a round trip to its worker.
    retriever: (q) =>
      er.evaluate(async (q) => {
        const t = performance.now();
        const [v] = await window.retriever.embed([q]);
        return { ms: performance.now() - t, v: Array.from(v) };
      }, q),
  };
  const ENCODERS = ["ernie", "tjs", "ernie-relaxed", "retriever", "tjs-plain"];
  const encMs = Object.fromEntries(ENCODERS.map((s) => [s, []]));
  const cos = [];
  const encRotations = ENCODERS.map((_, i) => ENCODERS.slice(i).concat(ENCODERS.slice(0, i)));
  for (const [i, q] of encodeQids.entries()) {
    const vs = {};
    for (const system of encRotations[i % ENCODERS.length]) {
      const r = await withTimeout(embed[system](questions.get(q)), `${system} encoding ${q}`);
      encMs[system].push(r.ms);
      vs[system] = r.v;
    }
    let dot = 0;
    for (let j = 0; j < vs.tjs.length; j++) dot += vs.tjs[j] * vs.ernie[j];
    cos.push(dot); // both are unit vectors
  }
  enc.tjs.latency = latency(encMs.tjs);
  enc["tjs-plain"].latency = latency(encMs["tjs-plain"]);
  enc.ernie.latency = latency(encMs.ernie);
  enc["ernie-relaxed"].latency = latency(encMs["ernie-relaxed"]);
  enc.retriever_embed = { latency: latency(encMs.retriever) };
  enc.cosine_tjs_vs_ernie = { mean: Math.round(mean(cos) * 1e5) / 1e5, min: Math.round(Math.min(...cos) * 1e5) / 1e5 };
  log(`encode median: transformers.js ${enc.tjs.latency.median_ms} ms (plain ort wasm ${enc["tjs-plain"].latency.median_ms} ms), ernie engine ${enc.ernie.latency.median_ms} ms (relaxed SIMD ${enc["ernie-relaxed"].latency.median_ms} ms), Retriever.embed ${enc.retriever_embed.latency.median_ms} ms; cosine mean ${enc.cosine_tjs_vs_ernie.mean}`);
  enc.passages = await passageBatches(tj, tp, en);
  return enc;
}

// Passage throughput: batches of 32 passages of the corpus (the first with at
// least 120 words, cut to 120, as bench/run.sh does natively), each engine
// in turn per batch, one thread, in the page's main thread.
async function passageBatches(tj, tp, en) {
  const BATCH = 32;
  const BATCHES = 5;
  const texts = [];
  for (const d of readJsonl(join(opt.data, "corpus.jsonl"))) {
    const words = d.text.split(" ");
    if (words.length >= 120) texts.push(words.slice(0, 120).join(" "));
    if (texts.length === BATCH * (BATCHES + 1)) break;
  }
  const tjsBatch = (page) => (b) =>
    page.evaluate(async (b) => {
      const t = performance.now();
      await window.extract(b, { pooling: "mean", normalize: true });
      return performance.now() - t;
    }, b);
  const run = {
    ...Object.fromEntries(["ernie", "ernie-relaxed"].map((name) => [name, (b) =>
      en.evaluate(({ b, name }) => { const t = performance.now(); window.engines[name].embed(b); return performance.now() - t; }, { b, name })])),
    tjs: tjsBatch(tj),
    "tjs-plain": tjsBatch(tp),
  };
  const names = Object.keys(run);
  const ms = Object.fromEntries(names.map((n) => [n, []]));
  for (let i = 0; i <= BATCHES; i++) {
    const b = texts.slice(i * BATCH, (i + 1) * BATCH);
    for (const n of names.slice(i % names.length).concat(names.slice(0, i % names.length))) {
      const t = await withTimeout(run[n](b), `${n} passage batch ${i}`);
      if (i > 0) ms[n].push(t); // batch 0 warms up
    }
  }
  const out = { batch: BATCH, batches: BATCHES, words: 120 };
  for (const n of names) out[n] = { ...latency(ms[n]), passages_per_s: r2((BATCH * 1000) / pct(ms[n], 0.5)) };
  log(`passages/s (batch ${BATCH}): ernie ${out.ernie.passages_per_s} (relaxed SIMD ${out["ernie-relaxed"].passages_per_s}), transformers.js ${out.tjs.passages_per_s} (plain ort wasm ${out["tjs-plain"].passages_per_s})`);
  return out;
}

function report(retrieval, enc, chromiumVersion, pageErrors, browserBytes) {

  const sizeOf = (dir) => readdirSync(dir, { recursive: true }).reduce((s, f) => {
    const st = statSync(join(dir, f));
    return st.isFile() ? s + st.size : s;
  }, 0);
  const results = {
    date: new Date().toISOString(),
    subset: subset > 0 ? subset : null,
    site: { pages: onSite.size, questions: qids.length, encode_questions: encodeQids.length },
    machine: { cpu: cpus()[0]?.model, cores: cpus().length, node: process.version, chromium: chromiumVersion },
    versions: {
      pagefind: version("pagefind"),
      transformers_js: enc ? version("@huggingface/transformers") : null,
      onnxruntime_web: enc ? version("onnxruntime-web") : null,
      playwright_core: version("playwright-core"),
    },
    on_disk: { pagefind_bytes: sizeOf(join(site, "pagefind")), ernie_bytes: sizeOf(join(site, "_ernie")) },
    retrieval,
    encoding: enc,
    bytes_check: { served: { ...bytesBy }, chromium_response_bodies: browserBytes, note: "served: bodies this script's server sent; chromium_response_bodies: Playwright's responseBodySize per finished request (includes answers from the HTTP cache)" },
    page_errors: pageErrors.slice(0, 20),
  };
  writeFileSync(join(outDir, "results.json"), JSON.stringify(results, null, 2) + "\n");
  writeFileSync(join(outDir, "served.jsonl"), served.map((s) => JSON.stringify(s)).join("\n") + "\n");
  log(`wrote ${join(outDir, "results.json")}`);
}

main().catch((e) => {
  console.error(`h2h: ${e.stack ?? e}`);
  process.exit(1);
});
