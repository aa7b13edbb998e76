#!/usr/bin/env node
// End-to-end test of the offline QA demo (www/demo, built by scripts/demo.sh)
// in headless Chromium, over the tiny fixture site's index folder
// (tests/browser/make_site.sh): answers with the best sentence marked, the
// loading state, hostile passages, a bad index URL, the service worker's
// versioned cache, and a reload with the network off and the server gone.
// Writes a screenshot to OUT/demo.png.
//
//   node tests/browser/demo.mjs [--site target/e2e-site] [--demo target/e2e-demo] [--out target/e2e] [--chromium /usr/bin/chromium]
//
// Normally run by scripts/test-e2e.sh. Exits non-zero, saying why, on any failure.

import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync } from "node:fs";
import { extname, join, resolve } from "node:path";
import { assert, launch, pageOpener, root, serveFiles, suite, trickle } from "./harness.mjs";

const t = suite("demo", { brief: true });
const TIMEOUT_MS = 30_000;
const QUESTION = "keeper climbs spiral tower lamp"; // words of the lighthouse passage
const WANT = "lighthouse";
const BEST_SENTENCE = "Every evening the keeper climbs the spiral tower to light the lamp.";
/** The files sw.js keeps, as paths. */
const SW_FILES = ["/", "/index.html", "/demo.js", "/demo.css", "/pkg/index.js", "/pkg/worker.js", "/pkg/text.js", "/pkg/ernie_search.js", "/pkg/ernie_search_bg.wasm"];

/**
 * Serves the demo folder. Nothing may be kept by the HTTP cache, so that
 * offline only the service worker and the Cache API can answer. /slow/_ernie/
 * is the index folder with its model sent in small chunks (load progress can
 * be seen). With `swNext` set, sw.js comes with another VERSION: a new
 * release of the demo.
 */
function serve(dir, state) {
  const slow = (path) => path.startsWith("/slow/_ernie/");
  return serveFiles({
    mount: (path) => [[dir, slow(path) ? path.slice("/slow".length) : path]],
    headers: () => ({ "cache-control": "no-store" }),
    respond: ({ res, path, file, headers }) => {
      if (slow(path) && extname(file) === ".gguf") {
        const body = readFileSync(file);
        res.writeHead(200, { ...headers, "content-length": body.length });
        trickle(body, res);
        return true;
      }
      if (path !== "/sw.js" || !state.swNext) return false;
      const body = Buffer.from(readFileSync(file, "utf8").replace(/^const VERSION = "([^"]+)";/m, `const VERSION = "$1-next";`));
      res.writeHead(200, { ...headers, "content-length": body.length });
      res.end(body);
      return true;
    },
  });
}

/** Waits for the page to finish loading: "ready" or "error". */
async function settled(page) {
  await page.waitForFunction(() => ["ready", "error"].includes(document.body.dataset.state));
  return page.evaluate(() => document.body.dataset.state);
}

/** Asks `q` with the form and returns the answer: ids, the top result's marks and text, the summary, the error. */
async function ask(page, q, mode = "hybrid") {
  const before = await page.evaluate(() => Number(document.body.dataset.answers ?? 0));
  await page.locator("#q").fill(q);
  await page.locator("#mode").selectOption(mode);
  await page.locator("#go").click();
  await page.waitForFunction((n) => Number(document.body.dataset.answers ?? 0) > n && document.body.dataset.state === "ready", before);
  return page.evaluate(() => {
    const first = document.querySelector("#results > li");
    return {
      ids: [...document.querySelectorAll("#results > li")].map((li) => li.dataset.id),
      marks: first ? [...first.querySelectorAll("mark")].map((m) => m.textContent) : [],
      title: first?.querySelector(".title")?.textContent,
      text: first?.querySelector(".text")?.textContent,
      link: first?.querySelector(".title a")?.getAttribute("href") ?? null,
      summary: document.getElementById("summary").hidden ? null : document.getElementById("summary").textContent,
      error: document.getElementById("error").hidden ? null : document.getElementById("error").textContent,
    };
  });
}

/** Every cache of the origin: name -> paths of its entries. */
function cachesOf(page) {
  return page.evaluate(async () => {
    const out = {};
    for (const name of await caches.keys()) out[name] = (await (await caches.open(name)).keys()).map((r) => new URL(r.url).pathname);
    return out;
  });
}

async function main() {
  const opt = t.args({ site: "target/e2e-site", demo: "target/e2e-demo", out: "target/e2e" });
  const site = resolve(root, opt.site);
  const demo = resolve(root, opt.demo);
  t.needSite(site, opt.site);
  t.needChromium(opt.chromium);
  console.log(`demo: building ${opt.demo} over ${opt.site}/_ernie (scripts/demo.sh)`);
  execFileSync("bash", [join(root, "scripts/demo.sh"), "--index", join(site, "_ernie"), "--out", demo, "--no-serve"], { stdio: "inherit", cwd: root });
  const version = readFileSync(join(demo, "sw.js"), "utf8").match(/^const VERSION = "([^"]+)";/m)?.[1];
  assert(version && version !== "dev", `sw.js has no stamped VERSION (${version})`);
  const manifest = JSON.parse(readFileSync(join(demo, "_ernie/manifest.json"), "utf8"));
  const indexCache = `ernie-search-${manifest.model_fingerprint.slice(0, 16)}`;
  const out = resolve(root, opt.out);
  mkdirSync(out, { recursive: true });

  const state = { swNext: false };
  const server = await serve(demo, state);
  const origin = `http://127.0.0.1:${server.address().port}`;
  const browser = await launch(opt.chromium, { profile: "demo", timeout: TIMEOUT_MS, serviceWorkers: "allow", viewport: { width: 900, height: 760 } });
  const { context } = browser;
  const pageErrors = [];
  const open = pageOpener(context, origin, pageErrors);

  await t.session({ browser, server, errors: pageErrors }, async () => {
    console.log("demo: first visit (online)");
    const page = await open("/");
    await t.check("the page loads the index folder next to it (./_ernie/)", async () => {
      const s = await settled(page);
      const error = await page.locator("#error").textContent();
      assert(s === "ready", `state ${s}: ${error}`);
      const about = await page.locator("#about").textContent();
      assert(about.startsWith(`${manifest.count} passages · model ${manifest.model_name}`), `about: ${about}`);
      return about;
    });
    await t.check(`asking ${JSON.stringify(QUESTION)} puts ${WANT} first, its best sentence marked`, async () => {
      const a = await ask(page, QUESTION);
      assert(a.ids[0] === WANT, `got ${a.ids.join(", ")}`);
      assert(a.marks.length === 1 && a.marks[0] === BEST_SENTENCE, `marks ${JSON.stringify(a.marks)}`);
      assert(a.title === "The lighthouse keeper" && a.text.startsWith("Lighthouses guide ships"), `${a.title}: ${a.text}`);
      assert(/^\d+ best passages? · hybrid search · \d+ ms$/.test(a.summary), `summary ${JSON.stringify(a.summary)}`);
      assert(a.link === `${origin}/#${WANT}`, `link ${a.link}`);
      return a.summary;
    });
    await t.check("the mode is shown and used (lexical)", async () => {
      const a = await ask(page, QUESTION, "lexical");
      assert(a.ids[0] === WANT && /· lexical search ·/.test(a.summary), JSON.stringify(a));
      const url = new URL(page.url());
      assert(url.searchParams.get("q") === QUESTION && url.searchParams.get("mode") === "lexical", `url ${page.url()}`);
      return a.summary;
    });
    await t.check("the service worker is active, controls the page and has cached the page, package and wasm", async () => {
      await page.waitForFunction(() => navigator.serviceWorker.controller?.state === "activated");
      await page.waitForFunction(() => document.getElementById("offline").dataset.ready === "true");
      const all = await cachesOf(page);
      const mine = all[`ernie-demo-${version}`];
      assert(mine, `no cache ernie-demo-${version}: ${Object.keys(all)}`);
      assert(SW_FILES.every((f) => mine.includes(f)) && mine.length === SW_FILES.length, `ernie-demo-${version} holds ${mine}`);
      const ix = all[indexCache] ?? [];
      const need = ["manifest.json", manifest.model_file, manifest.index_file, manifest.lexical.meta].map((f) => `/_ernie/${f}`);
      assert(need.every((f) => ix.includes(f)), `${indexCache} holds ${ix}`);
      assert(ix.some((f) => f.includes("/passages/")) && ix.some((f) => f.includes("/lexical/terms.")), `${indexCache} has no shard or term block: ${ix}`);
      assert(!mine.some((f) => f.startsWith("/_ernie/")), "the service worker cached index files (the package's job)");
      return `${await page.locator("#offline").textContent()}`;
    });

    await t.check("loading state with progress while the model downloads", async () => {
      const p = await open("/?index=/slow/_ernie/");
      await p.waitForFunction(() => {
        const bar = document.getElementById("progress");
        return !bar.hidden && bar.value > 0 && bar.value < bar.max;
      });
      const text = await p.locator("#status-text").textContent();
      assert(/^Loading the model and the index… [\d.]+ [kM]B of [\d.]+ [kM]B$/.test(text), `status ${JSON.stringify(text)}`);
      assert((await p.evaluate(() => document.body.dataset.state)) === "loading", "not in the loading state");
      assert((await settled(p)) === "ready", "the slow load failed");
      assert(await p.locator("#status").isHidden(), "the loading state stayed after the load");
      await p.close();
      return text;
    });

    await t.check("hostile passages show as text and run nothing", async () => {
      let a = await ask(page, "img src onerror");
      assert(a.ids[0] === "xss-img", `got ${a.ids}`);
      assert(a.text === '<img src=x onerror="window.__xss=1">', `text ${JSON.stringify(a.text)}`);
      assert(a.title.startsWith('<b onmouseover="window.__xss=3">'), `title ${JSON.stringify(a.title)}`);
      await page.locator("#results > li .title").first().hover();
      a = await ask(page, "script probe window");
      assert(a.ids[0] === "xss-script" && a.text === "<script>window.__xss=2</script>", JSON.stringify(a));
      const made = await page.evaluate(() => document.querySelectorAll("#results img, #results script, #results b").length);
      assert(made === 0, `${made} img/script/b elements were made from passage text`);
      a = await ask(page, "javascript url probe");
      assert(a.ids[0] === "xss-url" && a.link === null, `a javascript: url became a link: ${JSON.stringify(a)}`);
      const links = await page.evaluate(() => [...document.querySelectorAll("#results a")].filter((l) => !/^https?:/.test(l.href)).length);
      assert(links === 0, `${links} non-web links`);
      const xss = await page.evaluate(() => window.__xss);
      assert(xss === undefined, `window.__xss is ${xss}`);
    });

    await t.check("a bad index URL (?index=/nope/) shows a clear error; the page still responds", async () => {
      const p = await open("/?index=/nope/");
      assert((await settled(p)) === "error", "the load did not fail");
      const error = p.locator("#error");
      const text = await error.textContent();
      const want = new RegExp(`^Could not load the index at ${origin}/nope/: cannot load the index: GET ${origin}/nope/manifest\\.json: HTTP 404.* Is there an index folder at that address\\?`);
      assert(want.test(text), text);
      assert(await p.locator("#status").isHidden(), "the loading state stayed");
      await p.locator("#q").fill("paris");
      await p.locator("#go").click();
      await p.locator("#mode").selectOption("dense");
      assert((await p.locator("#mode").inputValue()) === "dense", "the page did not respond");
      assert((await error.isVisible()) && (await error.textContent()) === text, "the error was lost after asking");
      const t0 = Date.now();
      await p.evaluate(() => 1);
      await p.close();
      return `${text.slice(0, 110)}… (page answered in ${Date.now() - t0} ms)`;
    });

    await t.check("a new demo version replaces the old cache on activation; the index cache stays", async () => {
      await page.evaluate(() => caches.open("ernie-demo-stale"));
      state.swNext = true;
      await page.evaluate(async () => {
        const reg = await navigator.serviceWorker.getRegistration();
        const changed = new Promise((ok) => navigator.serviceWorker.addEventListener("controllerchange", ok, { once: true }));
        await reg.update();
        await changed;
      });
      // The old worker's clean-up runs in the new one's activate step: poll for it.
      let names = [];
      for (const t0 = Date.now(); Date.now() - t0 < TIMEOUT_MS; await page.waitForTimeout(100)) {
        names = (await page.evaluate(() => caches.keys())).sort(); // never caches.open(): it would make a deleted one again
        if (!names.includes(`ernie-demo-${version}`) && !names.includes("ernie-demo-stale")) break;
      }
      assert(JSON.stringify(names) === JSON.stringify([`ernie-demo-${version}-next`, indexCache].sort()), `caches ${names}`);
      return names.join(", ");
    });

    let online = null;
    await t.check(`asked online once more: ${WANT} first (the answer to compare offline)`, async () => {
      online = await ask(page, QUESTION);
      assert(online.ids[0] === WANT, `got ${online.ids}`);
      return online.ids.join(", ");
    });

    console.log("demo: offline (context offline, server stopped)");
    await context.setOffline(true);
    server.close();
    server.closeAllConnections();
    await t.check("the page reloads offline and answers the question in its URL", async () => {
      await page.reload();
      assert((await settled(page)) === "ready", `state: ${await page.locator("#error").textContent()}`);
      await page.waitForFunction(() => Number(document.body.dataset.answers ?? 0) > 0 && document.body.dataset.state === "ready");
      const ids = await page.evaluate(() => [...document.querySelectorAll("#results > li")].map((li) => li.dataset.id));
      assert(new URL(page.url()).searchParams.get("q") === QUESTION, `url ${page.url()}`);
      assert(ids.join() === online?.ids.join(), `got ${ids}, online ${online?.ids}`);
      const about = await page.locator("#about").textContent();
      assert(/from the browser cache$/.test(about), `about: ${about}`);
      return about;
    });
    await t.check("asked again offline: the same top result and sentence", async () => {
      const a = await ask(page, QUESTION);
      assert(a.ids[0] === WANT && a.marks[0] === BEST_SENTENCE && !a.error, JSON.stringify(a));
      assert(a.ids.join() === online?.ids.join(), `got ${a.ids}, online ${online?.ids}`);
      await page.waitForFunction(() => document.getElementById("offline").dataset.ready === "true");
      await page.screenshot({ path: join(out, "demo.png"), fullPage: true });
      return `${a.summary}; screenshot ${join(opt.out, "demo.png")}`;
    });
  });
}

t.run(main);
