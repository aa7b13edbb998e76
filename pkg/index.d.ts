/**
 * Which engine runs the model and the vector scan: "auto" (WebGPU when the
 * browser has an adapter, else the CPU), "gpu" (WebGPU; falls back to the CPU,
 * saying why in `info().fallback`), "cpu" (wasm SIMD only).
 */
export type Backend = "auto" | "cpu" | "gpu";
export type SearchMode = "hybrid" | "dense" | "lexical";

/** One file of a load, as it downloads (or, `cached`, as read from the Cache API). */
export interface LoadProgress {
  file: "model" | "index" | "lexical";
  url: string;
  loaded: number;
  /** Bytes in all; null when the server does not say (compressed responses). */
  total: number | null;
  cached: boolean;
}

export interface LoadOptions {
  /** URL of an index folder (the one holding manifest.json), e.g. "/_ernie/". */
  index?: string;
  /** URL of the model file; default: the index folder's `manifest.model_file`. Alone: embedding only. */
  model?: string;
  /** Default "auto". */
  backend?: Backend;
  /**
   * What encodes queries. "auto" (default): the light engine (no model; the
   * token table, vectors fetched by cluster) when the folder carries a table
   * and clusters, as `index-site` writes it; else the transformer.
   */
  encoder?: "auto" | "table" | "transformer";
  /** With the table: load the transformer after the first search and answer later searches with it. */
  progressive?: boolean;
  /**
   * Which build of the transformer's engine. "auto" (default): the
   * relaxed-SIMD build where the browser validates relaxed SIMD (Chrome,
   * Edge, Firefox), else the simd128 build (Safari); "simd128" forces the
   * latter. `info().cpu_kernel` says which kernel runs (the relaxed build
   * keeps the faster of its two, `info().kernel_choice`).
   */
  simd?: "auto" | "simd128";
  /**
   * The transformer's threads. "auto" (default): every core (at most 8)
   * where the page is cross-origin isolated (served with
   * `Cross-Origin-Opener-Policy: same-origin` and
   * `Cross-Origin-Embedder-Policy: require-corp`) and the engine runs on the
   * CPU (`backend: "cpu"`, or no WebGPU), with the threaded build; else 1.
   * A number above 1 on a page that is not isolated is refused.
   * `info().cpu_kernel` says how many run.
   */
  threads?: "auto" | number;
  onProgress?: (progress: LoadProgress) => void;
}

export interface SearchOptions {
  /** How many passages; default 10. */
  k?: number;
  /** Default "hybrid" (dense and BM25, fused as the manifest says). */
  mode?: SearchMode;
}

export interface Result {
  id: string;
  score: number;
  title: string;
  text: string;
  url: string | null;
  /** Why the text could not be loaded (then title and text are empty). */
  error?: string;
}

export interface FileRead {
  kind: "manifest" | "model" | "index" | "lexical" | "block" | "shard" | "table" | "vectors";
  url: string;
  bytes: number;
  /** Read from the Cache API rather than the network. */
  cached: boolean;
}

/** The WebGPU adapter the engine runs on. */
export interface AdapterInfo {
  name: string;
  /** "webgpu" in the browser. */
  api: string;
  /** "cpu" for software adapters (SwiftShader): correct, not fast. */
  device_type: string;
  driver: string;
  /** Whether the int8 scan uses WGSL's packed 4x8 dot product. */
  int8_dot4: boolean;
  max_storage_binding: number;
}

export interface RetrieverInfo {
  /** "light": the build with no transformer (ernie_search_light.js). */
  build: "full" | "light";
  /** What encodes queries now. */
  encoder: "transformer" | "table";
  /** With `progressive`: the transformer's background load. */
  upgrade: { state: "waiting" | "loading" | "done" | "failed"; error?: string } | null;
  /** Where the encoder runs now. */
  backend: "cpu" | "gpu";
  /** Where the vector scan runs now. */
  scan: "cpu" | "gpu";
  requested: Backend;
  adapter: AdapterInfo | null;
  /** Why the requested backend is not the one running (a GPU that failed, or none with "gpu"). */
  fallback?: string;
  /** Why the relaxed-SIMD build did not load in a browser that has relaxed SIMD (the simd128 build runs). */
  simd_fallback?: string;
  /** Why the threaded build did not start where it was asked for (one thread runs). */
  threads_fallback?: string;
  /** With "auto": why the GPU is not used (no WebGPU adapter is not a fallback). */
  note?: string;
  /** The CPU encoder's kernel and threads, e.g. "fused relaxed-simd, 1 thread" or "fused simd128, 1 thread" (absent in the light engine). */
  cpu_kernel?: string;
  /** What the engine timed at load to choose how it runs: the relaxed-SIMD build's two kernels (each one's time on the model's FFN product), the threaded build's split of a query across its threads (a 16-token text split and on one thread). */
  kernel_choice?: string;
  /** null in the light engine (no model). */
  model: null | {
    name: string;
    weights: string;
    fingerprint: string;
    tensor_count: number;
    spec: { pooling: "mean" | "cls"; normalize: boolean; max_query_len: number; max_passage_len: number; bert: Record<string, unknown> };
    provenance: unknown;
  };
  dim: number;
  index: {
    count: number; rows: number; dim: number; dtype: "f32" | "f16" | "int8"; bytes: number; fingerprint: string;
    /** When the vectors arrive by cluster: how many, how many a query probes, how many are loaded. */
    clusters?: { clusters: number; nprobe: number; loaded: number };
  } | null;
  lexical: { passages: number; blocks: number; loaded_blocks: number; k1: number; b: number } | null;
  table: { vocab: number; chunks: number; loaded_chunks: number } | null;
  fusion: { method: "rrf"; k: number } | { method: "convex"; alpha: number } | null;
  /** Bytes read so far, by kind of file. */
  sizes: Partial<Record<FileRead["kind"], number>>;
  files: FileRead[];
  cache: {
    /** `ernie-search-<first 16 hex of the model fingerprint>`; null for a model-only load. */
    name: string | null;
    enabled: boolean;
    /** Why caching is off (no Cache API, quota, ...); loading goes on without it. */
    error: string | null;
    hits: number;
    stores: number;
    /**
     * Entries the cache held when the worker listed it, after the first
     * search (null until then); later searches ask the cache only for those
     * and the ones written since, and the network for the rest.
     */
    listed: number | null;
  };
  /**
   * Where the load's time went, in the worker (ms): from `load` until its
   * files were in, then the engine reading them (null before a load ends).
   */
  load_timings: { parts_ms: number; engine_ms: number } | null;
}

/** A model and index running in a Web Worker. Every method's promise rejects with the engine's message. */
export class Retriever {
  private constructor();
  static load(options: LoadOptions): Promise<Retriever>;
  search(query: string, options?: SearchOptions & { details?: false }): Promise<Result[]>;
  /** With `details: true`: the hits, the mode that answered ("dense" for a query of stop words only) and why. */
  search(query: string, options: SearchOptions & { details: true }): Promise<{
    hits: Result[];
    mode: "dense" | "lexical" | "hybrid";
    /** What encoded the query (null in lexical mode). */
    encoder: "transformer" | "table" | null;
    note: string | null;
    /** A part (table rows, term blocks, clusters, texts) failed to load: the hits come from the rest. */
    partial: boolean;
    /**
     * Where the search's time went, in the worker (ms): fetching the parts
     * the query needs (table rows, clusters, term blocks), the engine's
     * search (encoding, scan, BM25, fusion), then the hits' texts.
     */
    timings: { fetch_ms: number; search_ms: number; texts_ms: number };
  }>;
  /** One vector (of `info().dim` values) per text. */
  embed(texts: string[]): Promise<Float32Array[]>;
  /** Indexes your own passages in the browser (in memory); resolves to the passages searchable. */
  addPassages(passages: { id: string; text: string; title?: string; url?: string }[]): Promise<number>;
  info(): Promise<RetrieverInfo>;
  /** Stops the worker; pending and later calls reject. */
  close(): void;
}
