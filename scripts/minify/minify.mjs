// Writes minified copies of the browser package's scripts to pkg/min/: what
// `ernie-search index-site` embeds and copies beside a site's index (see
// cli/build.rs), since every byte there is a visitor's. The npm package keeps
// the readable pkg/*.js: an app's bundler minifies them itself.
//
//   node scripts/minify/minify.mjs      (scripts/build-wasm.sh runs it)
//
// Each copy is the same module, names and all: imports, exports and the
// relative URLs the scripts load one another by are kept as written.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { transformSync } from "esbuild";

const pkg = join(dirname(fileURLToPath(import.meta.url)), "../../pkg");
/** The scripts a site serves (cli/build.rs's FILES); the glue ones exist once built. */
const SCRIPTS = ["index.js", "widget.js", "worker.js", "text.js", "ernie_search.js", "ernie_search_relaxed.js", "ernie_search_light.js"];

mkdirSync(join(pkg, "min"), { recursive: true });
const rows = [];
for (const name of SCRIPTS) {
  const from = join(pkg, name);
  if (!existsSync(from)) continue;
  const source = readFileSync(from, "utf8");
  // ES2022 keeps the syntax the scripts are written in (private fields,
  // top-level await); esbuild only shortens it.
  const { code } = transformSync(source, { loader: "js", format: "esm", minify: true, legalComments: "none", target: "es2022" });
  writeFileSync(join(pkg, "min", name), code);
  rows.push(`${name} ${(source.length / 1024).toFixed(1)} -> ${(code.length / 1024).toFixed(1)} KiB`);
}
console.log(`minify: pkg/min/: ${rows.join(", ")}`);
