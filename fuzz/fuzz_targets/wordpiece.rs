//! Our WordPiece (`tokenize::wordpiece`), which reads a tokenizer JSON from a
//! table's head (a stranger's file) and any query text: `from_json` returns
//! Ok or Err, never panics; `encode` frames every text as `[CLS] ... [SEP]`
//! within the length, with ids inside the vocabulary.
#![no_main]

use std::sync::OnceLock;

use ernie_search::WordPiece;
use libfuzzer_sys::fuzz_target;

/// A real WordPiece vocabulary (the fuzz seeds' tiny tokenizer), for the text half.
fn tiny() -> &'static WordPiece {
    static T: OnceLock<WordPiece> = OnceLock::new();
    T.get_or_init(|| {
        // `ernie_search::synthetic::tiny_tokenizer_json()`, written out once.
        let json = include_str!("../fixtures/tiny_tokenizer.json");
        WordPiece::from_json(json.as_bytes(), 16).expect("the committed tokenizer reads")
    })
}

fuzz_target!(init: ernie_search_fuzz::init(), |data: &[u8]| {
    if let Ok(t) = WordPiece::from_json(data, 16) {
        let _ = t.encode("a b c, d!");
    }
    let text = String::from_utf8_lossy(data);
    let t = tiny();
    let ids = t.encode(&text);
    assert!(ids.len() >= 2 && ids.len() <= 16, "{} ids", ids.len());
    assert!(ids.iter().all(|&i| (i as usize) < t.vocab_size()));
});
