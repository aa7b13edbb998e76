#!/usr/bin/env node
// Hostile index folders in the browser: the npm package (pkg/) must refuse a
// folder whose manifest names files outside it, whose files are cut short,
// too long, damaged or crafted, with a message naming the problem, and keep
// the page and the search worker working; passage text must never run as
// markup in the widget.
//
//   node tests/browser/hostile.mjs [--site target/e2e-site] [--out target/e2e-hostile] [--chromium /usr/bin/chromium]
//
// Every variant is made here from the real index folder SITE/_ernie (built by
// tests/browser/make_site.sh): OUT/<variant>/_ernie/ holds only the files the
// variant changes (so each can also be tried with the native CLI), and the
// server serves the rest from the real folder, each variant under its own
// prefix /v/<variant>/_ernie/. Two variants are not on disk: the index file
// followed by 256 MiB of zeros, made while it is sent, with and without a
// Content-Length. Normally run by scripts/test-e2e.sh after e2e.mjs.

import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, extname, join, resolve } from "node:path";
import zlib from "node:zlib";
import { assert, launch, pageOpener, root, serveFiles, suite, within } from "./harness.mjs";

const t = suite("hostile");
const TIMEOUT_MS = 60_000;
const MiB = 2 ** 20;
const PADDING = 256 * MiB; // appended to the index file while it is sent
const GOOD = ["keeper climbs spiral tower lamp", "lighthouse"]; // a question of the real folder, and its answer

/** CRC-32 (IEEE), as crc32fast computes it. */
function crc32(bytes) {
  if (zlib.crc32) return zlib.crc32(bytes) >>> 0;
  let c = ~0;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}

/**
 * Where a GGUF file's tensors start: { dataStart, tensors: [{ name, start }] }
 * (enough of the format to find a weight byte).
 */
function ggufTensors(buf) {
  let o = 4;
  const u32 = () => ((o += 4), buf.readUInt32LE(o - 4));
  const u64 = () => ((o += 8), Number(buf.readBigUInt64LE(o - 8)));
  const str = () => {
    const n = u64();
    return buf.toString("utf8", (o += n) - n, o);
  };
  const SIZE = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };
  const value = (type) => {
    if (type === 8) return str();
    if (type === 9) {
      const [t, n] = [u32(), u64()];
      for (let i = 0; i < n; i++) value(t);
      return null;
    }
    const v = type === 4 ? buf.readUInt32LE(o) : null;
    o += SIZE[type];
    return v;
  };
  assert(buf.toString("latin1", 0, 4) === "GGUF" && u32() >= 2, "the model is not a GGUF v2+ file");
  const [nTensors, nKeys] = [u64(), u64()];
  let align = 32;
  for (let i = 0; i < nKeys; i++) {
    const key = str();
    const v = value(u32());
    if (key === "general.alignment") align = v;
  }
  const infos = [];
  for (let i = 0; i < nTensors; i++) {
    const name = str();
    const nDims = u32();
    for (let d = 0; d < nDims; d++) u64();
    u32(); // dtype
    infos.push({ name, offset: u64() });
  }
  const dataStart = Math.ceil(o / align) * align;
  return { dataStart, tensors: infos.map((t) => ({ name: t.name, start: dataStart + t.offset })).sort((a, b) => a.start - b.start) };
}

/**
 * The variants, from the real folder `dir` and its manifest `m`. Each:
 * { name, what, files: { relpath: bytes } (manifest.json included when it
 * changes), and a check: `load` (a RegExp Retriever.load must reject with),
 * or `search` ([query, options, RegExp]: the load succeeds, that search
 * rejects), or `widget` (the XSS check) }.
 */
function variants(dir, m) {
  const file = (rel) => readFileSync(join(dir, rel));
  const manifest = (patch) => ({ "manifest.json": Buffer.from(JSON.stringify(patch(structuredClone(m)), null, 2)) });
  const esc = (s) => s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
  const badName = (field, value, expected) => new RegExp(`manifest\\.json: ${esc(field)} ${esc(JSON.stringify(value))} is not a name inside the index folder \\(expected ${esc(expected)}\\)`);
  const out = [];
  const add = (v) => out.push(v);
  // A build names each numbered set after one hash ({ hash, count }); a
  // folder of manifest version 3 lists every name. Both are read.
  const listed = (set, expected) => (Array.isArray(set) ? set : Array.from({ length: set.count }, (_, n) => expected.replace("<16 hex>", `${set.hash}.${n}`)));
  const shards = listed(m.shards, "passages/shard.<16 hex>.json");
  const blocks = listed(m.lexical.blocks, "lexical/terms.<16 hex>.bin");

  // 1-3 and more: names that lead outside the folder.
  const names = [
    ["index_file", "../../../../etc/passwd", (x, v) => (x.index_file = v), "index.<16 hex>.bin"],
    ["shards[0]", "https://example.invalid/x.json", (x, v) => ((x.shards = [...shards]), (x.shards[0] = v)), "passages/shard.<16 hex>.json"],
    ["lexical.blocks[0]", `lexical/../../${blocks[0]}`, (x, v) => ((x.lexical.blocks = [...blocks]), (x.lexical.blocks[0] = v)), "lexical/terms.<16 hex>.bin"],
    ["model_file", "/dev/zero", (x, v) => (x.model_file = v), "model.<16 hex>.gguf"],
    ["index_file", "https://evil.invalid/x", (x, v) => (x.index_file = v), "index.<16 hex>.bin"],
    ["index_file", `${m.index_file}?download=1`, (x, v) => (x.index_file = v), "index.<16 hex>.bin"],
    ["lexical.meta", `lexical/sub/${m.lexical.meta.slice("lexical/".length)}`, (x, v) => (x.lexical.meta = v), "lexical/meta.<16 hex>.bin"],
    ["shards[1]", shards[1].replace("passages/", "passages/../passages/"), (x, v) => ((x.shards = [...shards]), (x.shards[1] = v)), "passages/shard.<16 hex>.json"],
    ["model_file", `%2e%2e/${m.model_file}`, (x, v) => (x.model_file = v), "model.<16 hex>.gguf"],
  ];
  names.forEach(([field, value, set, expected], i) => {
    add({ name: `name-${i + 1}`, what: `manifest ${field}: ${JSON.stringify(value)}`, files: manifest((x) => (set(x, value), x)), load: badName(field, value, expected) });
  });

  // Numbers a build never writes.
  const numbers = [
    ["shard_size 0", (x) => (x.shard_size = 0), /manifest\.json: shard_size 0 is not a positive integer/],
    ["count as a string", (x) => (x.count = String(x.count)), /manifest\.json: count "\d+" is not a positive integer/],
    ["dim 1e300", (x) => (x.dim = 1e300), /manifest\.json: dim 1e\+300 is not a positive integer/],
    ["one shard too few", (x) => (x.shards = shards.slice(1)), /manifest\.json: \d+ shards cannot hold \d+ passages of \d+ per shard/],
    ["lexical.blocks empty", (x) => (x.lexical.blocks = []), /manifest\.json: lexical\.blocks must list 1 to \d+ files, not \[\]/],
    ["a set's hash that leaves the folder", (x) => (x.lexical.blocks = { hash: "../../etc/passwd", count: blocks.length }), /manifest\.json: lexical\.blocks \{"hash":"\.\.\/\.\.\/etc\/passwd".* is neither a list of files nor \{ hash: <16 hex>, count \}/],
    ["a set of 2^40 files", (x) => (x.lexical.blocks = { hash: "0123456789abcdef", count: 2 ** 40 }), /manifest\.json: lexical\.blocks\.count must be 1 to \d+, not 1099511627776/],
    ["index_bytes -1", (x) => (x.index_bytes = -1), /manifest\.json: index_bytes -1 is not a positive integer/],
  ];
  numbers.forEach(([what, set, load], i) => add({ name: `number-${i + 1}`, what: `manifest ${what}`, files: manifest((x) => (set(x), x)), load }));

  // 4: the index file cut by 100 bytes; index_bytes left as built.
  const index = file(m.index_file);
  add({
    name: "index-truncated",
    what: "index file 100 bytes short of index_bytes",
    files: { [m.index_file]: index.subarray(0, index.length - 100) },
    load: new RegExp(`the index file \\S+/${esc(m.index_file)} is ${index.length - 100} bytes, not the ${index.length} manifest\\.json records`),
  });
  // 5: the index file followed by 256 MiB of zeros (made by the server).
  const longer = new RegExp(`the index file \\S+/${esc(m.index_file)} is larger than the ${index.length} bytes manifest\\.json records: refusing to read more`);
  add({ name: "index-longer", what: "index file + 256 MiB, with Content-Length", files: {}, padded: { length: true }, load: longer });
  add({ name: "index-longer-chunked", what: "index file + 256 MiB, no Content-Length", files: {}, padded: { length: false }, load: longer });

  // 6, 7: the model cut in the middle of its tensors; one weight byte flipped.
  const model = file(m.model_file);
  const { dataStart, tensors } = ggufTensors(model);
  const middle = dataStart + Math.floor((model.length - dataStart) / 2);
  const hit = tensors.filter((t) => t.start <= middle).at(-1);
  const flipped = Buffer.from(model);
  flipped[hit.start] ^= 0x01;
  add({ name: "model-truncated", what: `model file cut at byte ${middle} of ${model.length}`, files: { [m.model_file]: model.subarray(0, middle) }, load: /model file.*truncated|truncated.*model file/ });
  add({ name: "model-flipped", what: `model file with byte ${hit.start} (first of tensor ${hit.name}) flipped`, files: { [m.model_file]: flipped }, load: /fingerprint/ });

  // 8: a BM25 meta file announcing 0xFFFFFFF0 term blocks, CRC recomputed.
  const meta = Buffer.from(file(m.lexical.meta));
  meta.writeUInt32LE(0xfffffff0, 12);
  meta.writeUInt32LE(crc32(Buffer.concat([meta.subarray(0, 80), meta.subarray(88)])), 80);
  add({ name: "meta-huge-blocks", what: "lexical meta file with n_blocks 0xFFFFFFF0 and a valid CRC", files: { [m.lexical.meta]: meta }, load: /lexical meta file.*4294967280 blocks/ });

  // 9: markup as passage text and title (the ids stay, so the index still
  // finds them by their real words).
  const shard0 = JSON.parse(file(shards[0]));
  const wordsOf = (p) => p.text.split(/\W+/).filter((w) => w.length > 3).slice(0, 5).join(" ");
  const words = wordsOf(shard0[0]);
  const probes = [
    { text: '<img src=x onerror="window.__pwned=1">', title: shard0[0].title },
    { text: "<script>window.__pwned=1</script>", title: '<b onmouseover="window.__pwned=2">Markup</b> title' },
  ].map((p, i) => ({ ...p, id: shard0[i].id, query: wordsOf(shard0[i]) }));
  const xss = shard0.map((p, i) => ({ ...p, ...(probes[i] ? { text: probes[i].text, title: probes[i].title } : {}) }));
  add({ name: "shard-xss", what: "passage shard whose texts are <img onerror> and <script>", files: { [shards[0]]: Buffer.from(JSON.stringify(xss)) }, widget: probes });

  // 10: a shard larger than the max_shard_bytes the manifest records: the
  // search that needs it answers without that text, saying the results are
  // partial and why; the next one (another shard) answers whole.
  const maxShard = m.max_shard_bytes ?? Math.max(...shards.map((s) => statSync(join(dir, s)).size));
  const big = structuredClone(shard0);
  big[0].text += " padding".repeat(MiB / 8);
  add({
    name: "shard-oversized",
    what: `passage shard of 1 MiB (max_shard_bytes ${maxShard})`,
    files: { ...manifest((x) => ((x.max_shard_bytes = maxShard), x)), [shards[0]]: Buffer.from(JSON.stringify(big)) },
    search: [words, { mode: "lexical", k: 1 }, new RegExp(`^partial: .*the shard file \\S+/${esc(shards[0])} is larger than the ${maxShard} bytes manifest\\.json records: refusing to read more`)],
  });
  return out;
}

/**
 * /pkg/ (the package), /_ernie/ (the real folder), /v/<variant>/_ernie/
 * (OUT/<variant>/_ernie/, else the real file), the pages of
 * tests/browser/e2e/ at /. `sent` records, per padded request, the bytes
 * sent and whether the response finished.
 */
function serve(site, out, padded, sent) {
  const real = join(site, "_ernie");
  const variantOf = (path) => path.match(/^\/v\/([a-z0-9-]+)\/_ernie(\/.*)$/);
  return serveFiles({
    mount: (path) => {
      const v = variantOf(path);
      if (v) return [[join(out, v[1], "_ernie"), v[2]], [real, v[2]]];
      if (path.startsWith("/pkg/")) return [[join(root, "pkg"), path.slice("/pkg".length)]];
      if (path.startsWith("/_ernie/")) return [[real, path.slice("/_ernie".length)]];
      return [[join(root, "tests/browser/e2e"), path]];
    },
    headers: (path) => ({ "cache-control": path.startsWith("/pkg/") ? "max-age=3600" : "no-store" }),
    respond: ({ res, path, file, stat, headers }) => {
      const v = variantOf(path);
      const pad = v && padded[v[1]] && extname(file) === ".bin" && file.startsWith(real) && file.endsWith(padded[v[1]].file) ? padded[v[1]] : null;
      if (!pad) return false;
      // The real index, then zeros, written as fast as the client reads.
      const bytes = readFileSync(file);
      const total = stat.size + PADDING;
      const record = { total, bytes: 0, finished: false, closed: false };
      sent[v[1]] = record;
      res.writeHead(200, pad.length ? { ...headers, "content-length": total } : headers);
      const zeros = Buffer.alloc(MiB);
      let at = 0;
      const pump = () => {
        while (at < total && !res.destroyed) {
          const chunk = at < bytes.length ? bytes : zeros.subarray(0, Math.min(MiB, total - at));
          at += chunk.length;
          record.bytes = at;
          if (!res.write(chunk)) return res.once("drain", pump);
        }
        if (at >= total && !res.destroyed) res.end(() => (record.finished = true));
      };
      res.on("close", () => (record.closed = true));
      pump();
      return true;
    },
  });
}

async function main() {
  const opt = t.args({ site: "target/e2e-site", out: "target/e2e-hostile" });
  const site = resolve(root, opt.site);
  const dir = join(site, "_ernie");
  t.needSite(site, opt.site);
  t.needPkg();
  t.needChromium(opt.chromium);
  const m = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8"));
  if (!m.model_file || !m.lexical) t.die(`${opt.site}/_ernie has no bundled model or no lexical part: build it with tests/browser/make_site.sh`);

  const out = resolve(root, opt.out);
  rmSync(out, { recursive: true, force: true });
  const list = variants(dir, m);
  const padded = {};
  for (const v of list) {
    for (const [rel, bytes] of Object.entries(v.files)) {
      const f = join(out, v.name, "_ernie", rel);
      mkdirSync(dirname(f), { recursive: true });
      writeFileSync(f, bytes);
    }
    if (v.padded) padded[v.name] = { ...v.padded, file: m.index_file };
  }
  console.log(`hostile: ${list.length} variants of ${opt.site}/_ernie in ${opt.out}`);

  const sent = {};
  const server = await serve(site, out, padded, sent);
  const origin = `http://127.0.0.1:${server.address().port}`;
  const browser = await launch(opt.chromium, { profile: "hostile", timeout: TIMEOUT_MS });
  const trouble = []; // page crashes and uncaught errors
  const open = pageOpener(browser.context, origin, trouble);
  /** The page answers, its own retriever answers, and a new one loads and answers. */
  const alive = async (page) => {
    assert((await within(5_000, page.evaluate(() => 1 + 1), "the page (a frozen worker?)")) === 2, "page.evaluate is broken");
    const r = await within(
      TIMEOUT_MS,
      page.evaluate(async ([q, want]) => {
        const old = (await window.retriever.search(q, { k: 1 }))[0]?.id;
        const fresh = await window.Retriever.load({ index: "/_ernie/" });
        const id = (await fresh.search(q, { k: 1 }))[0]?.id;
        fresh.close();
        return { old, id, want };
      }, GOOD),
      "a good retriever after the variant (a frozen worker?)",
    );
    assert(r.old === r.want && r.id === r.want, `a good retriever stopped answering: ${JSON.stringify(r)}`);
  };

  await t.session({ browser, server, errors: trouble, last: "no page crashed; no uncaught errors" }, async () => {
    const api = await open("/api.html");
    await t.check("the real folder loads (the baseline)", async () => {
      await api.waitForFunction(() => window.retriever || window.loadError);
      const error = await api.evaluate(() => window.loadError);
      assert(!error, error);
      await alive(api);
    });

    for (const v of list.filter((v) => v.load || v.search)) {
      await t.check(`${v.name} (${v.what})`, async () => {
        const t0 = Date.now();
        const got = await within(
          TIMEOUT_MS,
          api.evaluate(async ({ index, search }) => {
            let r;
            try {
              r = await window.Retriever.load({ index });
            } catch (e) {
              return { load: e.message };
            }
            try {
              if (!search) return { load: "resolved" };
              // A search that answers from what loaded says which part did not (details.partial).
              const said = (a) => (a.partial ? `partial: ${[a.note, ...a.hits.map((h) => h.error)].filter(Boolean).join("; ")}` : "resolved");
              return { search: await r.search(search[0], { ...search[1], details: true }).then(said, (e) => e.message), after: (await r.search("keeper climbs spiral tower lamp", { k: 1 }))[0]?.id };
            } finally {
              r.close();
            }
          }, { index: `/v/${v.name}/_ernie/`, search: v.search?.slice(0, 2) }),
          "the load (a frozen worker?)",
        );
        const ms = Date.now() - t0;
        let message;
        if (v.load) {
          message = got.load;
          assert(v.load.test(message), `load: ${JSON.stringify(message)} does not match ${v.load}`);
        } else {
          message = got.search;
          assert(!got.load, `the load failed: ${got.load}`);
          assert(v.search[2].test(message), `search: ${JSON.stringify(message)} does not match ${v.search[2]}`);
          assert(got.after === GOOD[1], `the same retriever then answered ${got.after}, not ${GOOD[1]}`);
        }
        if (v.padded) {
          // The client stopped reading: the server never got to the end.
          for (let i = 0; i < 50 && !sent[v.name]?.closed; i++) await new Promise((ok) => setTimeout(ok, 100));
          const s = sent[v.name];
          assert(s, "the padded index was never asked for");
          assert(!s.finished && s.bytes < s.total / 4, `the server sent ${s.bytes} of ${s.total} bytes (finished: ${s.finished})`);
          message += ` [server sent ${(s.bytes / MiB).toFixed(1)} of ${(s.total / MiB).toFixed(1)} MiB]`;
        }
        await alive(api);
        return `${ms} ms: ${message}`;
      });
    }
    await api.close();

    for (const v of list.filter((v) => v.widget)) {
      await t.check(`${v.name} (${v.what}): the widget shows it as text and runs nothing`, async () => {
        const page = await open(`/widget.html?index=/v/${v.name}/_ernie/&preload`);
        const input = page.locator("ernie-search-box input");
        const shown = [];
        for (const probe of v.widget) {
          await input.fill("");
          await input.pressSequentially(probe.query, { delay: 5 });
          await page.waitForFunction(
            ([q, id]) => {
              const box = document.querySelector("ernie-search-box");
              return box.dataset.query === q && [...box.shadowRoot.querySelectorAll("[role=option]")].some((o) => o.dataset.id === id);
            },
            [probe.query, probe.id],
          );
          await page.waitForTimeout(300); // an <img onerror> would have fired by now
          const seen = await page.evaluate((id) => {
            const box = document.querySelector("ernie-search-box").shadowRoot;
            const option = box.querySelector(`[role=option][data-id="${CSS.escape(id)}"]`);
            return {
              pwned: window.__pwned,
              text: option?.querySelector(".excerpt")?.textContent,
              title: option?.querySelector(".title")?.textContent,
              elements: box.querySelectorAll("[role=listbox] img, [role=listbox] script, [role=listbox] b").length + document.querySelectorAll("body img, body script:not([type=module])").length,
            };
          }, probe.id);
          assert(seen.pwned === undefined, `window.__pwned is ${seen.pwned}`);
          assert(seen.text === probe.text, `passage ${probe.id} shows ${JSON.stringify(seen.text)}, not the literal ${JSON.stringify(probe.text)}`);
          assert(seen.title === probe.title, `passage ${probe.id} has the title ${JSON.stringify(seen.title)}, not the literal ${JSON.stringify(probe.title)}`);
          assert(seen.elements === 0, `${seen.elements} img/script/b elements were made from passage text`);
          await page.locator(`ernie-search-box [role=option][data-id="${probe.id}"] .title`).hover(); // an onmouseover would fire
          assert((await page.evaluate(() => window.__pwned)) === undefined, "window.__pwned was set by a hover");
          shown.push(JSON.stringify(probe.text));
        }
        await page.locator("#ping").click();
        assert((await page.locator("#ping").getAttribute("data-clicks")) === "1", "the page did not handle a click");
        assert((await page.evaluate(() => window.__pwned)) === undefined, "window.__pwned was set");
        await page.close();
        return `shown literally: ${shown.join(", ")}`;
      });
    }
  });
}

t.run(main);
