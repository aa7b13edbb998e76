//! Text to index terms: lowercase, split on Unicode word boundaries (UAX #29),
//! keep words of two or more letters or digits, drop English stop words, stem
//! with Snowball English. This is what bm25s does with `stopwords="en"` and
//! PyStemmer's English stemmer, so our BM25 can be checked against it.
//!
//! Scripts written without spaces between words (Chinese, Japanese, Thai, ...)
//! have no word boundaries to split on: each run of them becomes overlapping
//! character bigrams (a lone character stays a unigram), the usual fallback
//! of search engines without a dictionary.

use rust_stemmers::{Algorithm, Stemmer};
use unicode_segmentation::UnicodeSegmentation;

/// Lucene's English stop set (`EnglishAnalyzer.ENGLISH_STOP_WORDS_SET`), the
/// list bm25s uses for `stopwords="en"`. Sorted, for binary search.
pub const STOP_WORDS: [&str; 33] = [
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it", "no", "not", "of",
    "on", "or", "such", "that", "the", "their", "then", "there", "these", "they", "this", "to", "was", "will", "with",
];

/// Turns text into index terms. Cheap to build; one per index or query engine.
pub struct Analyzer {
    stemmer: Stemmer,
}

impl Default for Analyzer {
    fn default() -> Self {
        Self { stemmer: Stemmer::create(Algorithm::English) }
    }
}

impl Analyzer {
    /// The terms of `text`, in order, repeats kept (term frequency counts them).
    pub fn terms(&self, text: &str) -> Vec<String> {
        let mut out = Vec::new();
        let lower = text.to_lowercase();
        for (run, unspaced) in script_runs(&lower) {
            if unspaced {
                bigrams(run, &mut out);
                continue;
            }
            for word in run.unicode_words() {
                // UAX #29 keeps "phineas's", "u.s." and "1,000" whole; split
                // them at the inner punctuation as bm25s's `\w\w+` does.
                for part in word.split(|c: char| !c.is_alphanumeric()) {
                    if part.chars().nth(1).is_none() || is_stop_word(part) {
                        continue;
                    }
                    out.push(self.stemmer.stem(part).into_owned());
                }
            }
        }
        out
    }
}

pub fn is_stop_word(word: &str) -> bool {
    STOP_WORDS.binary_search(&word).is_ok()
}

/// Letters of scripts that do not put spaces between words.
fn is_unspaced(c: char) -> bool {
    matches!(c as u32,
        0x0E00..=0x0EFF     // Thai, Lao
        | 0x1000..=0x109F   // Myanmar
        | 0x1780..=0x17FF   // Khmer
        | 0x3040..=0x30FF   // Hiragana, Katakana
        | 0x3400..=0x4DBF   // CJK Extension A
        | 0x4E00..=0x9FFF   // CJK Unified Ideographs
        | 0xF900..=0xFAFF   // CJK Compatibility Ideographs
        | 0x20000..=0x3134F // CJK Extensions B-G
    ) && c.is_alphanumeric()
}

/// Splits `text` into maximal runs that are, or are not, unspaced script.
fn script_runs(text: &str) -> impl Iterator<Item = (&str, bool)> {
    let mut rest = text;
    std::iter::from_fn(move || {
        let first = rest.chars().next()?;
        let unspaced = is_unspaced(first);
        let end = rest.char_indices().find(|&(_, c)| is_unspaced(c) != unspaced).map_or(rest.len(), |(i, _)| i);
        let (run, tail) = rest.split_at(end);
        rest = tail;
        Some((run, unspaced))
    })
}

fn bigrams(run: &str, out: &mut Vec<String>) {
    let chars: Vec<char> = run.chars().collect();
    if chars.len() == 1 {
        out.push(chars[0].to_string());
    }
    out.extend(chars.windows(2).map(|w| w.iter().collect::<String>()));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(t: &str) -> Vec<String> {
        Analyzer::default().terms(t)
    }

    #[test]
    fn stop_words_are_sorted() {
        assert!(STOP_WORDS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn lowercases_stems_and_drops_stop_words() {
        assert_eq!(terms("The Running of the Bulls"), ["run", "bull"]);
        assert_eq!(terms("Who wrote The Raven?"), ["who", "wrote", "raven"]);
    }

    #[test]
    fn splits_inner_punctuation_and_drops_single_characters() {
        assert_eq!(terms("Phineas's 20-yard pass, U.S. 1,000"), ["phinea", "20", "yard", "pass", "000"]);
    }

    #[test]
    fn stop_words_and_punctuation_alone_give_no_terms() {
        assert!(terms("to be or not to be?!").is_empty());
        assert!(terms("... --- !!!").is_empty());
        assert!(terms("").is_empty());
    }

    #[test]
    fn unspaced_scripts_become_bigrams() {
        assert_eq!(terms("東京都"), ["東京", "京都"]);
        assert_eq!(terms("東 Tokyo"), ["東", "tokyo"]);
        assert_eq!(terms("ภาษาไทย"), ["ภา", "าษ", "ษา", "าไ", "ไท", "ทย"]);
    }

    #[test]
    fn other_scripts_use_word_boundaries() {
        assert_eq!(terms("Москва столица"), ["москва", "столица"]);
        assert_eq!(terms("서울 특별시"), ["서울", "특별시"]);
    }
}
