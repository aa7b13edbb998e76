//! Loads a retrieval set in the BEIR layout: `corpus.jsonl`,
//! `queries.jsonl` and `qrels/<split>.tsv`.
//!
//! Errors name the file and the 1-based line, so a broken download or a
//! hand-edited file can be fixed without guessing.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};

use ernie_search::metrics;
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum BeirError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}:{line}: invalid UTF-8", path.display())]
    Utf8 { path: PathBuf, line: usize },
    #[error("{}:{line}: not JSON: {source}", path.display())]
    Json { path: PathBuf, line: usize, source: serde_json::Error },
    #[error("{}:{line}: {what}", path.display())]
    Field { path: PathBuf, line: usize, what: String },
    #[error("{}:{line}: bad TSV row: {what}", path.display())]
    Row { path: PathBuf, line: usize, what: String },
    #[error("{}:{line}: duplicate {what}", path.display())]
    Duplicate { path: PathBuf, line: usize, what: String },
}

/// One corpus entry; a missing title reads as "".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorpusDoc {
    pub id: String,
    pub title: String,
    pub text: String,
}

/// Relevance judgements: query id -> passage id -> score.
pub use ernie_search::metrics::Qrels;

/// Corpus and queries of one set; qrels are loaded per split.
#[derive(Debug, Clone)]
pub struct BeirData {
    pub corpus: Vec<CorpusDoc>,
    /// Query id -> text; ordered so that runs over queries are repeatable.
    pub queries: BTreeMap<String, String>,
}

impl BeirData {
    pub fn load(dir: &Path) -> Result<Self, BeirError> {
        Ok(BeirData {
            corpus: load_corpus(&dir.join("corpus.jsonl"))?,
            queries: load_queries(&dir.join("queries.jsonl"))?,
        })
    }
}

/// Where a line came from, for error messages.
struct Loc<'a> {
    path: &'a Path,
    line: usize,
}

impl Loc<'_> {
    fn field(&self, what: impl Into<String>) -> BeirError {
        BeirError::Field { path: self.path.into(), line: self.line, what: what.into() }
    }
    fn duplicate(&self, what: impl Into<String>) -> BeirError {
        BeirError::Duplicate { path: self.path.into(), line: self.line, what: what.into() }
    }
}

/// Calls `each` with every non-blank line (without its line ending).
fn for_each_line(path: &Path, mut each: impl FnMut(&Loc, &str) -> Result<(), BeirError>) -> Result<(), BeirError> {
    let io_err = |source| BeirError::Io { path: path.into(), source };
    let mut reader = BufReader::new(File::open(path).map_err(io_err)?);
    let mut buf = Vec::new();
    for line in 1.. {
        buf.clear();
        if reader.read_until(b'\n', &mut buf).map_err(io_err)? == 0 {
            return Ok(());
        }
        let loc = Loc { path, line };
        let text = std::str::from_utf8(&buf).map_err(|_| BeirError::Utf8 { path: path.into(), line })?;
        let text = text.trim_end_matches(['\n', '\r']);
        if !text.trim().is_empty() {
            each(&loc, text)?;
        }
    }
    Ok(())
}

fn parse_object(loc: &Loc, line: &str) -> Result<serde_json::Map<String, Value>, BeirError> {
    match serde_json::from_str(line) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(loc.field("not a JSON object")),
        Err(source) => Err(BeirError::Json { path: loc.path.into(), line: loc.line, source }),
    }
}

/// A string field; `required` false lets it be absent or null.
fn string_field(
    loc: &Loc,
    map: &serde_json::Map<String, Value>,
    name: &str,
    required: bool,
) -> Result<String, BeirError> {
    match map.get(name) {
        Some(Value::String(s)) => Ok(s.clone()),
        None | Some(Value::Null) if !required => Ok(String::new()),
        None => Err(loc.field(format!("missing \"{name}\""))),
        Some(_) => Err(loc.field(format!("\"{name}\" is not a string"))),
    }
}

/// Reads `corpus.jsonl`: `{"_id", "title"?, "text"}` per line, in file order.
pub fn load_corpus(path: &Path) -> Result<Vec<CorpusDoc>, BeirError> {
    let mut docs = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for_each_line(path, |loc, line| {
        let map = parse_object(loc, line)?;
        let id = string_field(loc, &map, "_id", true)?;
        if !seen.insert(id.clone()) {
            return Err(loc.duplicate(format!("\"_id\" {id:?}")));
        }
        let title = string_field(loc, &map, "title", false)?;
        let text = string_field(loc, &map, "text", true)?;
        docs.push(CorpusDoc { id, title, text });
        Ok(())
    })?;
    Ok(docs)
}

/// Reads `queries.jsonl`: `{"_id", "text"}` per line; other fields ignored.
pub fn load_queries(path: &Path) -> Result<BTreeMap<String, String>, BeirError> {
    let mut queries = BTreeMap::new();
    for_each_line(path, |loc, line| {
        let map = parse_object(loc, line)?;
        let id = string_field(loc, &map, "_id", true)?;
        let text = string_field(loc, &map, "text", true)?;
        if queries.insert(id.clone(), text).is_some() {
            return Err(loc.duplicate(format!("\"_id\" {id:?}")));
        }
        Ok(())
    })?;
    Ok(queries)
}

/// Reads `dir/qrels/<split>.tsv`.
pub fn load_qrels(dir: &Path, split: &str) -> Result<Qrels, BeirError> {
    read_qrels_file(&dir.join("qrels").join(format!("{split}.tsv")))
}

/// Reads a qrels file with the library's reader ([`metrics::parse_qrels_tsv`]);
/// errors name the file and the line.
pub fn read_qrels_file(path: &Path) -> Result<Qrels, BeirError> {
    let bytes = std::fs::read(path).map_err(|source| BeirError::Io { path: path.into(), source })?;
    let text = std::str::from_utf8(&bytes).map_err(|e| BeirError::Utf8 {
        path: path.into(),
        line: 1 + bytes[..e.valid_up_to()].iter().filter(|&&b| b == b'\n').count(),
    })?;
    metrics::parse_qrels_tsv(text).map_err(|e| {
        let (path, line, what) = (path.into(), e.line, e.what);
        if e.duplicate {
            BeirError::Duplicate { path, line, what }
        } else {
            BeirError::Row { path, line, what }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> Self {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir().join(format!("beir-test-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(dir.join("qrels")).expect("create temp dir");
            TempDir(dir)
        }

        fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
            let path = self.0.join(name);
            std::fs::write(&path, bytes).expect("write temp file");
            path
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn message(err: BeirError) -> String {
        err.to_string()
    }

    #[test]
    fn loads_corpus_with_and_without_title() {
        let dir = TempDir::new();
        let path = dir.write(
            "corpus.jsonl",
            b"{\"_id\":\"p1\",\"title\":\"T\",\"text\":\"one\"}\n\n{\"_id\":\"p2\",\"text\":\"two\"}\r\n",
        );
        let docs = load_corpus(&path).expect("valid corpus");
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0], CorpusDoc { id: "p1".into(), title: "T".into(), text: "one".into() });
        assert_eq!(docs[1].title, "");
        assert_eq!(docs[1].text, "two");
    }

    #[test]
    fn corpus_errors_name_file_and_line() {
        let dir = TempDir::new();
        let cases: [(&[u8], &str); 6] = [
            (b"{\"_id\":\"a\",\"text\":\"x\"}\nnot json\n", ":2: not JSON"),
            (b"{\"text\":\"x\"}\n", ":1: missing \"_id\""),
            (b"{\"_id\":\"a\",\"text\":\"x\"}\n{\"_id\":\"b\"}\n", ":2: missing \"text\""),
            (b"{\"_id\":1,\"text\":\"x\"}\n", ":1: \"_id\" is not a string"),
            (b"{\"_id\":\"a\",\"text\":\"x\"}\n{\"_id\":\"a\",\"text\":\"y\"}\n", ":2: duplicate"),
            (b"{\"_id\":\"a\",\"text\":\"x\"}\n{\"_id\":\"b\",\"text\":\"\xff\"}\n", ":2: invalid UTF-8"),
        ];
        for (bytes, expected) in cases {
            let path = dir.write("corpus.jsonl", bytes);
            let err = message(load_corpus(&path).unwrap_err());
            assert!(err.contains("corpus.jsonl"), "{err}");
            assert!(err.contains(expected), "{err} lacks {expected}");
        }
        let err = message(load_corpus(&dir.0.join("absent.jsonl")).unwrap_err());
        assert!(err.contains("absent.jsonl"), "{err}");
    }

    #[test]
    fn loads_queries() {
        let dir = TempDir::new();
        let path = dir.write(
            "queries.jsonl",
            b"{\"_id\":\"q2\",\"text\":\"b\"}\n{\"_id\":\"q1\",\"text\":\"a\",\"metadata\":{}}\n",
        );
        let queries = load_queries(&path).expect("valid queries");
        let ids: Vec<_> = queries.keys().map(String::as_str).collect();
        assert_eq!(ids, ["q1", "q2"]);
        assert_eq!(queries["q2"], "b");

        let path = dir.write("queries.jsonl", b"[1]\n");
        let err = message(load_queries(&path).unwrap_err());
        assert!(err.contains("queries.jsonl:1: not a JSON object"), "{err}");
    }

    #[test]
    fn loads_qrels_with_header() {
        let dir = TempDir::new();
        dir.write("qrels/dev.tsv", b"query-id\tcorpus-id\tscore\nq1\tp1\t1\nq1\tp2\t2\nq2\tp1\t1\n");
        let qrels = load_qrels(&dir.0, "dev").expect("valid qrels");
        assert_eq!(qrels.len(), 2);
        assert_eq!(qrels["q1"]["p2"], 2);
        assert_eq!(qrels["q2"]["p1"], 1);

        dir.write("qrels/test.tsv", b"q1\tp1\t1\n");
        assert_eq!(load_qrels(&dir.0, "test").expect("no header").len(), 1);
    }

    #[test]
    fn qrels_errors_name_file_and_line() {
        let dir = TempDir::new();
        let cases: [(&[u8], &str); 4] = [
            (b"query-id\tcorpus-id\tscore\nq1 p1 1\n", ":2: bad TSV row: expected 3"),
            (b"q1\tp1\tyes\n", ":1: bad TSV row: score \"yes\""),
            (b"q1\tp1\t-1\n", ":1: bad TSV row: score \"-1\""),
            (b"q1\tp1\t1\nq1\tp1\t1\n", ":2: duplicate"),
        ];
        for (bytes, expected) in cases {
            dir.write("qrels/train.tsv", bytes);
            let err = message(load_qrels(&dir.0, "train").unwrap_err());
            assert!(err.contains("train.tsv"), "{err}");
            assert!(err.contains(expected), "{err} lacks {expected}");
        }
    }

    #[test]
    fn loads_whole_set() {
        let dir = TempDir::new();
        dir.write("corpus.jsonl", b"{\"_id\":\"p1\",\"title\":\"\",\"text\":\"one\"}\n");
        dir.write("queries.jsonl", b"{\"_id\":\"q1\",\"text\":\"a\"}\n");
        let data = BeirData::load(&dir.0).expect("valid set");
        assert_eq!(data.corpus.len(), 1);
        assert_eq!(data.queries.len(), 1);
    }
}
