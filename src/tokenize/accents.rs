//! Accent stripping as BERT's normalizer does it: the canonical decomposition
//! (NFD: each character decomposed, combining marks put in canonical order),
//! then every nonspacing mark (Mn) dropped.
//!
//! The decompositions and combining classes are tables generated from
//! `unicode-normalization-alignments` 0.1.12 (Unicode 9.0, the crate
//! `tokenizers` normalizes with) by the tests below, which also check every
//! code point and random mark sequences against that crate. The crate links
//! its compatibility tables too (we never use them): these tables are what
//! the light wasm carries instead, 51 KB gzipped smaller.

use super::categories::is_mark_nonspacing;
use super::runs::Runs;

#[rustfmt::skip]
mod tables;

/// `s` decomposed canonically (NFD), without its nonspacing marks.
pub fn strip_accents(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    // The characters since the last starter (combining class 0): reordered by
    // class (stably) when the next starter comes, as NFD does.
    let mut run: Vec<(u8, char)> = Vec::new();
    for c in s.chars() {
        decompose(c, |d| {
            let class = combining_class(d);
            if class == 0 {
                flush(&mut run, &mut out);
            }
            run.push((class, d));
        });
    }
    flush(&mut run, &mut out);
    out
}

fn flush(run: &mut Vec<(u8, char)>, out: &mut String) {
    run.sort_by_key(|&(class, _)| class);
    out.extend(run.drain(..).map(|(_, c)| c).filter(|&c| !is_mark_nonspacing(c)));
}

/// `c`'s full canonical decomposition (itself when it has none).
fn decompose(c: char, mut emit: impl FnMut(char)) {
    if c.is_ascii() {
        return emit(c);
    }
    if let Some(jamo) = hangul(c) {
        return jamo.into_iter().flatten().for_each(emit);
    }
    let d = tables();
    match d.keys.binary_search(&(c as u32)) {
        Ok(i) => tables::DECOMPOSITIONS[d.start(i)..d.ends[i] as usize].chars().for_each(emit),
        Err(_) => emit(c),
    }
}

/// The tables as lookups take them. The wasm carries them as gaps and
/// lengths of a byte or two each (the light wasm 7.6 KiB smaller gzipped
/// than with the u32 and u16 arrays they unfold to here, once, at the first
/// character past ASCII).
struct Tables {
    /// The characters with a decomposition, sorted.
    keys: Vec<u32>,
    /// Where character `i`'s decomposition ends in `DECOMPOSITIONS`.
    ends: Vec<u16>,
    /// Each character's combining class (0 outside the runs).
    combining: Runs,
}

impl Tables {
    fn start(&self, i: usize) -> usize {
        i.checked_sub(1).map_or(0, |before| self.ends[before] as usize)
    }
}

fn tables() -> &'static Tables {
    static TABLES: std::sync::OnceLock<Tables> = std::sync::OnceLock::new();
    TABLES.get_or_init(|| {
        let (mut keys, mut key) = (Vec::with_capacity(tables::DECOMPOSED_LENS.len()), 0u32);
        let mut gaps = tables::DECOMPOSED_GAPS;
        // Our own table, checked whole by the tests below: it reads to its end.
        while let Ok(gap) = crate::format::varint::get(&mut gaps, "accent table") {
            key += gap;
            keys.push(key);
        }
        let mut end = 0u16;
        let ends = tables::DECOMPOSED_LENS.iter().map(|&n| {
            end += u16::from(n);
            end
        });
        let combining = Runs::unfold(tables::COMBINING_RUNS, true);
        Tables { keys, ends: ends.collect(), combining }
    })
}

/// A precomposed Hangul syllable's jamo (Unicode 9.0 section 3.12).
fn hangul(c: char) -> Option<[Option<char>; 3]> {
    const S_BASE: u32 = 0xAC00;
    const L_BASE: u32 = 0x1100;
    const V_BASE: u32 = 0x1161;
    const T_BASE: u32 = 0x11A7;
    const V_COUNT: u32 = 21;
    const T_COUNT: u32 = 28;
    const N_COUNT: u32 = V_COUNT * T_COUNT;
    let s = (c as u32).checked_sub(S_BASE).filter(|&s| s < 19 * N_COUNT)?;
    let t = s % T_COUNT;
    Some([
        char::from_u32(L_BASE + s / N_COUNT),
        char::from_u32(V_BASE + (s % N_COUNT) / T_COUNT),
        (t > 0).then(|| char::from_u32(T_BASE + t)).flatten(),
    ])
}

fn combining_class(c: char) -> u8 {
    if (c as u32) < 0x300 {
        return 0;
    }
    tables().combining.get(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use unicode_categories::UnicodeCategories;
    use unicode_normalization_alignments::char::{canonical_combining_class, decompose_canonical};
    use unicode_normalization_alignments::UnicodeNormalization;

    fn theirs(s: &str) -> String {
        s.nfd().map(|(c, _)| c).filter(|c| !c.is_mark_nonspacing()).collect()
    }

    /// The tables as the crate gives them, as Rust source.
    fn generate() -> String {
        let mut keys = Vec::new();
        let mut at = vec![0usize];
        let mut pool = String::new();
        for c in (0..=0x10FFFFu32).filter_map(char::from_u32) {
            let mut d = String::new();
            decompose_canonical(c, |x| d.push(x));
            let hangul = (0xAC00..0xAC00 + 11172).contains(&(c as u32));
            if d != c.to_string() && !hangul {
                keys.push(c as u32);
                pool.push_str(&d);
                at.push(pool.len());
            }
        }
        let escaped: String = pool.chars().map(|c| format!("\\u{{{:x}}}", c as u32)).collect();
        let mut gaps = Vec::new();
        let mut prev = 0;
        for &k in &keys {
            crate::format::varint::put(&mut gaps, k - prev);
            prev = k;
        }
        let lens: Vec<u8> = at.windows(2).map(|w| u8::try_from(w[1] - w[0]).unwrap()).collect();
        let runs = crate::tokenize::runs::fold(canonical_combining_class, true);
        let bytes = crate::tokenize::runs::byte_string_literal;
        format!(
            "// Generated from unicode-normalization-alignments 0.1.12 (Unicode 9.0) by\n\
             // `ERNIE_SEARCH_REGENERATE=1 cargo test -p ernie-search --lib accents`; do not edit.\n\n\
             /// The characters with a canonical decomposition (Hangul syllables aside), sorted:\n\
             /// each one's gap from the one before (from 0), LEB128.\n\
             pub(super) static DECOMPOSED_GAPS: &[u8] = {};\n\n\
             /// Each one's decomposition's length in bytes of `DECOMPOSITIONS`, where they follow each other.\n\
             pub(super) static DECOMPOSED_LENS: &[u8] = {};\n\n\
             pub(super) static DECOMPOSITIONS: &str = \"{escaped}\";\n\n\
             /// The runs of characters of one canonical combining class other than 0, each as its gap\n\
             /// from the last run's last character (LEB128), its length less one (LEB128), its class.\n\
             pub(super) static COMBINING_RUNS: &[u8] = {};\n",
            bytes(&gaps),
            bytes(&lens),
            bytes(&runs),
        )
    }

    #[test]
    fn the_tables_are_what_the_crate_gives() {
        crate::tokenize::runs::check_generated("accents/tables.rs", &generate());
    }

    #[test]
    fn every_code_point_strips_as_the_crate_does() {
        let mut differ = Vec::new();
        for c in (0..=0x10FFFFu32).filter_map(char::from_u32) {
            let s = c.to_string();
            if strip_accents(&s) != theirs(&s) || combining_class(c) != canonical_combining_class(c) {
                differ.push(c);
            }
        }
        assert!(differ.is_empty(), "{} code points differ, e.g. {:?}", differ.len(), &differ[..differ.len().min(5)]);
    }

    /// Marks of every class, spacing and not, around starters and
    /// precomposed letters: the reordering matches too.
    #[test]
    fn mark_sequences_strip_as_the_crate_does() {
        let marks: Vec<char> = (0x300..0x2000u32)
            .chain(0x1D165..0x1D16A)
            .filter_map(char::from_u32)
            .filter(|&c| canonical_combining_class(c) != 0)
            .collect();
        let starters = ['a', 'é', 'Å', '한', 'ǖ', '\u{0f73}', '\u{1d15e}', ' ', '\u{0344}', '\u{0f71}'];
        let mut state = 7u64;
        let mut below = |n: usize| (crate::rng::splitmix64(&mut state) % n as u64) as usize;
        for _ in 0..20_000 {
            let len = 1 + below(8);
            let s: String = (0..len)
                .map(|_| match below(3) {
                    0 => starters[below(starters.len())],
                    _ => marks[below(marks.len())],
                })
                .collect();
            assert_eq!(strip_accents(&s), theirs(&s), "{:?}", s.chars().map(|c| c as u32).collect::<Vec<_>>());
        }
        assert_eq!(
            strip_accents("Ça naïve Ångström 한국어"),
            "Ca naive Angstrom 한국어".nfd().map(|(c, _)| c).collect::<String>()
        );
    }
}
