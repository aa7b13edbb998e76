//! A model and an index that belong together: text in, ranked passages out,
//! by vectors, by keywords (BM25) or both fused.

use serde::Serialize;

use crate::backend::BackendInfo;
#[cfg(feature = "encoder")]
use crate::format::shard::Passage;
use crate::fusion::{Candidates, Fusion, Mode, QueryEncoder, FUSION_DEPTH};
#[cfg(feature = "encoder")]
use crate::index::builder::{self, BuildOptions};
use crate::index::Hit;
use crate::lexical::{corpus_digest, LexicalIndex};
use crate::model::check_query;
#[cfg(feature = "encoder")]
use crate::model::Embedder;
use crate::table::TableEncoder;
use crate::{Error, FlatIndex, Result};

/// One ranked passage.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchHit {
    pub id: String,
    /// Position in the index; locates the passage's text shard.
    pub ordinal: usize,
    /// The score the ranking used (fused in hybrid mode).
    pub score: f32,
    /// Cosine of the query and the passage's best window, when computed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dense: Option<f32>,
    /// BM25 score, when computed (0: no query term in the passage).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lexical: Option<f32>,
}

/// What a search returns: the hits, the mode that made them, and why it
/// differs from the mode asked for, if it does.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Answer {
    pub hits: Vec<SearchHit>,
    pub mode: Mode,
    /// What encoded the query (absent in lexical mode: nothing did).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encoder: Option<QueryEncoder>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

pub struct Retriever {
    /// The transformer; `None` in a table-only engine (the light build has no field at all).
    #[cfg(feature = "encoder")]
    embedder: Option<Embedder>,
    index: FlatIndex,
    lexical: Option<LexicalIndex>,
    fusion: Fusion,
    table: Option<TableEncoder>,
    gpu: GpuScan,
}

/// The index's copy on the GPU: uploaded on first use (and again after
/// passages are added), dropped for good when the GPU fails.
#[derive(Default)]
struct GpuScan {
    #[cfg(feature = "gpu")]
    index: std::sync::Mutex<Option<std::sync::Arc<crate::gpu::GpuIndex>>>,
    fallback: std::sync::Mutex<Option<String>>,
}

/// Dense results computed before the ranking logic runs (on the GPU).
enum Dense {
    /// Compute on the CPU.
    Cpu,
    /// The best hits already selected (dense mode).
    #[cfg_attr(not(feature = "gpu"), allow(dead_code))]
    Hits(Vec<Hit>),
    /// Every passage's score (hybrid mode).
    #[cfg_attr(not(feature = "encoder"), allow(dead_code))]
    Scores(Vec<f32>),
    /// The token table's query vector; `None`: no query token has a row.
    Table(Option<Vec<f32>>),
}

impl Retriever {
    /// Refuses an index built by another model: its vectors live in another space.
    #[cfg(feature = "encoder")]
    pub fn new(embedder: Embedder, index: FlatIndex) -> Result<Self> {
        let model = &embedder.card().fingerprint;
        if index.fingerprint() != model {
            return Err(Error::ModelMismatch { index: short(index.fingerprint()), model: short(model) });
        }
        if index.dim() != embedder.dim() {
            return Err(Error::Invalid(format!(
                "index dimension {} != model dimension {}",
                index.dim(),
                embedder.dim()
            )));
        }
        let mut r = Self::bare(index);
        r.embedder = Some(embedder);
        Ok(r)
    }

    /// An engine with no transformer: queries are encoded by `table`, the
    /// token table distilled against the encoder that built `index` (what a
    /// static site's visitors load: no model file).
    pub fn with_table_only(index: FlatIndex, table: TableEncoder) -> Result<Self> {
        Self::bare(index).with_table(table)
    }

    fn bare(index: FlatIndex) -> Self {
        Self {
            #[cfg(feature = "encoder")]
            embedder: None,
            index,
            lexical: None,
            fusion: Fusion::default(),
            table: None,
            gpu: GpuScan::default(),
        }
    }

    /// Adds the lexical index built over the same passages, in the same order.
    pub fn with_lexical(mut self, lexical: LexicalIndex) -> Result<Self> {
        self.set_lexical(lexical)?;
        Ok(self)
    }

    /// As [`with_lexical`](Self::with_lexical); on a mismatch nothing changes.
    pub fn set_lexical(&mut self, lexical: LexicalIndex) -> Result<()> {
        if lexical.len() != self.index.len() || lexical.meta().corpus != corpus_digest(self.index.ids()) {
            return Err(Error::format(
                "lexical index",
                format!(
                    "built over other passages than the vector index ({} vs {} passages, or other ids); rebuild the index",
                    lexical.len(),
                    self.index.len()
                ),
            ));
        }
        self.lexical = Some(lexical);
        Ok(())
    }

    /// Adds the token-table query encoder; refused when it was distilled
    /// against another encoder than the one that built the index.
    pub fn with_table(mut self, table: TableEncoder) -> Result<Self> {
        self.set_table(table)?;
        Ok(self)
    }

    /// As [`with_table`](Self::with_table); on a mismatch nothing changes.
    pub fn set_table(&mut self, table: TableEncoder) -> Result<()> {
        if table.table.fingerprint != self.index.fingerprint() || table.table.dim != self.index.dim() {
            return Err(Error::ModelMismatch {
                index: short(self.index.fingerprint()),
                model: short(&table.table.fingerprint),
            });
        }
        self.table = Some(table);
        Ok(())
    }

    pub fn table(&self) -> Option<&TableEncoder> {
        self.table.as_ref()
    }
    /// For loading the table's row chunks on demand.
    pub fn table_mut(&mut self) -> Option<&mut TableEncoder> {
        self.table.as_mut()
    }

    pub fn with_fusion(mut self, fusion: Fusion) -> Self {
        self.fusion = fusion;
        self
    }

    pub fn set_fusion(&mut self, fusion: Fusion) {
        self.fusion = fusion;
    }

    /// The transformer, when this engine carries one.
    #[cfg(feature = "encoder")]
    pub fn embedder(&self) -> Result<&Embedder> {
        self.embedder.as_ref().ok_or_else(no_transformer)
    }

    /// The transformer, to change how it runs (its kernel, its threads).
    #[cfg(feature = "encoder")]
    pub fn embedder_mut(&mut self) -> Result<&mut Embedder> {
        self.embedder.as_mut().ok_or_else(no_transformer)
    }

    /// Whether queries can be encoded by the transformer.
    pub fn has_transformer(&self) -> bool {
        #[cfg(feature = "encoder")]
        return self.embedder.is_some();
        #[cfg(not(feature = "encoder"))]
        false
    }
    pub fn index(&self) -> &FlatIndex {
        &self.index
    }
    pub fn lexical(&self) -> Option<&LexicalIndex> {
        self.lexical.as_ref()
    }
    /// For loading term blocks on demand.
    pub fn lexical_mut(&mut self) -> Option<&mut LexicalIndex> {
        self.lexical.as_mut()
    }
    pub fn fusion(&self) -> Fusion {
        self.fusion
    }

    #[cfg(feature = "encoder")]
    /// Indexes passages at run time (a user's own documents in the browser)
    /// through the index builder, so an engine that starts empty ends up with
    /// the very index `ernie-search index` builds from the same passages and
    /// options. Later additions are appended: their windows behind the other
    /// vectors, their words into BM25 in memory. Nothing is added if any id is
    /// already taken, an id repeats or a text is blank or cannot be embedded.
    pub fn add_passages(&mut self, passages: &[Passage], opts: &BuildOptions) -> Result<()> {
        let taken: std::collections::HashSet<&str> = self.index.ids().iter().map(String::as_str).collect();
        if let Some(p) = passages.iter().find(|p| taken.contains(p.id.as_str())) {
            return Err(Error::Invalid(format!("passage id {:?} is already in the index", p.id)));
        }
        if let Some(p) = passages.iter().find(|p| p.text.trim().is_empty()) {
            return Err(Error::Invalid(format!("passage {:?} has no text", p.id)));
        }
        builder::check_ids(passages.iter().map(|p| p.id.as_str()))?;
        // The GPU copy is stale: the next search uploads the new index.
        #[cfg(feature = "gpu")]
        if let Ok(mut g) = self.gpu.index.lock() {
            *g = None;
        }
        let opts = BuildOptions { dtype: self.index.dtype(), ..*opts };
        if self.index.is_empty() {
            let built = builder::build(self.embedder()?, passages, &opts, &mut ())?;
            self.index = built.index;
            self.lexical = Some(built.lexical);
            return Ok(());
        }
        let texts: Vec<String> = passages.iter().map(|p| builder::passage_input(&p.title, &p.text)).collect();
        let emb = builder::embed_passages(self.embedder()?, &texts, opts.batch, opts.windows, &mut ())?;
        for (p, v) in passages.iter().zip(&emb.vectors) {
            self.index.push_windows(&p.id, v)?;
        }
        // An index built without BM25 stays dense.
        if let Some(l) = &mut self.lexical {
            l.add(&texts);
        }
        Ok(())
    }

    /// The best `k` passages for `query`. Hybrid falls back to dense, with a
    /// note, when the index has no lexical part or the query no keyword;
    /// lexical mode refuses both. Natively this runs on the GPU when the
    /// embedder's GPU is on (blocking); in the browser use
    /// [`search_async`](Self::search_async) for the GPU.
    /// The query encoder is the transformer, or the table in an engine
    /// without one ([`default_encoder`](Self::default_encoder)).
    pub fn search(&self, query: &str, k: usize, mode: Mode) -> Result<Answer> {
        self.search_with(query, k, mode, self.default_encoder())
    }

    /// The transformer when the engine carries one, else the token table.
    pub fn default_encoder(&self) -> QueryEncoder {
        match self.has_transformer() {
            true => QueryEncoder::Transformer,
            false => QueryEncoder::Table,
        }
    }

    /// As [`search`](Self::search), with the query encoded by `encoder`. The
    /// table needs the row chunks of the query's tokens loaded
    /// ([`TableEncoder::token_ids`], [`crate::TokenTable::missing_chunks`]);
    /// a query none of whose tokens has a row falls back to keywords in
    /// hybrid mode, with a note.
    pub fn search_with(&self, query: &str, k: usize, mode: Mode, encoder: QueryEncoder) -> Result<Answer> {
        if encoder == QueryEncoder::Table && mode != Mode::Lexical {
            let table = self.table.as_ref().ok_or_else(|| {
                Error::Invalid("this index carries no token table; rebuild it with `ernie-search index`".into())
            })?;
            return self.answer(query, k, mode, Dense::Table(table.encode(query)?));
        }
        #[cfg(all(feature = "gpu", not(target_arch = "wasm32")))]
        if let Some(e) = self.gpu_embedder() {
            if let Some(answer) = crate::backend::block_on(self.search_async(query, k, mode)) {
                return answer;
            }
            e.disable_gpu("a GPU search did not finish in time; using the CPU".into());
        }
        self.answer(query, k, mode, Dense::Cpu)
    }

    /// As [`search`](Self::search), with the query embedded and the index
    /// scanned on the GPU when it is on. Any GPU failure falls back to the
    /// CPU, with a warning, and the search still answers.
    pub async fn search_async(&self, query: &str, k: usize, mode: Mode) -> Result<Answer> {
        check_query(query)?;
        #[cfg(feature = "encoder")]
        if let Some(e) = self.gpu_embedder().filter(|_| !self.index.is_empty() && mode != Mode::Lexical) {
            let q = e.embed_queries_async(&[query]).await?;
            let q = q.first().ok_or_else(|| Error::Query("no embedding produced".into()))?;
            let dense = self.scan_async(q, k, mode == Mode::Dense).await?;
            return self.answer(query, k, mode, dense);
        }
        self.answer(query, k, mode, Dense::Cpu)
    }

    /// The transformer, when it runs on the GPU.
    #[cfg(feature = "encoder")]
    fn gpu_embedder(&self) -> Option<&Embedder> {
        self.embedder.as_ref().filter(|e| e.on_gpu())
    }

    /// Uploads the index to the GPU now (it is otherwise uploaded by the
    /// first GPU search) and reports where things run.
    pub async fn prepare_gpu(&self) -> BackendInfo {
        #[cfg(feature = "gpu")]
        let _ = self.gpu_index().await;
        self.backend()
    }

    /// Where embedding and the scan run, on which adapter, and why not on
    /// the GPU when they are not.
    pub fn backend(&self) -> BackendInfo {
        #[cfg(feature = "encoder")]
        let mut info = match &self.embedder {
            Some(e) => e.backend(),
            None => BackendInfo::cpu(crate::Backend::Cpu, None),
        };
        #[cfg(not(feature = "encoder"))]
        let mut info = BackendInfo::cpu(crate::Backend::Cpu, None);
        let scan_fallback = self.gpu.fallback.lock().ok().and_then(|f| f.clone());
        if let Some(why) = scan_fallback {
            info.scan = "cpu";
            info.fallback.get_or_insert(why);
        }
        info
    }

    #[cfg(feature = "encoder")]
    /// The dense side on the GPU (the index's copy there, else the CPU scan
    /// of a GPU-embedded query): the top `k` when `hits_only`, else every score.
    async fn scan_async(&self, q: &[f32], k: usize, hits_only: bool) -> Result<Dense> {
        crate::index::check_query_vector(q)?;
        #[cfg(feature = "gpu")]
        if let Some(gi) = self.gpu_index().await {
            let r = match hits_only {
                true => {
                    gi.search(&[q], k, self.index.ids()).await.map(|mut v| Dense::Hits(v.pop().unwrap_or_default()))
                }
                false => gi.scores(&[q]).await.map(|mut v| Dense::Scores(v.pop().unwrap_or_default())),
            };
            match r {
                Ok(d) => return Ok(d),
                Err(Error::Gpu(e)) => self.scan_failed(format!("the GPU scan failed ({e}); scanning on the CPU")),
                Err(e) => return Err(e),
            }
        }
        let _ = (hits_only, k);
        let mut scores = Vec::new();
        self.index.passage_scores(q, &mut scores)?;
        Ok(Dense::Scores(scores))
    }

    #[cfg(feature = "gpu")]
    async fn gpu_index(&self) -> Option<std::sync::Arc<crate::gpu::GpuIndex>> {
        let enc = self.embedder.as_ref()?.gpu_encoder()?;
        // A clustered index scores its missing clusters by centroid: the CPU's job.
        if self.gpu.fallback.lock().map(|f| f.is_some()).unwrap_or(true)
            || self.index.is_empty()
            || self.index.clusters().is_some()
        {
            return None;
        }
        if let Some(gi) = self.gpu.index.lock().ok()?.as_ref() {
            if gi.len() == self.index.len() {
                return Some(gi.clone());
            }
        }
        match crate::gpu::GpuIndex::upload(enc.context().clone(), &self.index).await {
            Ok(gi) => {
                // Not Send in wasm32 (wgpu's handles; one thread there).
                #[cfg_attr(target_arch = "wasm32", allow(clippy::arc_with_non_send_sync))]
                let gi = std::sync::Arc::new(gi);
                *self.gpu.index.lock().ok()? = Some(gi.clone());
                Some(gi)
            }
            Err(e) => {
                self.scan_failed(format!("the index did not upload to the GPU ({e}); scanning on the CPU"));
                None
            }
        }
    }

    #[cfg(feature = "gpu")]
    fn scan_failed(&self, why: String) {
        if let Ok(mut g) = self.gpu.index.lock() {
            *g = None;
        }
        if let Ok(mut f) = self.gpu.fallback.lock() {
            if f.is_none() {
                crate::backend::warn(&why);
                *f = Some(why);
            }
        }
    }

    fn answer(&self, query: &str, k: usize, mode: Mode, pre: Dense) -> Result<Answer> {
        check_query(query)?;
        if self.index.is_empty() {
            return Err(Error::Invalid("no index is loaded: load an index or add passages to search".into()));
        }
        let lexical = match (&self.lexical, mode) {
            (_, Mode::Dense) => None,
            (None, Mode::Lexical) => {
                return Err(Error::Invalid(
                    "this index has no lexical part; rebuild it with `ernie-search index`".into(),
                ))
            }
            (None, _) => return self.dense(query, k, pre, Some("the index has no lexical part: dense ranking only")),
            (Some(l), _) => Some(l.scores(query)?),
        };
        match (mode, lexical) {
            (Mode::Dense, _) => self.dense(query, k, pre, None),
            (Mode::Lexical, Some(None)) | (Mode::Lexical, None) => {
                Err(Error::Query("the query has no keyword to match (only stop words or punctuation)".into()))
            }
            (Mode::Lexical, Some(Some(scores))) => Ok(self.lexical_only(&scores, k)),
            (Mode::Hybrid, Some(None)) | (Mode::Hybrid, None) => self.dense(
                query,
                k,
                pre,
                Some("the query has no keyword (only stop words or punctuation): dense ranking only"),
            ),
            (Mode::Hybrid, Some(Some(scores))) => self.hybrid(query, &scores, k, pre),
        }
    }

    /// Every passage's dense score: from the table's vector when given,
    /// else from the transformer's; `None` when the table has no row for
    /// any query token. With a note when clusters the query probes are
    /// missing (their rows scored as their centroid).
    #[cfg_attr(not(feature = "encoder"), allow(unused_variables))]
    fn query_scores(&self, query: &str, pre: Dense) -> Result<Option<(Vec<f32>, Option<String>)>> {
        let q = match pre {
            Dense::Scores(s) if s.len() == self.index.len() => return Ok(Some((s, None))),
            Dense::Table(None) => return Ok(None),
            Dense::Table(Some(v)) => v,
            #[cfg(feature = "encoder")]
            _ => {
                let q = self.embedder()?.embed_queries(&[query])?;
                q.into_iter().next().ok_or_else(|| Error::Query("no embedding produced".into()))?
            }
            #[cfg(not(feature = "encoder"))]
            _ => return Err(no_transformer()),
        };
        let mut scores = Vec::new();
        self.index.passage_scores(&q, &mut scores)?;
        let partial = self.index.clusters().map(|c| (c.missing(&q).len(), c.nprobe())).filter(|(m, _)| *m > 0);
        let note = partial.map(|(m, n)| {
            format!("partial results: {m} of the {n} vector clusters this query needs are not loaded (scored by their centroid)")
        });
        Ok(Some((scores, note)))
    }

    /// The clusters `query` probes that are not loaded yet (none for an
    /// index read whole, or a query the table has no row for): fetch them,
    /// [`add_cluster`](Self::add_cluster), then search.
    pub fn missing_clusters(&self, query: &str, encoder: QueryEncoder) -> Result<Vec<u32>> {
        let Some(c) = self.index.clusters() else { return Ok(Vec::new()) };
        let q = match encoder {
            QueryEncoder::Table => {
                let table =
                    self.table.as_ref().ok_or_else(|| Error::Invalid("this engine carries no token table".into()))?;
                table.encode(query)?
            }
            #[cfg(feature = "encoder")]
            QueryEncoder::Transformer => self.embedder()?.embed_queries(&[query])?.into_iter().next(),
            #[cfg(not(feature = "encoder"))]
            QueryEncoder::Transformer => return Err(no_transformer()),
        };
        Ok(q.map(|q| c.missing(&q)).unwrap_or_default())
    }

    /// Adds one cluster list (`format::clusters`) to an index read by cluster; returns its number.
    pub fn add_cluster(&mut self, bytes: &[u8]) -> Result<u32> {
        crate::format::clusters::add_list(&mut self.index, bytes)
    }

    fn dense(&self, query: &str, k: usize, pre: Dense, note: Option<&str>) -> Result<Answer> {
        let encoder = Some(pre.encoder());
        let (hits, partial) = match pre {
            Dense::Hits(h) => (h, None),
            pre => {
                let (scores, partial) = self.query_scores(query, pre)?.ok_or_else(no_table_token)?;
                (crate::index::top_k(scores.iter().copied().enumerate(), self.index.ids(), k), partial)
            }
        };
        let hits = hits.iter().map(|h| self.hit(h.ordinal, h.score, Some(h.score), None)).collect();
        let note = [note.map(str::to_string), partial].into_iter().flatten().collect::<Vec<_>>();
        Ok(Answer { hits, mode: Mode::Dense, encoder, note: (!note.is_empty()).then(|| note.join("; ")) })
    }

    fn lexical_only(&self, scores: &[f32], k: usize) -> Answer {
        let positive = scores.iter().copied().enumerate().filter(|(_, s)| *s > 0.0);
        let hits = crate::index::top_k(positive, self.index.ids(), k);
        let hits = hits.iter().map(|h| self.hit(h.ordinal, h.score, None, Some(h.score))).collect();
        Answer { hits, mode: Mode::Lexical, encoder: None, note: None }
    }

    fn hybrid(&self, query: &str, lexical: &[f32], k: usize, pre: Dense) -> Result<Answer> {
        let encoder = Some(pre.encoder());
        let Some((dense, partial)) = self.query_scores(query, pre)? else {
            let mut answer = self.lexical_only(lexical, k);
            answer.note = Some(format!("{}: keyword ranking only", no_table_token()));
            return Ok(answer);
        };
        let ids = self.index.ids();
        let cands = Candidates::gather(&dense, Some(lexical), ids, FUSION_DEPTH.max(k));
        let fusion = match encoder {
            Some(QueryEncoder::Table) => self.table.as_ref().and_then(|t| t.fusion).unwrap_or(self.fusion),
            _ => self.fusion,
        };
        let hits = cands.fuse(fusion, ids, k);
        let hits = hits.iter().map(|h| self.hit(h.ordinal, h.score, Some(dense[h.ordinal]), Some(lexical[h.ordinal])));
        Ok(Answer { hits: hits.collect(), mode: Mode::Hybrid, encoder, note: partial })
    }

    fn hit(&self, ordinal: usize, score: f32, dense: Option<f32>, lexical: Option<f32>) -> SearchHit {
        SearchHit { id: self.index.ids()[ordinal].clone(), ordinal, score, dense, lexical }
    }
}

impl Dense {
    fn encoder(&self) -> QueryEncoder {
        match self {
            Dense::Table(_) => QueryEncoder::Table,
            _ => QueryEncoder::Transformer,
        }
    }
}

fn no_transformer() -> Error {
    Error::Invalid("this engine carries no transformer (a table-only engine): search with the token table".into())
}

fn no_table_token() -> Error {
    Error::Query(
        "no word of the query has a row in the token table (only stop words, punctuation or unseen tokens)".into(),
    )
}

fn short(fp: &str) -> String {
    fp.chars().take(12).collect()
}
