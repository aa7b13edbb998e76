//! Files from strangers: each crafted input that once loaded, looped, escaped
//! the index folder or asked for gigabytes is refused with a clear error.
//! Inputs that stand alone are committed under `tests/fixtures/hostile/`
//! (`make.py` writes them); those built from a model are crafted here from the
//! tiny synthetic one, so they stay small and in step with the format.

use std::collections::HashMap;
use std::io::Cursor;
use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file::{self, Value};
use ernie_search::format::lexical::meta_from_bytes;
use ernie_search::format::model::{read_card, read_model, WeightDType};
use ernie_search::format::shard::{Manifest, Passage};
use ernie_search::format::{index as index_file, Staging};
use ernie_search::index::dir::{write_dir, IndexDir, IndexParts};
use ernie_search::synthetic::tiny_model;
use ernie_search::{Bm25Params, Embedder, Error, FlatIndex, LexicalIndex, Pooling, VectorDType};

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hostile").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn err_text<T>(r: ernie_search::Result<T>) -> String {
    match r {
        Ok(_) => panic!("accepted a crafted input"),
        Err(e) => e.to_string(),
    }
}

// ---- model files -----------------------------------------------------------

/// A GGUF file taken apart: metadata, tensor table and data, so a test can
/// change any of them and write the file again (candle's writer would
/// recompute offsets and refuse overlaps).
struct Gguf {
    meta: Vec<(String, Value)>,
    tensors: Vec<(String, Vec<u64>, u32, u64)>,
    data: Vec<u8>,
}

fn take_apart(bytes: &[u8]) -> Gguf {
    let c = gguf_file::Content::read(&mut Cursor::new(bytes)).unwrap();
    let mut meta: Vec<(String, Value)> = c.metadata.into_iter().collect();
    meta.sort_by(|a, b| a.0.cmp(&b.0));
    let mut tensors: Vec<_> = c
        .tensor_infos
        .iter()
        .map(|(n, i)| {
            let mut dims: Vec<u64> = i.shape.dims().iter().map(|&d| d as u64).collect();
            dims.reverse();
            let code = match i.ggml_dtype {
                candle_core::quantized::GgmlDType::F32 => 0,
                candle_core::quantized::GgmlDType::Q8_0 => 8,
                other => panic!("test model holds {other:?}"),
            };
            (n.clone(), dims, code, i.offset)
        })
        .collect();
    tensors.sort_by_key(|t| t.3);
    Gguf { meta, tensors, data: bytes[c.tensor_data_offset as usize..].to_vec() }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

impl Gguf {
    fn bytes(&self) -> Vec<u8> {
        let mut out = b"GGUF".to_vec();
        out.extend_from_slice(&2u32.to_le_bytes());
        out.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        out.extend_from_slice(&(self.meta.len() as u64).to_le_bytes());
        for (k, v) in &self.meta {
            put_str(&mut out, k);
            let (code, body): (u32, Vec<u8>) = match v {
                Value::U32(x) => (4, x.to_le_bytes().to_vec()),
                Value::F64(x) => (12, x.to_le_bytes().to_vec()),
                Value::Bool(x) => (7, vec![*x as u8]),
                Value::String(s) => {
                    let mut b = Vec::new();
                    put_str(&mut b, s);
                    (8, b)
                }
                other => panic!("test model holds metadata {other:?}"),
            };
            out.extend_from_slice(&code.to_le_bytes());
            out.extend_from_slice(&body);
        }
        for (name, dims, code, offset) in &self.tensors {
            put_str(&mut out, name);
            out.extend_from_slice(&(dims.len() as u32).to_le_bytes());
            dims.iter().for_each(|d| out.extend_from_slice(&d.to_le_bytes()));
            out.extend_from_slice(&code.to_le_bytes());
            out.extend_from_slice(&offset.to_le_bytes());
        }
        out.resize(out.len().div_ceil(32) * 32, 0);
        out.extend_from_slice(&self.data);
        out
    }

    fn set(&mut self, key: &str, v: Value) {
        self.meta.iter_mut().find(|(k, _)| k == key).expect("key").1 = v;
    }
}

fn model() -> Vec<u8> {
    tiny_model(7, WeightDType::Q8_0, Pooling::Mean).unwrap()
}

#[test]
fn the_test_writer_round_trips_a_model() {
    let bytes = model();
    let again = take_apart(&bytes).bytes();
    assert_eq!(read_model(&again).unwrap().card, read_model(&bytes).unwrap().card);
}

#[test]
fn aliased_extra_tensors_are_refused_before_any_allocation() {
    // 400 extra tensors over the same bytes: once, gigabytes allocated.
    let mut g = take_apart(&model());
    let (_, dims, code, offset) = g.tensors.iter().find(|t| t.0.ends_with("query.weight")).unwrap().clone();
    for i in 0..400 {
        g.tensors.push((format!("extra.{i}.weight"), dims.clone(), code, offset));
    }
    let err = err_text(read_model(&g.bytes()));
    assert!(err.contains("unexpected tensor"), "{err}");
}

#[test]
fn overlapping_and_wrapping_tensors_are_refused() {
    let bytes = model();
    // A known tensor pointed at another's bytes.
    let mut g = take_apart(&bytes);
    let first = g.tensors.iter().position(|t| t.0 == "encoder.layer.0.attention.self.key.weight").unwrap();
    let second = g.tensors.iter().position(|t| t.0 == "encoder.layer.0.attention.self.query.weight").unwrap();
    g.tensors[second].3 = g.tensors[first].3;
    let err = err_text(read_model(&g.bytes()));
    assert!(err.contains("share bytes"), "{err}");
    // 2^31 x 2^31 elements: the byte size once wrapped to 0 and loaded.
    let mut g = take_apart(&bytes);
    g.tensors[0].1 = vec![1 << 31, 1 << 31];
    let err = err_text(read_model(&g.bytes()));
    assert!(err.contains("shape"), "{err}");
    // Offsets past 2^64.
    let mut g = take_apart(&bytes);
    g.tensors[0].3 = u64::MAX - 3;
    let err = err_text(read_model(&g.bytes()));
    assert!(err.contains("truncated"), "{err}");
    // A config asking for a vocabulary of 2^31 tokens.
    let mut g = take_apart(&bytes);
    g.set("bert.vocab_size", Value::U32(1 << 31));
    let err = err_text(read_card(&g.bytes()));
    assert!(err.contains("vocab_size"), "{err}");
}

#[test]
fn a_zero_alignment_is_refused_before_candle_divides_by_it() {
    // Found by fuzzing: candle's GGUF reader divides by `general.alignment`.
    for (v, ok) in [(0, false), (24, false), (1 << 20, false), (32, true)] {
        let mut g = take_apart(&model());
        g.meta.push(("general.alignment".into(), Value::U32(v)));
        let r = read_card(&g.bytes());
        assert_eq!(r.is_ok(), ok, "alignment {v}: {r:?}");
    }
    let crash = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions/model/gguf-alignment-zero.gguf");
    let err = err_text(read_model(&std::fs::read(crash).unwrap()));
    assert!(err.contains("general.alignment"), "{err}");
}

#[test]
fn a_changed_weight_or_setting_breaks_the_fingerprint() {
    let bytes = model();
    let g = take_apart(&bytes);
    let data_at = bytes.len() - g.data.len();
    // A flipped weight byte in the middle of the tensor data.
    let mut flipped = bytes.clone();
    flipped[data_at + g.data.len() / 2] ^= 0x10;
    let err = err_text(read_model(&flipped));
    assert!(err.contains("fingerprint mismatch"), "{err}");
    // A Q8_0 block's f16 scale set to NaN (the block's first two bytes).
    let (_, _, _, offset) = g.tensors.iter().find(|t| t.2 == 8).unwrap();
    let mut nan = bytes.clone();
    let at = data_at + *offset as usize;
    nan[at..at + 2].copy_from_slice(&half::f16::NAN.to_le_bytes());
    let err = err_text(read_model(&nan));
    assert!(err.contains("fingerprint mismatch"), "{err}");
    // Pooling switched to CLS, the old fingerprint kept.
    let mut g = take_apart(&bytes);
    g.set("ernie.pooling", Value::String("cls".into()));
    let err = err_text(read_model(&g.bytes()));
    assert!(err.contains("fingerprint mismatch"), "{err}");
    // The card alone is still readable (for `info`), and says the old fingerprint.
    assert_eq!(read_card(&g.bytes()).unwrap().fingerprint, read_card(&bytes).unwrap().fingerprint);
}

#[test]
fn a_truncated_model_names_the_cut_tensor() {
    let bytes = model();
    let err = err_text(read_model(&bytes[..bytes.len() - 100]));
    assert!(err.contains("truncated: tensor"), "{err}");
}

// ---- index files -----------------------------------------------------------

fn small_index(dtype: VectorDType) -> (Embedder, FlatIndex) {
    let e = Embedder::from_bytes(&model()).unwrap();
    let texts = ["the king of france", "a river in london", "the largest planet"];
    let vecs = e.embed_passages(&texts).unwrap();
    let mut idx = FlatIndex::new(e.dim(), dtype, &e.card().fingerprint).unwrap();
    for (i, v) in vecs.iter().enumerate() {
        idx.push(&format!("p{i}"), v).unwrap();
    }
    (e, idx)
}

/// Recomputes an index file's CRC (header bytes 0..72 and the body), so a
/// crafted change reaches the checks after it.
fn reseal(bytes: &mut [u8]) {
    let mut crc = crc32fast::Hasher::new();
    crc.update(&bytes[..72]);
    crc.update(&bytes[80..]);
    let c = crc.finalize();
    bytes[72..76].copy_from_slice(&c.to_le_bytes());
}

#[test]
fn the_index_checksum_covers_the_header() {
    let (_, idx) = small_index(VectorDType::F32);
    let bytes = index_file::to_bytes(&idx).unwrap();
    for at in [16, 24, 40] {
        let mut bad = bytes.clone();
        bad[at] ^= 1; // dimension, count, fingerprint
        assert!(matches!(index_file::from_bytes(&bad), Err(Error::Checksum { .. })), "byte {at}");
    }
}

#[test]
fn non_finite_vectors_are_refused_in_the_file_and_the_query() {
    let (_, idx) = small_index(VectorDType::F32);
    let mut bytes = index_file::to_bytes(&idx).unwrap();
    let first_value = 80 + 3; // after the three window counts
    bytes[first_value..first_value + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    reseal(&mut bytes);
    let err = err_text(index_file::from_bytes(&bytes));
    assert!(err.contains("not a finite number"), "{err}");
    // An int8 index whose first scale is infinite.
    let (_, idx) = small_index(VectorDType::Int8);
    let mut bytes = index_file::to_bytes(&idx).unwrap();
    let scales = 80 + 3 + 3 * idx.dim();
    bytes[scales..scales + 4].copy_from_slice(&f32::INFINITY.to_le_bytes());
    reseal(&mut bytes);
    assert!(index_file::from_bytes(&bytes).is_err());
    let mut q = vec![0.0; idx.dim()];
    q[0] = f32::NAN;
    let err = err_text(idx.search(&q, 3));
    assert!(err.contains("NaN"), "{err}");
}

#[test]
fn window_counts_that_overflow_are_refused() {
    // Four passages of 2^31 windows each: the sum wraps a 32-bit usize.
    let (_, idx) = small_index(VectorDType::F32);
    let good = index_file::to_bytes(&idx).unwrap();
    let mut body = Vec::new();
    for _ in 0..4 {
        body.extend_from_slice(&[0x80, 0x80, 0x80, 0x80, 0x08]); // LEB128 of 2^31
    }
    body.resize(64, 0);
    let mut bytes = good[..80].to_vec();
    bytes[24..32].copy_from_slice(&4u64.to_le_bytes());
    bytes[64..72].copy_from_slice(&(body.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&body);
    reseal(&mut bytes);
    let err = err_text(index_file::from_bytes(&bytes));
    assert!(err.contains("do not fit"), "{err}");
}

// ---- lexical and manifest --------------------------------------------------

#[test]
fn a_lexical_meta_asking_for_billions_of_blocks_is_refused() {
    // 91 bytes whose header asks for 0xFFFFFFF0 blocks (once: a 206 GB allocation).
    let bytes = fixture("lexical-meta-huge-blocks.bin");
    assert_eq!(bytes.len(), 91);
    let err = err_text(meta_from_bytes(&bytes));
    assert!(err.contains("blocks"), "{err}");
}

/// A real index folder, written by the library.
fn index_dir(root: &Path) -> PathBuf {
    let (e, idx) = small_index(VectorDType::Int8);
    let passages: Vec<Passage> = (0..3)
        .map(|i| Passage { id: format!("p{i}"), title: String::new(), text: format!("text {i}"), url: None })
        .collect();
    let texts: Vec<&str> = passages.iter().map(|p| p.text.as_str()).collect();
    let ids: Vec<&str> = passages.iter().map(|p| p.id.as_str()).collect();
    let lexical = LexicalIndex::build(&ids, &texts, Bm25Params::default(), 2).unwrap();
    let dir = root.join("idx");
    let bytes = model();
    let parts = IndexParts {
        index: &idx,
        passages: &passages,
        lexical: Some(&lexical),
        windows: None,
        fusion: None,
        shard_size: 2,
        model_name: &e.card().name,
        model_path: None,
        model_bytes: Some(&bytes),
        table: None,
        clusters: None,
    };
    write_dir(&dir, &parts).unwrap();
    dir
}

fn edit_manifest(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join("manifest.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    edit(&mut v);
    std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
}

#[test]
fn manifest_names_stay_inside_the_folder() {
    let escapes: &[(&str, &str)] = &[
        ("/index_file", "../../../../etc/passwd"),
        ("/index_file", "/dev/zero"),
        ("/index_file", "index.0123456789abcdef.bin?x"),
        ("/model_file", "/etc/passwd"),
        ("/shards/0", "passages/../../outside.json"),
        ("/shards/1", "https://example.invalid/shard.json"),
        ("/lexical/meta", "lexical/meta.0123456789abcdef.bin/.."),
        ("/lexical/blocks/0", "lexical\\terms.0123456789abcdef.bin"),
        ("/index_file", ""),
    ];
    let root = tempfile::tempdir().unwrap();
    let good = index_dir(root.path());
    let text = std::fs::read(good.join("manifest.json")).unwrap();
    let m = Manifest::from_bytes(&text).unwrap();
    // A build names each numbered set after one hash; version 3 folders list
    // every name, which is still read, and each listed name is checked.
    let mut listed: serde_json::Value = serde_json::from_slice(&text).unwrap();
    assert!(listed["shards"]["hash"].is_string() && listed["lexical"]["blocks"]["count"] == 2, "{listed}");
    let old = |dir: &str, n: usize, ext: &str| (0..n).map(|i| format!("{dir}.{i:016x}.{ext}")).collect::<Vec<_>>();
    listed["shards"] = old("passages/shard", m.shards.len(), "json").into();
    listed["lexical"]["blocks"] = old("lexical/terms", 2, "bin").into();
    let again = Manifest::from_bytes(&serde_json::to_vec(&listed).unwrap()).unwrap();
    assert_eq!(again.shard_name(1).unwrap(), format!("passages/shard.{:016x}.json", 1));
    assert_eq!(again.lexical.unwrap().block_name(2), None);
    for (pointer, name) in escapes {
        let mut v = listed.clone();
        *v.pointer_mut(pointer).unwrap() = (*name).into();
        let err = err_text(Manifest::from_bytes(&serde_json::to_vec(&v).unwrap()));
        assert!(err.contains("is not a name inside the index folder"), "{pointer} = {name}: {err}");
    }
    for (pointer, hash) in [("/shards/hash", "../../../../etc"), ("/lexical/blocks/hash", "0123456789ABCDEF")] {
        let mut v: serde_json::Value = serde_json::from_slice(&text).unwrap();
        *v.pointer_mut(pointer).unwrap() = hash.into();
        let err = err_text(Manifest::from_bytes(&serde_json::to_vec(&v).unwrap()));
        assert!(err.contains("is not 16 lowercase hex digits"), "{pointer} = {hash}: {err}");
    }
    let mut v: serde_json::Value = serde_json::from_slice(&text).unwrap();
    v["lexical"]["blocks"]["count"] = (1u64 << 40).into();
    let err = err_text(Manifest::from_bytes(&serde_json::to_vec(&v).unwrap()));
    assert!(err.contains("must hold 1 to 65536 files"), "{err}");
    for f in ["manifest-escape.json", "manifest-dev-zero.json"] {
        let err = err_text(Manifest::from_bytes(&fixture(f)));
        assert!(err.contains("is not a name inside the index folder"), "{f}: {err}");
    }
    let err = err_text(Manifest::from_bytes(&fixture("manifest-huge-model.json")));
    assert!(err.contains("limit"), "{err}");
    // Found by fuzzing: k1 = 1.5e39 reads as an f32 infinity, which JSON cannot
    // write back (so `tune-fusion` would have broken the folder).
    let err = err_text(Manifest::from_bytes(&fixture("manifest-infinite-k1.json")));
    assert!(err.contains("k1"), "{err}");
}

#[test]
fn reads_are_capped_at_the_recorded_size_and_links_refused() {
    let root = tempfile::tempdir().unwrap();
    let dir = index_dir(root.path());
    let m = Manifest::from_bytes(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    IndexDir::open(&dir).unwrap().shards.passage(0).unwrap();
    // A shard grown past the largest the manifest records.
    let shard = dir.join(m.shard_name(0).unwrap());
    let mut grown = std::fs::read(&shard).unwrap();
    grown.extend(std::iter::repeat_n(b' ', m.max_shard_bytes.unwrap() as usize));
    std::fs::write(&shard, &grown).unwrap();
    let err = err_text(IndexDir::open(&dir).unwrap().shards.passage(0));
    assert!(err.contains("more than the"), "{err}");
    // The index file replaced by a link to a file outside the folder.
    let outside = root.path().join("outside.bin");
    std::fs::write(&outside, b"ERNIEIDX").unwrap();
    let index = dir.join(&m.index_file);
    std::fs::remove_file(&index).unwrap();
    std::os::unix::fs::symlink(&outside, &index).unwrap();
    let err = err_text(IndexDir::open(&dir));
    assert!(err.contains("not a regular file"), "{err}");
    // The lexical meta larger than recorded.
    let dir = index_dir(&root.path().join("second"));
    edit_manifest(&dir, |v| v["lexical"]["meta_bytes"] = 10.into());
    let err = err_text(IndexDir::open(&dir));
    assert!(err.contains("more than the 10 allowed"), "{err}");
}

// ---- folders ---------------------------------------------------------------

#[test]
fn a_folder_that_is_not_an_index_is_never_replaced() {
    let root = tempfile::tempdir().unwrap();
    let theirs = root.path().join("idx");
    std::fs::create_dir_all(theirs.join("sub")).unwrap();
    std::fs::write(theirs.join("notes.txt"), b"mine").unwrap();
    let (e, idx) = small_index(VectorDType::F32);
    let passages: Vec<Passage> =
        (0..3).map(|i| Passage { id: format!("p{i}"), title: String::new(), text: "t".into(), url: None }).collect();
    let parts = IndexParts {
        index: &idx,
        passages: &passages,
        lexical: None,
        windows: None,
        fusion: None,
        shard_size: 8,
        model_name: &e.card().name,
        model_path: None,
        model_bytes: None,
        table: None,
        clusters: None,
    };
    let err = err_text(write_dir(&theirs, &parts));
    assert!(err.contains("not written by ernie-search"), "{err}");
    assert_eq!(std::fs::read(theirs.join("notes.txt")).unwrap(), b"mine");
    // An index folder of ours is replaced, and an empty folder is filled.
    let ours = index_dir(&root.path().join("ours"));
    write_dir(&ours, &parts).unwrap();
    let empty = root.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    write_dir(&empty, &parts).unwrap();
    IndexDir::open(&empty).unwrap();
    // A kill between the swap's two renames is repaired by the next build.
    std::fs::rename(&ours, root.path().join("ours").join(".idx.old-999999999")).unwrap();
    let s = Staging::new(&ours).unwrap();
    IndexDir::open(&ours).unwrap();
    drop(s);
    let left: HashMap<String, ()> = std::fs::read_dir(root.path().join("ours"))
        .unwrap()
        .map(|e| (e.unwrap().file_name().to_string_lossy().into_owned(), ()))
        .collect();
    assert_eq!(left.len(), 1, "only the index folder remains: {left:?}");
}

#[test]
fn a_table_head_whose_tokenizer_holds_millions_of_values_is_refused() {
    use ernie_search::format::table::{head_from_bytes, to_parts, TableFile};
    use ernie_search::{TableEncoder, TokenTable};
    // 8 MB of `[0,0,...]`, well within the head's 64 MiB cap: read whole it
    // would be a tree of about 0.3 GB (64 bytes a value, natively).
    let values = ernie_search::format::json::MAX_VALUES;
    let tokenizer_json = format!("[{}0]", "0,".repeat(values));
    let rows: Vec<f32> = (0..8 * 4).map(|i| (i as f32 * 0.37).sin()).collect();
    let table =
        TokenTable::from_f32(&"ab".repeat(32), 4, &rows, vec![1.0; 8], 4, ernie_search::index::quant::ValueBits::Int4)
            .unwrap();
    let (head, _) = to_parts(&TableFile { table, tokenizer_json, max_query_len: 16 }).unwrap();
    let head = head_from_bytes(&head, None).unwrap();
    let e = err_text(TableEncoder::from_head(head));
    assert!(e.contains("too many values"), "{e}");
}
