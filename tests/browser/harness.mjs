// What the browser tests (e2e.mjs, hostile.mjs, demo.mjs, vite.mjs,
// wasm_parity.mjs) share: the command line, named checks and their summary,
// a static file server, headless Chromium with the flags they all use, and
// pages whose uncaught errors are recorded.
//
//   const t = suite("e2e");
//   const opt = t.args({ site: "target/e2e-site" });   // + --chromium, always
//   await t.check("a check", async () => { assert(ok, "why not"); return "detail"; });
//   t.report();                                          // N/M checks passed, PASS or FAIL
//   t.run(main);                                         // main's rejection: FAIL and exit 1

import { createServer } from "node:http";
import { createReadStream, existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, extname, join, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

/** The repository root. */
export const root = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** Throws `msg` unless `ok`. */
export function assert(ok, msg) {
  if (!ok) throw new Error(msg);
}

/**
 * A test named `name` (the prefix of its messages; the script is NAME.mjs).
 * `brief`: a failed check prints only the first line of its error (Playwright's
 * carry a call log).
 */
export function suite(name, { brief = false } = {}) {
  const results = [];
  const t = {
    name,
    results,

    /** Says why the test cannot run, and exits 1. */
    die(msg) {
      console.error(`${name}: ${msg}`);
      process.exit(1);
    },

    /**
     * The options `--key value`, each key one of `defaults`' (plus
     * `chromium`: $CHROMIUM, else /usr/bin/chromium); anything else dies with the usage.
     */
    args(defaults) {
      const out = { ...defaults, chromium: process.env.CHROMIUM || "/usr/bin/chromium" };
      const usage = `${name}.mjs ${Object.keys(out).map((k) => `[--${k} ${k === "chromium" ? "PATH" : "DIR"}]`).join(" ")}`;
      const argv = process.argv.slice(2);
      for (let i = 0; i < argv.length; i += 2) {
        const k = argv[i].replace(/^--/, "");
        if (!(k in out) || argv[i + 1] === undefined) t.die(`unknown argument ${argv[i]}; usage: ${usage}`);
        out[k] = argv[i + 1];
      }
      return out;
    },

    /** Dies unless SITE/_ernie holds an index folder (`shown`: the path as given). */
    needSite(site, shown) {
      if (!existsSync(join(site, "_ernie/manifest.json"))) t.die(`${shown}/_ernie is missing; run tests/browser/make_site.sh ${shown}`);
    },

    /** Dies unless pkg/ holds the wasm build. */
    needPkg() {
      for (const f of ["ernie_search.js", "ernie_search_bg.wasm"]) if (!existsSync(join(root, "pkg", f))) t.die(`pkg/${f} is missing; run scripts/build-wasm.sh`);
    },

    /** Dies unless there is a browser at `path`. */
    needChromium(path) {
      if (!existsSync(path)) t.die(`no browser at ${path}; install chromium or pass --chromium PATH (or set CHROMIUM)`);
    },

    /** Runs one named check: `fn` passes unless it throws; what it returns is printed. */
    async check(label, fn) {
      try {
        const detail = await fn();
        results.push({ name: label, ok: true });
        console.log(`  ok   ${label}${detail ? `: ${detail}` : ""}`);
      } catch (e) {
        results.push({ name: label, ok: false, error: e.message });
        console.log(`  FAIL ${label}: ${brief ? e.message.split("\n")[0] : e.message}`);
      }
    },

    /** Prints how many checks passed, then PASS, or FAIL and the failed ones (exit status 1). */
    report() {
      const failed = results.filter((r) => !r.ok);
      console.log(`${name}: ${results.length - failed.length}/${results.length} checks passed`);
      if (failed.length) {
        console.error(`${name}: FAIL: ${failed.map((r) => r.name).join("; ")}`);
        process.exitCode = 1;
      } else {
        console.log(`${name}: PASS`);
      }
    },

    /**
     * Runs the checks of `body` against `browser` and `server`, then the check
     * every browser test ends with, `last`: no page threw (`errors` collects
     * what the pages reported). Closes the browser and the server whatever
     * happened, then reports.
     */
    async session({ browser, server, errors, last = "no uncaught errors in any page" }, body) {
      try {
        await body();
        await t.check(last, async () => assert(!errors.length, errors.join("; ")));
      } finally {
        await browser.close();
        server.close();
        server.closeAllConnections?.();
      }
      t.report();
    },

    /** Runs `main`; if it throws, prints FAIL with the stack and exits 1. */
    run(main) {
      main().catch((e) => {
        console.error(`${name}: FAIL: ${e.stack ?? e}`);
        process.exit(1);
      });
    },
  };
  return t;
}

// ---- the static server -------------------------------------------------------

const MIME = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".map": "application/json",
  ".wasm": "application/wasm",
};

/** The Content-Type of `file`, by its extension (application/octet-stream if unknown). */
export function mimeType(file) {
  return MIME[extname(file)] || "application/octet-stream";
}

/**
 * A static file server on 127.0.0.1 and a free port; resolves with the
 * started http.Server.
 *
 * - `mount(path)`: where the decoded URL path may be found, as [dir, rel]
 *   pairs tried in order (rel: the path inside dir, starting with "/"); the
 *   first regular file answers. A rel ending in "/" means its index.html.
 *   A name that resolves outside its dir (`..`, encoded or not) is refused
 *   with 403; no file: 404; a malformed URL: 400. /favicon.ico is 204.
 * - `headers(path, file)`: more response headers (cache-control...).
 * - `respond({ req, res, path, file, stat, headers })`: may answer itself
 *   (cut, slowed or rewritten files) and return true; otherwise the file is
 *   sent whole, with its Content-Length.
 */
export function serveFiles({ mount, headers = () => ({}), respond = () => false }) {
  const server = createServer((req, res) => {
    let path;
    try {
      path = decodeURIComponent(new URL(req.url, "http://x").pathname);
    } catch {
      return res.writeHead(400, { "content-type": "text/plain" }).end("bad request\n");
    }
    if (path === "/favicon.ico") return res.writeHead(204).end();
    let found = null;
    for (const [d, rel] of mount(path)) {
      const dir = resolve(d);
      let file = resolve(dir, "." + rel);
      if (rel.endsWith("/")) file = join(file, "index.html");
      if (!file.startsWith(dir + sep)) return res.writeHead(403, { "content-type": "text/plain" }).end(`forbidden: ${path}\n`);
      try {
        const stat = statSync(file);
        if (stat.isFile()) {
          found = { file, stat };
          break;
        }
      } catch {}
    }
    if (!found) return res.writeHead(404, { "content-type": "text/plain" }).end(`not found: ${path}\n`);
    const head = { "content-type": mimeType(found.file), ...headers(path, found.file) };
    if (respond({ req, res, path, ...found, headers: head })) return;
    res.writeHead(200, { ...head, "content-length": found.stat.size });
    createReadStream(found.file).pipe(res);
  });
  return new Promise((ok, fail) => {
    server.once("error", fail);
    server.listen(0, "127.0.0.1", () => ok(server));
  });
}

/** Sends `bytes` 8 KiB every 40 ms (load progress can be seen), then ends `res`. */
export function trickle(bytes, res) {
  let at = 0;
  const next = () => {
    if (res.destroyed) return;
    if (at >= bytes.length) return res.end();
    res.write(bytes.subarray(at, (at += 8192)));
    setTimeout(next, 40);
  };
  next();
}

// ---- the browser -------------------------------------------------------------

/**
 * Chromium's flags in every test: no sandbox, no GPU (or, with `webgpu`,
 * WebGPU on SwiftShader instead), nothing running in the background, then `extra`.
 */
export function chromiumArgs({ webgpu = false, extra = [] } = {}) {
  return [
    "--no-sandbox", webgpu ? "--enable-unsafe-webgpu" : "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic", ...extra,
  ];
}

/**
 * Headless Chromium at `executablePath` with a fresh profile (a persistent
 * context: service workers and the Cache API as in a real browser).
 * `timeout`: the context's default timeout; `webgpu`, `args`: see
 * chromiumArgs; the rest goes to launchPersistentContext (viewport...).
 * Resolves with { context, close }: close() closes the browser and deletes
 * the profile, and never throws.
 */
export async function launch(executablePath, { profile = "chromium", timeout, webgpu = false, args = [], ...options } = {}) {
  const dir = mkdtempSync(join(tmpdir(), `ernie-${profile}-`));
  let context;
  try {
    context = await chromium.launchPersistentContext(dir, { executablePath, headless: true, args: chromiumArgs({ webgpu, extra: args }), ...options });
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  if (timeout) context.setDefaultTimeout(timeout);
  return {
    context,
    async close() {
      await context.close().catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A function opening `url` (a path on `origin`, or a whole http(s) URL) in a
 * new page of `context`, resolving with the page; its crashes and uncaught
 * errors are pushed to `errors` as "url: message".
 */
export function pageOpener(context, origin, errors) {
  return async (url) => {
    const page = await context.newPage();
    page.on("crash", () => errors.push(`${url}: the page crashed`));
    page.on("pageerror", (e) => errors.push(`${url}: ${e.message}`));
    await page.goto(/^https?:/.test(url) ? url : origin + url);
    return page;
  };
}

/** `promise`, or a rejection after `ms`: something that never answers fails the check instead of hanging the run. */
export function within(ms, promise, what) {
  let timer;
  const late = new Promise((_, no) => (timer = setTimeout(() => no(new Error(`${what}: no answer within ${ms / 1000} s`)), ms)));
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}
