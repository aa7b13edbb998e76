// The main-thread API. Every call goes to the engine's Web Worker
// (worker.js) as a message with a request id and comes back as a promise;
// errors from the worker or the wasm engine reject it with their message.

/** The most bytes a manifest may have (the worker's limit too). */
const MAX_MANIFEST_BYTES = 16 * 1024 * 1024;
/** The most bytes the light engine's wasm may have. */
const MAX_WASM_BYTES = 64 * 1024 * 1024;

/**
 * `url`'s bytes, or null on any failure or past `limit` bytes (the worker
 * then fetches it and says why). `cache`: the fetch's cache mode.
 */
async function prefetch(url, limit = MAX_MANIFEST_BYTES, cache = "no-cache") {
  try {
    const res = await fetch(url, { cache });
    if (!res.ok || !res.body) return null;
    const reader = res.body.getReader();
    const parts = [];
    let n = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      n += value.length;
      if (n > limit) {
        reader.cancel().catch(() => {});
        return null;
      }
      parts.push(value);
    }
    const bytes = new Uint8Array(n);
    parts.reduce((at, p) => (bytes.set(p, at), at + p.length), 0);
    return bytes;
  } catch {
    return null;
  }
}

export class Retriever {
  #worker;
  #pending = new Map(); // request id -> { resolve, reject, onProgress }
  #nextId = 1;
  #broken = null; // why the worker can no longer answer

  constructor() {
    // `new URL(..., import.meta.url)` in this exact form lets bundlers (Vite,
    // webpack 5) find and ship the worker with the package.
    this.#worker = new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
    this.#worker.onmessage = ({ data }) => {
      const p = this.#pending.get(data.id);
      if (!p) return;
      if ("progress" in data) return p.onProgress?.(data.progress);
      this.#pending.delete(data.id);
      data.ok ? p.resolve(data.value) : p.reject(new Error(data.error));
    };
    // A worker that fails to start, or dies, rejects everything waiting on it.
    this.#worker.onerror = (e) => {
      e.preventDefault();
      this.#fail(`the search worker failed: ${e.message || "it could not be started (is worker.js served next to index.js?)"}`);
    };
  }

  /**
   * Starts a worker and loads the index folder at `index` (its manifest.json,
   * the model it names, the vector index, the BM25 meta file); or, with
   * `model` alone, a model for embedding only. `encoder`: "auto" (the light
   * engine, with no model, when the folder carries a token table and
   * clusters, as index-site writes them), "table" or "transformer";
   * `progressive`: with the table, load the transformer after the first
   * search and answer later ones with it. `simd`: which build of the
   * transformer's engine, "auto" (relaxed SIMD where the browser validates
   * it, else simd128) or "simd128". `threads`: the transformer's threads,
   * "auto" (every core, at most 8, on a cross-origin isolated page when the
   * engine runs on the CPU; else 1) or a number.
   */
  static async load({ index, model, backend = "auto", encoder = "auto", progressive = false, simd = "auto", threads = "auto", onProgress } = {}) {
    const r = new Retriever();
    const abs = (u) => (u == null ? u : new URL(u, globalThis.location?.href).href);
    // The folder's URL is the base of the files it names: it must end in "/".
    const folder = index == null ? index : abs(String(index).replace(/\/?$/, "/"));
    try {
      // A folder may be light (index-site's: the token table, no model): its
      // engine's wasm downloads now too, beside the worker's script, where
      // the worker would ask for it a round trip later (on slow 4G, 0.25 s
      // of a first answer's 3).
      const light = folder != null && model == null && encoder !== "transformer";
      const loading = r.#call("load", { index: folder, model: abs(model), backend, encoder, progressive, simd, threads, prefetched: folder != null, lightPrefetched: light }, onProgress);
      // manifest.json downloads while the worker's script does: a round trip
      // sooner. The worker checks it as its own (or fetches it, given null).
      if (folder != null) {
        prefetch(`${folder}manifest.json`).then((bytes) => r.#worker.postMessage({ manifest: bytes }, bytes ? [bytes.buffer] : []));
      }
      if (light) {
        prefetch(new URL("./ernie_search_light_bg.wasm", import.meta.url).href, MAX_WASM_BYTES, "default").then((bytes) => r.#worker.postMessage({ lightWasm: bytes }, bytes ? [bytes.buffer] : []));
      }
      await loading;
    } catch (e) {
      r.close();
      throw e;
    }
    return r;
  }

  /** The best passages for `query`: [{ id, score, title, text, url }], best first. */
  search(query, { k = 10, mode = "hybrid", details = false } = {}) {
    if (typeof query !== "string") return Promise.reject(new Error("the query must be a string"));
    // details: { hits, mode, encoder, note, partial }, with the mode and the
    // query encoder that answered, why the mode differs from the one asked
    // for, and whether a part failed to load (the next search retries it).
    return this.#call("search", { query, k, mode }).then((a) => (details ? a : a.hits));
  }

  /**
   * Indexes your own passages, [{ id, text, title?, url? }], in the browser
   * (vectors and BM25), beside the loaded index or alone after a model-only
   * load. Resolves to the number of passages searchable. They live in memory:
   * add them again after a reload.
   */
  addPassages(passages) {
    return this.#call("addPassages", { passages });
  }

  /** One Float32Array per text. */
  embed(texts) {
    return this.#call("embed", { texts });
  }

  /** Backend, model card, index, file sizes and cache status. */
  info() {
    return this.#call("info", {});
  }

  /** Stops the worker; pending calls reject. */
  close() {
    this.#worker.terminate();
    this.#fail("the retriever is closed");
  }

  #call(op, args, onProgress) {
    if (this.#broken) return Promise.reject(new Error(this.#broken));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, onProgress });
      this.#worker.postMessage({ id, op, args });
    });
  }

  #fail(message) {
    this.#broken ??= message;
    for (const p of this.#pending.values()) p.reject(new Error(message));
    this.#pending.clear();
  }
}
