#!/usr/bin/env node
// The threaded build (pkg/ernie_search_threads.js: rayon on Web Workers) in
// headless Chromium, through the npm API: on a cross-origin isolated page
// `threads: "auto"` runs it on every core and gives the one-thread builds'
// embeddings bit for bit; on a page that is not isolated it is not used, and
// asking for threads there is refused. Skipped, loudly, when the package has
// no threaded build (scripts/build-wasm.sh says why).
//
//   node tests/browser/threads.mjs [--fixture target/wasm-fixture] [--chromium /usr/bin/chromium]

import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { assert, launch, pageOpener, root, serveFiles, suite } from "./harness.mjs";

const t = suite("threads");
const TEXTS = ["the lighthouse keeper climbs the spiral tower", "paris", "", "a much longer passage about the capital of france and its river, its bridges and its museums, told twice: a much longer passage about the capital of france", "tea", "keeper of the lamp"];

/** /iso/... is served cross-origin isolated (COOP + COEP), the rest not; /pkg/ and /fixture/ under both. */
function serve(fixture) {
  return serveFiles({
    mount: (path) => {
      const rel = path.replace(/^\/iso(?=\/)/, "");
      if (rel.startsWith("/pkg/")) return [[join(root, "pkg"), rel.slice("/pkg".length)]];
      if (rel.startsWith("/fixture/")) return [[fixture, rel.slice("/fixture".length)]];
      return [[join(root, "tests/browser/e2e"), rel]];
    },
    headers: (path) => ({
      "cache-control": "no-store",
      ...(path.startsWith("/iso/") ? { "cross-origin-opener-policy": "same-origin", "cross-origin-embedder-policy": "require-corp" } : {}),
    }),
  });
}

/** Loads the fixture model in `page` with `options`; its info and embeddings, or the error. */
function load(page, prefix, options) {
  return page.evaluate(
    async ([prefix, options, texts]) => {
      const { Retriever } = await import(`${prefix}/pkg/index.js`);
      try {
        const r = await Retriever.load({ model: `${prefix}/fixture/tiny.gguf`, backend: "cpu", ...options });
        const info = await r.info();
        const vectors = (await r.embed(texts)).map((v) => Array.from(v));
        r.close?.();
        return { info, vectors, isolated: self.crossOriginIsolated, cores: navigator.hardwareConcurrency };
      } catch (e) {
        return { error: String(e.message ?? e), isolated: self.crossOriginIsolated };
      }
    },
    [prefix, options, TEXTS],
  );
}

async function main() {
  const opt = t.args({ fixture: "target/wasm-fixture" });
  const fixture = resolve(root, opt.fixture);
  if (!existsSync(join(fixture, "tiny.gguf"))) t.die(`${opt.fixture}/tiny.gguf is missing; run cargo run --release --example wasm_fixture -- ${opt.fixture}`);
  t.needPkg();
  t.needChromium(opt.chromium);
  if (!existsSync(join(root, "pkg/ernie_search_threads.js"))) {
    console.error("\n!!!!!!!! threads: SKIPPED: pkg/ has no threaded build (scripts/build-wasm.sh needs Debian's rustc-web toolchain) !!!!!!!!\n");
    return;
  }
  const server = await serve(fixture);
  const origin = `http://127.0.0.1:${server.address().port}`;
  const browser = await launch(opt.chromium, { profile: "threads", timeout: 60_000 });
  const pageErrors = [];
  const open = pageOpener(browser.context, origin, pageErrors);
  await t.session({ browser, server, errors: pageErrors }, async () => {
    const iso = await open("/iso/blank.html");
    const threaded = await load(iso, "/iso", {});
    const single = await load(iso, "/iso", { threads: 1 });
    await t.check("an isolated page runs the threaded build on every core (at most 8)", async () => {
      assert(threaded.isolated, "the page is not cross-origin isolated");
      assert(!threaded.error, threaded.error);
      const n = Math.max(1, Math.min(8, threaded.cores));
      const want = `fused simd128, ${n} thread${n === 1 ? "" : "s"}`;
      assert(threaded.info.cpu_kernel === want && !threaded.info.threads_fallback, `${threaded.info.cpu_kernel} (want ${want}); ${threaded.info.threads_fallback ?? ""}`);
      // It timed a query split across the pool and on one thread, and says which it keeps.
      const split = new RegExp(`^a \\d+-token text timed at load, best of 3: split across ${n} threads [\\d.]+ ms, on one [\\d.]+ ms: (split|one thread a text)$`);
      assert(n === 1 || split.test(threaded.info.kernel_choice ?? ""), `kernel_choice ${threaded.info.kernel_choice}`);
      return `${threaded.info.cpu_kernel}; ${threaded.info.kernel_choice ?? "no split timed"}`;
    });
    await t.check("threads: 1 on the same page runs one thread, with the same embeddings bit for bit", async () => {
      assert(!single.error, single.error);
      assert(/, 1 thread$/.test(single.info.cpu_kernel), single.info.cpu_kernel);
      const differ = TEXTS.map((_, i) => i).filter((i) => threaded.vectors[i].length !== single.vectors[i].length || threaded.vectors[i].some((x, j) => !Object.is(x, single.vectors[i][j])));
      assert(differ.length === 0, `texts ${differ.join(", ")} differ`);
      return `${single.info.cpu_kernel}: ${TEXTS.length} texts identical`;
    });
    await iso.close();

    const plain = await open("/blank.html");
    await t.check("a page that is not isolated runs one thread", async () => {
      const r = await load(plain, "", {});
      assert(!r.isolated && !r.error, r.error ?? "isolated");
      assert(/, 1 thread$/.test(r.info.cpu_kernel), r.info.cpu_kernel);
      return r.info.cpu_kernel;
    });
    await t.check("threads: 2 on a page that is not isolated is refused, saying why", async () => {
      const r = await load(plain, "", { threads: 2 });
      assert(r.error && r.error.includes("cross-origin isolated"), r.error ?? "loaded");
      return r.error;
    });
    await t.check("a threads value that is not a count is refused", async () => {
      const r = await load(plain, "", { threads: "many" });
      assert(r.error && r.error.includes("threads must be"), r.error ?? "loaded");
    });
    await plain.close();
  });
}

t.run(main);
