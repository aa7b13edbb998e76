//! The three Unicode categories BERT's normalizer and pre-tokenizer ask
//! about (punctuation P*, other C*, nonspacing marks Mn), as the
//! `unicode_categories` crate answers them (the crate `tokenizers` asks):
//! tables generated from that crate by the tests below, which also check
//! every code point against it. The crate lists every character of a
//! category as a 4-byte `char` (10 KB for these three); here each category is
//! its runs of consecutive characters, gap-coded in a byte or two each
//! (1 KB; the light wasm 3.2 KiB smaller gzipped), unfolded once, at the
//! first character that asks.

use std::sync::OnceLock;

use super::runs::Runs;

#[rustfmt::skip]
mod tables;

fn lookup(table: &'static OnceLock<Runs>, bytes: &'static [u8], c: char) -> bool {
    table.get_or_init(|| Runs::unfold(bytes, false)).get(c) != 0
}

/// Punctuation (Pc, Pd, Ps, Pe, Pi, Pf, Po).
pub(super) fn is_punctuation(c: char) -> bool {
    static T: OnceLock<Runs> = OnceLock::new();
    lookup(&T, tables::PUNCTUATION, c)
}

/// Other: control (Cc), format (Cf), private use (Co) as the crate lists it.
pub(super) fn is_other(c: char) -> bool {
    static T: OnceLock<Runs> = OnceLock::new();
    lookup(&T, tables::OTHER, c)
}

/// Nonspacing marks (Mn).
pub(super) fn is_mark_nonspacing(c: char) -> bool {
    static T: OnceLock<Runs> = OnceLock::new();
    c as u32 >= 0x300 && lookup(&T, tables::MARK_NONSPACING, c)
}

#[cfg(test)]
mod tests {
    use unicode_categories::UnicodeCategories;

    use super::*;

    /// `set` in the generated form, as a Rust byte string.
    fn fold(set: impl Fn(char) -> bool) -> String {
        crate::tokenize::runs::byte_string_literal(&crate::tokenize::runs::fold(|c| u8::from(set(c)), false))
    }

    fn generate() -> String {
        format!(
            "// Generated from unicode_categories 0.1.1 by\n\
             // `ERNIE_SEARCH_REGENERATE=1 cargo test -p ernie-search --lib categories`; do not edit.\n\
             // Each: the runs of consecutive characters, per run its gap from the last run's last\n\
             // character (from 0) and its length less one, LEB128.\n\n\
             pub(super) static PUNCTUATION: &[u8] = {};\n\n\
             pub(super) static OTHER: &[u8] = {};\n\n\
             pub(super) static MARK_NONSPACING: &[u8] = {};\n",
            fold(|c| c.is_punctuation()),
            fold(|c| c.is_other()),
            fold(|c| c.is_mark_nonspacing()),
        )
    }

    #[test]
    fn the_tables_are_what_the_crate_gives() {
        crate::tokenize::runs::check_generated("categories/tables.rs", &generate());
    }

    #[test]
    fn every_code_point_is_classed_as_the_crate_does() {
        let differ: Vec<char> = (0..=0x10FFFFu32)
            .filter_map(char::from_u32)
            .filter(|&c| {
                is_punctuation(c) != c.is_punctuation()
                    || is_other(c) != c.is_other()
                    || is_mark_nonspacing(c) != c.is_mark_nonspacing()
            })
            .collect();
        assert!(differ.is_empty(), "{} code points differ, e.g. {:?}", differ.len(), &differ[..differ.len().min(5)]);
        // Not vacuous: each set holds what it should.
        assert!(is_punctuation('!') && is_punctuation('«') && is_other('\u{200b}') && is_mark_nonspacing('\u{301}'));
        assert!(!is_punctuation('a') && !is_other('a') && !is_mark_nonspacing('a'));
    }
}
