//! Text to index terms: lowercase, split into maximal runs of letters and
//! digits, keep runs of two or more characters, drop English stop words, stem
//! with Snowball English. This is what bm25s does with `stopwords="en"` (its
//! `\w\w+`, less the underscore) and PyStemmer's English stemmer, so our BM25
//! can be checked against it.
//!
//! Until December 2026 words were first cut at Unicode word boundaries
//! (UAX #29, the `unicode-segmentation` crate), then at inner punctuation.
//! The two agree but where UAX #29 cuts inside a run of letters and digits
//! (a test checks them on text of many scripts): superscripts and fractions
//! ("km²", "8½"; two passages of the wiki set) and a few scripts it cuts at
//! every letter (Tai Viet, New Tai Lue) now stay whole, as bm25s keeps them.
//! Its tables were 18 KiB of the light wasm that every visitor downloads.
//!
//! Scripts written without spaces between words (Chinese, Japanese, Thai, ...)
//! have no word boundaries to split on: each run of them becomes overlapping
//! character bigrams (a lone character stays a unigram), the usual fallback
//! of search engines without a dictionary.

use rust_stemmers::{Algorithm, Stemmer};

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
        // "phineas's", "u.s." and "1,000" split at their punctuation.
        self.terms_cut_by(text, |run, word| run.split(|c: char| !c.is_alphanumeric()).for_each(word))
    }

    /// The terms of `text`, its spaced runs cut into words by `cut`.
    fn terms_cut_by(&self, text: &str, cut: impl Fn(&str, &mut dyn FnMut(&str))) -> Vec<String> {
        let mut out = Vec::new();
        let lower = text.to_lowercase();
        for (run, unspaced) in script_runs(&lower) {
            if unspaced {
                bigrams(run, &mut out);
                continue;
            }
            cut(run, &mut |word| {
                if word.chars().nth(1).is_some() && !is_stop_word(word) {
                    out.push(self.stemmer.stem(word).into_owned());
                }
            });
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
        | 0x31F0..=0x31FF   // Katakana phonetic extensions
        | 0x3400..=0x4DBF   // CJK Extension A
        | 0x4E00..=0x9FFF   // CJK Unified Ideographs
        | 0xF900..=0xFAFF   // CJK Compatibility Ideographs
        | 0xFF66..=0xFF9F   // Halfwidth Katakana
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
        // Halfwidth Katakana as full-width Katakana (UAX #29 kept a run of it whole).
        assert_eq!(terms("ﾃｽﾄ test"), ["ﾃｽ", "ｽﾄ", "test"]);
    }

    /// The terms as they were cut before: at UAX #29 word boundaries, then
    /// at the punctuation inside a word.
    fn uax29_terms(text: &str) -> Vec<String> {
        use unicode_segmentation::UnicodeSegmentation;
        Analyzer::default().terms_cut_by(text, |run, word| {
            run.unicode_words().flat_map(|w| w.split(|c: char| !c.is_alphanumeric())).for_each(word)
        })
    }

    #[test]
    fn runs_of_letters_and_digits_cut_as_word_boundaries_did() {
        // Letters, digits and marks of the scripts an index meets, with the
        // punctuation, spaces and format characters UAX #29 joins or cuts
        // words at (apostrophes, periods, commas, hyphens, underscores, soft
        // hyphens, joiners, combining marks, emoji).
        let pool: Vec<String> = "abcxyzÀéñøßœ0129 ΑβγΩάЖжщЁё αβ שלום مرحبا 서울특별시 ｶﾀｶﾅ ㇰㇱ \
             '’.,-_:;!?\"()[]/@#&+=…—–\u{ad}\u{200d}\u{200b}\u{301}\u{308}\u{2060}😀👍🏽🇫🇷 \t\n"
            .chars()
            .map(String::from)
            // Vowel signs after their letters: UAX #29 cuts a mark that
            // starts a text off on its own.
            .chain(["हि", "न्", "दी", "कि", "ন্দ"].map(String::from))
            .collect();
        let mut seed = 7;
        let mut below = |n: usize| (crate::rng::splitmix64(&mut seed) % n as u64) as usize;
        for _ in 0..20_000 {
            let len = 1 + below(24);
            let text: String = (0..len).map(|_| pool[below(pool.len())].as_str()).collect();
            assert_eq!(terms(&text), uax29_terms(&text), "{text:?}");
        }
        for text in [
            "Phineas's 20-yard pass, U.S. 1,000",
            "e-mail foo_bar don't co\u{ad}operate café naïve",
            "Ελληνικά, русский; עברית! العربية?",
        ] {
            assert_eq!(terms(text), uax29_terms(text), "{text:?}");
        }
    }

    #[test]
    fn a_run_that_word_boundaries_cut_is_kept_whole_as_bm25s_keeps_it() {
        // Superscripts and fractions: UAX #29 cut them off their word (the
        // only two differences on the 10,033 wiki passages).
        assert_eq!(uax29_terms("8½ km²"), ["km"]);
        assert_eq!(terms("8½ km²"), ["8½", "km²"]);
        // UAX #29 cuts Tai Viet, New Tai Lue and the ideographic zero at
        // every letter, so their single letters were all dropped.
        for text in ["ꪀꪁꪂ", "ᦀᦁᦂ", "〇〇"] {
            assert!(uax29_terms(text).is_empty(), "{text}");
            assert_eq!(terms(text), [text]);
        }
    }

    #[test]
    fn other_scripts_split_at_spaces() {
        assert_eq!(terms("Москва столица"), ["москва", "столица"]);
        assert_eq!(terms("서울 특별시"), ["서울", "특별시"]);
    }
}
