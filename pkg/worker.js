// The engine's thread. index.js starts this module worker and talks to it by
// messages: { id, op, args } in; { id, progress } (any number), then
// { id, ok: true, value } or { id, ok: false, error } out. Fetching, caching,
// the wasm engine and passage texts all live here, so the page never blocks.

import init, { Engine } from "./ernie_search.js";

const CACHE_PREFIX = "ernie-search-";

/** State of the one retriever this worker serves (set by `load`). */
let engine = null;
let manifest = null;
let base = null; // the index folder's URL
let cache = null; // a Cache, or null when the Cache API is unusable
let requested = "auto";
const cacheStatus = { name: null, enabled: false, error: null, hits: 0, stores: 0 };
const files = []; // { kind, url, bytes, cached }: every file read
const shards = new Map(); // shard number -> passages (a promise while in flight)
const added = new Map(); // ordinal -> passage added in the browser (addPassages)

/** One request at a time: a search must not see a half-done load or block fetch. */
let queue = Promise.resolve();
self.onmessage = ({ data: { id, op, args } }) => {
  queue = queue.then(async () => {
    try {
      const value = await OPS[op](args, (progress) => self.postMessage({ id, progress }));
      self.postMessage({ id, ok: true, value }, transferables(value));
    } catch (e) {
      self.postMessage({ id, ok: false, error: String(e?.message ?? e) });
    }
  });
};

const OPS = {
  async load({ index, model, backend: wanted = "auto" }, progress) {
    if (engine) throw new Error("this retriever is already loaded");
    if (!["auto", "cpu", "gpu"].includes(wanted)) throw new Error(`unknown backend ${JSON.stringify(wanted)}: use "auto", "cpu" or "gpu"`);
    requested = wanted;

    if (!index && !model) throw new Error("give an index folder URL (index) or a model URL (model)");
    // The wasm module compiles while the files download.
    const wasm = init().catch((e) => {
      throw new Error(`cannot start the wasm engine: ${e?.message ?? e}`);
    });
    let mf = null;
    if (index) {
      base = index;
      mf = await readManifest(new URL("manifest.json", base).href);
      manifest = mf.manifest;
      await openCache(manifest.model_fingerprint);
      if (!model) {
        if (!manifest.model_file) throw new Error(`${base}manifest.json names no model_file (index built without --bundle-model): pass a model URL`);
        model = new URL(manifest.model_file, base).href;
      }
    }
    const lexical = index && manifest.lexical ? new URL(manifest.lexical.meta, base).href : null;
    const [m, ix, lx] = await Promise.all([
      read(model, "model", progress),
      index ? read(new URL(manifest.index_file, base).href, "index", progress) : null,
      lexical ? read(lexical, "lexical", progress) : null,
      wasm,
    ]);
    // "cpu": the synchronous engine (wasm SIMD). Otherwise the model and the
    // index are uploaded to WebGPU; with no adapter, or any GPU failure,
    // the engine runs on the CPU and info() says why.
    engine = wanted === "cpu" ? Engine.load(m.bytes, ix?.bytes) : await Engine.loadAsync(m.bytes, ix?.bytes, wanted);
    if (lx) engine.loadLexical(lx.bytes);
    if (index) engine.setFusion(manifest.fusion?.method === "convex" ? manifest.fusion.alpha : null);
    // Only bytes the engine accepted are cached: a corrupt download is not kept.
    await Promise.all([mf, m, ix, lx].map((f) => f?.store()));
    if (index) await dropOtherCaches();
    return info();
  },

  async search({ query, k = 10, mode = "hybrid" }) {
    if (!engine?.hasIndex) throw new Error("no index is loaded: Retriever.load({ index }) or addPassages to search");
    if (!Number.isInteger(k) || k < 1) throw new Error(`k must be a positive integer, not ${k}`);
    const blocks = manifest?.lexical?.blocks ?? [];
    const missing = manifest ? Array.from(engine.missingBlocks(query)) : [];
    const fetched = await Promise.all(missing.map((b) => read(new URL(blocks[b], base).href, "block")));
    for (const f of fetched) {
      engine.addBlock(f.bytes);
      await f.store();
    }
    // On the GPU when it is on; the CPU answers otherwise (and after a GPU failure).
    const answer = await engine.searchAsync(query, k, mode);
    const hits = await Promise.all(
      answer.hits.map(async (h) => {
        const own = added.get(h.ordinal);
        if (own) return { id: own.id, score: h.score, title: own.title ?? "", text: own.text, url: own.url ?? null };
        const shard = Math.floor(h.ordinal / manifest.shard_size);
        const p = (await passages(shard))[h.ordinal % manifest.shard_size];
        if (p?.id !== h.id) throw new Error(`${manifest.shards[shard]} does not hold passage ${h.id} where the index says: the folder mixes two builds`);
        return { id: h.id, score: h.score, title: p.title ?? "", text: p.text, url: p.url ?? null };
      }),
    );
    // The mode that answered can differ from the one asked for (a query of
    // stop words only is answered densely); the note says why.
    return { hits, mode: answer.mode, note: answer.note ?? null };
  },

  async addPassages({ passages }) {
    need();
    const ok = (p) => typeof p?.id === "string" && typeof p.text === "string" && (p.title == null || typeof p.title === "string");
    if (!Array.isArray(passages) || !passages.every(ok)) throw new Error("addPassages takes [{ id, text, title?, url? }] with string fields");
    // New passages take the next ordinals, in order.
    const first = engine.info().index?.count ?? 0;
    const count = engine.addPassages(passages.map(({ id, text, title }) => ({ id, text, title: title ?? "" })));
    passages.forEach((p, i) => added.set(first + i, { id: p.id, text: p.text, title: p.title, url: p.url }));
    return count;
  },

  async embed({ texts }) {
    if (!Array.isArray(texts) || !texts.every((t) => typeof t === "string")) throw new Error("embed takes an array of strings");
    const dim = need().dim();
    const flat = await engine.embedAsync(texts);
    return texts.map((_, i) => flat.slice(i * dim, (i + 1) * dim));
  },

  async info() {
    need();
    return info();
  },
};

function need() {
  if (!engine) throw new Error("the retriever is not loaded");
  return engine;
}

function info() {
  const e = engine.info();
  const sizes = {};
  for (const f of files) sizes[f.kind] = (sizes[f.kind] ?? 0) + f.bytes;
  const b = e.backend;
  const backend = { backend: b.backend, requested, scan: b.scan, adapter: b.adapter ?? null };
  if (b.fallback) backend.fallback = b.fallback;
  if (b.note) backend.note = b.note;
  return { ...backend, model: e.model, dim: e.dim, index: e.index, lexical: e.lexical, fusion: e.fusion, sizes, files: [...files], cache: { ...cacheStatus } };
}

function transferables(value) {
  return Array.isArray(value) && value[0] instanceof Float32Array ? value.map((v) => v.buffer) : [];
}

/** The passages of one text shard, fetched once. */
function passages(shard) {
  if (!shards.has(shard)) {
    const url = new URL(manifest.shards[shard], base).href;
    const p = read(url, "shard").then(async (f) => {
      let list;
      try {
        list = JSON.parse(new TextDecoder().decode(f.bytes));
      } catch (e) {
        throw new Error(`${url} is not a passage shard: ${e.message}`);
      }
      await f.store();
      return list;
    });
    p.catch(() => shards.delete(shard)); // a failed fetch is retried by the next search
    shards.set(shard, p);
  }
  return shards.get(shard);
}

/**
 * manifest.json is the one file whose content changes under the same name:
 * network first, the cached copy only when the network is unreachable.
 * Returns the parsed manifest and a function that caches it.
 */
async function readManifest(url) {
  let res;
  let cached = false;
  try {
    res = await fetch(url, { cache: "no-cache" });
  } catch (e) {
    res = typeof caches === "undefined" ? undefined : await caches.match(url).catch(() => undefined);
    if (!res) throw new Error(`cannot fetch ${url} (${e.message}) and no copy is cached`);
    cached = true;
  }
  if (!res.ok) throw new Error(`cannot load the index: GET ${url}: HTTP ${res.status} ${res.statusText}`.trim());
  const bytes = new Uint8Array(await res.arrayBuffer());
  const text = new TextDecoder().decode(bytes);
  let m;
  try {
    m = JSON.parse(text);
  } catch (e) {
    throw new Error(`${url} is not an ernie-search manifest (not JSON: ${e.message})`);
  }
  if (typeof m?.model_fingerprint !== "string" || !m.index_file || !Array.isArray(m.shards) || !(m.shard_size > 0)) {
    throw new Error(`${url} is not an ernie-search manifest (no model_fingerprint, index_file, shards or shard_size)`);
  }
  files.push({ kind: "manifest", url, bytes: bytes.length, cached });
  return { manifest: m, store: async () => cached || put(url, bytes, "application/json") };
}

async function openCache(fingerprint) {
  if (cache) return;
  cacheStatus.name = CACHE_PREFIX + fingerprint.slice(0, 16);
  cacheStatus.enabled = await guard(async () => {
    if (typeof caches === "undefined") throw new Error("the Cache API is not available here (an insecure http:// page?)");
    cache = await caches.open(cacheStatus.name);
    return true;
  });
}

/** A new model's cache replaces the old ones. */
async function dropOtherCaches() {
  await guard(async () => {
    if (!cache) return;
    for (const name of await caches.keys()) {
      if (name.startsWith(CACHE_PREFIX) && name !== cacheStatus.name) await caches.delete(name);
    }
  });
}

/**
 * Runs a Cache API step; a failure (quota, storage off, no API) turns caching
 * off and is reported by info().cache.error, but never fails the caller.
 */
async function guard(step) {
  try {
    return await step();
  } catch (e) {
    cache = null;
    cacheStatus.enabled = false;
    cacheStatus.error ??= String(e?.message ?? e);
    return false;
  }
}

/**
 * A content-named file, from the cache or the network (reporting progress),
 * as { bytes, store() }: store() caches it once the caller has accepted it.
 */
async function read(url, kind, progress) {
  const hit = cache && (await guard(() => cache.match(url)));
  if (hit) {
    const bytes = new Uint8Array(await hit.arrayBuffer());
    cacheStatus.hits++;
    files.push({ kind, url, bytes: bytes.length, cached: true });
    progress?.({ file: kind, url, loaded: bytes.length, total: bytes.length, cached: true });
    return { bytes, store: async () => {} };
  }
  let res;
  try {
    res = await fetch(url);
  } catch (e) {
    throw new Error(`cannot fetch the ${kind} file ${url}: ${e.message}`);
  }
  if (!res.ok) throw new Error(`cannot fetch the ${kind} file: GET ${url}: HTTP ${res.status} ${res.statusText}`.trim());
  // Content-Length is the size on the wire: with compression it is not the
  // body's size, so the total is then unknown (null).
  const length = Number(res.headers.get("content-length"));
  const total = length && !res.headers.get("content-encoding") ? length : null;
  const chunks = [];
  let loaded = 0;
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    loaded += value.length;
    progress?.({ file: kind, url, loaded, total, cached: false });
  }
  const bytes = new Uint8Array(loaded);
  let at = 0;
  for (const c of chunks) bytes.set(c, (at += c.length) - c.length);
  files.push({ kind, url, bytes: loaded, cached: false });
  return { bytes, store: () => put(url, bytes, res.headers.get("content-type") ?? "application/octet-stream") };
}

function put(url, bytes, type) {
  return guard(async () => {
    if (!cache) return;
    await cache.put(url, new Response(bytes, { headers: { "content-type": type } }));
    cacheStatus.stores++;
  });
}
