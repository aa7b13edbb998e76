//! The browser API: bytes in, typed results out.
//!
//! This file only converts between JS and the library. It never fetches:
//! the caller (a worker, a test page) fetches the model and index files and
//! hands their bytes to [`Engine::load`]. Every error is a `JsError` carrying
//! the library's message.
//!
//! ```js
//! import init, { Engine } from "./pkg/ernie_search.js";
//! await init();
//! const engine = Engine.load(modelBytes, indexBytes); // index optional
//! engine.loadLexical(metaBytes);                        // BM25, optional
//! for (const b of engine.missingBlocks(query))           // term blocks this
//!     engine.addBlock(await fetchBlock(b));              // query needs
//! engine.setFusion(manifest.fusion?.alpha ?? null);      // null: RRF
//! const { hits, mode, note } = engine.search(query, 10); // hybrid by default
//!
//! // The token table (no transformer for the query): head, then chunks.
//! engine.loadTable(headBytes);                           // manifest.table.head
//! for (const c of engine.missingTableChunks(query))
//!     engine.addTableChunk(c, await fetchChunk(c));       // manifest.table.chunks[c]
//! engine.searchWith(query, 10, "hybrid", "table");
//!
//! // WebGPU: load asynchronously with a backend ("auto", "gpu" or "cpu");
//! // the async methods run the encoder and the scan on the GPU, the sync
//! // ones on the CPU. A GPU failure falls back to the CPU, saying why.
//! const gpu = await Engine.loadAsync(modelBytes, indexBytes, "auto");
//! gpu.backend();                           // { backend, scan, adapter, fallback }
//! await gpu.searchAsync(query, 10, "dense");
//!
//! // No model at all (the light build has only this): the index and its
//! // token table's head; the table encodes queries.
//! const light = Engine.loadTableOnly(indexBytes, headBytes);
//! ```

/// `initThreadPool(n)` (the threaded build, feature `threads`): starts n Web
/// Workers sharing this module's memory; call it before `Engine.load`, whose
/// encoder then splits batches and a query's products across them. Needs a
/// cross-origin isolated page (SharedArrayBuffer).
#[cfg(feature = "threads")]
pub use wasm_bindgen_rayon::init_thread_pool;

use std::cell::{Ref, RefCell, RefMut};
use std::rc::Rc;

#[cfg(feature = "encoder")]
use js_sys::Float32Array;
use serde::Serialize;
use wasm_bindgen::prelude::*;

#[cfg(feature = "encoder")]
use crate::format::model::ModelCard;
#[cfg(feature = "encoder")]
use crate::format::shard::Passage;
use crate::fusion::{Fusion, Mode, QueryEncoder};
#[cfg(feature = "encoder")]
use crate::index::builder::BuildOptions;
#[cfg(feature = "encoder")]
use crate::model::fused::gemm::Isa;
use crate::table::TableEncoder;
use crate::{format, Error, LexicalIndex, Retriever, VectorDType};
#[cfg(feature = "encoder")]
use crate::{Backend, Embedder, FlatIndex, GpuOptions, Kernel};

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &str = r#"
/** One ranked passage. `dense` / `lexical`: each side's score, when computed. */
export interface SearchHit { id: string; ordinal: number; score: number; dense?: number; lexical?: number; }
/** `Engine.search`: the hits, the mode that made them, and why it is not the one asked for. */
export interface Answer { hits: SearchHit[]; mode: "dense" | "lexical" | "hybrid"; encoder?: "transformer" | "table"; note?: string; }
/** A passage for `Engine.addPassages`. */
export interface NewPassage { id: string; text: string; title?: string; }
/** `Engine.info()`: the model card, the vector length and the index, if loaded. */
export interface EngineInfo {
    build: "full" | "light";
    model: null | { name: string; weights: string; fingerprint: string; tensor_count: number;
             spec: { pooling: "mean" | "cls"; normalize: boolean; max_query_len: number;
                     max_passage_len: number; bert: Record<string, unknown> };
             provenance: unknown };
    dim: number;
    index: { count: number; rows: number; dim: number; dtype: "f32" | "f16" | "int8"; bytes: number; fingerprint: string;
             clusters?: { clusters: number; nprobe: number; loaded: number } } | null;
    lexical: { passages: number; blocks: number; loaded_blocks: number; k1: number; b: number } | null;
    table: { vocab: number; chunks: number; loaded_chunks: number } | null;
    fusion: { method: "rrf"; k: number } | { method: "convex"; alpha: number } | null;
    backend: BackendInfo;
}
/** `Engine.backend()`: where the encoder and the scan run, the adapter, and why not the GPU. */
export interface BackendInfo {
    requested: "auto" | "gpu" | "cpu";
    backend: "gpu" | "cpu";
    scan: "gpu" | "cpu";
    adapter?: { name: string; api: string; device_type: string; driver: string; int8_dot4: boolean; max_storage_binding: number };
    fallback?: string;
    note?: string;
    /** The CPU encoder's kernel and threads, e.g. "fused simd128, 1 thread". */
    cpu_kernel?: string;
    /** What the build timed at load to choose how it runs: the relaxed-SIMD build's two kernels, the threaded build's split of a query across its threads. */
    kernel_choice?: string;
}
"#;

/// One model and, optionally, the index built with it. Without an index
/// the retriever holds an empty one: `search` is refused until passages are
/// added.
#[wasm_bindgen]
pub struct Engine {
    /// Shared with the futures of the async methods (one call at a time:
    /// the worker queues requests).
    retriever: Rc<RefCell<Retriever>>,
}

#[derive(Serialize)]
struct Info<'a> {
    /// "full" (transformer, WebGPU) or "light" (table only: `--light`).
    build: &'static str,
    /// `None` in a table-only engine.
    #[cfg(feature = "encoder")]
    model: Option<&'a ModelCard>,
    #[cfg(not(feature = "encoder"))]
    model: Option<&'a ()>,
    dim: usize,
    index: Option<IndexInfo>,
    lexical: Option<LexicalInfo>,
    table: Option<TableInfo>,
    fusion: Option<Fusion>,
    backend: crate::BackendInfo,
}

#[derive(Serialize)]
struct TableInfo {
    vocab: usize,
    chunks: usize,
    loaded_chunks: usize,
}

#[derive(Serialize)]
struct LexicalInfo {
    passages: usize,
    blocks: u32,
    loaded_blocks: u32,
    k1: f32,
    b: f32,
}

#[derive(Serialize)]
struct IndexInfo {
    count: usize,
    rows: usize,
    dim: usize,
    dtype: VectorDType,
    /// Bytes one query scans.
    bytes: usize,
    fingerprint: String,
    /// Present when the vectors arrive by cluster.
    #[serde(skip_serializing_if = "Option::is_none")]
    clusters: Option<ClusterInfo>,
}

#[derive(Serialize)]
struct ClusterInfo {
    clusters: usize,
    nprobe: usize,
    loaded: usize,
}

#[wasm_bindgen]
impl Engine {
    /// Loads an index file (or the head of its clusters,
    /// `manifest.clusters.head`) and its token table's head, with no model:
    /// the query encoder is the table (`missingTableChunks`,
    /// `addTableChunk`), which must have been distilled against the encoder
    /// that built the index. What the light build (no transformer) offers.
    #[wasm_bindgen(js_name = loadTableOnly)]
    pub fn load_table_only(index: &[u8], table_head: &[u8]) -> Result<Engine, JsError> {
        show_panics();
        let index = format::index::vectors_from_bytes(index)?;
        let table = TableEncoder::from_head(format::table::head_from_bytes(table_head, None)?)?;
        Ok(Engine { retriever: Rc::new(RefCell::new(Retriever::with_table_only(index, table)?)) })
    }

    /// Where the encoder and the scan run now, the adapter, and why not on
    /// the GPU when they are not.
    #[wasm_bindgen(unchecked_return_type = "BackendInfo")]
    pub fn backend(&self) -> Result<JsValue, JsError> {
        to_js(&self.get()?.backend())
    }

    /// The best `k` passages, best first, with the mode used: `mode` is
    /// "hybrid" (the default), "dense" or "lexical". Hybrid answers densely,
    /// with a `note`, until the lexical part is loaded.
    #[wasm_bindgen(unchecked_return_type = "Answer")]
    pub fn search(&self, query: &str, k: usize, mode: Option<String>) -> Result<JsValue, JsError> {
        let mode = mode.as_deref().map(Mode::parse).transpose()?.unwrap_or_default();
        to_js(&self.retriever()?.search(query, k, mode)?)
    }

    /// As `search`, with the query encoded by `encoder`: "transformer" (the
    /// default) or "table" (the token table: load its head with `loadTable`
    /// and the chunks `missingTableChunks` names first).
    #[wasm_bindgen(js_name = searchWith, unchecked_return_type = "Answer")]
    pub fn search_with(
        &self,
        query: &str,
        k: usize,
        mode: Option<String>,
        encoder: Option<String>,
    ) -> Result<JsValue, JsError> {
        let mode = mode.as_deref().map(Mode::parse).transpose()?.unwrap_or_default();
        let encoder = encoder.as_deref().map(QueryEncoder::parse).transpose()?.unwrap_or_default();
        to_js(&self.retriever()?.search_with(query, k, mode, encoder)?)
    }

    /// Loads the token table's head (`manifest.table.head`): the query
    /// encoder with no transformer. It must be the index's encoder's table.
    #[wasm_bindgen(js_name = loadTable)]
    pub fn load_table(&mut self, head: &[u8]) -> Result<(), JsError> {
        let head = format::table::head_from_bytes(head, None)?;
        Ok(self.retriever_mut()?.set_table(TableEncoder::from_head(head)?)?)
    }

    /// Numbers of the table chunks `query` needs that are not loaded yet
    /// (`manifest.table.chunks[n]` names chunk n's file).
    #[wasm_bindgen(js_name = missingTableChunks)]
    pub fn missing_table_chunks(&self, query: &str) -> Result<Vec<u32>, JsError> {
        let r = self.retriever()?;
        let Some(t) = r.table() else { return Ok(Vec::new()) };
        Ok(t.table.missing_chunks(&t.token_ids(query)?).into_iter().map(|c| c as u32).collect())
    }

    /// Adds table chunk `number` from its file's bytes (checked against the head).
    #[wasm_bindgen(js_name = addTableChunk)]
    pub fn add_table_chunk(&mut self, number: u32, bytes: &[u8]) -> Result<(), JsError> {
        let mut r = self.retriever_mut()?;
        let t = r
            .table_mut()
            .ok_or_else(|| Error::Invalid("load the table's head (loadTable) before its chunks".into()))?;
        Ok(t.add_chunk(number as usize, bytes)?)
    }

    /// Numbers of the vector clusters `query` probes that are not loaded yet
    /// (`manifest.clusters.lists[n]` names cluster n's file); none for an
    /// index loaded whole. Load the table chunks the query needs first.
    #[wasm_bindgen(js_name = missingClusters)]
    pub fn missing_clusters(&self, query: &str, encoder: Option<String>) -> Result<Vec<u32>, JsError> {
        crate::model::check_query(query)?;
        let r = self.retriever()?;
        let encoder = match encoder.as_deref() {
            Some(e) => QueryEncoder::parse(e)?,
            None => r.default_encoder(),
        };
        Ok(r.missing_clusters(query, encoder)?)
    }

    /// Adds one cluster list file of the loaded cluster head; returns its number.
    #[wasm_bindgen(js_name = addCluster)]
    pub fn add_cluster(&mut self, bytes: &[u8]) -> Result<u32, JsError> {
        Ok(self.retriever_mut()?.add_cluster(bytes)?)
    }

    /// Loads the BM25 part's meta file (`manifest.lexical.meta`); term blocks
    /// follow with `addBlock`. It must come from the same index build.
    #[wasm_bindgen(js_name = loadLexical)]
    pub fn load_lexical(&mut self, meta: &[u8]) -> Result<(), JsError> {
        let lexical = LexicalIndex::from_meta(format::lexical::meta_from_bytes(meta)?)?;
        Ok(self.retriever_mut()?.set_lexical(lexical)?)
    }

    /// Numbers of the term blocks `query` needs that are not loaded yet
    /// (`manifest.lexical.blocks[n]` names block n's file).
    #[wasm_bindgen(js_name = missingBlocks)]
    pub fn missing_blocks(&self, query: &str) -> Result<Vec<u32>, JsError> {
        crate::model::check_query(query)?;
        match self.retriever()?.lexical() {
            Some(l) => Ok(l.missing_blocks(query)),
            None => Ok(Vec::new()),
        }
    }

    /// Adds one term block file of the loaded lexical part.
    #[wasm_bindgen(js_name = addBlock)]
    pub fn add_block(&mut self, bytes: &[u8]) -> Result<(), JsError> {
        let (n, corpus, block) = format::lexical::block_from_bytes(bytes)?;
        let mut r = self.retriever_mut()?;
        let lexical = r
            .lexical_mut()
            .ok_or_else(|| Error::Invalid("load the lexical meta file (loadLexical) before its blocks".into()))?;
        Ok(lexical.add_block(n, &corpus, block)?)
    }

    /// Hybrid fusion: the dense side's weight in 0..1 (`manifest.fusion.alpha`),
    /// or null for reciprocal rank fusion.
    #[wasm_bindgen(js_name = setFusion)]
    pub fn set_fusion(&mut self, alpha: Option<f32>) -> Result<(), JsError> {
        let fusion = match alpha {
            None => Fusion::default(),
            Some(a) => Fusion::convex(a)?,
        };
        self.retriever_mut()?.set_fusion(fusion);
        Ok(())
    }

    /// The token table's own hybrid weight (`manifest.table.fusion.alpha`,
    /// tuned at index time without labels), or null for the index's fusion.
    #[wasm_bindgen(js_name = setTableFusion)]
    pub fn set_table_fusion(&mut self, alpha: Option<f32>) -> Result<(), JsError> {
        let fusion = alpha.map(Fusion::convex).transpose()?;
        let mut r = self.retriever_mut()?;
        let t = r.table_mut().ok_or_else(|| Error::Invalid("this engine carries no token table".into()))?;
        t.fusion = fusion;
        Ok(())
    }

    /// The model card, the vector length and, when loaded, the index's size,
    /// dtype and count.
    #[wasm_bindgen(unchecked_return_type = "EngineInfo")]
    pub fn info(&self) -> Result<JsValue, JsError> {
        let r = self.get()?;
        let i = r.index();
        let index = (!i.is_empty()).then(|| IndexInfo {
            count: i.len(),
            rows: i.rows(),
            dim: i.dim(),
            dtype: i.dtype(),
            bytes: i.scan_bytes(),
            fingerprint: i.fingerprint().to_string(),
            clusters: i.clusters().map(|c| ClusterInfo {
                clusters: c.k(),
                nprobe: c.nprobe(),
                loaded: c.loaded_count(),
            }),
        });
        let lexical = r.lexical().map(|l| LexicalInfo {
            passages: l.len(),
            blocks: l.n_blocks(),
            loaded_blocks: (0..l.n_blocks()).filter(|&b| l.block(b).is_some()).count() as u32,
            k1: l.meta().params.k1,
            b: l.meta().params.b,
        });
        let fusion = index.as_ref().map(|_| r.fusion());
        #[cfg(feature = "encoder")]
        let model = r.embedder().ok().map(|e| e.card());
        #[cfg(not(feature = "encoder"))]
        let model = None;
        let table = r.table().map(|t| TableInfo {
            vocab: t.table.vocab(),
            chunks: t.table.n_chunks(),
            loaded_chunks: t.table.loaded_chunks(),
        });
        let build = if cfg!(feature = "encoder") { "full" } else { "light" };
        to_js(&Info { build, model, dim: r.index().dim(), index, lexical, table, fusion, backend: r.backend() })
    }

    /// Length of the vectors (the model's, the index's, the table's).
    pub fn dim(&self) -> usize {
        self.get().map(|r| r.index().dim()).unwrap_or(0)
    }

    /// Whether an index is loaded (whether `search` can answer).
    #[wasm_bindgen(getter, js_name = hasIndex)]
    pub fn has_index(&self) -> bool {
        self.get().map(|r| !r.index().is_empty()).unwrap_or(false)
    }
}

/// The transformer's part of the API: not in the light build (no `encoder` feature).
#[cfg(feature = "encoder")]
#[wasm_bindgen]
impl Engine {
    /// Loads a model file (GGUF bytes) and, optionally, an index file built
    /// with that model. An index from another model is refused.
    pub fn load(model: &[u8], index: Option<Vec<u8>>) -> Result<Engine, JsError> {
        show_panics();
        let embedder = Embedder::from_bytes(model)?;
        let index = match index {
            Some(bytes) => format::index::vectors_from_bytes(&bytes)?,
            None => FlatIndex::new(embedder.dim(), VectorDType::F32, &embedder.card().fingerprint)?,
        };
        Ok(Engine { retriever: Rc::new(RefCell::new(Retriever::new(embedder, index)?)) })
    }

    /// A model file's card (name, settings, provenance) without loading the
    /// weights: the layout is checked, the weights are not hashed.
    #[wasm_bindgen(js_name = modelCard)]
    pub fn model_card(model: &[u8]) -> Result<JsValue, JsError> {
        to_js(&format::model::read_card(model)?)
    }

    /// Runs every int8 GEMM kernel this build has (simd128, relaxed SIMD)
    /// against the scalar reference on ragged shapes whose sums are exact,
    /// then the SIMD activation quantization against the scalar arithmetic:
    /// the number of checks that matched bit for bit; throws naming the
    /// first that did not. A diagnostic, and the browser tests'
    /// check of the kernels the package ships.
    #[wasm_bindgen(js_name = checkKernels)]
    pub fn check_kernels() -> Result<usize, JsError> {
        crate::model::fused::gemm::check_kernels().map_err(|e| JsError::new(&e))
    }

    /// Makes the CPU encoder use the int8 kernel `name` ("simd128", or
    /// "relaxed-simd" in the relaxed-SIMD build) instead of the one chosen
    /// at load, repacking the weights when it reads another layout: for
    /// benchmarks and tests (the kernels give the same vectors). Throws for a
    /// kernel this build does not run, or an engine without the fused encoder.
    #[wasm_bindgen(js_name = setKernel)]
    pub fn set_kernel(&self, name: &str) -> Result<(), JsError> {
        let isa = Isa::named(name).filter(|i| i.available()).ok_or_else(|| {
            let kernels: Vec<&str> = Isa::ALL.into_iter().filter(|i| i.available()).map(Isa::as_str).collect();
            Error::Invalid(format!("no int8 kernel {name:?} in this build; it runs {}", kernels.join(", ")))
        })?;
        let mut r = self.get_mut()?;
        let fused = r
            .embedder_mut()?
            .fused_mut()
            .ok_or_else(|| Error::Invalid("this model runs on candle, not on the fused encoder's kernels".into()))?;
        fused.set_isa(isa);
        Ok(())
    }

    /// Checks a model file whole (layout, and the fingerprint recomputed
    /// over every weight) without loading it; resolves to its card. `load`
    /// runs the same check.
    #[wasm_bindgen(js_name = verifyModel)]
    pub fn verify_model(model: &[u8]) -> Result<JsValue, JsError> {
        to_js(&format::model::verify_model(model)?)
    }

    /// As `load`, with a backend: "auto" (WebGPU when the browser has an
    /// adapter), "gpu" or "cpu". The model and the index are uploaded to the
    /// GPU here; when that fails the engine runs on the CPU and `backend()`
    /// says why. Resolves to the engine.
    #[wasm_bindgen(js_name = loadAsync)]
    pub async fn load_async(
        model: Vec<u8>,
        index: Option<Vec<u8>>,
        backend: Option<String>,
    ) -> Result<Engine, JsError> {
        show_panics();
        let backend: Backend = backend.as_deref().unwrap_or("auto").parse()?;
        let embedder = Embedder::load(&model, Kernel::default(), backend, &GpuOptions::default()).await?;
        let index = match index {
            Some(bytes) => format::index::vectors_from_bytes(&bytes)?,
            None => FlatIndex::new(embedder.dim(), VectorDType::F32, &embedder.card().fingerprint)?,
        };
        let retriever = Retriever::new(embedder, index)?;
        retriever.prepare_gpu().await;
        Ok(Engine { retriever: Rc::new(RefCell::new(retriever)) })
    }

    /// As `embed`, on the GPU when it is on. Resolves to a Float32Array.
    #[wasm_bindgen(js_name = embedAsync, unchecked_return_type = "Promise<Float32Array>")]
    #[allow(clippy::await_holding_refcell_ref)] // see `busy_error`
    pub fn embed_async(&self, texts: Vec<String>) -> js_sys::Promise {
        let inner = self.retriever.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let r = inner.try_borrow().map_err(|_| busy())?;
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let rows = r.embedder().map_err(js)?.embed_passages_async(&refs).await.map_err(js)?;
            Ok(flatten(&rows).into())
        })
    }

    /// As `embedQuery`, on the GPU when it is on.
    #[wasm_bindgen(js_name = embedQueryAsync, unchecked_return_type = "Promise<Float32Array>")]
    #[allow(clippy::await_holding_refcell_ref)] // see `busy_error`
    pub fn embed_query_async(&self, text: String) -> js_sys::Promise {
        let inner = self.retriever.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let r = inner.try_borrow().map_err(|_| busy())?;
            let rows = r.embedder().map_err(js)?.embed_queries_async(&[&text]).await.map_err(js)?;
            Ok(flatten(&rows).into())
        })
    }

    /// As `search`, with the query embedded and the index scanned on the GPU
    /// when it is on (any GPU failure answers on the CPU instead).
    #[wasm_bindgen(js_name = searchAsync, unchecked_return_type = "Promise<Answer>")]
    #[allow(clippy::await_holding_refcell_ref)] // see `busy_error`
    pub fn search_async(&self, query: String, k: usize, mode: Option<String>) -> js_sys::Promise {
        let inner = self.retriever.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let mode = mode.as_deref().map(Mode::parse).transpose().map_err(js)?.unwrap_or_default();
            let r = inner.try_borrow().map_err(|_| busy())?;
            if r.index().is_empty() {
                return Err(js(no_index()));
            }
            let answer = r.search_async(&query, k, mode).await.map_err(js)?;
            to_js(&answer).map_err(JsValue::from)
        })
    }

    /// Embeds passages as one batch: `texts.length * dim()` values, row after row.
    pub fn embed(&self, texts: Vec<String>) -> Result<Float32Array, JsError> {
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        Ok(flatten(&self.get()?.embedder()?.embed_passages(&refs)?))
    }

    /// Embeds one query (`dim()` values). Empty queries are refused.
    #[wasm_bindgen(js_name = embedQuery)]
    pub fn embed_query(&self, text: &str) -> Result<Float32Array, JsError> {
        Ok(flatten(&self.get()?.embedder()?.embed_queries(&[text])?))
    }

    /// Indexes passages given as `[{id, text, title?}]` (title + text is what
    /// is searched), e.g. a user's own documents, into this engine: its vectors
    /// and BM25. Works on an engine loaded without an index too. Returns how
    /// many passages the engine holds.
    #[wasm_bindgen(js_name = addPassages)]
    pub fn add_passages(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "NewPassage[]")] passages: JsValue,
    ) -> Result<usize, JsError> {
        let list: Vec<Passage> = serde_wasm_bindgen::from_value(passages)
            .map_err(|e| Error::Invalid(format!("addPassages takes [{{id, text, title?}}]: {e}")))?;
        let mut r = self.get_mut()?;
        r.add_passages(&list, &BuildOptions::default())?;
        Ok(r.index().len())
    }
}

impl Engine {
    fn get(&self) -> Result<Ref<'_, Retriever>, Error> {
        self.retriever.try_borrow().map_err(|_| busy_error())
    }

    fn get_mut(&self) -> Result<RefMut<'_, Retriever>, Error> {
        self.retriever.try_borrow_mut().map_err(|_| busy_error())
    }

    fn retriever(&self) -> Result<Ref<'_, Retriever>, Error> {
        let r = self.get()?;
        match r.index().is_empty() {
            false => Ok(r),
            true => Err(no_index()),
        }
    }

    fn retriever_mut(&mut self) -> Result<RefMut<'_, Retriever>, Error> {
        let r = self.get_mut()?;
        match r.index().is_empty() {
            false => Ok(r),
            true => Err(no_index()),
        }
    }
}

/// Panics as console errors with their message. The light build that
/// `scripts/build-wasm.sh` makes with Debian's toolchain aborts at once
/// (`-C panic=immediate-abort`): no message to show, and the hook's
/// formatting would be linked for nothing.
fn show_panics() {
    #[cfg(not(panic = "immediate-abort"))]
    console_error_panic_hook::set_once();
}

/// Searching before an index is loaded or built.
fn no_index() -> Error {
    Error::Invalid("no index is loaded: pass the index bytes to Engine.load, or add passages, to search".into())
}

/// What a call gets while an async one holds the engine. The async methods
/// keep a shared `RefCell` borrow across their `await`s on purpose (clippy's
/// `await_holding_refcell_ref` is allowed on each): wasm32 runs one thread,
/// so the only overlap is a JS call made while the promise is pending, and
/// `try_borrow`/`try_borrow_mut` turn that into this error, never a panic.
fn busy_error() -> Error {
    Error::Invalid("the engine is busy with an async call; await it first".into())
}

#[cfg(feature = "encoder")]
fn busy() -> JsValue {
    js(busy_error())
}

#[cfg(feature = "encoder")]
fn js(e: Error) -> JsValue {
    JsError::from(e).into()
}

#[cfg(feature = "encoder")]
fn flatten(rows: &[Vec<f32>]) -> Float32Array {
    let flat: Vec<f32> = rows.concat();
    Float32Array::from(flat.as_slice())
}

/// Plain JS objects and arrays (not `Map`s), as JSON would give.
fn to_js<T: Serialize + ?Sized>(value: &T) -> Result<JsValue, JsError> {
    value.serialize(&serde_wasm_bindgen::Serializer::json_compatible()).map_err(|e| JsError::new(&e.to_string()))
}
