//! Writes the committed seed corpora, `fuzz/corpus/<target>/`: small valid
//! files of every kind, made by the library's own writers.
//!
//!     cargo run --manifest-path fuzz/Cargo.toml --example make_corpus
//!
//! Deterministic: the same library gives the same bytes, so rerunning it
//! after a format change shows up as a plain diff.

use std::path::{Path, PathBuf};

use ernie_search::format::model::{quantize_tensors, write_model, WeightDType};
use ernie_search::format::shard::{FusionSetting, Manifest, Part, Passage, WindowSpec};
use ernie_search::index::dir::{write_dir, IndexParts};
use ernie_search::model::{BertConfig, ModelSpec, Pooling};
use ernie_search::synthetic::{random_bert, tiny_tokenizer_json, WORDS};
use ernie_search::{Bm25Params, FlatIndex, Fusion, LexicalIndex, VectorDType};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn main() -> Res<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus");
    // Seeds are written over, never cleared: the folders also keep seeds
    // from older writers (`clusters/v2-*`, `table/v3-*`) and hand-written ones.
    for t in ["model", "index", "lexical_meta", "lexical_block", "manifest", "shard", "table", "clusters", "embed_cache"] {
        std::fs::create_dir_all(root.join(t))?;
    }
    models(&root.join("model"))?;
    tables(&root.join("table"))?;
    // The packed vocabulary an index folder's table head carries (the
    // wordpiece target's other seeds are written by hand).
    let (packed, _) = ernie_search::WordPiece::sorted_json(&tiny_tokenizer_json())?;
    std::fs::write(root.join("wordpiece").join("packed.json"), packed)?;
    clusters(&root.join("clusters"))?;
    embed_caches(&root.join("embed_cache"))?;
    let tmp = std::env::temp_dir().join(format!("ernie-fuzz-corpus-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    index_dirs(&root, &tmp)?;
    std::fs::remove_dir_all(&tmp)?;
    let mut total = 0;
    for t in std::fs::read_dir(&root)? {
        let t = t?.path();
        let mut n = 0;
        let mut bytes = 0;
        for f in std::fs::read_dir(&t)? {
            n += 1;
            bytes += f?.metadata()?.len();
        }
        total += bytes;
        println!("{:<14} {n} seeds, {bytes} bytes", t.file_name().unwrap().to_string_lossy());
    }
    println!("total          {total} bytes");
    Ok(())
}

/// Cluster heads with one of their lists (a u32 LE head length, the head,
/// the list): int8 and f32 rows, with windows, one cluster and several, in
/// files of int2, int4 and int8 values.
fn clusters(out: &Path) -> Res<()> {
    use ernie_search::format::clusters::to_parts;
    use ernie_search::index::clusters::{kmeans, ValueBits};
    for (name, dtype, n, k, bits) in [
        ("f32-three", VectorDType::F32, 9, 3, ValueBits::Int8),
        ("int8-one", VectorDType::Int8, 4, 1, ValueBits::Int8),
        ("int4-three", VectorDType::Int8, 9, 3, ValueBits::Int4),
        ("int2-three", VectorDType::Int8, 9, 3, ValueBits::Int2),
    ] {
        let mut index = FlatIndex::new(6, dtype, &"ab".repeat(32))?;
        for (i, p) in passages(n).iter().enumerate() {
            index.push_windows(&p.id, &vectors(6, i, 1 + i % 2))?;
        }
        let c = kmeans(index.store(), index.dim(), index.rows(), k, 1)?;
        let (head, lists) = to_parts(&index, &c, k.min(2), bits)?;
        let mut seed = (head.len() as u32).to_le_bytes().to_vec();
        seed.extend_from_slice(&head);
        seed.extend_from_slice(&lists[lists.len() - 1]);
        std::fs::write(out.join(format!("{name}.bin")), seed)?;
    }
    Ok(())
}

/// Token tables: a one-chunk and a many-chunk table, with and without weights.
fn tables(out: &Path) -> Res<()> {
    use ernie_search::format::table::{to_bytes, TableFile};
    use ernie_search::table::TokenTable;
    use ernie_search::index::quant::ValueBits;
    for (name, vocab, dim, chunk_rows, bits) in
        [("one-chunk", 7, 4, 512, ValueBits::Int8), ("chunks", 40, 8, 6, ValueBits::Int8), ("int4-chunks", 40, 7, 6, ValueBits::Int4), ("int2-chunks", 40, 7, 6, ValueBits::Int2)]
    {
        let rows: Vec<f32> = (0..vocab * dim).map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0).collect();
        let weights: Vec<f32> = (0..vocab).map(|i| if i % 5 == 0 { 0.0 } else { 1.0 + i as f32 / 10.0 }).collect();
        let table = TokenTable::from_f32(&"0f".repeat(32), dim, &rows, weights, chunk_rows, bits)?;
        let file = TableFile { table, tokenizer_json: tiny_tokenizer_json(), max_query_len: 16 };
        std::fs::write(out.join(format!("{name}.bin")), to_bytes(&file)?)?;
    }
    Ok(())
}

/// Embedding caches: an empty one and one of a few passage windows and queries.
fn embed_caches(out: &Path) -> Res<()> {
    use ernie_search::index::embed_cache::{key, EmbedCache, InputKind};
    let fp = "0f".repeat(32);
    std::fs::write(out.join("empty.bin"), EmbedCache::new(&fp, 4).to_bytes()?)?;
    let mut cache = EmbedCache::new(&fp, 4);
    for i in 0..5u32 {
        let kind = if i % 2 == 0 { InputKind::PassageWindow } else { InputKind::Query };
        let v: Vec<f32> = (0..4).map(|j| (i * 4 + j) as f32 * 0.25 - 1.0).collect();
        cache.insert(key(&fp, kind, 16, &[101, 7 + i, 102]), &v)?;
    }
    std::fs::write(out.join("five.bin"), cache.to_bytes()?)?;
    Ok(())
}

/// Three small models: Q8_0 and Q4_0 (hidden 32, one layer), and an f16 one
/// with a hidden size of 8 (below a quantization block: f32 matrices).
fn models(out: &Path) -> Res<()> {
    let cfg = |hidden, heads, inter| BertConfig {
        vocab_size: 5 + WORDS.len() + 2 * 26,
        hidden_size: hidden,
        num_hidden_layers: 1,
        num_attention_heads: heads,
        intermediate_size: inter,
        max_position_embeddings: 16,
        type_vocab_size: 2,
        layer_norm_eps: 1e-12,
        hidden_act: "gelu".into(),
    };
    for (name, bert, dtype, pooling) in [
        ("tiny-q8_0.gguf", cfg(32, 2, 32), WeightDType::Q8_0, Pooling::Mean),
        ("tiny-q4_0.gguf", cfg(32, 4, 32), WeightDType::Q4_0, Pooling::Cls),
        ("tiny-f16.gguf", cfg(8, 2, 8), WeightDType::F16, Pooling::Mean),
    ] {
        let spec = ModelSpec { bert: bert.clone(), pooling, normalize: true, max_query_len: 8, max_passage_len: 16 };
        let tensors = quantize_tensors(random_bert(&bert, 7)?, dtype)?;
        let provenance = serde_json::json!({"method": "synthetic", "seed": 7, "fuzz": "seed corpus"});
        let bytes = write_model("fuzz-seed", &spec, dtype, &tiny_tokenizer_json(), &provenance, &tensors)?;
        // Sanity: the seed is a valid model file.
        ernie_search::format::model::read_model(&bytes)?;
        if dtype == WeightDType::Q8_0 {
            // The same model with an explicit `general.alignment` (the GGUF
            // default, 32): the key the reader takes the data offset from.
            let aligned = with_alignment(&bytes, 32)?;
            ernie_search::format::model::read_model(&aligned)?;
            std::fs::write(out.join("tiny-q8_0-aligned.gguf"), aligned)?;
        }
        std::fs::write(out.join(name), bytes)?;
    }
    Ok(())
}

/// Rewrites a GGUF file with `general.alignment` added; keys and tensors in
/// name order, so the bytes are deterministic.
fn with_alignment(bytes: &[u8], alignment: u32) -> Res<Vec<u8>> {
    use candle_core::quantized::gguf_file::{self, Value};
    let mut cursor = std::io::Cursor::new(bytes);
    let content = gguf_file::Content::read(&mut cursor)?;
    let mut meta: Vec<(&str, &Value)> = content.metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let align = Value::U32(alignment);
    meta.push(("general.alignment", &align));
    meta.sort_by(|a, b| a.0.cmp(b.0));
    let mut names: Vec<&String> = content.tensor_infos.keys().collect();
    names.sort();
    let tensors = names
        .iter()
        .map(|n| Ok((n.as_str(), content.tensor(&mut cursor, n, &candle_core::Device::Cpu)?)))
        .collect::<Res<Vec<_>>>()?;
    let refs: Vec<(&str, &candle_core::quantized::QTensor)> = tensors.iter().map(|(n, t)| (*n, t)).collect();
    let mut out = std::io::Cursor::new(Vec::new());
    gguf_file::write(&mut out, &meta, &refs)?;
    Ok(out.into_inner())
}

fn passages(n: usize) -> Vec<Passage> {
    let mut ps: Vec<Passage> = (0..n)
        .map(|i| {
            let words: Vec<&str> = (0..3 + i % 5).map(|j| WORDS[(i * 7 + j * 13 + j * j) % WORDS.len()]).collect();
            Passage {
                id: format!("p{i}"),
                title: if i % 2 == 0 { format!("Title {i}") } else { String::new() },
                text: words.join(" "),
                url: (i % 3 == 0).then(|| format!("https://example.org/{i}")),
            }
        })
        .collect();
    ps.push(Passage {
        id: "cjk".into(), title: String::new(), text: "東京都は日本の首都です".into(), url: None
    });
    ps.push(Passage {
        id: "esc\"aped".into(),
        title: "\\ \u{1}".into(),
        text: "<b>zebra</b> \u{e9}t\u{e9}".into(),
        url: None,
    });
    ps
}

/// Deterministic vectors; passage `i` has `windows(i)` of them.
fn vectors(dim: usize, i: usize, windows: usize) -> Vec<Vec<f32>> {
    (0..windows).map(|w| (0..dim).map(|d| (((i * 31 + w * 17 + d * 7) % 23) as f32 - 11.0) / 11.0).collect()).collect()
}

struct Build {
    tag: &'static str,
    dtype: VectorDType,
    dim: usize,
    passages: usize,
    max_windows: usize,
    lexical_blocks: Option<u32>,
    shard_size: usize,
    fusion: Option<Fusion>,
}

fn index_dirs(root: &Path, tmp: &Path) -> Res<()> {
    let builds = [
        Build {
            tag: "f32-windows-hybrid",
            dtype: VectorDType::F32,
            dim: 4,
            passages: 6,
            max_windows: 3,
            lexical_blocks: Some(3),
            shard_size: 3,
            fusion: Some(Fusion::Convex { alpha: 0.4 }),
        },
        Build {
            tag: "f16-rrf",
            dtype: VectorDType::F16,
            dim: 8,
            passages: 3,
            max_windows: 1,
            lexical_blocks: Some(1),
            shard_size: 8,
            fusion: Some(Fusion::Rrf { k: 60.0 }),
        },
        Build {
            tag: "int8-dense",
            dtype: VectorDType::Int8,
            dim: 6,
            passages: 4,
            max_windows: 2,
            lexical_blocks: None,
            shard_size: 2,
            fusion: None,
        },
    ];
    for b in &builds {
        let ps = passages(b.passages);
        let fp = format!("{:064x}", b.dim * 1_000_003);
        let mut index = FlatIndex::new(b.dim, b.dtype, &fp)?;
        for (i, p) in ps.iter().enumerate() {
            index.push_windows(&p.id, &vectors(b.dim, i, 1 + i % b.max_windows))?;
        }
        let lexical = match b.lexical_blocks {
            Some(n) => {
                let ids: Vec<&str> = ps.iter().map(|p| p.id.as_str()).collect();
                let texts: Vec<&str> = ps.iter().map(|p| p.text.as_str()).collect();
                Some(LexicalIndex::build(&ids, &texts, Bm25Params::default(), n)?)
            }
            None => None,
        };
        let dir = tmp.join(b.tag);
        // One folder carries a token table (two chunks) with its own fusion.
        let table = (b.tag == "f32-windows-hybrid")
            .then(|| {
                use ernie_search::format::table::TableFile;
                let vocab = 12;
                let rows: Vec<f32> = (0..vocab * b.dim).map(|i| ((i * 7 % 13) as f32 - 6.0) / 6.0).collect();
                let bits = ernie_search::index::quant::ValueBits::Int4;
                let t = ernie_search::table::TokenTable::from_f32(&fp, b.dim, &rows, vec![1.0; vocab], 8, bits)?;
                Ok::<_, ernie_search::Error>(TableFile { table: t, tokenizer_json: tiny_tokenizer_json(), max_query_len: 16 })
            })
            .transpose()?;
        // The same folder carries its vectors by cluster too.
        let clustering = (b.tag == "f32-windows-hybrid")
            .then(|| ernie_search::index::clusters::kmeans(index.store(), index.dim(), index.rows(), 2, 1))
            .transpose()?;
        let table_fusion = FusionSetting { fusion: Fusion::Convex { alpha: 0.3 }, tuned_on: Some("fuzz seed".into()) };
        let parts = IndexParts {
            index: &index,
            passages: &ps,
            lexical: lexical.as_ref(),
            windows: (b.max_windows > 1).then(|| WindowSpec {
                window: 16,
                overlap: 4,
                max_windows: b.max_windows,
                rows: index.rows(),
            }),
            fusion: b.fusion.map(|fusion| FusionSetting { fusion, tuned_on: Some("fuzz seed".into()) }),
            shard_size: b.shard_size,
            model_name: "fuzz-seed",
            model_path: Some(Path::new("models/fuzz-seed.gguf")),
            model_bytes: (b.tag == "f32-windows-hybrid").then_some(&b"not really a model"[..]),
            table: table.as_ref().map(|file| ernie_search::index::dir::TablePart {
                file,
                taught: "fuzz seed",
                fusion: Some(&table_fusion),
                hot: &[0],
            }),
            clusters: clustering.as_ref().map(|clustering| ernie_search::index::dir::ClusterPart {
                clustering,
                nprobe: 1,
                bits: Default::default(),
                measured: Some("fuzz seed"),
            }),
        };
        let m = write_dir(&dir, &parts)?;
        let copy = |from: &str, target: &str, name: String| std::fs::copy(dir.join(from), root.join(target).join(name));
        copy("manifest.json", "manifest", format!("{}.json", b.tag))?;
        copy(&m.index_file, "index", format!("{}.bin", b.tag))?;
        if b.dtype == VectorDType::F32 {
            // Version 1 (one vector per passage, no window counts): still read.
            let v1 = index_v1(&index, &fp)?;
            ernie_search::format::index::from_bytes(&v1)?;
            std::fs::write(root.join("index").join("f32-v1.bin"), v1)?;
            // Version 2: the same body as now, a CRC that leaves the header out.
            let v2 = as_old_index(std::fs::read(dir.join(&m.index_file))?, 2);
            ernie_search::format::index::from_bytes(&v2)?;
            std::fs::write(root.join("index").join("f32-windows-v2.bin"), v2)?;
            // A version 1 manifest: dense only, no windows, lexical part or fusion.
            let mut v1 = serde_json::to_value(&m)?;
            let o = v1.as_object_mut().unwrap();
            o.insert("format_version".into(), 1.into());
            for k in ["windows", "lexical", "fusion", "model_file", "model_path", "table", "clusters"] {
                o.remove(k);
            }
            let bytes = serde_json::to_vec(&v1)?;
            Manifest::from_bytes(&bytes)?;
            std::fs::write(root.join("manifest").join("v1.json"), bytes)?;
        }
        for (s, shard) in m.shards.names(Part::Shard).enumerate().take(2) {
            copy(&shard, "shard", format!("{}-{s}.json", b.tag))?;
        }
        if let Some(l) = &m.lexical {
            copy(&l.meta, "lexical_meta", format!("{}.bin", b.tag))?;
            for (n, block) in l.blocks.names(Part::LexicalBlock).enumerate() {
                copy(&block, "lexical_block", format!("{}-{n}.bin", b.tag))?;
            }
        }
    }
    Ok(())
}

/// The version 1 index layout, written by hand (the library writes only the
/// newest): no window counts in the body, a CRC of the body alone.
fn index_v1(index: &FlatIndex, fp: &str) -> Res<Vec<u8>> {
    let mut one = FlatIndex::new(index.dim(), index.dtype(), fp)?;
    for (i, id) in index.ids().iter().enumerate() {
        one.push(id, &vectors(index.dim(), i, 1)[0])?;
    }
    let mut bytes = ernie_search::format::index::to_bytes(&one)?;
    // Every window count is 1: one LEB128 byte per passage at the body's start.
    bytes.drain(80..80 + one.len());
    Ok(as_old_index(bytes, 1))
}

/// Relabels an index file as an older `version` (1 or 2), whose CRC covers
/// the body alone (the body must already have that version's layout).
fn as_old_index(mut bytes: Vec<u8>, version: u32) -> Vec<u8> {
    bytes[8..12].copy_from_slice(&version.to_le_bytes());
    let body_len = (bytes.len() - 80) as u64;
    bytes[64..72].copy_from_slice(&body_len.to_le_bytes());
    let crc = crc32fast::hash(&bytes[80..]);
    bytes[72..76].copy_from_slice(&crc.to_le_bytes());
    bytes
}
