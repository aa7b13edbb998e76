// A returning visitor: the light engine's load and first search when the
// Cache API already holds many of the folder's files. Asks N dev questions
// (filling the cache as a long session does), then reloads the page R times
// and times `Retriever.load` and the first search after it. With --worker-b,
// the reloads take turns between the folder's worker.js and that file (an
// older worker, say), on the same cache: an A/B on one machine and hour.
//
//   node bench/browser/warm_reload.mjs --site target/h2h/wiki/site --data DATA
//        [--queries 200] [--reloads 6] [--worker-b FILE] [--chromium PATH]
//
// NODE_PATH=bench/browser/node_modules (playwright-core). DATA: a fetched
// BEIR set (queries.jsonl, qrels/dev.tsv). Every file is served with
// no-store, so only the Cache API keeps anything across reloads.
import { createServer } from "node:http";
import { createReadStream, existsSync, readFileSync, statSync } from "node:fs";
import { extname, join, resolve, sep } from "node:path";
import { chromium } from "playwright-core";

const arg = (name, def) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : def;
};
const folder = resolve(arg("--site", "target/h2h/wiki/site"), "_ernie");
const data = arg("--data");
const nQueries = Number(arg("--queries", "200"));
const reloads = Number(arg("--reloads", "6"));
const workerB = arg("--worker-b");
if (!data || !existsSync(join(folder, "manifest.json"))) {
  console.error("usage: node bench/browser/warm_reload.mjs --site SITE --data DATA [--queries N] [--reloads R] [--worker-b FILE]");
  process.exit(2);
}

const types = { ".js": "text/javascript", ".wasm": "application/wasm", ".json": "application/json" };
let serveB = false;
const server = createServer((req, res) => {
  const path = decodeURIComponent(new URL(req.url, "http://x").pathname);
  if (path === "/") return res.writeHead(200, { "content-type": "text/html" }).end("<!doctype html><title>warm</title>");
  let file = resolve(folder, "." + path.replace(/^\/e\//, "/"));
  if (path === "/e/worker.js" && serveB) file = resolve(workerB);
  else if (!path.startsWith("/e/") || !file.startsWith(folder + sep)) return res.writeHead(404).end();
  if (!existsSync(file) || !statSync(file).isFile()) return res.writeHead(404).end();
  res.writeHead(200, { "content-type": types[extname(file)] ?? "application/octet-stream", "cache-control": "no-store" });
  createReadStream(file).pipe(res);
}).listen(0, "127.0.0.1");
await new Promise((ok) => server.on("listening", ok));

const dev = new Set(readFileSync(join(data, "qrels/dev.tsv"), "utf8").trim().split("\n").slice(1).map((l) => l.split("\t")[0]));
const questions = readFileSync(join(data, "queries.jsonl"), "utf8")
  .trim()
  .split("\n")
  .map((l) => JSON.parse(l))
  .filter((q) => dev.has(q._id))
  .map((q) => q.text);

const browser = await chromium.launch({ executablePath: arg("--chromium", process.env.CHROMIUM ?? "/usr/bin/chromium"), args: ["--no-sandbox"] });
const page = await browser.newPage();
await page.goto(`http://127.0.0.1:${server.address().port}/`);
await page.evaluate(async () => {
  const { Retriever } = await import("/e/index.js");
  window.r = await Retriever.load({ index: "/e/" });
});
for (const q of questions.slice(0, nQueries)) await page.evaluate((q) => window.r.search(q, { k: 10 }), q);
const entries = await page.evaluate(async () => (await window.r.info()).cache.stores);

const runs = { a: [], b: [] };
for (let i = 0; i < reloads; i++) {
  serveB = !!workerB && i % 2 === 1;
  await page.reload();
  const q = questions[nQueries + i] ?? questions[i];
  const r = await page.evaluate(async (q) => {
    const t = performance.now();
    const { Retriever } = await import("/e/index.js");
    const r = await Retriever.load({ index: "/e/" });
    const load = performance.now() - t;
    await r.search(q, { k: 10 });
    return { load, first: performance.now() - t };
  }, q);
  runs[serveB ? "b" : "a"].push(r);
}
const median = (v) => [...v].sort((x, y) => x - y)[Math.floor((v.length - 1) / 2)];
const line = (name, rs) => `${name}: load median ${median(rs.map((r) => r.load)).toFixed(0)} ms [${rs.map((r) => r.load.toFixed(0)).join("/")}], load + first search ${median(rs.map((r) => r.first)).toFixed(0)} ms [${rs.map((r) => r.first.toFixed(0)).join("/")}]`;
console.log(`warm_reload: ${entries} files cached by ${nQueries} questions, then ${reloads} reloads`);
console.log(line("worker.js of the folder", runs.a));
if (workerB) console.log(line(workerB, runs.b));
await browser.close();
server.close();
