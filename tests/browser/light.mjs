#!/usr/bin/env node
// End-to-end test of the light engine (pkg/ernie_search_light.js: no model;
// the token table encodes queries, vectors arrive by cluster) in headless
// Chromium, over SITE/light/_ernie from tests/browser/make_site.sh: what it
// downloads, that a query fetches only the clusters it probes, partial
// answers when a part fails to load (and the retry), and the progressive
// upgrade to the transformer.
//
//   node tests/browser/light.mjs [--site target/e2e-site] [--chromium /usr/bin/chromium]
//
// Run by scripts/test-e2e.sh after e2e.mjs. Exits non-zero, saying why, on any failure.

import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { assert, launch, pageOpener, root, serveFiles, suite, within } from "./harness.mjs";

const t = suite("light");
const TIMEOUT_MS = 30_000;
/** Keyword-rich questions (the tiny model knows no meaning), and their passage. */
const QUESTIONS = [
  ["paris capital france london england", "p038"],
  ["keeper climbs spiral tower lamp", "lighthouse"],
];

/** While set, every request for /_ernie/ is cut off, as when the visitor is offline. */
let offline = false;
/** While set, /pkg/'s scripts are the minified copies a site serves (pkg/min/). */
let minified = false;

/**
 * /pkg/, the pages of tests/browser/e2e/, /_ernie/ (the light folder) and
 * /flaky/_ernie/ (the same, where each cluster list fails once with a 503).
 */
function serve(site) {
  const failed = new Set();
  return serveFiles({
    mount: (path) => {
      const rel = path.replace(/^\/flaky(?=\/_ernie\/)/, "");
      if (rel.startsWith("/pkg/")) return [...(minified ? [[join(root, "pkg/min"), rel.slice("/pkg".length)]] : []), [join(root, "pkg"), rel.slice("/pkg".length)]];
      if (rel.startsWith("/_ernie/")) return [[join(site, "light"), rel]];
      return [[join(root, "tests/browser/e2e"), rel]];
    },
    headers: () => ({ "cache-control": "no-store" }),
    respond: ({ req, res, path }) => {
      if (offline && path.startsWith("/_ernie/")) return req.socket.destroy(), true;
      if (!/^\/flaky\/_ernie\/vectors\/list\./.test(path) || failed.has(path)) return false;
      failed.add(path);
      res.writeHead(503, { "content-type": "text/plain" });
      res.end("try again");
      return true;
    },
  });
}

async function main() {
  const opt = t.args({ site: "target/e2e-site" });
  const site = resolve(root, opt.site);
  t.needSite(join(site, "light"), `${opt.site}/light`);
  t.needPkg();
  t.needChromium(opt.chromium);
  const manifest = JSON.parse(readFileSync(join(site, "light/_ernie/manifest.json"), "utf8"));
  assert(manifest.clusters && manifest.table, `${opt.site}/light/_ernie has no clusters or table`);

  const server = await serve(site);
  const origin = `http://127.0.0.1:${server.address().port}`;
  const browser = await launch(opt.chromium, { profile: "light", timeout: TIMEOUT_MS, viewport: { width: 900, height: 640 } });
  const pageErrors = [];
  const open = pageOpener(browser.context, origin, pageErrors);
  const ready = (page) => page.waitForFunction(() => window.retriever || window.loadError).then(() => page.evaluate(() => window.loadError));
  const ask = (page, q, opts = {}) => page.evaluate(([q, o]) => window.retriever.search(q, { k: 5, details: true, ...o }), [q, opts]);
  const info = (page) => page.evaluate(() => window.retriever.info());
  // Closes a page once its worker has finished its Cache API writes (info()
  // waits for them; a search defers them until its answer is posted). One CI
  // run saw every page after the flaky one hang while loading; a worker
  // killed in the middle of `cache.put` is the suspect.
  const closed = async (page) => {
    await page.evaluate(() => window.retriever?.info()).catch(() => {});
    await page.close();
  };

  await t.session({ browser, server, errors: pageErrors }, async () => {
    const api = await open("/api.html");
    await t.check("a folder with a table and clusters loads the light engine, with no model", async () => {
      const error = await ready(api);
      assert(!error, error);
      const i = await info(api);
      assert(i.build === "light" && i.encoder === "table" && i.model === null, JSON.stringify([i.build, i.encoder, i.model]));
      const kinds = new Set(i.files.map((f) => f.kind));
      assert(!kinds.has("model") && !kinds.has("index"), `read ${[...kinds]}`);
      assert(i.index.count === manifest.count && i.index.clusters.loaded === 0, JSON.stringify(i.index));
      // The commonest words' table chunks come with the head.
      assert(manifest.table.hot?.length > 0 && i.table.loaded_chunks === manifest.table.hot.length, JSON.stringify([manifest.table.hot, i.table]));
      return `first load: ${i.files.map((f) => `${f.kind} ${f.bytes}`).join(", ")}`;
    });
    for (const [q, want] of QUESTIONS) {
      await t.check(`search ${JSON.stringify(q)} -> ${want}, by the table`, async () => {
        const a = await ask(api, q);
        assert(a.hits[0]?.id === want && a.encoder === "table" && a.mode === "hybrid" && !a.partial, JSON.stringify(a).slice(0, 300));
        assert(a.hits[0].text && a.hits[0].url === `#${want}`, JSON.stringify(a.hits[0]));
        const t = a.timings;
        assert(["fetch_ms", "search_ms", "texts_ms"].every((k) => Number.isFinite(t?.[k]) && t[k] >= 0), JSON.stringify(t));
        return `${t.fetch_ms} ms fetching, ${t.search_ms} ms searching, ${t.texts_ms} ms loading texts`;
      });
    }
    await t.check("a query fetches only the clusters and table rows it needs", async () => {
      const i = await info(api);
      const c = i.index.clusters;
      assert(c.loaded >= 1 && c.loaded <= c.nprobe * QUESTIONS.length && c.loaded < c.clusters, JSON.stringify(c));
      assert(i.sizes.vectors < manifest.clusters.bytes, JSON.stringify(i.sizes));
      return `${c.loaded} of ${c.clusters} clusters, ${i.table.loaded_chunks} of ${i.table.chunks} table chunks`;
    });
    await t.check("dense and lexical modes answer too", async () => {
      const [d, l] = [await ask(api, QUESTIONS[1][0], { mode: "dense" }), await ask(api, QUESTIONS[1][0], { mode: "lexical" })];
      assert(d.mode === "dense" && d.encoder === "table" && d.hits.length, JSON.stringify(d).slice(0, 200));
      assert(l.mode === "lexical" && l.encoder === null && l.hits[0]?.id === "lighthouse", JSON.stringify(l).slice(0, 200));
    });
    await t.check("embedding texts on the light engine is a clear error, and the engine keeps working", async () => {
      const err = await api.evaluate(() => window.retriever.embed(["a passage"]).then(() => null, (e) => String(e.message ?? e)));
      assert(err && err.includes("needs the transformer"), err);
      const a = await ask(api, QUESTIONS[0][0]);
      assert(a.hits[0]?.id === QUESTIONS[0][1], JSON.stringify(a).slice(0, 200));
      return err;
    });
    await closed(api);

    const flaky = await open("/api.html?index=/flaky/_ernie/");
    await t.check("a cluster that fails to load: partial results, said, and retried by the next search", async () => {
      const error = await ready(flaky);
      assert(!error, error);
      const [q, want] = QUESTIONS[1];
      const first = await ask(flaky, q);
      assert(first.partial && /partial results/.test(first.note) && first.hits.length > 0, JSON.stringify(first).slice(0, 300));
      const again = await ask(flaky, q);
      assert(!again.partial && again.note === null && again.hits[0]?.id === want, JSON.stringify(again).slice(0, 300));
      return first.note;
    });
    await closed(flaky);

    const progressive = await open("/api.html?progressive");
    await t.check("progressive: the table answers first, then the transformer loaded in the background", async () => {
      const error = await ready(progressive);
      assert(!error, error);
      const [q, want] = QUESTIONS[0];
      const first = await ask(progressive, q);
      assert(first.encoder === "table" && first.hits[0]?.id === want, JSON.stringify(first).slice(0, 200));
      const upgraded = progressive.evaluate(async () => {
        for (;;) {
          const state = (await window.retriever.info()).upgrade?.state;
          if (state === "done" || state === "failed") return state;
          await new Promise((ok) => setTimeout(ok, 50));
        }
      });
      await within(TIMEOUT_MS, upgraded, "the background load of the transformer");
      const i = await info(progressive);
      assert(i.upgrade.state === "done" && i.encoder === "transformer" && i.model?.fingerprint === manifest.model_fingerprint, JSON.stringify(i.upgrade));
      const later = await ask(progressive, q);
      assert(later.encoder === "transformer" && later.hits[0]?.id === want, JSON.stringify(later).slice(0, 200));
      return `then by the transformer (${i.build} build)`;
    });
    await closed(progressive);

    const page = await open("/widget.html?encoder=auto");
    await t.check("the widget answers by the table and says so on its host", async () => {
      const [q, want] = QUESTIONS[1];
      await page.locator("ernie-search-box input").pressSequentially(q, { delay: 10 });
      await page.waitForFunction(([q, id]) => {
        const box = document.querySelector("ernie-search-box");
        return box.dataset.query === q && box.shadowRoot.querySelector("[role=option]")?.dataset.id === id;
      }, [q, want]);
      const encoder = await page.evaluate(() => document.querySelector("ernie-search-box").dataset.encoder);
      assert(encoder === "table", `data-encoder ${encoder}`);
    });
    await closed(page);

    await t.check("the minified scripts a site serves (pkg/min/) answer as the package's do", async () => {
      assert(existsSync(join(root, "pkg/min/worker.js")), "no pkg/min/: scripts/build-wasm.sh writes it (it needs node and npm)");
      minified = true;
      const p = await open("/api.html");
      let full;
      try {
        assert(!(await ready(p)), "the page did not load");
        const i = await info(p);
        assert(i.build === "light" && i.encoder === "table", JSON.stringify([i.build, i.encoder]));
        for (const [q, want] of QUESTIONS) {
          const a = await ask(p, q);
          assert(a.hits[0]?.id === want && a.encoder === "table" && !a.partial, JSON.stringify(a).slice(0, 300));
        }
        const worker = await p.evaluate(() => fetch("/pkg/worker.js").then((r) => r.text()));
        assert(!worker.includes("// The engine's thread"), "/pkg/worker.js was not the minified copy");
        // The full engine's glue too (encoder "transformer", or progressive).
        full = await open("/api.html?encoder=transformer");
        assert(!(await ready(full)), "the transformer's page did not load");
        const a = await ask(full, QUESTIONS[0][0]);
        assert(a.hits[0]?.id === QUESTIONS[0][1] && a.encoder === "transformer", JSON.stringify(a).slice(0, 300));
        return `worker.js ${worker.length} bytes; the table and the transformer answer`;
      } finally {
        minified = false;
        await closed(p);
        if (full) await closed(full);
      }
    });

    await t.check("offline, a page answers from files another page cached after it loaded", async () => {
      // The worker lists the cache once, after its first search, and then
      // asks the network first for what the list lacks; offline it must look
      // in the cache again.
      const [q, want] = ["javascript url probe passage", "xss-url"];
      const first = await open("/api.html");
      assert(!(await ready(first)), "the first page did not load");
      const name = (await info(first)).cache.name;
      await first.evaluate((name) => caches.delete(name), name);
      await closed(first);
      const early = await open("/api.html");
      assert(!(await ready(early)), "the page did not load");
      // A first search (another question) makes it list the cache.
      assert((await ask(early, QUESTIONS[0][0])).hits[0]?.id === QUESTIONS[0][1], "the first search failed");
      await early.waitForFunction(async () => (await window.retriever.info()).cache.listed !== null);
      const other = await open("/api.html");
      assert(!(await ready(other)), "the second page did not load");
      const online = await ask(other, q);
      assert(online.hits[0]?.id === want && !online.partial, JSON.stringify(online).slice(0, 200));
      await info(other); // waits for its Cache API writes
      await closed(other);
      offline = true;
      try {
        const a = await ask(early, q);
        assert(a.hits[0]?.id === want && !a.partial && a.hits[0].text, JSON.stringify(a).slice(0, 300));
        const i = await info(early);
        const read = i.files.filter((f) => ["table", "vectors", "block", "shard"].includes(f.kind) && f.cached);
        assert(read.length > 0, JSON.stringify(i.files));
        return `${read.length} files of the search from the cache`;
      } finally {
        offline = false;
        await closed(early);
      }
    });
  });
}

t.run(main);
