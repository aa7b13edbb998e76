// Encode speed of the wasm Engine, one thread: in Node's V8 (the quick loop
// used while tuning the wasm kernels) or, with --chromium, in headless
// Chromium (the browser the figures are for; bench/browser/run.sh gives the
// head-to-head with Transformers.js). Needs pkg/ built (scripts/build-wasm.sh).
//   node bench/wasm_encode.mjs PKG_DIR MODEL.gguf PASSAGES.jsonl [BUILD...] [--chromium]
// BUILD: ernie_search (simd128, the default) and/or ernie_search_relaxed
// (Node 20 needs --experimental-wasm-relaxed-simd for it), each optionally
// with `:KERNEL` to force its int8 kernel (`ernie_search_relaxed:relaxed-simd`:
// the relaxed build otherwise keeps the kernel it timed faster at load);
// several take turns query by query in one page. PASSAGES.jsonl: one
// {"text": ...} per line (bench/run.sh writes target/bench/passages.jsonl).
// Prints the kernel, the kernels checked bit for bit against the scalar
// reference, the median of 100 query encodes (12-word windows), passages/s
// (median of 3 batches of 16), after a warm-up, and the wasm memory held. PKG_DIR, MODEL and PASSAGES must lie inside the
// repository with --chromium (the page is served from there).
import { readFileSync } from "node:fs";
import { relative, resolve, sep } from "node:path";
import { pathToFileURL } from "node:url";

import { measure } from "./encode_measure.mjs";

const args = process.argv.slice(2);
const chromium = args.includes("--chromium");
const [pkgDir, modelPath, passagesPath, ...named] = args.filter((a) => a !== "--chromium");
const builds = named.length ? named : ["ernie_search"];
if (!passagesPath) {
  console.error("usage: node bench/wasm_encode.mjs PKG_DIR MODEL.gguf PASSAGES.jsonl [ernie_search|ernie_search_relaxed] [--chromium]");
  process.exit(2);
}

const pkg = resolve(pkgDir);
let result;
if (!chromium) {
  const loaded = [];
  for (const b of builds) {
    const file = b.split(":")[0];
    loaded.push([b, await import(pathToFileURL(`${pkg}/${file}.js`).href), readFileSync(`${pkg}/${file}_bg.wasm`)]);
  }
  result = await measure(loaded, readFileSync(modelPath), readFileSync(passagesPath, "utf8"));
} else {
  const { launch, root, serveFiles } = await import("../tests/browser/harness.mjs");
  const url = (p) => {
    const rel = relative(root, resolve(p));
    if (rel.startsWith("..")) throw new Error(`${p} is outside the repository`);
    return "/" + rel.split(sep).join("/");
  };
  const server = await serveFiles({ mount: (path) => [[root, path]] });
  const browser = await launch(process.env.CHROMIUM ?? "/usr/bin/chromium", { profile: "encode" });
  try {
    const page = await browser.context.newPage();
    await page.goto(`http://127.0.0.1:${server.address().port}/bench/encode.html`);
    result = await page.evaluate(
      async ([pkgUrl, builds, modelUrl, passagesUrl]) => {
        const { measure } = await import("/bench/encode_measure.mjs");
        const bytes = async (u) => new Uint8Array(await (await fetch(u)).arrayBuffer());
        const loaded = [];
        for (const b of builds) {
          const file = b.split(":")[0];
          loaded.push([b, await import(`${pkgUrl}/${file}.js`), `${pkgUrl}/${file}_bg.wasm`]);
        }
        return measure(loaded, await bytes(modelUrl), await (await fetch(passagesUrl)).text());
      },
      [url(pkg), builds, url(modelPath), url(passagesPath)],
    );
  } finally {
    await browser.close();
    server.close();
  }
}
for (const r of result) console.log(JSON.stringify({ where: chromium ? "chromium" : `node ${process.version}`, ...r }));
