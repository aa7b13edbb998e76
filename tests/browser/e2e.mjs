#!/usr/bin/env node
// End-to-end test of the npm package (pkg/: Retriever, <ernie-search-box>)
// in headless Chromium, over the index folder tests/browser/make_site.sh
// builds: answers, keyboard and ARIA, hostile passages, offline reloads from
// the Cache API, and clear errors for bad folders, corrupt models and huge
// queries. Writes a screenshot of the widget to OUT/widget.png.
//
//   node tests/browser/e2e.mjs [--site target/e2e-site] [--out target/e2e] [--chromium /usr/bin/chromium]
//
// Normally run through scripts/test-e2e.sh, which builds everything first.
// Exits non-zero, saying why, on any failure.

import { createReadStream, mkdirSync, readFileSync, statSync } from "node:fs";
import { extname, join, resolve } from "node:path";
import { assert, launch, pageOpener, root, serveFiles, suite, trickle, within } from "./harness.mjs";

const t = suite("e2e");
const TIMEOUT_MS = 30_000;
/** Questions made of one passage's words, and that passage. */
const QUESTIONS = [
  ["paris capital france london england", "p038"],
  ["zebra kangaroo café zürich", "p037"],
  ["keeper climbs spiral tower lamp", "lighthouse"],
];
const BEST_SENTENCE = "Every evening the keeper climbs the spiral tower to light the lamp.";
const HUGE_QUERY = "word ".repeat(20_000); // 100,000 characters

/**
 * The test site: /pkg/ (the package), /_ernie/ (the index folder), the pages
 * of tests/browser/e2e/ at /, and two broken copies of the folder:
 * /corrupt/_ernie/ (the model cut to 60%) and /slow/_ernie/ (the model sent
 * in small chunks, so the load's progress can be seen). Pages and code may
 * be cached by the browser, as on a deployed site; the index folder may not,
 * so that only the Cache API can serve it when the server is gone.
 */
function serve(site) {
  const variantOf = (path) => path.match(/^\/(corrupt|slow)(?=\/_ernie\/)/)?.[1];
  return serveFiles({
    mount: (path) => {
      const variant = variantOf(path);
      const rel = variant ? path.slice(variant.length + 1) : path;
      if (rel.startsWith("/pkg/")) return [[join(root, "pkg"), rel.slice("/pkg".length)]];
      if (rel.startsWith("/_ernie/")) return [[site, rel]];
      return [[join(root, "tests/browser/e2e"), rel]];
    },
    headers: (path) => ({ "cache-control": /^(\/(corrupt|slow))?\/_ernie\//.test(path) ? "no-store" : "max-age=3600" }),
    respond: ({ res, path, file, stat, headers }) => {
      const variant = variantOf(path);
      if (!variant || extname(file) !== ".gguf") return false;
      if (variant === "slow") {
        res.writeHead(200, { ...headers, "content-length": stat.size });
        trickle(readFileSync(file), res);
      } else {
        const size = Math.floor(stat.size * 0.6);
        res.writeHead(200, { ...headers, "content-length": size });
        createReadStream(file, { end: size - 1 }).pipe(res);
      }
      return true;
    },
  });
}

async function main() {
  const opt = t.args({ site: "target/e2e-site", out: "target/e2e" });
  const site = resolve(root, opt.site);
  t.needSite(site, opt.site);
  t.needPkg();
  t.needChromium(opt.chromium);
  const manifest = JSON.parse(readFileSync(join(site, "_ernie/manifest.json"), "utf8"));
  const modelBytes = statSync(join(site, "_ernie", manifest.model_file)).size;
  const out = resolve(root, opt.out);
  mkdirSync(out, { recursive: true });

  const server = await serve(site);
  const { port } = server.address();
  const origin = `http://127.0.0.1:${port}`;
  const browser = await launch(opt.chromium, {
    profile: "e2e",
    timeout: TIMEOUT_MS,
    viewport: { width: 900, height: 640 },
    // A second name for the server that is not a secure context: no Cache API there.
    args: ["--host-resolver-rules=MAP insecure.test 127.0.0.1"],
  });
  const { context } = browser;
  const pageErrors = [];
  const open = pageOpener(context, origin, pageErrors);
  const apiReady = (page) => page.waitForFunction(() => window.retriever || window.loadError).then(() => page.evaluate(() => window.loadError));
  const top = (page, q) => page.evaluate(async (q) => (await window.retriever.search(q, { k: 5 })).map((r) => r.id), q);
  /** Resolves with the time it took, or rejects if the page's main thread does not answer within `ms`. */
  const responsive = async (page, ms = 2000) => {
    const t0 = Date.now();
    await within(ms, page.evaluate(() => 1), "the page");
    return Date.now() - t0;
  };

  await t.session({ browser, server, errors: pageErrors }, async () => {
    console.log("e2e: npm API (tests/browser/e2e/api.html)");
    const api = await open("/api.html");
    await t.check("Retriever.load over /_ernie/", async () => {
      const error = await apiReady(api);
      assert(!error, error);
    });
    await t.check("load progress, per file, from the body stream", async () => {
      const progress = await api.evaluate(() => window.progress);
      for (const file of ["model", "index", "lexical"]) {
        const last = progress.filter((p) => p.file === file).at(-1);
        assert(last && last.total && last.loaded === last.total, `${file}: last event ${JSON.stringify(last)}`);
      }
      const model = progress.filter((p) => p.file === "model").at(-1);
      assert(model.total === modelBytes, `model total ${model.total}, file ${modelBytes}`);
      return `${progress.length} events`;
    });
    for (const [q, want] of QUESTIONS) {
      await t.check(`search ${JSON.stringify(q)} -> ${want}`, async () => {
        const hits = await api.evaluate(async (q) => window.retriever.search(q, { k: 3 }), q);
        assert(hits[0]?.id === want, `got ${hits.map((h) => h.id).join(", ")}`);
        const h = hits[0];
        assert(typeof h.score === "number" && h.title && h.text && h.url === `#${want}`, `result fields: ${JSON.stringify(h)}`);
      });
    }
    await t.check("info(): backend, model, sizes, cache", async () => {
      const info = await api.evaluate(() => window.retriever.info());
      assert(info.backend === "cpu" && info.requested === "auto" && !info.fallback, `backend ${JSON.stringify([info.backend, info.requested, info.fallback])}`);
      // Our fused kernel, one thread, from the relaxed-SIMD build (Chromium
      // has relaxed SIMD), which keeps the faster of its two kernels: the
      // package says what it runs and why.
      assert(/^fused (relaxed-simd|simd128), 1 thread$/.test(info.cpu_kernel) && !info.simd_fallback, `cpu_kernel ${info.cpu_kernel} (${info.simd_fallback})`);
      assert(/^timed at load on .*: relaxed-simd [\d.]+ ms, simd128 [\d.]+ ms$/.test(info.kernel_choice), `kernel_choice ${info.kernel_choice}`);
      assert(info.model.fingerprint === manifest.model_fingerprint && info.index.count === manifest.count, "model or index mismatch");
      assert(info.sizes.model === modelBytes && info.sizes.index === manifest.index_bytes, `sizes ${JSON.stringify(info.sizes)}`);
      assert(info.sizes.block > 0 && info.sizes.shard > 0, `no term blocks or shards read: ${JSON.stringify(info.sizes)}`);
      const name = `ernie-search-${manifest.model_fingerprint.slice(0, 16)}`;
      assert(info.cache.enabled && info.cache.name === name && info.cache.stores > 0 && !info.cache.error, `cache ${JSON.stringify(info.cache)}`);
      return `sizes ${JSON.stringify(info.sizes)}`;
    });
    await t.check("embed(texts)", async () => {
      const dims = await api.evaluate(async () => (await window.retriever.embed(["a passage", "another one"])).map((v) => v instanceof Float32Array && v.length));
      assert(dims.length === 2 && dims.every((d) => d === manifest.dim), `rows ${JSON.stringify(dims)}`);
    });
    await t.check("details: the mode that answered, and why it is not the one asked for", async () => {
      const [plain, stop] = await api.evaluate(async () => [
        await window.retriever.search("keeper climbs spiral tower lamp", { details: true }),
        await window.retriever.search("the of and?", { details: true }),
      ]);
      assert(plain.mode === "hybrid" && plain.note === null && plain.hits[0]?.id === "lighthouse", JSON.stringify(plain).slice(0, 200));
      assert(stop.mode === "dense" && /stop words/.test(stop.note) && stop.hits.length > 0, JSON.stringify(stop).slice(0, 200));
      return stop.note;
    });
    await t.check("a model alone loads for embedding; search is refused", async () => {
      const r = await api.evaluate(async (model) => {
        const r = await window.Retriever.load({ model });
        const out = {
          dims: (await r.embed(["a passage"])).map((v) => v.length),
          search: await r.search("paris").then(() => "resolved", (e) => e.message),
          cache: (await r.info()).cache,
        };
        r.close();
        return out;
      }, `/_ernie/${manifest.model_file}`);
      assert(r.dims[0] === manifest.dim && /no index is loaded/.test(r.search) && r.cache.name === null, JSON.stringify(r));
      return r.search;
    });
    await t.check("addPassages: your own passages are searchable, alone and beside the index", async () => {
      const r = await api.evaluate(async (model) => {
        const mine = [
          { id: "mine-1", title: "Kayak", text: "the zebra kayak trip down the river", url: "/mine/1" },
          { id: "mine-2", text: "a quiet walk across the bridge at night" },
        ];
        const alone = await window.Retriever.load({ model });
        const out = { count: await alone.addPassages(mine) };
        out.alone = (await alone.search("zebra kayak", { k: 2 }))[0];
        out.twice = await alone.addPassages([mine[0]]).then(() => "resolved", (e) => e.message);
        out.bad = await alone.addPassages([{ id: 7 }]).then(() => "resolved", (e) => e.message);
        alone.close();
        const site = await window.Retriever.load({ index: "/_ernie/" });
        const before = (await site.info()).index.count;
        out.beside = (await site.addPassages(mine)) - before;
        out.hit = (await site.search("zebra kayak", { mode: "lexical", k: 1 }))[0];
        site.close();
        return out;
      }, `/_ernie/${manifest.model_file}`);
      assert(r.count === 2 && r.beside === 2, JSON.stringify(r));
      assert(r.alone?.id === "mine-1" && r.alone.title === "Kayak" && r.alone.url === "/mine/1", JSON.stringify(r.alone));
      assert(r.hit?.id === "mine-1" && r.hit.text.includes("kayak"), JSON.stringify(r.hit));
      assert(/already in the index/.test(r.twice) && /addPassages takes/.test(r.bad), `${r.twice} / ${r.bad}`);
      return `2 passages alone and beside the ${manifest.count}-passage index; duplicate and malformed input refused`;
    });
    await t.check("a 100,000-character query is refused and the page stays responsive", async () => {
      const t0 = Date.now();
      const message = await api.evaluate((q) => window.retriever.search(q).then(() => "resolved", (e) => e.message), HUGE_QUERY);
      assert(/limit is 4096/.test(message), message);
      const ms = await responsive(api);
      return `${Date.now() - t0} ms: "${message}"; page answered in ${ms} ms`;
    });
    await t.check("gpu backend falls back to the CPU, saying why; a new model's cache drops stale ones", async () => {
      const r = await api.evaluate(async () => {
        await caches.open("ernie-search-0123456789abcdef"); // as an older model's would be
        const r = await window.Retriever.load({ index: "/_ernie/", backend: "gpu" });
        const info = await r.info();
        r.close();
        return { info, caches: await caches.keys() };
      });
      assert(r.info.backend === "cpu" && r.info.requested === "gpu" && /WebGPU/.test(r.info.fallback), JSON.stringify(r.info));
      assert(r.caches.length === 1 && r.caches[0] === r.info.cache.name, `caches ${r.caches}`);
      return r.info.fallback;
    });
    for (const [what, index, want] of [
      ["a bad index URL", "/nope/_ernie/", /HTTP 404/],
      ["a corrupt model", "/corrupt/_ernie/", /truncated/],
    ]) {
      await t.check(`${what} rejects Retriever.load with a clear message`, async () => {
        const message = await api.evaluate((index) => window.Retriever.load({ index }).then(() => "resolved", (e) => e.message), index);
        assert(want.test(message), message);
        assert((await top(api, QUESTIONS[0][0]))[0] === QUESTIONS[0][1], "the loaded retriever stopped answering");
        return message;
      });
    }
    await t.check("unknown backend, simd build and mode are refused", async () => {
      const m = await api.evaluate(async () => [
        await window.Retriever.load({ index: "/_ernie/", backend: "tpu" }).then(() => "resolved", (e) => e.message),
        await window.retriever.search("paris", { mode: "fuzzy" }).then(() => "resolved", (e) => e.message),
        await window.Retriever.load({ index: "/_ernie/", simd: "avx" }).then(() => "resolved", (e) => e.message),
      ]);
      assert(/unknown backend/.test(m[0]) && /unknown search mode/.test(m[1]) && /unknown simd/.test(m[2]), JSON.stringify(m));
    });
    await t.check('simd: "simd128" loads the simd128 build, with the same answers', async () => {
      const [kernel, ids] = await api.evaluate(async (q) => {
        const r = await window.Retriever.load({ index: "/_ernie/", backend: "cpu", simd: "simd128" });
        const out = [(await r.info()).cpu_kernel, (await r.search(q, { k: 3 })).map((h) => h.id)];
        r.close();
        return out;
      }, QUESTIONS[0][0]);
      assert(kernel === "fused simd128, 1 thread", `cpu_kernel ${kernel}`);
      assert(ids[0] === QUESTIONS[0][1], `got ${ids}`);
      return kernel;
    });
    await api.close();

    console.log("e2e: without the Cache API (http://insecure.test, not a secure context)");
    const insecure = await open(`http://insecure.test:${port}/api.html`);
    await t.check("loads and searches without caching, saying why", async () => {
      const error = await apiReady(insecure);
      assert(!error, error);
      const ids = await top(insecure, QUESTIONS[0][0]);
      assert(ids[0] === QUESTIONS[0][1], `got ${ids}`);
      const cache = await insecure.evaluate(async () => (await window.retriever.info()).cache);
      assert(!cache.enabled && /Cache API/.test(cache.error), JSON.stringify(cache));
      return cache.error;
    });
    await insecure.close();

    console.log("e2e: <ernie-search-box> (tests/browser/e2e/widget.html)");
    const page = await open("/widget.html");
    await page.evaluate(() => {
      window.selected = [];
      document.addEventListener("ernie-select", (e) => window.selected.push(e.detail.id));
    });
    const input = page.locator("ernie-search-box input");
    const list = page.locator("ernie-search-box [role=listbox]");
    const options = page.locator("ernie-search-box [role=option]");
    const firstId = () => options.first().getAttribute("data-id");
    /** Types `q` key by key (the debounce then fires once) and waits for `id` on top. */
    const ask = async (q, id) => {
      await input.fill("");
      await input.pressSequentially(q, { delay: 10 });
      // Wait for the results of the whole question: a half-typed prefix may
      // already rank the same passage first and be redrawn a moment later.
      await page.waitForFunction(
        ([q, id]) => {
          const box = document.querySelector("ernie-search-box");
          return box.dataset.query === q && box.shadowRoot.querySelector("[role=option]")?.dataset.id === id;
        },
        [q.trim(), id],
      );
    };
    for (const [q, want] of QUESTIONS) {
      await t.check(`typing ${JSON.stringify(q)} shows ${want} first`, async () => {
        await ask(q, want);
        assert((await input.getAttribute("aria-expanded")) === "true", "aria-expanded is not true with results shown");
      });
    }
    await t.check("the best-matching sentence is marked", async () => {
      const marks = await options.first().locator("mark").allTextContents();
      assert(marks.length === 1 && marks[0] === BEST_SENTENCE, JSON.stringify(marks));
    });
    await t.check("ARIA combobox wiring and arrow keys", async () => {
      const attr = (loc, a) => loc.getAttribute(a);
      assert((await attr(input, "role")) === "combobox" && (await attr(list, "role")) === "listbox", "roles");
      assert((await attr(input, "aria-controls")) === (await attr(list, "id")), "aria-controls does not name the listbox");
      assert((await attr(input, "aria-activedescendant")) === null, "an option is active before any arrow key");
      const n = await options.count();
      const state = async () => [await attr(input, "aria-activedescendant"), await options.evaluateAll((os) => os.findIndex((o) => o.getAttribute("aria-selected") === "true"))];
      const steps = [["ArrowDown", 0], ["ArrowDown", 1], ["ArrowUp", 0], ["ArrowUp", n - 1], ["ArrowDown", 0]];
      for (const [key, want] of steps) {
        await input.press(key);
        const [active, selected] = await state();
        const id = await options.nth(want).getAttribute("id");
        assert(active === id && selected === want, `after ${key}: aria-activedescendant ${active}, selected option ${selected}; expected ${id}`);
      }
      await page.screenshot({ path: join(out, "widget.png") });
      await input.press("Escape");
      assert((await attr(input, "aria-expanded")) === "false" && (await list.isHidden()) && (await attr(input, "aria-activedescendant")) === null, "Esc did not close the list");
      await input.press("ArrowDown");
      assert((await attr(input, "aria-expanded")) === "true" && (await attr(input, "aria-activedescendant")) === "option-0", "ArrowDown did not reopen the list");
      return `${steps.length} steps over ${n} options; screenshot ${join(opt.out, "widget.png")}`;
    });
    await t.check("Enter follows the active result's url", async () => {
      await input.press("Enter");
      await page.waitForFunction(() => location.hash === "#lighthouse");
      assert((await page.evaluate(() => window.selected)).at(-1) === "lighthouse", "no ernie-select event");
    });
    await t.check("Ctrl+K and / focus the box; / still types inside it", async () => {
      const focused = () => page.evaluate(() => document.activeElement?.localName === "ernie-search-box" && document.activeElement.shadowRoot.activeElement?.localName === "input");
      for (const key of ["Control+k", "Meta+k", "/"]) {
        await page.locator("#ping").focus();
        await page.keyboard.press(key);
        assert(await focused(), `${key} did not focus the input`);
      }
      const before = await input.inputValue();
      assert(!before.includes("/"), `"/" was typed into the box while focusing it: ${before}`);
      await input.press("End");
      await page.keyboard.type("/");
      assert((await input.inputValue()) === before + "/", "/ inside the box was swallowed");
    });
    await t.check("hostile passages show as text and run nothing", async () => {
      await ask("img src onerror", "xss-img");
      const first = options.first();
      const text = await first.locator(".excerpt").textContent();
      assert(text === '<img src=x onerror="window.__xss=1">', `excerpt ${JSON.stringify(text)}`);
      assert((await first.locator(".title").textContent()).startsWith('<b onmouseover="window.__xss=3">'), "title markup not shown as text");
      await first.locator(".title").hover();
      await ask("script probe window", "xss-script");
      assert((await options.first().locator(".excerpt").textContent()) === "<script>window.__xss=2</script>", "script passage not shown as text");
      const elements = await page.evaluate(() => document.querySelector("ernie-search-box").shadowRoot.querySelectorAll("img, script, b").length);
      assert(elements === 0, `${elements} img/script/b elements were created from passage text`);
      // Choosing a result whose url is javascript: must not run it.
      await ask("javascript url probe", "xss-url");
      await input.press("ArrowDown");
      await input.press("Enter");
      await page.waitForTimeout(300);
      assert((await page.evaluate(() => window.selected)).at(-1) === "xss-url", "no ernie-select event for the javascript: result");
      const xss = await page.evaluate(() => window.__xss);
      assert(xss === undefined, `window.__xss is ${xss}`);
    });
    await t.check("a 100,000-character query shows a clear error; the page keeps working", async () => {
      await input.fill(HUGE_QUERY);
      const error = page.locator("ernie-search-box .error");
      await error.waitFor({ state: "visible" });
      const text = await error.textContent();
      assert(/^Search failed: .*limit is 4096/.test(text), text);
      await page.locator("#ping").click();
      assert((await page.locator("#ping").getAttribute("data-clicks")) === "1", "the page did not handle a click");
      await ask(QUESTIONS[1][0], QUESTIONS[1][1]);
      assert(await error.isHidden(), "the error stayed after a good search");
      return text;
    });
    await page.close();

    for (const [what, query, want] of [
      ["a bad index URL", "?index=/nope/_ernie/&preload", /^Search is unavailable: cannot load the index: GET http:\/\/[^ ]+\/nope\/_ernie\/manifest\.json: HTTP 404/],
      ["a corrupt model", "?index=/corrupt/_ernie/&preload", /^Search is unavailable: .*truncated/],
    ]) {
      await t.check(`${what}: the widget says so and the page keeps working`, async () => {
        const p = await open(`/widget.html${query}`);
        const error = p.locator("ernie-search-box .error");
        await error.waitFor({ state: "visible" });
        const text = await error.textContent();
        assert(want.test(text), text);
        await p.locator("ernie-search-box input").fill("paris");
        await p.locator("#ping").click();
        assert((await p.locator("#ping").getAttribute("data-clicks")) === "1", "the page did not handle a click");
        assert((await error.textContent()) === text, "the error was lost");
        await p.close();
        return text;
      });
    }
    await t.check("loading state with progress, then the GPU fallback notice", async () => {
      const p = await open("/widget.html?index=/slow/_ernie/&backend=gpu&preload");
      const bar = p.locator("ernie-search-box progress");
      await bar.waitFor({ state: "visible" });
      await p.waitForFunction(() => {
        const bar = document.querySelector("ernie-search-box").shadowRoot.querySelector("progress");
        return bar.value > 0 && bar.value < bar.max;
      });
      const status = await p.locator("ernie-search-box .status").textContent();
      assert(/^Loading search… [\d.]+ [kM]B of [\d.]+ [kM]B$/.test(status), `status ${JSON.stringify(status)}`);
      const notice = p.locator("ernie-search-box .notice");
      await notice.waitFor({ state: "visible" });
      assert(await p.locator("ernie-search-box .status").isHidden(), "the loading state stayed after the load");
      const text = await notice.textContent();
      assert(/^GPU requested; searching on the CPU/.test(text), text);
      await p.close();
      return `"${status}", then "${text}"`;
    });

    console.log("e2e: WebGPU on (--enable-unsafe-webgpu, SwiftShader) vs off");
    await t.check("the same top-10 with WebGPU available and without", async () => {
      const questions = [...QUESTIONS.map(([q]) => q), "river bridge city", "the of and"];
      const ten = (page) => page.evaluate(async (qs) => {
        const out = [];
        for (const q of qs) out.push((await window.retriever.search(q, { k: 10 })).map((r) => [r.id, r.score]));
        return out;
      }, questions);
      const plain = await open("/api.html");
      assert(!(await apiReady(plain)), "the page without WebGPU did not load");
      const off = await ten(plain);
      await plain.close();
      const gpu = await launch(opt.chromium, { profile: "e2e-gpu", webgpu: true });
      try {
        const p = await gpu.context.newPage();
        await p.goto(`${origin}/api.html?backend=gpu`);
        const error = await apiReady(p);
        assert(!error, error);
        const adapter = await p.evaluate(async () => !!(await navigator.gpu?.requestAdapter()));
        const on = await ten(p);
        const info = await p.evaluate(() => window.retriever.info());
        // The same ids; out of order only between near-tied scores: the GPU
        // multiplies in f32 where the wasm CPU kernel rounds activations to
        // 8 bits, so fused scores may differ by ~1e-4 and swap a near-tie.
        const swapped = [];
        on.forEach((list, qi) => {
          const offIds = off[qi].map(([id]) => id);
          const offScore = new Map(off[qi]);
          assert(JSON.stringify([...offIds].sort()) === JSON.stringify(list.map(([id]) => id).sort()), `top-10 ids differ for ${JSON.stringify(questions[qi])}: ${JSON.stringify(list)} vs ${JSON.stringify(off[qi])}`);
          list.forEach(([id], i) => {
            if (id === offIds[i]) return;
            const gap = Math.abs(offScore.get(id) - off[qi][i][1]);
            assert(gap <= 2e-3, `rank ${i + 1} for ${JSON.stringify(questions[qi])}: ${id} vs ${offIds[i]}, score gap ${gap}`);
            swapped.push(`${id}/${offIds[i]} (gap ${gap.toExponential(1)})`);
          });
        });
        // With an adapter the WebGPU backend runs the encoder and the scan;
        // without one it falls back, saying why.
        if (adapter) assert(info.backend === "gpu" && info.scan === "gpu" && info.adapter && !info.fallback, `info(): ${JSON.stringify([info.backend, info.scan, info.adapter, info.fallback])}`);
        else assert(info.backend === "cpu" && info.fallback, `info(): ${JSON.stringify(info.fallback)}`);
        return `${questions.length} questions: same ids${swapped.length ? `, near-ties swapped: ${swapped.join(", ")}` : ", same order"}; WebGPU adapter ${adapter ? `present (${info.adapter.api}, ${info.adapter.device_type})` : "absent"}; backend ${info.backend}, scan ${info.scan}${info.fallback ? ` (${info.fallback})` : ""}`;
      } finally {
        await gpu.close();
      }
    });

    console.log("e2e: offline (the server stopped)");
    server.close();
    server.closeAllConnections();
    await t.check("the API page reloads and answers from the Cache API", async () => {
      const p = await open("/api.html");
      const error = await apiReady(p);
      assert(!error, error);
      for (const [q, want] of QUESTIONS) assert((await top(p, q))[0] === want, `${q}: wrong answer offline`);
      const info = await p.evaluate(() => window.retriever.info());
      assert(info.files.every((f) => f.cached), `read from the network: ${info.files.filter((f) => !f.cached).map((f) => f.url)}`);
      await p.close();
      return `${info.files.length} files from ${info.cache.name}`;
    });
    await t.check("the widget reloads and answers from the Cache API", async () => {
      const p = await open("/widget.html");
      const input = p.locator("ernie-search-box input");
      await input.pressSequentially(QUESTIONS[2][0], { delay: 10 });
      await p.locator("ernie-search-box [role=option]").first().waitFor();
      const id = await p.locator("ernie-search-box [role=option]").first().getAttribute("data-id");
      assert(id === QUESTIONS[2][1], `got ${id}`);
      await p.close();
    });
  });
}

t.run(main);
