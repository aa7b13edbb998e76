//! BERT's WordPiece tokenizer, on its own: what the token table needs to
//! turn a query into row ids, with no `tokenizers` crate (the light build
//! carries only this). It reads the same `tokenizer.json` and gives the same
//! ids as `tokenizers` for BERT models (`BertNormalizer`,
//! `BertPreTokenizer`, `WordPiece`, `[CLS] ... [SEP]`); a tokenizer of
//! another kind is refused. Parity with `tokenizers` is tested on the real
//! model's text (`cli/tests/real_model.rs`) and on crafted strings.

use super::categories::{is_other, is_punctuation};
use super::vocab::{pack, Vocab};

use crate::format::json::Json;
use crate::{Error, Result};

pub struct WordPiece {
    vocab: Vocab,
    /// Special tokens written in the text itself (`[UNK]`, `[MASK]`...), matched first.
    added: Vec<(String, u32)>,
    unk: u32,
    cls: u32,
    sep: u32,
    prefix: String,
    max_word_chars: usize,
    norm: Normalizer,
    /// Tokens kept, `[CLS]` and `[SEP]` included.
    max_len: usize,
    vocab_size: usize,
}

#[derive(Clone, Copy)]
struct Normalizer {
    clean_text: bool,
    chinese: bool,
    strip_accents: bool,
    lowercase: bool,
}

/// The vocabulary of `model`: Hugging Face's object (token -> id), our
/// compact array (the token of id i at i, [`WordPiece::compact_json`]),
/// that array sorted and packed (`packed_vocab`, [`WordPiece::sorted_json`])
/// or, in folders written before 2026-12-07, front-coded in one string.
fn read_vocab(model: &Json) -> Result<Vocab> {
    let bad = |why: &str| Error::Tokenizer(format!("the WordPiece vocabulary: {why}"));
    let packed = &model["packed_vocab"];
    if !packed.is_null() {
        let (Some(chars), Some(tokens)) = (packed["chars"].as_str(), packed["tokens"].as_str()) else {
            return Err(bad("packed_vocab without its two strings, chars and tokens"));
        };
        return Vocab::from_packed(chars, prefix(model), tokens);
    }
    let pairs = match &model["vocab"] {
        Json::String(s) => return Vocab::from_front_coded(s),
        Json::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, t)| Ok((t.as_str().ok_or_else(|| bad("a token that is not a string"))?.to_string(), i as u32)))
            .collect::<Result<Vec<_>>>()?,
        Json::Object(pairs) => pairs
            .iter()
            .map(|(t, id)| {
                let id =
                    id.as_u64().and_then(|i| u32::try_from(i).ok()).ok_or_else(|| bad("an id that is not a u32"))?;
                Ok((t.clone(), id))
            })
            .collect::<Result<Vec<_>>>()?,
        _ => return Err(bad("neither an object, an array nor a string")),
    };
    Vocab::from_pairs(pairs)
}

/// What continues a word ("##" unless the model says otherwise).
fn prefix(model: &Json) -> &str {
    model["continuing_subword_prefix"].as_str().unwrap_or("##")
}

/// The tokens in id order; `None` when the ids have gaps.
fn tokens_by_id(vocab: &Vocab) -> Option<Vec<&str>> {
    let mut by_id = vec![None; vocab.len()];
    for (tok, id) in vocab.iter() {
        *by_id.get_mut(id as usize)? = Some(tok);
    }
    by_id.into_iter().collect()
}

fn parse_json(json: &[u8]) -> Result<Json> {
    Json::parse(json).map_err(|e| Error::Tokenizer(format!("cannot parse tokenizer JSON: {e}")))
}

/// What [`WordPiece::from_json`] reads of `v`, with `vocab` as the
/// vocabulary and, given `new_id`, the added tokens' ids mapped through it.
/// Keys sorted at every level, as serde_json writes them, so the text is the
/// same whichever library wrote it.
fn compact(v: &Json, (key, vocab): (&str, Json), new_id: Option<&[u32]>) -> Json {
    let model = &v["model"];
    let mut m = vec![("type".to_string(), model["type"].clone()), (key.to_string(), vocab)];
    for key in ["unk_token", "continuing_subword_prefix", "max_input_chars_per_word"] {
        if !model[key].is_null() {
            m.push((key.to_string(), model[key].clone()));
        }
    }
    let id = |t: &Json| match new_id {
        None => t["id"].clone(),
        Some(map) => t["id"]
            .as_u64()
            .and_then(|i| map.get(usize::try_from(i).ok()?))
            .map_or(Json::Null, |i| Json::Number(i.to_string())),
    };
    let added = v["added_tokens"].as_array().map_or(Json::Null, |a| {
        Json::Array(
            a.iter()
                .map(|t| Json::Object(vec![("content".to_string(), t["content"].clone()), ("id".to_string(), id(t))]))
                .collect(),
        )
    });
    let pre = Json::Object(vec![("type".to_string(), v["pre_tokenizer"]["type"].clone())]);
    Json::Object(vec![
        ("added_tokens".to_string(), added),
        ("model".to_string(), Json::Object(m)),
        ("normalizer".to_string(), v["normalizer"].clone()),
        ("pre_tokenizer".to_string(), pre),
    ])
    .with_sorted_keys()
}

fn bad(what: &str) -> Error {
    Error::Tokenizer(format!("the token table reads BERT WordPiece tokenizers only: {what}"))
}

impl WordPiece {
    /// From a Hugging Face `tokenizer.json`; `max_len` counts `[CLS]` and `[SEP]`.
    pub fn from_json(json: &[u8], max_len: usize) -> Result<Self> {
        if max_len < 2 {
            return Err(Error::Invalid(format!("max length {max_len} leaves no room for [CLS] and [SEP]")));
        }
        let v = parse_json(json)?;
        let model = &v["model"];
        if model["type"] != "WordPiece" {
            return Err(bad(&format!("model type {}", model["type"])));
        }
        let vocab = read_vocab(model)?;
        let id = |tok: &str| vocab.get(tok).ok_or_else(|| bad(&format!("no {tok} in the vocabulary")));
        let unk = id(model["unk_token"].as_str().unwrap_or("[UNK]"))?;
        let n = &v["normalizer"];
        let norm = match n["type"].as_str() {
            Some("BertNormalizer") => {
                let lowercase = n["lowercase"].as_bool().unwrap_or(true);
                Normalizer {
                    clean_text: n["clean_text"].as_bool().unwrap_or(true),
                    chinese: n["handle_chinese_chars"].as_bool().unwrap_or(true),
                    strip_accents: n["strip_accents"].as_bool().unwrap_or(lowercase),
                    lowercase,
                }
            }
            _ => return Err(bad(&format!("normalizer {}", n["type"]))),
        };
        if v["pre_tokenizer"]["type"] != "BertPreTokenizer" {
            return Err(bad(&format!("pre-tokenizer {}", v["pre_tokenizer"]["type"])));
        }
        let added: Vec<(String, u32)> = v["added_tokens"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|t| Some((t["content"].as_str()?.to_string(), u32::try_from(t["id"].as_u64()?).ok()?)))
                    .collect()
            })
            .unwrap_or_default();
        let vocab_size =
            vocab.iter().map(|(_, i)| i).chain(added.iter().map(|&(_, i)| i)).max().map_or(0, |m| m as usize + 1);
        Ok(Self {
            cls: id("[CLS]")?,
            sep: id("[SEP]")?,
            unk,
            prefix: prefix(model).to_string(),
            max_word_chars: model["max_input_chars_per_word"].as_u64().unwrap_or(100) as usize,
            vocab,
            added,
            norm,
            max_len,
            vocab_size,
        })
    }

    /// `json` with only what [`from_json`](Self::from_json) reads, and the
    /// vocabulary as an array in id order (its ids dense from 0), not an
    /// object: 40 % fewer bytes over the network (gzip), the same ids.
    /// What an index folder's token table carries.
    pub fn compact_json(json: &str) -> Result<String> {
        let v = parse_json(json.as_bytes())?;
        let vocab = read_vocab(&v["model"])?;
        let vocab = match tokens_by_id(&vocab) {
            Some(list) => Json::Array(list.into_iter().map(Json::from).collect()),
            None => v["model"]["vocab"].clone(), // ids with gaps: keep the object
        };
        Ok(compact(&v, ("vocab", vocab), None).to_string())
    }

    /// [`compact_json`](Self::compact_json) with the vocabulary sorted and
    /// packed under `packed_vocab`: `chars`, the single chars whose `##`
    /// twin is a token too (each stands for both), and `tokens`, the others
    /// front-coded (`tokenize::vocab::pack`; 49.6 KB gzipped for BERT's,
    /// where the array takes 117). So ids change: also returns, for each new
    /// id, the old id (what a table's rows must be reordered by). A
    /// vocabulary the packing cannot carry stays in id order (the identity
    /// order), and one whose ids have gaps as it is (no order).
    pub fn sorted_json(json: &str) -> Result<(String, Vec<u32>)> {
        let v = parse_json(json.as_bytes())?;
        let vocab = read_vocab(&v["model"])?;
        let Some(list) = tokens_by_id(&vocab) else {
            // Ids with gaps: kept as they are.
            return Ok((compact(&v, ("vocab", v["model"]["vocab"].clone()), None).to_string(), Vec::new()));
        };
        let mut order: Vec<u32> = (0..list.len() as u32).collect();
        order.sort_by(|&a, &b| list[a as usize].cmp(list[b as usize]));
        let sorted: Vec<&str> = order.iter().map(|&i| list[i as usize]).collect();
        let Some((chars, tokens)) = pack(&sorted, prefix(&v["model"])) else {
            let in_order = Json::Array(list.into_iter().map(Json::from).collect());
            return Ok((compact(&v, ("vocab", in_order), None).to_string(), (0..order.len() as u32).collect()));
        };
        let mut new_id = vec![0u32; list.len()];
        order.iter().enumerate().for_each(|(new, &old)| new_id[old as usize] = new as u32);
        let packed = Json::Object(vec![("chars".into(), Json::String(chars)), ("tokens".into(), Json::String(tokens))]);
        Ok((compact(&v, ("packed_vocab", packed), Some(&new_id)).to_string(), order))
    }

    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// `[CLS]`, the text's tokens (cut to fit `max_len`), `[SEP]`.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let mut ids = vec![self.cls];
        let room = self.max_len - 2;
        for (piece, special) in self.split_added(text) {
            if let Some(id) = special {
                ids.push(id);
                continue;
            }
            for word in pre_tokenize(&self.norm.apply(piece)) {
                self.word_pieces(word, &mut ids);
            }
            if ids.len() > room + 1 {
                break;
            }
        }
        ids.truncate(room + 1);
        ids.push(self.sep);
        ids
    }

    /// The text cut around the added tokens written in it (leftmost, longest first).
    fn split_added<'t>(&self, text: &'t str) -> Vec<(&'t str, Option<u32>)> {
        let mut out = Vec::new();
        let (mut start, mut at) = (0, 0);
        while at < text.len() {
            let hit = self
                .added
                .iter()
                .filter(|(s, _)| !s.is_empty() && text[at..].starts_with(s.as_str()))
                .max_by_key(|(s, _)| s.len());
            match hit {
                Some((s, id)) => {
                    if start < at {
                        out.push((&text[start..at], None));
                    }
                    out.push((&text[at..at + s.len()], Some(*id)));
                    at += s.len();
                    start = at;
                }
                None => at += text[at..].chars().next().map_or(1, char::len_utf8),
            }
        }
        if start < text.len() {
            out.push((&text[start..], None));
        }
        out
    }

    /// Greedy longest-match-first; a word with no split is `[UNK]` whole.
    fn word_pieces(&self, word: &str, ids: &mut Vec<u32>) {
        if word.chars().count() > self.max_word_chars {
            ids.push(self.unk);
            return;
        }
        let mark = ids.len();
        let mut start = 0;
        let mut piece = String::new();
        while start < word.len() {
            let mut end = word.len();
            let mut found = None;
            while start < end {
                piece.clear();
                if start > 0 {
                    piece.push_str(&self.prefix);
                }
                piece.push_str(&word[start..end]);
                if let Some(id) = self.vocab.get(&piece) {
                    found = Some(id);
                    break;
                }
                end -= word[start..end].chars().next_back().map_or(1, char::len_utf8);
            }
            match found {
                Some(id) => ids.push(id),
                None => {
                    ids.truncate(mark);
                    ids.push(self.unk);
                    return;
                }
            }
            start = end;
        }
    }
}

impl Normalizer {
    fn apply(self, text: &str) -> String {
        let mut s: String = match self.clean_text {
            true => text
                .chars()
                .filter(|&c| !(c == '\0' || c == '\u{fffd}' || is_control(c)))
                .map(|c| if is_whitespace(c) { ' ' } else { c })
                .collect(),
            false => text.to_string(),
        };
        if self.chinese {
            let mut out = String::with_capacity(s.len());
            for c in s.chars() {
                if is_chinese_char(c) {
                    out.extend([' ', c, ' ']);
                } else {
                    out.push(c);
                }
            }
            s = out;
        }
        if self.strip_accents {
            s = super::accents::strip_accents(&s);
        }
        if self.lowercase {
            s = s.chars().flat_map(char::to_lowercase).collect();
        }
        s
    }
}

/// Words split at whitespace (dropped) and at punctuation (kept, one per piece).
fn pre_tokenize(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for word in text.split(char::is_whitespace).filter(|w| !w.is_empty()) {
        let mut start = 0;
        for (i, c) in word.char_indices() {
            if c.is_ascii_punctuation() || is_punctuation(c) {
                if start < i {
                    out.push(&word[start..i]);
                }
                out.push(&word[i..i + c.len_utf8()]);
                start = i + c.len_utf8();
            }
        }
        if start < word.len() {
            out.push(&word[start..]);
        }
    }
    out
}

fn is_whitespace(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || c.is_whitespace()
}

fn is_control(c: char) -> bool {
    !matches!(c, '\t' | '\n' | '\r') && is_other(c)
}

fn is_chinese_char(c: char) -> bool {
    matches!(c as u32,
        0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0x20000..=0x2A6DF | 0x2A700..=0x2B73F |
        0x2B740..=0x2B81F | 0x2B920..=0x2CEAF | 0xF900..=0xFAFF | 0x2F800..=0x2FA1F)
}

#[cfg(all(test, feature = "encoder"))]
mod tests {
    use super::*;
    use crate::tokenize::TextTokenizer;

    /// Same ids as `tokenizers` on the tiny model's tokenizer, through every rule.
    #[test]
    fn the_same_ids_as_the_tokenizers_crate() {
        let json = crate::synthetic::tiny_tokenizer_json();
        let ours = WordPiece::from_json(json.as_bytes(), 16).unwrap();
        let theirs = TextTokenizer::from_bytes(json.as_bytes(), 16).unwrap();
        let words = crate::synthetic::WORDS;
        let texts = [
            String::new(),
            "   ".into(),
            words[..5].join(" "),
            format!("{}!{}?? ({}) «{}»", words[0], words[1], words[2], words[3]),
            format!("{} [UNK] [CLS]{}[MASK]", words[4].to_uppercase(), words[5]),
            format!("Ça {} éÉ naïve {}\u{301}", words[6], words[7]),
            format!("東京{}都\t\n{}\u{0}\u{fffd}\u{200b}x", words[8], words[9]),
            format!("{}{}", words[0], words[1]),
            "z".repeat(150),
            words.iter().cycle().take(40).copied().collect::<Vec<_>>().join(" "),
        ];
        for t in &texts {
            let want = theirs.encode_batch(&[t]).unwrap().remove(0).ids;
            assert_eq!(ours.encode(t), want, "{t:?}");
        }
        assert_eq!(ours.vocab_size(), theirs.vocab_size());
    }

    #[test]
    fn the_compact_form_gives_the_same_ids() {
        let json = crate::synthetic::tiny_tokenizer_json();
        let compact = WordPiece::compact_json(&json).unwrap();
        assert!(compact.len() < json.len(), "{} vs {}", compact.len(), json.len());
        let (a, b) =
            (WordPiece::from_json(json.as_bytes(), 16).unwrap(), WordPiece::from_json(compact.as_bytes(), 16).unwrap());
        for t in ["", "Ça naïve [UNK] 東京 !?", &crate::synthetic::WORDS.join(" ")] {
            assert_eq!(a.encode(t), b.encode(t), "{t:?}");
        }
        assert_eq!(a.vocab_size(), b.vocab_size());
        assert_eq!(WordPiece::compact_json(&compact).unwrap(), compact, "compacting twice changes nothing");
    }

    #[test]
    fn the_sorted_form_gives_the_same_tokens_under_new_ids() {
        let json = crate::synthetic::tiny_tokenizer_json();
        let (sorted, order) = WordPiece::sorted_json(&json).unwrap();
        let (a, b) =
            (WordPiece::from_json(json.as_bytes(), 16).unwrap(), WordPiece::from_json(sorted.as_bytes(), 16).unwrap());
        assert_eq!(order.len(), a.vocab_size());
        for t in ["", "Ça naïve [UNK] [MASK] 東京 !?", &crate::synthetic::WORDS.join(" ")] {
            let old: Vec<u32> = b.encode(t).iter().map(|&i| order[i as usize]).collect();
            assert_eq!(a.encode(t), old, "{t:?}");
        }
        assert_eq!(WordPiece::sorted_json(&sorted).unwrap().0, sorted, "sorting twice changes nothing");
        assert!(
            sorted.contains(r#""chars":"abcdefghijklmnopqrstuvwxyz""#) && !sorted.contains(r#""vocab""#),
            "{sorted}"
        );
        // Folders written before the packing hold the tab form: the same ids.
        let v = parse_json(sorted.as_bytes()).unwrap();
        let list: Vec<String> = read_vocab(&v["model"]).unwrap().iter().map(|(t, _)| t.to_string()).collect();
        let front = super::super::vocab::front_code(&list.iter().map(String::as_str).collect::<Vec<_>>()).unwrap();
        let legacy = compact(&v, ("vocab", Json::String(front)), None).to_string();
        let c = WordPiece::from_json(legacy.as_bytes(), 16).unwrap();
        for t in ["", "Ça naïve [UNK] [MASK] 東京 !?", &crate::synthetic::WORDS.join(" ")] {
            assert_eq!(b.encode(t), c.encode(t), "{t:?}");
        }
        let mut ids = order.clone();
        ids.sort_unstable();
        assert_eq!(ids, (0..order.len() as u32).collect::<Vec<_>>(), "a permutation");
    }

    #[test]
    fn other_tokenizers_are_refused() {
        let json = crate::synthetic::tiny_tokenizer_json().replace("\"WordPiece\"", "\"BPE\"");
        assert!(WordPiece::from_json(json.as_bytes(), 16).is_err());
        assert!(WordPiece::from_json(b"not json", 16).is_err());
        assert!(WordPiece::from_json(crate::synthetic::tiny_tokenizer_json().as_bytes(), 1).is_err());
    }
}
