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
//! const hits = engine.search("who wrote the book", 10); // [{id, ordinal, score}]
//! ```

use js_sys::Float32Array;
use serde::Serialize;
use wasm_bindgen::prelude::*;

use crate::format::model::ModelCard;
use crate::{format, Embedder, Error, Retriever, VectorDType};

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &str = r#"
/** One ranked passage, as `Engine.search` returns it. */
export interface SearchHit { id: string; ordinal: number; score: number; }
/** `Engine.info()`: the model card, the vector length and the index, if loaded. */
export interface EngineInfo {
    model: { name: string; weights: string; fingerprint: string; tensor_count: number;
             spec: { pooling: "mean" | "cls"; normalize: boolean; max_query_len: number;
                     max_passage_len: number; bert: Record<string, unknown> };
             provenance: unknown };
    dim: number;
    index: { count: number; dim: number; dtype: "f32" | "f16" | "int8"; bytes: number; fingerprint: string } | null;
}
"#;

/// A loaded model, with or without an index.
enum Inner {
    /// Embedding only: `search` is refused.
    Embedder(Embedder),
    Retriever(Retriever),
}

/// One model and, optionally, the index built with it.
#[wasm_bindgen]
pub struct Engine {
    inner: Inner,
}

#[derive(Serialize)]
struct Info<'a> {
    model: &'a ModelCard,
    dim: usize,
    index: Option<IndexInfo>,
}

#[derive(Serialize)]
struct IndexInfo {
    count: usize,
    dim: usize,
    dtype: VectorDType,
    /// Bytes one query scans.
    bytes: usize,
    fingerprint: String,
}

#[wasm_bindgen]
impl Engine {
    /// Loads a model file (GGUF bytes) and, optionally, an index file built
    /// with that model. An index from another model is refused.
    pub fn load(model: &[u8], index: Option<Vec<u8>>) -> Result<Engine, JsError> {
        console_error_panic_hook::set_once();
        let embedder = Embedder::from_bytes(model)?;
        let inner = match index {
            None => Inner::Embedder(embedder),
            Some(bytes) => Inner::Retriever(Retriever::new(embedder, format::index::from_bytes(&bytes)?)?),
        };
        Ok(Engine { inner })
    }

    /// Embeds passages as one batch: `texts.length * dim()` values, row after row.
    pub fn embed(&self, texts: Vec<String>) -> Result<Float32Array, JsError> {
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        Ok(flatten(&self.embedder().embed_passages(&refs)?))
    }

    /// Embeds one query (`dim()` values). Empty queries are refused.
    #[wasm_bindgen(js_name = embedQuery)]
    pub fn embed_query(&self, text: &str) -> Result<Float32Array, JsError> {
        Ok(flatten(&self.embedder().embed_queries(&[text])?))
    }

    /// The best `k` passages: an array of `{id, ordinal, score}`, best first.
    #[wasm_bindgen(unchecked_return_type = "SearchHit[]")]
    pub fn search(&self, query: &str, k: usize) -> Result<JsValue, JsError> {
        let Inner::Retriever(r) = &self.inner else {
            return Err(
                Error::Invalid("no index is loaded: pass the index bytes to Engine.load to search".into()).into()
            );
        };
        to_js(&r.search(query, k)?)
    }

    /// The model card, the vector length and, when loaded, the index's size,
    /// dtype and count.
    #[wasm_bindgen(unchecked_return_type = "EngineInfo")]
    pub fn info(&self) -> Result<JsValue, JsError> {
        let index = match &self.inner {
            Inner::Embedder(_) => None,
            Inner::Retriever(r) => {
                let i = r.index();
                Some(IndexInfo {
                    count: i.len(),
                    dim: i.dim(),
                    dtype: i.dtype(),
                    bytes: i.scan_bytes(),
                    fingerprint: i.fingerprint().to_string(),
                })
            }
        };
        let e = self.embedder();
        to_js(&Info { model: e.card(), dim: e.dim(), index })
    }

    /// Length of the vectors the model produces.
    pub fn dim(&self) -> usize {
        self.embedder().dim()
    }

    /// Whether an index is loaded (whether `search` can answer).
    #[wasm_bindgen(getter, js_name = hasIndex)]
    pub fn has_index(&self) -> bool {
        matches!(self.inner, Inner::Retriever(_))
    }
}

impl Engine {
    fn embedder(&self) -> &Embedder {
        match &self.inner {
            Inner::Embedder(e) => e,
            Inner::Retriever(r) => r.embedder(),
        }
    }
}

fn flatten(rows: &[Vec<f32>]) -> Float32Array {
    let flat: Vec<f32> = rows.concat();
    Float32Array::from(flat.as_slice())
}

/// Plain JS objects and arrays (not `Map`s), as JSON would give.
fn to_js<T: Serialize + ?Sized>(value: &T) -> Result<JsValue, JsError> {
    value.serialize(&serde_wasm_bindgen::Serializer::json_compatible()).map_err(|e| JsError::new(&e.to_string()))
}
