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

#[rustfmt::skip]
mod tables;

/// A set of characters as sorted runs `(first, last)`.
struct Runs(Vec<(u32, u32)>);

impl Runs {
    /// From the generated form: per run, its gap from the last run's last
    /// character (from 0 for the first), then its length less one, LEB128.
    fn unfold(mut bytes: &[u8]) -> Runs {
        let mut runs = Vec::new();
        let mut last = 0u32;
        let mut next = || crate::format::varint::get(&mut bytes, "category table");
        // Our own tables, checked whole by the tests: they read to their end.
        while let (Ok(gap), Ok(len)) = (next(), next()) {
            let first = last + gap;
            last = first + len;
            runs.push((first, last));
        }
        Runs(runs)
    }

    fn contains(&self, c: char) -> bool {
        let c = c as u32;
        match self.0.partition_point(|&(first, _)| first <= c) {
            0 => false,
            i => c <= self.0[i - 1].1,
        }
    }
}

fn lookup(table: &'static OnceLock<Runs>, bytes: &'static [u8], c: char) -> bool {
    table.get_or_init(|| Runs::unfold(bytes)).contains(c)
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

    fn every_char() -> impl Iterator<Item = char> {
        (0..=0x10FFFFu32).filter_map(char::from_u32)
    }

    /// `set`'s runs in the generated form, as a Rust byte string.
    fn fold(set: impl Fn(char) -> bool) -> String {
        let mut runs: Vec<(u32, u32)> = Vec::new();
        for c in every_char().filter(|&c| set(c)).map(|c| c as u32) {
            match runs.last_mut() {
                Some(r) if r.1 + 1 == c => r.1 = c,
                _ => runs.push((c, c)),
            }
        }
        let (mut bytes, mut last) = (Vec::new(), 0);
        for (first, end) in runs {
            crate::format::varint::put(&mut bytes, first - last);
            crate::format::varint::put(&mut bytes, end - first);
            last = end;
        }
        crate::tokenize::byte_string_literal(&bytes)
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
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/tokenize/categories/tables.rs");
        let want = generate();
        if std::env::var_os("ERNIE_SEARCH_REGENERATE").is_some() {
            std::fs::write(path, &want).unwrap();
        }
        assert!(std::fs::read_to_string(path).unwrap() == want, "{path} is stale: regenerate it");
    }

    #[test]
    fn every_code_point_is_classed_as_the_crate_does() {
        let differ: Vec<char> = every_char()
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
