#!/usr/bin/env node
// The package in a Vite app (tests/browser/vite-app): it imports
// "ernie-search" and "ernie-search/widget" by name (tests/browser/package.json
// links pkg/ as that dependency), and must answer one question in Chromium
// from the dev server and from a production build. Checks that bundlers find
// the worker and the wasm file through the package's `new URL(..., import.meta.url)`.
//
//   node tests/browser/vite.mjs [--site target/e2e-site] [--chromium /usr/bin/chromium]
//
// Normally run by scripts/test-e2e.sh, after tests/browser/make_site.sh.

import { rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { chromium } from "playwright-core";
import { build, createServer, preview } from "vite";
import { chromiumArgs, root, suite } from "./harness.mjs";

const t = suite("vite");
const [QUESTION, ANSWER] = ["keeper climbs spiral tower lamp", "lighthouse"];

async function main() {
  const opt = t.args({ site: "target/e2e-site" });
  const site = resolve(root, opt.site);
  t.needSite(site, opt.site);
  t.needChromium(opt.chromium);
  const outDir = join(root, "target/e2e-vite");
  const config = {
    root: join(root, "tests/browser/vite-app"),
    configFile: false,
    publicDir: site, // serves (and ships) the index folder at /_ernie/
    cacheDir: join(outDir, ".vite"),
    logLevel: "warn",
    clearScreen: false,
    // Keep the linked package at its node_modules path, so Vite treats it as
    // an installed dependency (pre-bundled by the dev server), as users get it.
    resolve: { preserveSymlinks: true },
    server: { host: "127.0.0.1", port: 0, fs: { allow: [root] } },
    preview: { host: "127.0.0.1", port: 0 },
    build: { outDir: join(outDir, "dist"), emptyOutDir: true },
  };

  // A plain (not persistent) browser: each page gets a fresh context.
  const browser = await chromium.launch({ executablePath: opt.chromium, args: chromiumArgs() });
  let failed = false;
  /** Opens the app at `base` and checks its answer. */
  const check = async (what, base) => {
    const page = await browser.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(e.message));
    try {
      await page.goto(`${base}?q=${encodeURIComponent(QUESTION)}`);
      await page.waitForFunction(() => window.result, null, { timeout: 30_000 });
      const r = await page.evaluate(() => window.result);
      const ok = r.ids?.[0] === ANSWER && r.widget && !errors.length;
      failed ||= !ok;
      console.log(`  ${ok ? "ok  " : "FAIL"} ${what}: ${r.error ?? `top ${r.ids.join(", ")}; widget ${r.widget ? "defined" : "missing"}`}${errors.length ? `; page errors: ${errors.join("; ")}` : ""}`);
    } catch (e) {
      failed = true;
      console.log(`  FAIL ${what}: ${e.message}${errors.length ? `; page errors: ${errors.join("; ")}` : ""}`);
    } finally {
      await page.close();
    }
  };

  try {
    rmSync(config.cacheDir, { recursive: true, force: true }); // a fresh pre-bundle each run
    const dev = await createServer(config);
    await dev.listen();
    await check("vite dev server", dev.resolvedUrls.local[0]);
    await dev.close();

    await build(config);
    const server = await preview(config);
    await check("vite build (target/e2e-vite/dist)", server.resolvedUrls.local[0]);
    await server.close();
  } finally {
    await browser.close();
  }
  console.log(failed ? "vite: FAIL" : "vite: PASS");
  process.exitCode = failed ? 1 : 0;
}

t.run(main);
