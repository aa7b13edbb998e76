//! The embedding cache of rebuilds, end to end on a tiny synthetic model: a
//! rebuild encodes only what changed, searches as a fresh build does, and a
//! damaged cache costs time, never the build.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ernie_search::synthetic::{write_checkpoint, WORDS};

/// The binary with its own cache folder (the cache is the subject here).
fn run(cache: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ernie-search"))
        .env("ERNIE_SEARCH_CACHE", cache)
        .args(args)
        .output()
        .expect("run ernie-search")
}

fn ok(cache: &Path, args: &[&str]) -> (String, String) {
    let out = run(cache, args);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{args:?} failed: {stderr}");
    (stdout.into_owned(), stderr.into_owned())
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Passage `i`: short ones, and every fifth long enough for three windows of
/// 48 tokens; an edited passage has its words in reverse order.
fn text(i: usize, edited: bool) -> String {
    let n = if i % 5 == 4 { 100 } else { 9 };
    let mut words: Vec<&str> = (0..n).map(|j| WORDS[(i * 7 + j * 13) % WORDS.len()]).collect();
    if edited {
        words.reverse();
    }
    words.join(" ")
}

fn corpus(dir: &Path, name: &str, edited: Option<usize>) -> PathBuf {
    let lines: Vec<String> = (0..30)
        .map(|i| {
            let text = text(i, Some(i) == edited);
            serde_json::json!({"_id": format!("p{i:02}"), "title": "", "text": text}).to_string()
        })
        .collect();
    let p = dir.join(name);
    std::fs::write(&p, lines.join("\n")).unwrap();
    p
}

/// (reused, encoded) from the line "embeddings: R reused from the cache, E encoded (cache PATH)".
fn counts(stdout: &str) -> (usize, usize) {
    let line = stdout.lines().find(|l| l.starts_with("embeddings: ")).unwrap_or_else(|| panic!("{stdout}"));
    let num = |w: &str| w.replace(',', "").parse::<usize>().unwrap_or_else(|_| panic!("{line}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    (num(words[1]), num(words[6]))
}

/// A folder, its cache folder and a tiny model (48-token passage windows).
fn setup() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let ck = write_checkpoint(tmp.path(), 11).unwrap();
    let model = tmp.path().join("m.gguf");
    let convert = ["convert", "--checkpoint", s(&ck), "--out", s(&model), "--max-query-len", "16"];
    ok(&cache, &[&convert[..], &["--max-passage-len", "48"]].concat());
    (tmp, cache, model)
}

/// Files under `dir` that are embedding caches.
fn caches_in(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(caches_in(&path));
        } else if std::fs::read(&path).unwrap().starts_with(b"ERNIEEMB") {
            found.push(path);
        }
    }
    found
}

fn hits(cache: &Path, idx: &Path, query: &str, mode: &str) -> Vec<(String, f64)> {
    let (json, _) = ok(cache, &["search", s(idx), query, "--mode", mode, "-k", "10", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    v["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["id"].as_str().unwrap().into(), h["score"].as_f64().unwrap()))
        .collect()
}

#[test]
fn a_rebuild_encodes_only_the_edited_passage_and_searches_as_a_fresh_build() {
    let (tmp, cache, model) = setup();
    let (before, after) = (corpus(tmp.path(), "a.jsonl", None), corpus(tmp.path(), "b.jsonl", Some(3)));
    let index = |corpus: &Path, out: &Path, extra: &[&str]| {
        let args = ["index", s(corpus), "--model", s(&model), "--out", s(out), "--no-table"];
        ok(&cache, &[&args[..], extra].concat())
    };

    let (first, _) = index(&before, &tmp.path().join("first"), &[]);
    let (reused, windows) = counts(&first);
    assert_eq!(reused, 0, "{first}");
    assert!(windows > 30, "six passages in three windows each: {first}");
    let files = caches_in(&cache);
    assert!(files.len() == 1 && files[0].parent() == Some(&cache.join("embeddings")), "{files:?}");
    assert!(first.contains(s(&files[0])), "the line names the cache: {first}");

    // Passage 3 (one window) edited: every other window comes from the cache.
    let cached = tmp.path().join("cached");
    let (second, _) = index(&after, &cached, &[]);
    assert_eq!(counts(&second), (windows - 1, 1), "{second}");
    assert!(caches_in(&cached).is_empty(), "the cache never goes into the index");

    // A fresh build of the same corpus: the same results, scores within float noise.
    let stamp = std::fs::read(&files[0]).unwrap();
    let fresh = tmp.path().join("fresh");
    let (third, _) = index(&after, &fresh, &["--no-embed-cache"]);
    assert!(!third.contains("embeddings:"), "{third}");
    assert_eq!(std::fs::read(&files[0]).unwrap(), stamp, "--no-embed-cache leaves the cache alone");
    for q in ["king of france", &text(3, true)[..30], &text(9, false)[..40], "river city war"] {
        for mode in ["dense", "hybrid"] {
            let (a, b) = (hits(&cache, &cached, q, mode), hits(&cache, &fresh, q, mode));
            let ids = |h: &[(String, f64)]| h.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>();
            assert_eq!(ids(&a), ids(&b), "{q:?} {mode}");
            assert!(a.iter().zip(&b).all(|(x, y)| (x.1 - y.1).abs() <= 1e-5), "{q:?} {mode}: {a:?} {b:?}");
        }
    }
}

#[test]
fn the_token_tables_pseudo_queries_come_from_the_cache_too() {
    let (tmp, cache, model) = setup();
    let (before, after) = (corpus(tmp.path(), "a.jsonl", None), corpus(tmp.path(), "b.jsonl", Some(3)));
    let index = |corpus: &Path, out: &str| {
        let args = ["index", s(corpus), "--model", s(&model), "--out", out, "--table-steps", "10"];
        ok(&cache, &args)
    };
    let (first, _) = index(&before, s(&tmp.path().join("a")));
    let (_, all) = counts(&first);
    // One window and at most one span query of passage 3 are new (its title is empty).
    let (second, _) = index(&after, s(&tmp.path().join("b")));
    let (reused, encoded) = counts(&second);
    assert!((1..=2).contains(&encoded) && reused + encoded == all, "{first}\n{second}");
}

#[test]
fn a_damaged_cache_is_a_warning_and_the_build_goes_on() {
    let (tmp, cache, model) = setup();
    let c = corpus(tmp.path(), "a.jsonl", None);
    let out = tmp.path().join("i");
    let args = ["index", s(&c), "--model", s(&model), "--out", s(&out), "--no-table"];
    let (first, _) = ok(&cache, &args);
    let path = std::fs::read_dir(cache.join("embeddings")).unwrap().next().unwrap().unwrap().path();
    let good = std::fs::read(&path).unwrap();
    let mut flipped = good.clone();
    flipped[good.len() / 2] ^= 0x40;
    for (what, bytes) in
        [("truncated", good[..good.len() - 7].to_vec()), ("flipped", flipped), ("foreign", b"{}".to_vec())]
    {
        std::fs::write(&path, &bytes).unwrap();
        let (out, err) = ok(&cache, &args);
        assert!(err.contains("warning: embedding cache") && err.contains(s(&path)), "{what}: {err}");
        assert_eq!(counts(&out), (0, counts(&first).1), "{what}: {out}");
        assert_eq!(std::fs::read(&path).unwrap(), good, "{what}: rewritten whole by the build");
    }
}

#[test]
fn index_site_uses_the_cache_and_never_publishes_it() {
    let (tmp, cache, model) = setup();
    let site = tmp.path().join("public");
    std::fs::create_dir_all(&site).unwrap();
    for i in 0..4 {
        let page = format!("<title>Page {i}</title><main><p>{}</p></main>", text(i, false));
        std::fs::write(site.join(format!("p{i}.html")), page).unwrap();
    }
    let assets = tmp.path().join("pkg");
    std::fs::create_dir_all(&assets).unwrap();
    std::fs::write(assets.join("ernie_search.js"), "export default 1;").unwrap();
    std::fs::write(assets.join("ernie_search_bg.wasm"), b"\0asm").unwrap();
    let args = ["index-site", s(&site), "--model", s(&model), "--assets", s(&assets), "--no-table"];
    let (first, _) = ok(&cache, &args);
    let (reused, encoded) = counts(&first);
    assert!(reused == 0 && encoded >= 4, "{first}");
    assert_eq!(counts(&ok(&cache, &args).0), (encoded, 0));
    assert!(caches_in(&site).is_empty(), "nothing of the cache in the published folder");
    assert_eq!(caches_in(&cache).len(), 1);
}
