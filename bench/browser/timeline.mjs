// The cold first answer on slow 4G, request by request: when each file was
// asked for and when it arrived (ms from the start), to see the critical
// path. node bench/browser/timeline.mjs --site target/h2h/wiki/site [--query Q] [--then Q]... [--h2]
// --h2: over HTTP/2 with TLS (a throwaway self-signed certificate) instead of HTTP/1.1.
import { createServer } from "node:http";
import { createSecureServer } from "node:http2";
import { readFileSync, existsSync, statSync } from "node:fs";
import { join, extname } from "node:path";
import { gzipSync } from "node:zlib";
import { chromium } from "playwright-core";
import { selfSignedTls } from "./tls.mjs";

const arg = (name, def) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : def;
};
const folder = join(arg("--site", "target/h2h/wiki/site"), "_ernie");
const query = arg("--query", "who painted a sunday afternoon on the island of la grande jatte");
const types = { ".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm", ".json": "application/json", ".html": "text/html" };
const h2 = process.argv.includes("--h2");
const handle = (req, res) => {
  const path = decodeURIComponent(new URL(req.url, "http://x").pathname);
  if (path === "/") return res.writeHead(200, { "content-type": "text/html" }).end("<!doctype html><title>t</title>");
  const file = join(folder, path.replace(/^\/e\//, ""));
  if (!path.startsWith("/e/") || !existsSync(file) || !statSync(file).isFile()) return res.writeHead(404).end();
  const body = gzipSync(readFileSync(file), { level: 6 });
  res.writeHead(200, { "content-type": types[extname(file)] ?? "application/octet-stream", "content-encoding": "gzip", "content-length": body.length }).end(body);
};
const server = (h2 ? createSecureServer(selfSignedTls(), handle) : createServer(handle)).listen(0, "127.0.0.1");
await new Promise((r) => server.on("listening", r));
const base = `${h2 ? "https" : "http"}://127.0.0.1:${server.address().port}`;
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", args: ["--no-sandbox"] });
const page = await browser.newPage({ ignoreHTTPSErrors: h2 });
await page.goto(`${base}/`);
const cdp = await page.context().newCDPSession(page);
await cdp.send("Network.enable");
await cdp.send("Network.emulateNetworkConditions", { offline: false, latency: 150, downloadThroughput: (1.6 * 1024 * 1024) / 8, uploadThroughput: (750 * 1024) / 8 });
const reqs = [];
page.context().on("requestfinished", (r) => {
  const t = r.timing();
  reqs.push({ url: r.url().replace(base, ""), start: t.startTime, end: t.startTime + t.responseEnd });
});
const ms = await page.evaluate(async (q) => {
  const t = performance.now();
  const { Retriever } = await import("/e/index.js");
  self.r = await Retriever.load({ index: "/e/" });
  const tl = performance.now() - t;
  const hits = await self.r.search(q, { k: 10 });
  return { load: tl, total: performance.now() - t, n: hits.length, first: hits[0]?.title };
}, query);
const show = (title, ms) => {
  const rows = reqs.splice(0).filter((r) => r.url.startsWith("/e/"));
  const t0 = Math.min(...rows.map((r) => r.start));
  console.log(title);
  for (const r of rows.sort((a, b) => a.start - b.start)) {
    console.log(`${(r.start - t0).toFixed(0).padStart(6)} -> ${(r.end - t0).toFixed(0).padStart(6)}  ${r.url}`);
  }
  console.log(JSON.stringify(ms));
};
show(`load and ${JSON.stringify(query)}`, ms);
// --then Q (repeatable): later questions on the same page, one at a time.
for (const [i, a] of process.argv.entries()) {
  if (a !== "--then") continue;
  const q = process.argv[i + 1];
  const later = await page.evaluate(async (q) => {
    const t = performance.now();
    const hits = await self.r.search(q, { k: 10 });
    return { total: performance.now() - t, n: hits.length, first: hits[0]?.title, timings: hits.timings };
  }, q);
  show(`then ${JSON.stringify(q)}`, later);
}
await browser.close();
server.close();
