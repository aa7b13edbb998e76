// The engine's thread. index.js starts this module worker and talks to it by
// messages: { id, op, args } in; { id, progress } (any number), then
// { id, ok: true, value } or { id, ok: false, error } out. Fetching, caching,
// the wasm engine and passage texts all live here, so the page never blocks.
//
// Two engines: the full build (ernie_search.js: the transformer, WebGPU) and
// the light one (ernie_search_light.js: no model; the token table encodes
// queries, vectors arrive by cluster). A folder that carries a table and
// clusters (what index-site writes) is searched light unless told otherwise;
// with `progressive`, the full engine loads in the background after the
// first search and answers the later ones.

const CACHE_PREFIX = "ernie-search-";
const MiB = 2 ** 20;

/**
 * The files an index folder may name, as src/format/shard.rs checks them:
 * the one name pattern each may have (so a URL built from it stays inside the
 * folder; the files of a numbered set carry their number after the hash),
 * the most bytes read when manifest.json records no size, and the most it
 * may record.
 */
const PARTS = {
  index: { field: "index_file", name: /^index\.[0-9a-f]{16}\.bin$/, expected: "index.<16 hex>.bin", ceiling: 4096 * MiB },
  model: { field: "model_file", name: /^model\.[0-9a-f]{16}\.gguf$/, expected: "model.<16 hex>.gguf", unrecorded: 512 * MiB, ceiling: 1024 * MiB },
  lexical: { field: "lexical.meta", name: /^lexical\/meta\.[0-9a-f]{16}\.bin$/, expected: "lexical/meta.<16 hex>.bin", unrecorded: 256 * MiB, ceiling: 1024 * MiB },
  block: { field: "lexical.blocks", name: /^lexical\/terms\.[0-9a-f]{16}(\.\d{1,7})?\.bin$/, expected: "lexical/terms.<16 hex>.bin", unrecorded: 64 * MiB, ceiling: 256 * MiB },
  shard: { field: "shards", name: /^passages\/shard\.[0-9a-f]{16}(\.\d{1,7})?\.json$/, expected: "passages/shard.<16 hex>.json", unrecorded: 64 * MiB, ceiling: 256 * MiB },
  tableHead: { field: "table.head", name: /^table\/head\.[0-9a-f]{16}\.bin$/, expected: "table/head.<16 hex>.bin", ceiling: 128 * MiB },
  tableChunk: { field: "table.chunks", name: /^table\/rows\.[0-9a-f]{16}\.bin$/, expected: "table/rows.<16 hex>.bin", ceiling: 256 * MiB },
  clusterHead: { field: "clusters.head", name: /^vectors\/head\.[0-9a-f]{16}\.bin$/, expected: "vectors/head.<16 hex>.bin", ceiling: 1024 * MiB },
  clusterList: { field: "clusters.lists", name: /^vectors\/list\.[0-9a-f]{16}(\.\d{1,7})?\.bin$/, expected: "vectors/list.<16 hex>.bin", ceiling: 256 * MiB },
};
const MAX_TABLE_CHUNKS = 65536;
const MAX_CLUSTERS = 65536;
const MAX_MANIFEST_BYTES = 16 * MiB;
const MAX_LEXICAL_BLOCKS = 65536;
const MAX_SHARDS = 1 << 20;

/** State of the one retriever this worker serves (set by `load`). */
let engine = null;
let encoder = "transformer"; // what encodes queries: "transformer" or "table"
let upgrade = null; // { state: "waiting" | "loading" | "done" | "failed", error? } with `progressive`
let manifest = null;
let base = null; // the index folder's URL
let cache = null; // a Cache, or null when the Cache API is unusable
// The URLs `cache` held when listed after the first search (a Set; null
// until then), and those this worker wrote since: later searches ask the
// cache only for these.
let cachedUrls = null;
let listing = false;
const writtenUrls = new Set();
// A search's or a load's Cache API writes wait until its answer is posted: a
// dozen small writes cost this thread and the browser's storage more time than
// a local fetch, and the answer does not need them (writes in flight: `storing`).
let deferredStores = null;
let storing = Promise.resolve();
let idleStores; // the timer that starts a load's writes when no search comes
let loadTimings = null; // { parts_ms, engine_ms }: the load, fetching its files, then the engine reading them
let requested = "auto";
let simd = "auto"; // "auto" (relaxed SIMD where the browser has it) or "simd128": the full engine's build
let relaxedError = null; // why the relaxed-SIMD build did not load, where it should have
let threads = 1; // the full engine's threads: > 1 runs the threaded build (cross-origin isolated pages)
let threadsError = null; // why the threaded build did not start, where it should have
const cacheStatus = { name: null, enabled: false, error: null, hits: 0, stores: 0, listed: null };
const files = []; // { kind, url, bytes, cached }: every file read
const shards = new Map(); // shard number -> passages (a promise while in flight)
const added = new Map(); // ordinal -> passage added in the browser (addPassages)

/** One request at a time: a search must not see a half-done load or block fetch. */
let queue = Promise.resolve();
/** manifest.json's bytes as the page fetched them (null: it could not). */
let fromPage;
const pageManifest = new Promise((resolve) => (fromPage = resolve));
/** The light engine's wasm bytes as the page fetched them (null: it could not). */
let wasmFromPage;
const pageLightWasm = new Promise((resolve) => (wasmFromPage = resolve));
self.onmessage = ({ data: { id, op, args, manifest, lightWasm } }) => {
  if (manifest !== undefined) return fromPage(manifest instanceof Uint8Array ? manifest : null);
  if (lightWasm !== undefined) return wasmFromPage(lightWasm instanceof Uint8Array ? lightWasm : null);
  queue = queue.then(async () => {
    try {
      const value = await OPS[op](args, (progress) => self.postMessage({ id, progress }));
      self.postMessage({ id, ok: true, value }, transferables(value));
    } catch (e) {
      self.postMessage({ id, ok: false, error: String(e?.message ?? e) });
    }
    // A load's writes wait for the first search's answer as well: that
    // search follows at once, and starting a dozen writes held it back by
    // 16 ms (or for a second of quiet, if no search comes).
    if (op === "load") idleStores = setTimeout(storeDeferred, 1000);
    else storeDeferred();
    if (op === "search") listCache();
  });
};

const OPS = {
  async load({ index, model, backend: wanted = "auto", encoder: want = "auto", progressive = false, simd: simdWanted = "auto", threads: threadsWanted = "auto", prefetched = false, lightPrefetched = false }, progress) {
    if (engine) throw new Error("this retriever is already loaded");
    if (!["auto", "simd128"].includes(simdWanted)) throw new Error(`unknown simd ${JSON.stringify(simdWanted)}: use "auto" or "simd128"`);
    simd = simdWanted;
    threads = threadCount(threadsWanted, wanted);
    if (!["auto", "cpu", "gpu"].includes(wanted)) throw new Error(`unknown backend ${JSON.stringify(wanted)}: use "auto", "cpu" or "gpu"`);
    if (!["auto", "transformer", "table"].includes(want)) throw new Error(`unknown encoder ${JSON.stringify(want)}: use "auto", "transformer" or "table"`);
    requested = wanted;
    // The load's Cache API writes wait, as a search's do (see storeDeferred).
    deferredStores ??= [];
    const started = performance.now();

    if (!index && !model) throw new Error("give an index folder URL (index) or a model URL (model)");
    let mf = null;
    let modelBytes; // the model's size, when manifest.json records it
    // A folder index-site wrote (token table + clusters) runs the light
    // engine: its wasm downloads beside the manifest, a round trip sooner on
    // a slow link (190 KB spent for nothing on a folder with no table).
    const light = index && !model && want !== "transformer" ? startLight(lightPrefetched) : null;
    if (index) {
      base = index;
      mf = await readManifest(new URL("manifest.json", base).href, prefetched ? await pageManifest : null);
      manifest = mf.manifest;
      await openCache(manifest.model_fingerprint);
    }
    if (want === "table" && !manifest?.table) throw new Error(`${base ?? "this retriever"}: the index carries no token table (rebuild it with ernie-search index-site), so encoder "table" cannot be used`);
    if (want === "table" || (want === "auto" && !model && manifest?.table && manifest?.clusters)) {
      await loadLight(mf, progress, light ?? startLight(), started);
      if (progressive) upgrade = { state: "waiting" };
      return info();
    }
    // The wasm module compiles while the files download.
    const wasm = startFull();
    if (index) {
      if (!model) {
        if (!manifest.model_file) throw new Error(`${base}manifest.json names no model_file (index built without --bundle-model): pass a model URL`);
        model = new URL(manifest.model_file, base).href;
        modelBytes = manifest.model_bytes;
      }
    }
    const lexical = index && manifest.lexical ? new URL(manifest.lexical.meta, base).href : null;
    const [m, ix, lx, { Engine }] = await Promise.all([
      read(model, "model", progress, limit("model", modelBytes)),
      index ? read(new URL(manifest.index_file, base).href, "index", progress, limit("index", manifest.index_bytes)) : null,
      lexical ? read(lexical, "lexical", progress, limit("lexical", manifest.lexical.meta_bytes)) : null,
      wasm,
    ]);
    const fetched = performance.now();
    if (ix && ix.bytes.length !== manifest.index_bytes) {
      throw new Error(`the index file ${ix.url} is ${ix.bytes.length} bytes, not the ${manifest.index_bytes} manifest.json records: it is cut short or from another build`);
    }
    // "cpu": the synchronous engine (wasm SIMD). Otherwise the model and the
    // index are uploaded to WebGPU; with no adapter, or any GPU failure,
    // the engine runs on the CPU and info() says why.
    engine = wanted === "cpu" ? Engine.load(m.bytes, ix?.bytes) : await Engine.loadAsync(m.bytes, ix?.bytes, wanted);
    if (lx) {
      engine.loadLexical(lx.bytes);
      const n = engine.info().lexical.blocks;
      if (n !== manifest.lexical.blocks.length) throw new Error(`the lexical meta file ${lx.url} has ${n} term blocks but manifest.json names ${manifest.lexical.blocks.length}: the folder mixes two builds`);
    }
    if (index) engine.setFusion(manifest.fusion?.method === "convex" ? manifest.fusion.alpha : null);
    loadTimings = { parts_ms: msBetween(started, fetched), engine_ms: msBetween(fetched, performance.now()) };
    // Only bytes the engine accepted are cached: a corrupt download is not kept.
    await Promise.all([mf, m, ix, lx].map((f) => f?.store()));
    if (index) storing = storing.then(dropOtherCaches);
    encoder = "transformer";
    return info();
  },

  async search({ query, k = 10, mode = "hybrid" }) {
    if (!engine?.hasIndex) throw new Error("no index is loaded: Retriever.load({ index }) or addPassages to search");
    if (!Number.isInteger(k) || k < 1) throw new Error(`k must be a positive integer, not ${k}`);
    if (!["hybrid", "dense", "lexical"].includes(mode)) throw new Error(`unknown search mode ${JSON.stringify(mode)}: use "hybrid", "dense" or "lexical"`);
    // What the query needs is fetched first; a part that fails to load
    // leaves the search to answer from the rest, says so, and is asked for
    // again by the next search.
    deferredStores ??= [];
    const start = performance.now();
    const failed = [];
    const part = (what) => (e) => failed.push({ what, error: String(e?.message ?? e) });
    const table = encoder === "table" && mode !== "lexical";
    // The clusters to probe follow from the query's vector alone: they are
    // fetched as soon as the table rows are in, beside the term blocks.
    const rows = table ? fetchTableRows(query).then(() => true, (e) => (part("table")(e), false)) : Promise.resolve(true);
    await Promise.all([
      mode !== "lexical" ? rows.then((ok) => ok && fetchClusters(query).catch(part("clusters"))) : rows,
      mode !== "dense" ? fetchBlocks(query).then(() => mode === "hybrid" && prefetchTexts(query, k), part("blocks")) : null,
    ]);
    const tableFailed = failed.some((f) => f.what === "table");
    let asked = mode;
    if (tableFailed) asked = mode === "dense" ? null : "lexical";
    if (failed.some((f) => f.what === "blocks")) asked = asked === "lexical" ? null : asked && "dense";
    if (!asked) throw new Error(`cannot search: ${failed.map((f) => f.error).join("; ")}`);
    const fetched = performance.now();
    // On the GPU when it is on; the CPU answers otherwise (and after a GPU failure).
    const answer = encoder === "table" ? engine.searchWith(query, k, asked, "table") : await engine.searchAsync(query, k, asked);
    const searched = performance.now();
    const notes = [answer.note, ...failed.map((f) => `partial results: ${f.error}`)].filter(Boolean);
    const hits = await Promise.all(answer.hits.map((h) => hit(h).catch((e) => ({ id: h.id, score: h.score, title: "", text: "", url: null, error: String(e?.message ?? e) }))));
    if (hits.some((h) => h.error)) notes.push(`partial results: the text of ${hits.filter((h) => h.error).length} result(s) could not be loaded`);
    const timings = { fetch_ms: msBetween(start, fetched), search_ms: msBetween(fetched, searched), texts_ms: msBetween(searched, performance.now()) };
    if (upgrade?.state === "waiting") startUpgrade();
    // The mode that answered can differ from the one asked for (a query of
    // stop words only is answered densely); the note says why.
    return { hits, mode: answer.mode, encoder: answer.encoder ?? null, note: notes.length ? notes.join("; ") : null, partial: failed.length > 0 || hits.some((h) => h.error), timings };
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
    // The light engine has no transformer: passages need the model.
    if (typeof engine.embedAsync !== "function") {
      throw new Error('embedding texts needs the transformer: this index is searched with its token table (load it with encoder: "transformer")');
    }
    const flat = await engine.embedAsync(texts);
    return texts.map((_, i) => flat.slice(i * dim, (i + 1) * dim));
  },

  async info() {
    need();
    storeDeferred();
    await storing; // so that info().cache counts this page's writes
    return info();
  },
};

/**
 * Starts fetching the text shards of the keyword ranking's top `k` while the
 * vector clusters download: a hybrid answer shares most of them (the table's
 * fusion leans on BM25), so its texts are mostly in by the time it is known.
 */
function prefetchTexts(query, k) {
  try {
    for (const h of engine.searchWith(query, k, "lexical", encoder).hits) {
      if (!added.has(h.ordinal)) passages(Math.floor(h.ordinal / manifest.shard_size)).catch(() => {});
    }
  } catch {
    // Only a head start: the search itself says what failed.
  }
}

/** The text of one hit: from addPassages, or from its text shard. */
async function hit(h) {
  const own = added.get(h.ordinal);
  if (own) return { id: own.id, score: h.score, title: own.title ?? "", text: own.text, url: own.url ?? null };
  const shard = Math.floor(h.ordinal / manifest.shard_size);
  const p = (await passages(shard))[h.ordinal % manifest.shard_size];
  if (p?.id !== h.id) throw new Error(`${manifest.shards.at(shard)} does not hold passage ${h.id} where the index says: the folder mixes two builds`);
  return { id: h.id, score: h.score, title: p.title ?? "", text: p.text, url: p.url ?? null };
}

/** The BM25 term blocks the query needs, fetched once each. */
async function fetchBlocks(query) {
  const l = manifest?.lexical;
  if (!l) return;
  return fetchParts(Array.from(engine.missingBlocks(query)), l.blocks, "block", limit("block", l.max_block_bytes), (_, bytes) => engine.addBlock(bytes));
}

/** The token table's row chunks the query's tokens fall in. */
async function fetchTableRows(query) {
  const t = manifest.table;
  return fetchParts(Array.from(engine.missingTableChunks(query)), t.chunks, "table", limit("tableChunk", t.max_chunk_bytes), (c, bytes) => engine.addTableChunk(c, bytes));
}

/** The vector clusters the query probes (none for an index loaded whole). */
async function fetchClusters(query) {
  const c = manifest?.clusters;
  if (!c || !engine.info().index?.clusters) return;
  return fetchParts(Array.from(engine.missingClusters(query, encoder)), c.lists, "vectors", limit("clusterList", c.max_list_bytes), (_, bytes) => engine.addCluster(bytes));
}

/**
 * Fetches the files `numbers` name in `names` (the folder's own, checked
 * with the manifest), hands each to `add` (the engine checks it) and caches
 * only what the engine accepted.
 */
async function fetchParts(numbers, names, kind, cap, add) {
  const fetched = await Promise.all(numbers.map((n) => read(new URL(names.at(n), base).href, kind, null, cap).then((f) => [n, f])));
  for (const [n, f] of fetched) add(n, f.bytes);
  // Cached side by side: one after another, a query of a dozen small files
  // spent more time in the Cache API than on the network (local server).
  await Promise.all(fetched.map(([, f]) => f.store()));
}

/**
 * A module that validates only where the browser has relaxed SIMD: one
 * `i32x4.relaxed_dot_i8x16_i7x16_add_s`, the instruction the relaxed build's
 * int8 kernel is made of.
 */
const RELAXED_PROBE = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 19, 1, 17, 0, 65, 1, 253, 15, 65, 2, 253, 15, 65, 3, 253, 15, 253, 147, 2, 11]);

/**
 * Threads for the transformer's engine from the `threads` option: "auto" is
 * every core (at most 8) where the page is cross-origin isolated (shared
 * memory needs it) and the engine will run on the CPU (backend "cpu", or no
 * WebGPU), else 1; a number asks for that many, and more than 1 needs an
 * isolated page.
 */
function threadCount(wanted, backend) {
  if (wanted === "auto") {
    const cpu = backend === "cpu" || !self.navigator?.gpu;
    return self.crossOriginIsolated && cpu ? Math.max(1, Math.min(8, self.navigator?.hardwareConcurrency ?? 1)) : 1;
  }
  if (!Number.isInteger(wanted) || wanted < 1 || wanted > 64) throw new Error(`threads must be "auto" or a whole number from 1 to 64, not ${JSON.stringify(wanted)}`);
  if (wanted > 1 && !self.crossOriginIsolated) {
    throw new Error(`threads: ${wanted} needs a cross-origin isolated page (serve it with Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp)`);
  }
  return wanted;
}

/**
 * The transformer's engine, compiled and instantiated: the threaded build
 * when more than one thread is asked for (its int8 kernel is simd128's; it
 * starts a pool of Web Workers sharing its memory), else the relaxed-SIMD
 * build where this browser validates relaxed SIMD (its int8 kernel does 16
 * multiplies per instruction; it also carries simd128's and keeps the faster
 * on this CPU), the simd128 build otherwise, when asked
 * (`simd: "simd128"`), or when the package lacks a build. A build that fails
 * to start gives way to the next, and `info()` says why.
 */
async function startFull() {
  // Literal import paths, so that bundlers find and ship every build.
  const ready = async (glue) => {
    const mod = await glue;
    await mod.default();
    return mod;
  };
  try {
    if (threads > 1) {
      try {
        const mod = await ready(import("./ernie_search_threads.js"));
        await mod.initThreadPool(threads);
        return mod;
      } catch (e) {
        threadsError = String(e?.message ?? e);
      }
    }
    if (simd === "auto" && WebAssembly.validate(RELAXED_PROBE)) {
      try {
        return await ready(import("./ernie_search_relaxed.js"));
      } catch (e) {
        relaxedError = String(e?.message ?? e);
      }
    }
    return await ready(import("./ernie_search.js"));
  } catch (e) {
    throw new Error(`cannot start the wasm engine: ${e?.message ?? e}`);
  }
}

/**
 * The light engine: no model. The token table's head, the vectors' cluster
 * head (or the whole index file when the folder has no clusters) and the
 * BM25 meta; table rows, clusters and term blocks follow per query.
 */
/** The light engine's class, once its wasm has downloaded and compiled. */
function startLight(prefetched = false) {
  // The wasm downloads beside its glue, not after it: a round trip sooner;
  // sooner still when the page started it (`prefetched`), and fetched here
  // only if the page could not.
  const url = new URL("./ernie_search_light_bg.wasm", import.meta.url);
  const wasm = prefetched ? pageLightWasm.then((bytes) => bytes ?? fetch(url)) : fetch(url);
  wasm.catch(() => {});
  const light = import("./ernie_search_light.js")
    .then(async (mod) => {
      await mod.default({ module_or_path: wasm });
      return mod.Engine;
    })
    .catch((e) => {
      throw new Error(`cannot start the wasm engine: ${e?.message ?? e}`);
    });
  light.catch(() => {}); // awaited only when the folder turns out to be light
  return light;
}

async function loadLight(mf, progress, light, started) {
  const t = manifest.table;
  const c = manifest.clusters;
  const vectors = c
    ? read(new URL(c.head, base).href, "vectors", progress, limit("clusterHead", c.head_bytes))
    : read(new URL(manifest.index_file, base).href, "index", progress, limit("index", manifest.index_bytes));
  const lexical = manifest.lexical ? read(new URL(manifest.lexical.meta, base).href, "lexical", progress, limit("lexical", manifest.lexical.meta_bytes)) : null;
  // The chunks of the commonest words come with the head (a failed one is left to the first search).
  const hot = (t.hot ?? []).map((c) =>
    read(new URL(t.chunks.at(c), base).href, "table", null, limit("tableChunk", t.max_chunk_bytes)).then((f) => [c, f], () => null),
  );
  const [v, th, lx, Engine] = await Promise.all([vectors, read(new URL(t.head, base).href, "table", progress, limit("tableHead", t.head_bytes)), lexical, light]);
  const fetched = performance.now();
  engine = Engine.loadTableOnly(v.bytes, th.bytes);
  for (const got of await Promise.all(hot)) {
    if (!got) continue;
    engine.addTableChunk(got[0], got[1].bytes);
    await got[1].store();
  }
  if (engine.info().index.count !== manifest.count) throw new Error(`${v.url} holds ${engine.info().index.count} passages but manifest.json says ${manifest.count}: the folder mixes two builds`);
  if (lx) {
    engine.loadLexical(lx.bytes);
    const n = engine.info().lexical.blocks;
    if (n !== manifest.lexical.blocks.length) throw new Error(`the lexical meta file ${lx.url} has ${n} term blocks but manifest.json names ${manifest.lexical.blocks.length}: the folder mixes two builds`);
  }
  engine.setFusion(manifest.fusion?.method === "convex" ? manifest.fusion.alpha : null);
  engine.setTableFusion(t.fusion?.method === "convex" ? t.fusion.alpha : null);
  loadTimings = { parts_ms: msBetween(started, fetched), engine_ms: msBetween(fetched, performance.now()) };
  encoder = "table";
  await Promise.all([mf, v, th, lx].map((f) => f?.store()));
  storing = storing.then(dropOtherCaches);
}

/**
 * Progressive quality: after the first search, the full engine (the
 * transformer, the whole vector file) loads in the background; once it is
 * ready it answers, with the blocks this page already fetched (from the
 * cache). A failure keeps the light engine and is reported by info().
 */
function startUpgrade() {
  upgrade = { state: "loading" };
  const light = engine;
  (async () => {
    if (!manifest.model_file) throw new Error("manifest.json names no model_file: nothing to upgrade to");
    const [m, ix, lx, { Engine }] = await Promise.all([
      read(new URL(manifest.model_file, base).href, "model", null, limit("model", manifest.model_bytes)),
      read(new URL(manifest.index_file, base).href, "index", null, limit("index", manifest.index_bytes)),
      manifest.lexical ? read(new URL(manifest.lexical.meta, base).href, "lexical", null, limit("lexical", manifest.lexical.meta_bytes)) : null,
      startFull(),
    ]);
    const full = requested === "cpu" ? Engine.load(m.bytes, ix.bytes) : await Engine.loadAsync(m.bytes, ix.bytes, requested);
    if (lx) full.loadLexical(lx.bytes);
    full.setFusion(manifest.fusion?.method === "convex" ? manifest.fusion.alpha : null);
    await Promise.all([m, ix].map((f) => f.store()));
    return full;
  })().then(
    (full) => {
      // Swapped between requests: the queue runs one at a time.
      queue = queue.then(() => {
        if (engine !== light) return;
        engine = full;
        encoder = "transformer";
        upgrade = { state: "done" };
        light.free?.();
      });
    },
    (e) => {
      upgrade = { state: "failed", error: String(e?.message ?? e) };
    },
  );
}

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
  // Which CPU kernel encodes (e.g. "fused simd128, 1 thread"); the light engine has none.
  if (b.cpu_kernel) backend.cpu_kernel = b.cpu_kernel;
  // What the build timed at load: the relaxed build's two kernels, the threaded build's split of a query.
  if (b.kernel_choice) backend.kernel_choice = b.kernel_choice;
  // The relaxed-SIMD build failed to load where the browser has relaxed SIMD.
  if (relaxedError) backend.simd_fallback = relaxedError;
  // The threaded build failed to start where it was asked for.
  if (threadsError) backend.threads_fallback = threadsError;
  return { ...backend, build: e.build, encoder, upgrade: upgrade && { ...upgrade }, model: e.model, dim: e.dim, index: e.index, lexical: e.lexical, table: e.table, fusion: e.fusion, sizes, files: [...files], cache: { ...cacheStatus }, load_timings: loadTimings && { ...loadTimings } };
}

/** Milliseconds from `a` to `b` (performance.now() readings), to 0.1 ms. */
function msBetween(a, b) {
  return Math.round((b - a) * 10) / 10;
}

function transferables(value) {
  return Array.isArray(value) && value[0] instanceof Float32Array ? value.map((v) => v.buffer) : [];
}

/** The passages of one text shard, fetched once. */
function passages(shard) {
  if (!shards.has(shard)) {
    const url = new URL(manifest.shards.at(shard), base).href;
    const p = read(url, "shard", null, limit("shard", manifest.max_shard_bytes)).then(async (f) => {
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
async function readManifest(url, given) {
  let res;
  let cached = false;
  let bytes = given?.length <= MAX_MANIFEST_BYTES ? given : null;
  if (!bytes) {
    try {
      res = await fetch(url, { cache: "no-cache" });
    } catch (e) {
      res = typeof caches === "undefined" ? undefined : await caches.match(url).catch(() => undefined);
      if (!res) throw new Error(`cannot fetch ${url} (${e.message}) and no copy is cached`);
      cached = true;
    }
    if (!res.ok) throw new Error(`cannot load the index: GET ${url}: HTTP ${res.status} ${res.statusText}`.trim());
    bytes = await body(res, url, "manifest", { max: MAX_MANIFEST_BYTES, why: "a manifest may have" });
  }
  let m;
  try {
    m = JSON.parse(new TextDecoder().decode(bytes));
  } catch (e) {
    throw new Error(`${url} is not an ernie-search manifest (not JSON: ${e.message})`);
  }
  checkManifest(m, url);
  files.push({ kind: "manifest", url, bytes: bytes.length, cached });
  return { manifest: m, store: async () => cached || put(url, bytes, "application/json") };
}

/**
 * Refuses a manifest whose names could lead outside the index folder (`..`,
 * an absolute path or URL, a query string) or whose numbers are not ones a
 * build writes: what load and search then fetch is the folder's own files.
 */
function checkManifest(m, url) {
  const bad = (why) => {
    throw new Error(`${url}: ${why}`);
  };
  const show = (v) => (typeof v === "string" ? JSON.stringify(v.slice(0, 80)) : (JSON.stringify(v) ?? String(v)).slice(0, 80));
  if (typeof m?.model_fingerprint !== "string" || m.index_file == null || m.shards == null) {
    bad("not an ernie-search manifest (no model_fingerprint, index_file or shards)");
  }
  const sized = (field, v, ceiling) => {
    if (!Number.isSafeInteger(v) || v < 1) bad(`${field} ${show(v)} is not a positive integer`);
    if (ceiling && v > ceiling) bad(`${field} = ${v} is over the ${ceiling}-byte limit`);
  };
  const named = (part, v, field = PARTS[part].field) => {
    if (typeof v !== "string" || !PARTS[part].name.test(v)) bad(`${field} ${show(v)} is not a name inside the index folder (expected ${PARTS[part].expected})`);
  };
  /** A list of 1 to `max` files of `part`, each by its own name pattern. */
  const fileList = (part, list, field, max) => {
    if (!Array.isArray(list) || list.length < 1 || list.length > max) bad(`${field} must list 1 to ${max} files, not ${show(list)}`);
    list.forEach((f, i) => named(part, f, `${field}[${i}]`));
    return list;
  };
  /**
   * 1 to `max` files of `part`: listed (manifest version 3 and older), or
   * named after one hash of the set, { hash, count }: `dir/stem.<hash>.<n>.ext`
   * (FileSet in src/format/shard.rs). Returns the names, read with `length`
   * and `at(n)` (an array, or names made on demand).
   */
  const fileSet = (part, set, field, max) => {
    if (Array.isArray(set)) return fileList(part, set, field, max);
    if (typeof set?.hash !== "string" || !/^[0-9a-f]{16}$/.test(set.hash)) bad(`${field} ${show(set)} is neither a list of files nor { hash: <16 hex>, count }`);
    if (!Number.isInteger(set.count) || set.count < 1 || set.count > max) bad(`${field}.count must be 1 to ${max}, not ${show(set.count)}`);
    return numbered(set.count, (n) => PARTS[part].expected.replace("<16 hex>", `${set.hash}.${n}`));
  };
  for (const f of ["shard_size", "count", "dim"]) sized(f, m[f]);
  sized("index_bytes", m.index_bytes, PARTS.index.ceiling);
  const shards = Math.ceil(m.count / m.shard_size);
  const count = Array.isArray(m.shards) ? m.shards.length : m.shards.count;
  if (count !== shards) bad(`${count} shards cannot hold ${m.count} passages of ${m.shard_size} per shard (${shards} expected)`);
  named("index", m.index_file);
  if (m.model_file != null) named("model", m.model_file);
  m.shards = fileSet("shard", m.shards, "shards", MAX_SHARDS);
  if (m.model_bytes != null) sized("model_bytes", m.model_bytes, PARTS.model.ceiling);
  if (m.max_shard_bytes != null) sized("max_shard_bytes", m.max_shard_bytes, PARTS.shard.ceiling);
  const l = m.lexical;
  if (l != null) {
    named("lexical", l.meta);
    l.blocks = fileSet("block", l.blocks, "lexical.blocks", MAX_LEXICAL_BLOCKS);
    if (l.meta_bytes != null) sized("lexical.meta_bytes", l.meta_bytes, PARTS.lexical.ceiling);
    if (l.max_block_bytes != null) sized("lexical.max_block_bytes", l.max_block_bytes, PARTS.block.ceiling);
  }
  const t = m.table;
  if (t != null) {
    named("tableHead", t.head);
    if (t.chunks == null) {
      // Named after the head (checked above): table/rows.<its hash>.<n>.bin, n < chunk_count.
      if (!Number.isInteger(t.chunk_count) || t.chunk_count < 1 || t.chunk_count > MAX_TABLE_CHUNKS) bad(`table.chunk_count must be 1 to ${MAX_TABLE_CHUNKS}, not ${show(t.chunk_count)}`);
      const hash = t.head.slice("table/head.".length, -".bin".length);
      t.chunks = numbered(t.chunk_count, (c) => `table/rows.${hash}.${c}.bin`);
    } else fileList("tableChunk", t.chunks, "table.chunks", MAX_TABLE_CHUNKS);
    sized("table.head_bytes", t.head_bytes, PARTS.tableHead.ceiling);
    sized("table.max_chunk_bytes", t.max_chunk_bytes, PARTS.tableChunk.ceiling);
    if (t.hot != null && (!Array.isArray(t.hot) || !t.hot.every((c) => Number.isInteger(c) && c >= 0 && c < t.chunks.length))) bad(`table.hot ${show(t.hot)} must list chunk numbers below ${t.chunks.length}`);
  }
  const c = m.clusters;
  if (c != null) {
    named("clusterHead", c.head);
    c.lists = fileSet("clusterList", c.lists, "clusters.lists", MAX_CLUSTERS);
    sized("clusters.head_bytes", c.head_bytes, PARTS.clusterHead.ceiling);
    sized("clusters.max_list_bytes", c.max_list_bytes, PARTS.clusterList.ceiling);
  }
}

/**
 * `count` names made on demand, name(n) for n below count, read as the lists
 * of older manifests are (`length`, `at(n)`): a manifest of a few bytes may
 * name 2^20 files, which an array would hold as tens of MB of strings.
 */
function numbered(count, name) {
  return { length: count, at: (n) => (Number.isInteger(n) && n >= 0 && n < count ? name(n) : undefined) };
}

/** The most bytes read of a `part` file: the size manifest.json records, else the part's default. */
function limit(part, recorded) {
  return recorded != null ? { max: recorded, why: "manifest.json records" } : { max: PARTS[part].unrecorded, why: `a ${part} file may have when manifest.json records no size` };
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
 * as { url, bytes, store() }: store() caches it once the caller has accepted
 * it. No more than `cap.max` bytes are read (see limit()).
 */
async function read(url, kind, progress, cap) {
  const looked = mayBeCached(url);
  let hit = looked && (await guard(() => cache.match(url)));
  let res;
  if (!hit) {
    try {
      // A query's table rows decide which vector cluster it needs next: they
      // go first (fetch priority, where the browser has it).
      res = await fetch(url, { priority: kind === "table" ? "high" : "auto" });
    } catch (e) {
      // Offline: another page of this site may have cached it since the list was made.
      hit = !looked && cache && (await guard(() => cache.match(url)));
      if (!hit) throw new Error(`cannot fetch the ${kind} file ${url}: ${e.message}`);
    }
  }
  if (hit) {
    const bytes = await body(hit, url, kind, cap);
    cacheStatus.hits++;
    files.push({ kind, url, bytes: bytes.length, cached: true });
    progress?.({ file: kind, url, loaded: bytes.length, total: bytes.length, cached: true });
    return { url, bytes, store: async () => {} };
  }
  if (!res.ok) throw new Error(`cannot fetch the ${kind} file: GET ${url}: HTTP ${res.status} ${res.statusText}`.trim());
  const bytes = await body(res, url, kind, cap, progress);
  files.push({ kind, url, bytes: bytes.length, cached: false });
  return { url, bytes, store: () => put(url, bytes, res.headers.get("content-type") ?? "application/octet-stream") };
}

/**
 * A response's body, streamed: refused as soon as it is known to be over
 * `cap.max` bytes (from Content-Length, or the running total), and the rest
 * is not downloaded.
 */
async function body(res, url, kind, cap, progress) {
  const over = () => new Error(`the ${kind} file ${url} is larger than the ${cap.max} bytes ${cap.why}: refusing to read more`);
  // Content-Length is the size on the wire: with compression it is not the
  // body's size, so the total is then unknown (null).
  const length = Number(res.headers.get("content-length"));
  const total = length && !res.headers.get("content-encoding") ? length : null;
  if (total > cap.max) {
    res.body?.cancel().catch(() => {});
    throw over();
  }
  const chunks = [];
  let loaded = 0;
  const reader = res.body?.getReader();
  for (;;) {
    const { done, value } = reader ? await reader.read() : { done: true };
    if (done) break;
    chunks.push(value);
    loaded += value.length;
    if (loaded > cap.max) {
      reader.cancel().catch(() => {});
      throw over();
    }
    progress?.({ file: kind, url, loaded, total, cached: false });
  }
  const bytes = new Uint8Array(loaded);
  let at = 0;
  for (const c of chunks) bytes.set(c, (at += c.length) - c.length);
  return bytes;
}

/**
 * Lists the cache once, in the background, after the first search has
 * answered (a few thousand entries take tens of ms, which neither the load
 * nor that search should wait for): from then on a file the cache does not
 * hold goes straight to the network instead of through a lookup first.
 */
function listCache() {
  if (listing || !cache) return;
  listing = true;
  cache
    .keys()
    .then((requests) => {
      cachedUrls = new Set(requests.map((r) => r.url));
      cacheStatus.listed = cachedUrls.size;
    })
    .catch(() => {});
}

/** Whether `url` may be in the cache: false only when its list says it is not. */
function mayBeCached(url) {
  return !!cache && (!cachedUrls || cachedUrls.has(url) || writtenUrls.has(url));
}

/** Caches a file; during a search, once its answer is posted (storeDeferred). */
function put(url, bytes, type) {
  if (deferredStores) {
    deferredStores.push([url, bytes, type]);
    return Promise.resolve();
  }
  return write(url, bytes, type);
}

/** Starts the writes a search deferred. */
function storeDeferred() {
  clearTimeout(idleStores);
  const writes = deferredStores ?? [];
  deferredStores = null;
  if (writes.length) storing = Promise.all([storing, ...writes.map((w) => write(...w))]);
}

function write(url, bytes, type) {
  return guard(async () => {
    if (!cache) return;
    await cache.put(url, new Response(bytes, { headers: { "content-type": type } }));
    cacheStatus.stores++;
    writtenUrls.add(url);
  });
}
