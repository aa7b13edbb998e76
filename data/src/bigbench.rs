//! Converts two BIG-bench QA tasks into BEIR-layout retrieval sets.
//!
//! The contract (parsing, cleaning, near-copy merge, ids, split and expected
//! counts) is `shared/DATA.md`; this module follows it step by step, so that
//! every conversion gives the same sets and figures stay comparable.

use std::collections::HashMap;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::LazyLock;

use ernie_search::format::Staging;
use regex::Regex;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// Near-copy candidates share this many leading or trailing characters.
const AFFIX_CHARS: usize = 60;

/// Errors of reading a task file and writing a BEIR set.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error("task.json is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("task.json has no \"examples\" array")]
    NoExamples,
    #[error("task.json example {index}: {reason}")]
    Example { index: usize, reason: String },
    #[error("unknown split {0:?} (expected train, dev or test)")]
    UnknownSplit(String),
    #[error("unknown source {0:?} (expected nq or drop)")]
    UnknownSource(String),
    #[error("{}: {source}", path.display())]
    Output { path: PathBuf, source: ernie_search::Error },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ConvertError + '_ {
    move |source| ConvertError::Io { path: path.to_path_buf(), source }
}

/// Which BIG-bench task a set comes from; they differ in parsing and cleaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `contextual_parametric_knowledge_conflicts`: Natural Questions.
    Nq,
    /// `natural_instructions/subtask028_drop_answer_generation`.
    Drop,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Nq => "nq",
            Source::Drop => "drop",
        }
    }

    /// The task file inside `bigbench/benchmark_tasks/` of the sdist.
    pub fn task_path(self) -> &'static str {
        match self {
            Source::Nq => "contextual_parametric_knowledge_conflicts/task.json",
            Source::Drop => "natural_instructions/subtask028_drop_answer_generation/task.json",
        }
    }
}

impl FromStr for Source {
    type Err = ConvertError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "nq" => Ok(Source::Nq),
            "drop" => Ok(Source::Drop),
            other => Err(ConvertError::UnknownSource(other.to_string())),
        }
    }
}

/// One example as it appears in the task file (not cleaned yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QaPair {
    pub question: String,
    pub passage: String,
}

// ---------------------------------------------------------------- parsing

/// Reads `examples[*].input` of a task file into raw (question, passage) pairs.
pub fn read_pairs(source: Source, task_json: &[u8]) -> Result<Vec<QaPair>, ConvertError> {
    let root: serde_json::Value = serde_json::from_slice(task_json)?;
    let examples = root.get("examples").and_then(|e| e.as_array()).ok_or(ConvertError::NoExamples)?;
    examples
        .iter()
        .enumerate()
        .map(|(index, example)| {
            parse_example(source, example).map_err(|reason| ConvertError::Example { index, reason })
        })
        .collect()
}

fn parse_example(source: Source, example: &serde_json::Value) -> Result<QaPair, String> {
    let input = match example.get("input") {
        Some(serde_json::Value::String(s)) => s,
        Some(_) => return Err("\"input\" is not a string".into()),
        None => return Err("missing \"input\"".into()),
    };
    let pair = match source {
        Source::Nq => parse_nq(input)?,
        Source::Drop => parse_drop(input)?,
    };
    // An empty text would make an empty passage or an unsearchable query.
    if collapse_whitespace(&pair.question).is_empty() {
        return Err("empty question".into());
    }
    if collapse_whitespace(&pair.passage).is_empty() {
        return Err("empty passage".into());
    }
    Ok(pair)
}

/// `"\nQuestion: <q>\nContext: <passage>"`.
fn parse_nq(input: &str) -> Result<QaPair, String> {
    let rest = input.strip_prefix("\nQuestion:").ok_or("input does not start with \"\\nQuestion:\"")?;
    let (question, passage) = rest.split_once("\nContext:").ok_or("input has no \"\\nContext:\"")?;
    Ok(QaPair { question: question.into(), passage: passage.into() })
}

/// `"Passage: <p>\nQuestion: <q>\nAnswer type: ..."`; passages may quote
/// "\nQuestion:" themselves, hence the last one ends the passage.
fn parse_drop(input: &str) -> Result<QaPair, String> {
    let rest = input.strip_prefix("Passage:").ok_or("input does not start with \"Passage:\"")?;
    let (passage, question) = rest.rsplit_once("\nQuestion:").ok_or("input has no \"\\nQuestion:\"")?;
    let question = match question.rsplit_once("\nAnswer type:") {
        Some((q, _)) => q,
        None => question,
    };
    Ok(QaPair { question: question.into(), passage: passage.into() })
}

// ---------------------------------------------------------------- cleaning

/// Step 1: every run of whitespace becomes one space; ends stripped.
pub fn collapse_whitespace(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Compiles a rule, reading `\w` as Python's `re` does (letters, numbers,
/// `_`): the regex crate's `\w` also takes combining marks, which joins
/// e.g. "तराना - ए" and would give that passage another id than Python tools.
fn re(pattern: &str) -> Regex {
    let pattern = pattern.replace(r"\w", r"[\p{L}\p{N}_]");
    Regex::new(&pattern).expect("built-in pattern is valid")
}

/// A word end, as Python's `\b` after a word character: the next character
/// is not a word character (kept in the `end` group), or the text ends.
const WORD_END: &str = r"(?P<end>[^\p{L}\p{N}_]|$)";

static CONTRACTION: LazyLock<Regex> = LazyLock::new(|| re(&format!(r"(\w) ' (s|re|ve|ll|d|m|t){WORD_END}")));
static POSSESSIVE: LazyLock<Regex> = LazyLock::new(|| re(&format!(r"(\w) 's{WORD_END}")));
static NEGATION: LazyLock<Regex> = LazyLock::new(|| re(&format!(r"(\w) n't{WORD_END}")));
static SPACE_BEFORE: LazyLock<Regex> = LazyLock::new(|| re(r" ([,.;:?!%)\]}])"));
static SPACE_AFTER: LazyLock<Regex> = LazyLock::new(|| re(r"([(\[{$£€]) "));
static HYPHEN: LazyLock<Regex> = LazyLock::new(|| re(r"(\w) - (\w)"));
static EN_DASH: LazyLock<Regex> = LazyLock::new(|| re(r"(\d) – (\d)"));
static QUOTED: LazyLock<Regex> = LazyLock::new(|| re(r#"" (.*?) ""#));

/// Step 2: undoes PTB-style tokenisation, rules in the contract's order.
pub fn detokenize(s: &str) -> String {
    let s = s.replace("``", "\"").replace("''", "\"");
    let s = CONTRACTION.replace_all(&s, "${1}'${2}${end}");
    let s = POSSESSIVE.replace_all(&s, "${1}'s${end}");
    let s = NEGATION.replace_all(&s, "${1}n't${end}");
    let s = SPACE_BEFORE.replace_all(&s, "${1}");
    let s = SPACE_AFTER.replace_all(&s, "${1}");
    let s = join_all(&HYPHEN, &s, "${1}-${2}");
    let s = join_all(&EN_DASH, &s, "${1}–${2}");
    QUOTED.replace_all(&s, "\"${1}\"").into_owned()
}

/// Replaces until nothing matches: a match consumes the character after the
/// dash, so "a - b - c" needs a second pass (as with a lookahead).
fn join_all(pattern: &Regex, s: &str, replacement: &str) -> String {
    let mut out = s.to_string();
    while pattern.is_match(&out) {
        out = pattern.replace_all(&out, replacement).into_owned();
    }
    out
}

/// The cleaning each source gets: nq both steps, drop step 1 only.
pub fn clean(source: Source, text: &str) -> String {
    let collapsed = collapse_whitespace(text);
    match source {
        Source::Nq => detokenize(&collapsed),
        Source::Drop => collapsed,
    }
}

/// The key that identifies a query: lowercase, whitespace collapsed.
pub fn normalize_question(cleaned: &str) -> String {
    collapse_whitespace(&cleaned.to_lowercase())
}

// ---------------------------------------------------------------- ids, split

fn sha256(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

/// `prefix` + the first 12 hex digits (6 bytes) of the digest.
fn short_id(prefix: char, digest: &[u8; 32]) -> String {
    let mut id = String::with_capacity(13);
    id.push(prefix);
    for byte in &digest[..6] {
        id.push_str(&format!("{byte:02x}"));
    }
    id
}

/// Passage id: "p" + 12 hex of sha256(cleaned text).
pub fn passage_id(cleaned: &str) -> String {
    short_id('p', &sha256(cleaned))
}

/// Query id: "q" + 12 hex of sha256(normalised question).
pub fn query_id(normalized: &str) -> String {
    short_id('q', &sha256(normalized))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Split {
    Train,
    Dev,
    Test,
}

impl Split {
    pub const ALL: [Split; 3] = [Split::Train, Split::Dev, Split::Test];

    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Dev => "dev",
            Split::Test => "test",
        }
    }

    /// First byte of sha256(normalised question) mod 10: 0 test, 1 dev.
    pub fn of_question(normalized: &str) -> Split {
        match sha256(normalized)[0] % 10 {
            0 => Split::Test,
            1 => Split::Dev,
            _ => Split::Train,
        }
    }
}

impl FromStr for Split {
    type Err = ConvertError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "train" => Ok(Split::Train),
            "dev" => Ok(Split::Dev),
            "test" => Ok(Split::Test),
            other => Err(ConvertError::UnknownSplit(other.to_string())),
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// ---------------------------------------------------------------- near-copies

/// Length of the longest common subsequence, one DP row at a time.
fn lcs_len<T: PartialEq>(a: &[T], b: &[T]) -> usize {
    let mut row = vec![0usize; b.len() + 1];
    for x in a {
        let mut diag = 0; // row[j] of the previous line
        for (j, y) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = if x == y { diag + 1 } else { above.max(row[j]) };
            diag = above;
        }
    }
    row[b.len()]
}

/// 2L / (|a| + |b|) >= 0.9, in integers: ratios landing exactly on 0.9
/// must match, and a float ratio can round them either way.
fn is_near_copy(lcs: usize, len_a: usize, len_b: usize) -> bool {
    20 * lcs >= 9 * (len_a + len_b)
}

fn first_chars(s: &str, n: usize) -> &str {
    s.char_indices().nth(n).map_or(s, |(i, _)| &s[..i])
}

fn last_chars(s: &str, n: usize) -> &str {
    match n.checked_sub(1).and_then(|k| s.char_indices().rev().nth(k)) {
        Some((i, _)) => &s[i..],
        None if n == 0 => "",
        None => s,
    }
}

/// The kept passages, indexed for exact and near-copy lookups.
#[derive(Default)]
struct Corpus {
    texts: Vec<String>,
    words: Vec<Vec<u32>>,
    by_text: HashMap<String, usize>,
    by_first: HashMap<String, Vec<usize>>,
    by_last: HashMap<String, Vec<usize>>,
    vocab: HashMap<String, u32>,
}

impl Corpus {
    /// Index of the kept passage `text` maps to, and whether it was kept
    /// just now. Without `near_copies` only identical texts merge.
    fn resolve(&mut self, text: &str, near_copies: bool) -> (usize, bool) {
        if let Some(&i) = self.by_text.get(text) {
            return (i, false);
        }
        if !near_copies {
            return (self.keep(text, Vec::new()), true);
        }
        let words = self.word_ids(text);
        match self.near_copy_of(text, &words) {
            Some(i) => (i, false),
            None => (self.keep(text, words), true),
        }
    }

    /// Cleaned text has single spaces, so " " splits it into words; ids
    /// make the LCS compare integers instead of strings.
    fn word_ids(&mut self, text: &str) -> Vec<u32> {
        text.split(' ')
            .map(|w| {
                let next = self.vocab.len() as u32;
                *self.vocab.entry(w.to_string()).or_insert(next)
            })
            .collect()
    }

    /// The first kept passage (in kept order) sharing the first or last
    /// 60 characters whose word similarity reaches 0.9.
    fn near_copy_of(&self, text: &str, words: &[u32]) -> Option<usize> {
        let empty = Vec::new();
        let first = self.by_first.get(first_chars(text, AFFIX_CHARS)).unwrap_or(&empty);
        let last = self.by_last.get(last_chars(text, AFFIX_CHARS)).unwrap_or(&empty);
        merge_sorted(first, last).into_iter().find(|&i| {
            let kept = &self.words[i];
            is_near_copy(lcs_len(words, kept), words.len(), kept.len())
        })
    }

    fn keep(&mut self, text: &str, words: Vec<u32>) -> usize {
        let i = self.texts.len();
        self.texts.push(text.to_string());
        self.words.push(words);
        self.by_text.insert(text.to_string(), i);
        let first = first_chars(text, AFFIX_CHARS).to_string();
        let last = last_chars(text, AFFIX_CHARS).to_string();
        self.by_first.entry(first).or_default().push(i);
        self.by_last.entry(last).or_default().push(i);
        i
    }
}

/// Union of two ascending index lists, ascending, without repeats.
fn merge_sorted(a: &[usize], b: &[usize]) -> Vec<usize> {
    let mut out: Vec<usize> = a.iter().chain(b).copied().collect();
    out.sort_unstable();
    out.dedup();
    out
}

// ---------------------------------------------------------------- the set

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passage {
    pub id: String,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub id: String,
    pub text: String,
    pub split: Split,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qrel {
    pub query_id: String,
    pub passage_id: String,
    pub split: Split,
}

/// A converted set: corpus in kept order, queries in order of first
/// appearance, qrels grouped by query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BeirSet {
    pub corpus: Vec<Passage>,
    pub queries: Vec<Query>,
    pub qrels: Vec<Qrel>,
    /// Pairs whose passage mapped to an already kept one (identical or near).
    pub merged: usize,
}

/// The figures DATA.md lists for checking a conversion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub pairs: usize,
    pub passages: usize,
    pub merged: usize,
    pub train: usize,
    pub dev: usize,
    pub test: usize,
}

impl fmt::Display for Counts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} pairs, {} merged, {} passages; queries train {}, dev {}, test {}",
            self.pairs, self.merged, self.passages, self.train, self.dev, self.test
        )
    }
}

impl BeirSet {
    pub fn counts(&self) -> Counts {
        let in_split = |s| self.queries.iter().filter(|q| q.split == s).count();
        Counts {
            pairs: self.corpus.len() + self.merged,
            passages: self.corpus.len(),
            merged: self.merged,
            train: in_split(Split::Train),
            dev: in_split(Split::Dev),
            test: in_split(Split::Test),
        }
    }
}

/// One query being gathered: its first cleaned text and relevant passages.
struct QueryAcc {
    normalized: String,
    text: String,
    passages: Vec<usize>,
}

/// Cleans raw pairs, merges passages and groups questions (DATA.md).
pub fn build_set(source: Source, pairs: &[QaPair]) -> BeirSet {
    let mut corpus = Corpus::default();
    let mut queries: Vec<QueryAcc> = Vec::new();
    let mut query_index: HashMap<String, usize> = HashMap::new();
    let mut merged = 0;
    for pair in pairs {
        let passage = clean(source, &pair.passage);
        let (p, kept) = corpus.resolve(&passage, source == Source::Nq);
        merged += usize::from(!kept);

        let question = clean(source, &pair.question);
        let normalized = normalize_question(&question);
        let q = *query_index.entry(normalized.clone()).or_insert_with(|| {
            queries.push(QueryAcc { normalized, text: question, passages: Vec::new() });
            queries.len() - 1
        });
        if !queries[q].passages.contains(&p) {
            queries[q].passages.push(p);
        }
    }
    assemble(corpus, queries, merged)
}

fn assemble(corpus: Corpus, accs: Vec<QueryAcc>, merged: usize) -> BeirSet {
    let corpus: Vec<Passage> = corpus.texts.into_iter().map(|text| Passage { id: passage_id(&text), text }).collect();
    let mut queries = Vec::with_capacity(accs.len());
    let mut qrels = Vec::new();
    for acc in accs {
        let id = query_id(&acc.normalized);
        let split = Split::of_question(&acc.normalized);
        for &p in &acc.passages {
            let passage_id = corpus[p].id.clone();
            qrels.push(Qrel { query_id: id.clone(), passage_id, split });
        }
        queries.push(Query { id, text: acc.text, split });
    }
    BeirSet { corpus, queries, qrels, merged }
}

// ---------------------------------------------------------------- writing

#[derive(Serialize)]
struct CorpusLine<'a> {
    #[serde(rename = "_id")]
    id: &'a str,
    title: &'a str,
    text: &'a str,
}

#[derive(Serialize)]
struct QueryLine<'a> {
    #[serde(rename = "_id")]
    id: &'a str,
    text: &'a str,
}

/// Writes `corpus.jsonl`, `queries.jsonl` and `qrels/{train,dev,test}.tsv`
/// into `dir`, replacing it whole: the files go to a sibling temp dir that
/// is renamed into place once complete, so no reader sees a partial set. A
/// `dir` holding anything but our own output is refused, never replaced.
pub fn write_beir(set: &BeirSet, dir: &Path) -> Result<(), ConvertError> {
    let staging = Staging::new(dir).map_err(|e| ConvertError::Output { path: dir.to_path_buf(), source: e })?;
    write_files(set, staging.path())?;
    staging.commit().map_err(|e| ConvertError::Output { path: dir.to_path_buf(), source: e })
}

fn write_files(set: &BeirSet, dir: &Path) -> Result<(), ConvertError> {
    let qrels_dir = dir.join("qrels");
    fs::create_dir_all(&qrels_dir).map_err(io_err(&qrels_dir))?;
    write_file(&dir.join("corpus.jsonl"), |w| {
        for p in &set.corpus {
            json_line(w, &CorpusLine { id: &p.id, title: "", text: &p.text })?;
        }
        Ok(())
    })?;
    write_file(&dir.join("queries.jsonl"), |w| {
        for q in &set.queries {
            json_line(w, &QueryLine { id: &q.id, text: &q.text })?;
        }
        Ok(())
    })?;
    for split in Split::ALL {
        write_file(&qrels_dir.join(format!("{split}.tsv")), |w| {
            writeln!(w, "query-id\tcorpus-id\tscore")?;
            for r in set.qrels.iter().filter(|r| r.split == split) {
                writeln!(w, "{}\t{}\t1", r.query_id, r.passage_id)?;
            }
            Ok(())
        })?;
    }
    Ok(())
}

fn json_line<T: Serialize>(w: &mut impl Write, value: &T) -> io::Result<()> {
    serde_json::to_writer(&mut *w, value)?;
    w.write_all(b"\n")
}

/// Writes and syncs one file, so the rename never publishes unwritten data.
fn write_file(path: &Path, body: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>) -> Result<(), ConvertError> {
    let file = File::create(path).map_err(io_err(path))?;
    let mut w = BufWriter::new(file);
    body(&mut w).map_err(io_err(path))?;
    let file = w.into_inner().map_err(|e| io_err(path)(e.into_error()))?;
    file.sync_all().map_err(io_err(path))
}

// ---------------------------------------------------------------- tests

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(question: &str, passage: &str) -> QaPair {
        QaPair { question: question.into(), passage: passage.into() }
    }

    fn words(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("w{i}")).collect()
    }

    #[test]
    fn collapses_whitespace() {
        assert_eq!(collapse_whitespace("  a\t\n b \u{a0} c  "), "a b c");
        assert_eq!(collapse_whitespace(" \n "), "");
    }

    #[test]
    fn detokenizes_quotes() {
        assert_eq!(detokenize("by `` bust her '' ."), "by \"bust her\".");
    }

    #[test]
    fn detokenizes_contractions() {
        assert_eq!(detokenize("Earth ' s core"), "Earth's core");
        assert_eq!(detokenize("they ' re here"), "they're here");
        assert_eq!(detokenize("Phineas 's sister"), "Phineas's sister");
        assert_eq!(detokenize("do n't go"), "don't go");
        // Not at a word end: left alone.
        assert_eq!(detokenize("Earth ' sam"), "Earth ' sam");
        assert_eq!(detokenize("a 'sam"), "a 'sam");
        // A combining mark is no word character (as in Python's `re`).
        assert_eq!(detokenize("X 's\u{301}"), "X's\u{301}");
        assert_eq!(detokenize("तराना - ए"), "तराना - ए");
    }

    #[test]
    fn detokenizes_punctuation() {
        assert_eq!(detokenize("a , b . c ; d : e ? f ! 5 %"), "a, b. c; d: e? f! 5%");
        assert_eq!(detokenize("( a ) [ b ] { c }"), "(a) [b] {c}");
        assert_eq!(detokenize("$ 5 £ 6 € 7"), "$5 £6 €7");
    }

    #[test]
    fn detokenizes_dashes() {
        assert_eq!(detokenize("fifteen - year - old"), "fifteen-year-old");
        assert_eq!(detokenize("a - b - c"), "a-b-c");
        assert_eq!(detokenize("1990 – 1995"), "1990–1995");
        assert_eq!(detokenize("a – b"), "a – b"); // en dash only between digits
        assert_eq!(detokenize("end - ."), "end -."); // no word after the dash
    }

    #[test]
    fn detokenizes_quote_pairs_left_to_right() {
        assert_eq!(detokenize("he said \" hi there \" and \" bye \" ."), "he said \"hi there\" and \"bye\".");
    }

    #[test]
    fn cleans_by_source() {
        assert_eq!(clean(Source::Nq, " Earth ' s\n core "), "Earth's core");
        assert_eq!(clean(Source::Drop, " Earth ' s\n core "), "Earth ' s core");
    }

    #[test]
    fn similarity_threshold_is_exactly_nine_tenths() {
        assert!(is_near_copy(9, 10, 10)); // 18/20 = 0.9
        assert!(!is_near_copy(9, 10, 11)); // 18/21 < 0.9
        assert!(is_near_copy(27, 30, 30)); // 54/60 = 0.9
        assert!(!is_near_copy(26, 29, 30)); // 52/59 < 0.9
                                            // Through the LCS: one word of ten swapped is exactly 0.9.
        let a = words(10);
        let mut b = a.clone();
        b[4] = "other".into();
        assert_eq!(lcs_len(&a, &b), 9);
        assert!(is_near_copy(lcs_len(&a, &b), a.len(), b.len()));
    }

    #[test]
    fn lcs_counts_subsequences() {
        let a = ["a", "b", "c", "d", "e"];
        let b = ["b", "x", "d", "e", "a"];
        assert_eq!(lcs_len(&a, &b), 3);
        assert_eq!(lcs_len::<&str>(&[], &b), 0);
    }

    #[test]
    fn affixes_count_chars_not_bytes() {
        assert_eq!(first_chars("éaé", 2), "éa");
        assert_eq!(last_chars("éaé", 2), "aé");
        assert_eq!(last_chars("ab", 60), "ab");
        assert_eq!(first_chars("ab", 60), "ab");
    }

    #[test]
    fn splits_by_first_hash_byte() {
        // sha256 first bytes: "q2" 0xbe (190), "q7" 0x0b (11), "q0" 0x34 (52).
        assert_eq!(Split::of_question("q2"), Split::Test);
        assert_eq!(Split::of_question("q7"), Split::Dev);
        assert_eq!(Split::of_question("q0"), Split::Train);
        assert_eq!(query_id("q2"), "qbee98bf120e8");
        assert_eq!(passage_id("q0"), "p341c0a3e67c3");
        for s in Split::ALL {
            assert_eq!(s.as_str().parse::<Split>().ok(), Some(s));
        }
        assert!("valid".parse::<Split>().is_err());
    }

    #[test]
    fn merges_near_copies_sharing_an_affix() {
        let base = words(40).join(" ");
        let swapped = base.replace("w30", "swapped"); // same first 60 chars, sim 39/40
        let mut ends = words(40);
        ends[0] = "x".into();
        ends[39] = "y".into(); // sim 38/40, but shares neither affix
        let ends = ends.join(" ");
        let pairs = [pair("q a", &base), pair("q b", &swapped), pair("q c", &ends), pair("q d", &base)];
        let set = build_set(Source::Nq, &pairs);
        assert_eq!(set.corpus.len(), 2);
        assert_eq!(set.merged, 2);
        assert_eq!(set.corpus[0].text, base);
        assert_eq!(set.corpus[1].text, ends);
        let base_id = passage_id(&base);
        let to_base = set.qrels.iter().filter(|r| r.passage_id == base_id).count();
        assert_eq!(to_base, 3);
        assert_eq!(set.counts().pairs, 4);
    }

    #[test]
    fn near_copy_takes_first_kept_match_not_best() {
        // 40 words; w20.. start after char 60 and end before the last 60.
        let a = words(40);
        let changed = |n: usize| {
            let mut w = a.clone();
            for (i, word) in w.iter_mut().enumerate().skip(20).take(n) {
                *word = format!("b{i}");
            }
            w.join(" ")
        };
        let (a, b, c) = (a.join(" "), changed(5), changed(4));
        // b vs a: 70/80 < 0.9, kept. c vs a: 72/80 = 0.9; c vs b: 78/80.
        let set = build_set(Source::Nq, &[pair("1", &a), pair("2", &b), pair("3", &c)]);
        assert_eq!(set.corpus.len(), 2);
        let to_c = set.qrels.iter().find(|r| r.query_id == query_id("3"));
        assert_eq!(to_c.map(|r| &r.passage_id), Some(&passage_id(&a)));
    }

    #[test]
    fn drop_merges_only_identical_passages() {
        let base = words(30).join(" ");
        let swapped = base.replace("w15", "swapped");
        let pairs = [pair("a", &base), pair("b", &swapped), pair("c", &base)];
        let set = build_set(Source::Drop, &pairs);
        assert_eq!(set.corpus.len(), 2);
        assert_eq!(set.merged, 1);
    }

    #[test]
    fn same_question_is_one_query() {
        let pairs = [pair("Who  is it?", "one"), pair("who is it ?", "two")];
        let set = build_set(Source::Nq, &pairs);
        assert_eq!(set.queries.len(), 1);
        assert_eq!(set.queries[0].text, "Who is it?"); // first occurrence, cleaned
        assert_eq!(set.queries[0].id, query_id("who is it?"));
        assert_eq!(set.qrels.len(), 2);
    }

    #[test]
    fn reads_nq_input() {
        let json = r#"{"examples":[{"input":"\nQuestion: who ?\nContext: A ( b ) ."}]}"#;
        let pairs = read_pairs(Source::Nq, json.as_bytes()).expect("valid");
        assert_eq!(pairs, vec![pair(" who ?", " A ( b ) .")]);
    }

    #[test]
    fn drop_passage_ends_at_last_question() {
        let input = "Passage: He asked:\nQuestion: why? \nand left. \nQuestion: Who left? \nAnswer type: Span ";
        let json = serde_json::json!({ "examples": [{ "input": input }] }).to_string();
        let pairs = read_pairs(Source::Drop, json.as_bytes()).expect("valid");
        let set = build_set(Source::Drop, &pairs);
        assert_eq!(set.corpus[0].text, "He asked: Question: why? and left.");
        assert_eq!(set.queries[0].text, "Who left?");
        let no_type = r#"{"examples":[{"input":"Passage: p\nQuestion: q?"}]}"#;
        let pairs = read_pairs(Source::Drop, no_type.as_bytes()).expect("valid");
        assert_eq!(collapse_whitespace(&pairs[0].question), "q?");
    }

    #[test]
    fn malformed_example_names_its_index() {
        let json = r#"{"examples":[{"input":"\nQuestion: a\nContext: b"},{"input":5},{}]}"#;
        let err = read_pairs(Source::Nq, json.as_bytes()).unwrap_err();
        assert!(matches!(err, ConvertError::Example { index: 1, .. }), "{err}");
        assert!(err.to_string().contains("example 1"), "{err}");
        let json = r#"{"examples":[{"input":"\nQuestion: a\nPassage: b"}]}"#;
        let err = read_pairs(Source::Nq, json.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("Context"), "{err}");
        let json = r#"{"examples":[{"input":"\nQuestion: \nContext: b"}]}"#;
        let err = read_pairs(Source::Nq, json.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("empty question"), "{err}");
        assert!(matches!(read_pairs(Source::Nq, b"{}"), Err(ConvertError::NoExamples)));
        assert!(matches!(read_pairs(Source::Nq, b"{"), Err(ConvertError::Json(_))));
    }

    #[test]
    fn writes_beir_atomically_and_round_trips() {
        let root = std::env::temp_dir().join(format!("bigbench-test-{}", std::process::id()));
        let dir = root.join("set");
        let pairs = [pair("q2", "first passage"), pair("q7", "second"), pair("q0", "third")];
        let set = build_set(Source::Nq, &pairs);
        write_beir(&set, &dir).expect("first write");
        write_beir(&set, &dir).expect("overwrite");

        let mut names: Vec<_> =
            fs::read_dir(&root).expect("root").filter_map(|e| e.ok().map(|e| e.file_name())).collect();
        names.sort();
        assert_eq!(names, vec!["set"], "no temp dir left behind");

        let corpus = super::super::beir::load_corpus(&dir.join("corpus.jsonl")).expect("corpus");
        assert_eq!(corpus.len(), 3);
        assert_eq!(corpus[0].text, "first passage");
        let queries = super::super::beir::load_queries(&dir.join("queries.jsonl")).expect("q");
        assert_eq!(queries.len(), 3);
        for (split, question) in [("test", "q2"), ("dev", "q7"), ("train", "q0")] {
            let qrels = super::super::beir::load_qrels(&dir, split).expect("qrels");
            assert_eq!(qrels.len(), 1);
            assert!(qrels.contains_key(&query_id(question)));
        }
        let _ = fs::remove_dir_all(&root);
    }
}
