//! Corpus files for indexing: JSONL, one passage per line, BEIR's
//! `{"_id", "title", "text"}` or `{"id", "title", "text", "url"}`.

use std::path::Path;

use anyhow::{bail, Context, Result};
use ernie_search::format::shard::Passage;
use ernie_search::index::builder::passage_input;

/// Reads every line; the error names the file, the 1-based line and the problem.
pub fn read_corpus(path: &Path) -> Result<Vec<Passage>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read corpus {}", path.display()))?;
    let mut out = Vec::new();
    for (n, line) in bytes.split(|b| *b == b'\n').enumerate() {
        let at = || format!("{}:{}", path.display(), n + 1);
        let line = std::str::from_utf8(line).map_err(|e| anyhow::anyhow!("{}: invalid UTF-8 ({e})", at()))?;
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value =
            serde_json::from_str(line).map_err(|e| anyhow::anyhow!("{}: not a JSON object ({e})", at()))?;
        let field = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
        let Some(id) = field("_id").or_else(|| field("id")) else {
            bail!("{}: no \"_id\" or \"id\" string field", at());
        };
        let Some(text) = field("text") else {
            bail!("{}: passage {id:?} has no \"text\" string field", at());
        };
        out.push(Passage { id, title: field("title").unwrap_or_default(), text, url: field("url") });
    }
    if out.is_empty() {
        bail!("{}: the corpus holds no passages", path.display());
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(dup) = out.iter().find(|p| !seen.insert(p.id.as_str())) {
        bail!("{}: passage id {:?} appears twice", path.display(), dup.id);
    }
    Ok(out)
}

/// What the model reads of a BEIR corpus entry (the library's rule:
/// [`passage_input`]).
pub fn doc_input(d: &crate::beir::CorpusDoc) -> String {
    passage_input(&d.title, &d.text)
}
