#!/usr/bin/env node
// A static site of a BEIR corpus, one page per passage, for the head-to-head
// benchmark (run.sh): /p/<id>.html holding
//   <title>title or id</title> ... <main><h1>title or id</h1><p>text</p></main>
// Both Pagefind and `ernie-search index-site` index the same pages.
//
//   node bench/browser/make_site.mjs --corpus corpus.jsonl --out target/h2h/site [--subset N --qrels dev.tsv]
//
// --subset N keeps N passages: every passage judged relevant for a dev
// question first (in corpus order), then the others in corpus order, so a
// small site still answers questions. Prints one JSON line: pages written.

import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

function args() {
  const out = { corpus: null, out: null, subset: "0", qrels: null };
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) {
    const k = argv[i].replace(/^--/, "");
    if (!(k in out) || argv[i + 1] === undefined) die(`unknown argument ${argv[i]}; usage: make_site.mjs --corpus FILE --out DIR [--subset N --qrels FILE]`);
    out[k] = argv[i + 1];
  }
  if (!out.corpus || !out.out) die("--corpus and --out are required");
  return out;
}

function die(msg) {
  console.error(`make_site: ${msg}`);
  process.exit(2);
}

const escape = (s) => s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);

const opt = args();
const subset = Number(opt.subset);
if (!Number.isInteger(subset) || subset < 0) die(`--subset must be a non-negative integer, not ${opt.subset}`);

const passages = [];
readFileSync(opt.corpus, "utf8").split("\n").forEach((line, n) => {
  if (!line.trim()) return;
  let p;
  try {
    p = JSON.parse(line);
  } catch (e) {
    die(`${opt.corpus}:${n + 1}: not JSON (${e.message})`);
  }
  const id = p._id ?? p.id;
  if (typeof id !== "string" || !/^[A-Za-z0-9_-]+$/.test(id)) die(`${opt.corpus}:${n + 1}: id ${JSON.stringify(id)} is not usable as a file name`);
  passages.push({ id, title: p.title ?? "", text: p.text ?? "" });
});

let chosen = passages;
if (subset > 0) {
  if (!opt.qrels) die("--subset needs --qrels (the judged passages are kept first)");
  const judged = new Set();
  for (const line of readFileSync(opt.qrels, "utf8").split("\n").slice(1)) {
    const [, doc, score] = line.split("\t");
    if (doc && Number(score) > 0) judged.add(doc);
  }
  const first = passages.filter((p) => judged.has(p.id));
  const rest = passages.filter((p) => !judged.has(p.id));
  chosen = first.concat(rest).slice(0, subset);
}

rmSync(opt.out, { recursive: true, force: true });
mkdirSync(join(opt.out, "p"), { recursive: true });
for (const p of chosen) {
  const title = escape(p.title || p.id);
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${title}</title></head>
<body><main><h1>${title}</h1><p>${escape(p.text)}</p></main></body></html>
`;
  writeFileSync(join(opt.out, "p", `${p.id}.html`), html);
}
console.log(JSON.stringify({ pages: chosen.length, out: opt.out }));
