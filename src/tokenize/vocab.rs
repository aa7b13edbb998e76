//! A WordPiece vocabulary as the tokenizer looks it up: every token in one
//! buffer, sorted, each with its id, found by binary search.
//!
//! A `HashMap<String, u32>` cost the light engine's cold load a string
//! allocation and a SipHash per token (30,522 for BERT), most of the 75 ms
//! its wasm spent reading the table head; an index folder's vocabulary
//! arrives sorted and packed ([`pack`]; folders written before 2026-12-07:
//! front-coded, [`front_code`]), so this form is read in one pass with no
//! hashing and no per-token allocation.

use crate::{Error, Result};

/// The most bytes a front-coded vocabulary may expand to: a line may repeat
/// a long token for a few bytes, so a crafted one of a few MB could ask for
/// gigabytes. BERT's 30,522 tokens take 0.2 MB; multilingual ones, a few MB.
const MAX_TOKEN_BYTES: usize = 64 << 20;
/// In [`pack`]'s coding, a token's shared length `n` is the char `U+0030 + n`
/// ('0' for none): one char that JSON need not escape, where the tab form
/// took a number, a tab and a line break (`\t`, `\n`: 4 bytes in JSON).
const SHARED_BASE: u32 = 0x30;
/// The longest shared length that stays below the surrogates.
const MAX_SHARED: usize = (0xD7FF - SHARED_BASE) as usize;

#[derive(Debug, Default)]
pub(super) struct Vocab {
    /// The tokens, sorted (byte order), back to back.
    text: String,
    /// Token `i` is `text[ends[i - 1]..ends[i]]` (from 0 for the first).
    ends: Vec<u32>,
    /// Token `i`'s id.
    ids: Vec<u32>,
}

impl Vocab {
    /// From (token, id) pairs in any order; where a token repeats, its
    /// last id wins (as it did in the map this replaced).
    pub(super) fn from_pairs(mut pairs: Vec<(String, u32)>) -> Result<Self> {
        // Stable: a repeated token's pairs stay in input order.
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        let mut v = Vocab::default();
        for (i, (token, id)) in pairs.iter().enumerate() {
            if pairs.get(i + 1).is_some_and(|next| next.0 == *token) {
                continue;
            }
            v.push(token, *id)?;
        }
        Ok(v)
    }

    /// From the front-coded form ([`front_code`]): token `i` has id `i`.
    pub(super) fn from_front_coded(s: &str) -> Result<Self> {
        let bad = |i: usize, why: &str| Error::Tokenizer(format!("the front-coded vocabulary, token {i}: {why}"));
        let mut v = Vocab { text: String::with_capacity(s.len()), ..Vocab::default() };
        for (i, line) in s.lines().enumerate() {
            let (n, rest) = line.split_once('\t').ok_or_else(|| bad(i, "no tab"))?;
            let n: usize = n.parse().map_err(|_| bad(i, "the shared length is not a number"))?;
            v.push_coded(n, rest).map_err(|why| bad(i, why))?;
        }
        match v.is_sorted() {
            true => Ok(v),
            // Not sorted or with repeats (a file not written by `front_code`
            // from a sorted list): sorted here.
            false => Self::from_pairs(v.iter().map(|(t, i)| (t.to_string(), i)).collect()),
        }
    }

    /// From the packed form ([`pack`]): `chars` (each char `c` of it the
    /// tokens `c` and `prefix` + `c`) and `tokens` (the others, sorted and
    /// front-coded); a token's id is its rank among all of them in byte
    /// order, as [`pack`]'s input had them.
    pub(super) fn from_packed(chars: &str, prefix: &str, tokens: &str) -> Result<Self> {
        let bad = |why: String| Error::Tokenizer(format!("the packed vocabulary: {why}"));
        let mut coded = Vocab { text: String::with_capacity(tokens.len()), ..Vocab::default() };
        for (i, entry) in tokens.split(' ').enumerate().filter(|_| !tokens.is_empty()) {
            let mut it = entry.chars();
            let shared = it
                .next()
                .and_then(|c| (c as u32).checked_sub(SHARED_BASE))
                .ok_or_else(|| bad(format!("token {i} does not start with its shared length (a char from U+0030)")))?;
            coded.push_coded(shared as usize, it.as_str()).map_err(|why| bad(format!("token {i}: {why}")))?;
        }
        let n_chars = chars.chars().count();
        if n_chars > 0 && prefix.is_empty() {
            return Err(bad("single chars given but no continuing-subword prefix".into()));
        }
        // Checked before the buffer grows: a long prefix times many chars.
        let total = n_chars
            .checked_mul(prefix.len() + 8)
            .and_then(|n| n.checked_add(coded.text.len()))
            .filter(|&n| n <= MAX_TOKEN_BYTES)
            .ok_or_else(|| bad("the vocabulary expands past 64 MiB".into()))?;
        // Three sorted lists merged: the coded tokens, the chars (`plain`:
        // those not yet taken), the prefixed chars (`twins`); UTF-8's byte
        // order is the chars' order.
        let mut v = Vocab { text: String::with_capacity(total), ..Vocab::default() };
        let (mut i, mut plain, mut twins, mut twin) = (0, chars, chars, String::new());
        loop {
            let first = |s: &str| s.chars().next().map_or(0, char::len_utf8);
            twin.clear();
            if let Some(c) = twins.chars().next() {
                twin.push_str(prefix);
                twin.push(c);
            }
            // The least head; on a tie the coded token, and the repeat is refused below.
            let mut least = (i < coded.len()).then(|| (coded.token(i), 0));
            for (head, from) in [(&plain[..first(plain)], 1), (twin.as_str(), 2)] {
                if !head.is_empty() && least.is_none_or(|(t, _)| head < t) {
                    least = Some((head, from));
                }
            }
            let Some((token, from)) = least else { break };
            v.push(token, v.len() as u32)?;
            match from {
                0 => i += 1,
                1 => plain = &plain[first(plain)..],
                _ => twins = &twins[first(twins)..],
            }
        }
        match v.is_sorted() {
            true => Ok(v),
            false => Err(bad("its tokens are out of order or repeat (not written by `pack`)".into())),
        }
    }

    /// Appends the token made of the previous token's first `shared` chars
    /// and `rest`, with the next id.
    fn push_coded(&mut self, shared: usize, rest: &str) -> std::result::Result<(), &'static str> {
        // The previous token is the buffer's tail.
        let start = self.len().checked_sub(1).map_or(0, |last| self.start(last));
        let prev = &self.text[start..];
        let cut = match shared {
            0 => Some(0),
            n => prev.char_indices().nth(n - 1).map(|(at, c)| at + c.len_utf8()),
        }
        .ok_or("it shares more characters than the token before it has")?;
        if self.text.len() + cut + rest.len() > MAX_TOKEN_BYTES {
            return Err("the vocabulary expands past 64 MiB");
        }
        // The shared prefix is copied from the previous token's bytes.
        self.text.extend_from_within(start..start + cut);
        self.text.push_str(rest);
        let end = u32::try_from(self.text.len()).map_err(|_| "over 4 GiB of tokens")?;
        self.ends.push(end);
        self.ids.push(self.ids.len() as u32);
        Ok(())
    }

    /// Every token after the one before it (sorted, no repeats).
    fn is_sorted(&self) -> bool {
        (1..self.len()).all(|i| self.token(i - 1) < self.token(i))
    }

    fn push(&mut self, token: &str, id: u32) -> Result<()> {
        self.text.push_str(token);
        let end = u32::try_from(self.text.len())
            .map_err(|_| Error::Tokenizer("the WordPiece vocabulary: over 4 GiB of tokens".into()))?;
        self.ends.push(end);
        self.ids.push(id);
        Ok(())
    }

    pub(super) fn len(&self) -> usize {
        self.ids.len()
    }

    /// Where token `i` starts in `text`.
    fn start(&self, i: usize) -> usize {
        i.checked_sub(1).map_or(0, |before| self.ends[before] as usize)
    }

    fn token(&self, i: usize) -> &str {
        &self.text[self.start(i)..self.ends[i] as usize]
    }

    /// `token`'s id.
    pub(super) fn get(&self, token: &str) -> Option<u32> {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.token(mid).cmp(token) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(self.ids[mid]),
            }
        }
        None
    }

    /// (token, id) for every token, in token order.
    pub(super) fn iter(&self) -> impl Iterator<Item = (&str, u32)> {
        (0..self.len()).map(|i| (self.token(i), self.ids[i]))
    }
}

/// A token list as one string, a line per token: the number of characters
/// it shares with the token before it, a tab, the rest (the form of index
/// folders written before [`pack`]; what the tests write them with).
/// `None`: a token holds a tab or a line break, which this form cannot carry.
#[cfg(test)]
pub(super) fn front_code(tokens: &[&str]) -> Option<String> {
    let mut out = String::with_capacity(tokens.iter().map(|t| t.len() + 3).sum());
    let mut prev = "";
    for t in tokens {
        if t.contains(['\t', '\n', '\r']) {
            return None;
        }
        let shared = prev.chars().zip(t.chars()).take_while(|(a, b)| a == b).count();
        let rest: String = t.chars().skip(shared).collect();
        out.push_str(&format!("{shared}\t{rest}\n"));
        prev = t;
    }
    Some(out)
}

/// A sorted token list packed for an index folder's table head, as two
/// strings: `chars`, the chars `c` for which both `c` and `prefix` + `c`
/// are tokens (BERT's 997 single chars and their `##` twins, scattered
/// through the sorted list where front coding spends a line on each), and
/// `tokens`, every other token front-coded: the char `U+0030 + n` for the
/// `n` chars it shares with the token before it, then the rest, tokens
/// separated by a space. BERT's 30,522 tokens: 49.6 KB gzipped, where the
/// tab form ([`front_code`]) in JSON took 60.3 KB. `None`: a token holds a
/// space, or `sorted` is not sorted (byte order) with no repeats.
pub(super) fn pack(sorted: &[&str], prefix: &str) -> Option<(String, String)> {
    if sorted.windows(2).any(|w| w[0] >= w[1]) {
        return None;
    }
    let is_token = |t: &str| sorted.binary_search(&t).is_ok();
    let single = |t: &str| {
        let mut it = t.chars();
        it.next().filter(|_| it.next().is_none())
    };
    // In byte order, so in char order: found by binary search.
    let chars: Vec<char> = match prefix.is_empty() {
        true => Vec::new(),
        false => sorted.iter().filter_map(|t| single(t).filter(|_| is_token(&format!("{prefix}{t}")))).collect(),
    };
    let paired = |t: &str| {
        let c = single(t).or_else(|| t.strip_prefix(prefix).filter(|_| !prefix.is_empty()).and_then(single));
        c.is_some_and(|c| chars.binary_search(&c).is_ok())
    };
    let mut tokens = String::new();
    let mut prev = "";
    for &t in sorted.iter().filter(|t| !paired(t)) {
        if t.contains(' ') {
            return None;
        }
        let shared = prev.chars().zip(t.chars()).take_while(|(a, b)| a == b).count().min(MAX_SHARED);
        if !tokens.is_empty() {
            tokens.push(' ');
        }
        tokens.push(char::from_u32(SHARED_BASE + shared as u32)?);
        tokens.extend(t.chars().skip(shared));
        prev = t;
    }
    Some((chars.into_iter().collect(), tokens))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(v: &Vocab) -> Vec<(String, u32)> {
        v.iter().map(|(t, i)| (t.to_string(), i)).collect()
    }

    #[test]
    fn front_coding_round_trips_and_refuses_what_it_cannot_read() {
        let list = ["", "a", "ab", "abc", "abd", "b", "é", "éa", "東", "東京"];
        let v = Vocab::from_front_coded(&front_code(&list).unwrap()).unwrap();
        assert_eq!(v.iter().map(|(t, _)| t).collect::<Vec<_>>(), list);
        assert_eq!(v.iter().map(|(_, i)| i).collect::<Vec<_>>(), (0..10).collect::<Vec<_>>());
        assert!(front_code(&["a\tb"]).is_none());
        for bad in ["1\tx\n", "x\n", "a\tb\n", "0\ta\n5\tb\n"] {
            assert!(Vocab::from_front_coded(bad).is_err(), "{bad:?}");
        }
        // A 1 MB token repeated by 9-byte lines: 1 MB asking for 200 MB.
        let bomb = format!("0\t{}\n{}", "a".repeat(1 << 20), "1048576\t\n".repeat(200));
        let e = Vocab::from_front_coded(&bomb).unwrap_err().to_string();
        assert!(e.contains("expands past 64 MiB"), "{e}");
    }

    fn packed(list: &[&str], prefix: &str) -> Vocab {
        let (chars, tokens) = pack(list, prefix).unwrap();
        Vocab::from_packed(&chars, prefix, &tokens).unwrap()
    }

    #[test]
    fn packing_round_trips_with_ids_in_byte_order() {
        // Singles paired with their "##" twins ("a", "é", "東", and "#"
        // with "###"), one without ("b"), a lone twin ("##x"), a token
        // sharing more than 9 chars, the empty token.
        let mut list = vec![
            "",
            "#",
            "##",
            "###",
            "##a",
            "##x",
            "##é",
            "##東",
            "[UNK]",
            "a",
            "ab",
            "abcdefghijkl",
            "abcdefghijklm",
            "b",
            "é",
            "éa",
            "東",
            "東京",
        ];
        list.sort_unstable();
        let (chars, tokens) = pack(&list, "##").unwrap();
        assert_eq!(chars, "#aé東");
        assert!(!tokens.contains("##é") && tokens.contains('<'), "{tokens:?}");
        let v = Vocab::from_packed(&chars, "##", &tokens).unwrap();
        assert_eq!(v.iter().map(|(t, _)| t).collect::<Vec<_>>(), list);
        assert_eq!(v.iter().map(|(_, i)| i).collect::<Vec<_>>(), (0..list.len() as u32).collect::<Vec<_>>());
        // No prefix: nothing paired.
        assert_eq!(packed(&list, "").iter().map(|(t, _)| t).collect::<Vec<_>>(), list);
        assert_eq!(packed(&[], "##").len(), 0);
        assert_eq!(packed(&[""], "##").get(""), Some(0));
        // What it cannot carry: a space in a token, a list out of order or with repeats.
        assert!(pack(&["a b"], "##").is_none());
        assert!(pack(&["b", "a"], "##").is_none());
        assert!(pack(&["a", "a"], "##").is_none());
    }

    #[test]
    fn a_crafted_packed_vocabulary_is_refused_not_obeyed() {
        for (chars, prefix, tokens, why) in [
            ("", "##", "0b 0a", "out of order"),
            ("", "##", "0a 0a", "repeat"),
            ("a", "##", "0a", "repeat"),
            ("ba", "##", "", "out of order"),
            ("a", "", "", "no continuing-subword prefix"),
            ("", "##", "0a  0b", "token 1 does not start"),
            ("", "##", "/a", "token 0 does not start"),
            ("", "##", "0a 3b", "shares more characters"),
        ] {
            let e = Vocab::from_packed(chars, prefix, tokens).unwrap_err().to_string();
            assert!(e.contains(why), "{chars:?} {tokens:?}: {e}");
        }
        // A 1 MB prefix times 100,000 chars would be 100 GB: refused before allocating.
        let chars: String = ('\u{4e00}'..).take(100_000).collect();
        let e = Vocab::from_packed(&chars, &"#".repeat(1 << 20), "").unwrap_err().to_string();
        assert!(e.contains("expands past 64 MiB"), "{e}");
        // A 1 MB token shared whole 200 times (U+0030 + 2^20), each entry 5 bytes.
        let bomb = format!("0{} {}", "a".repeat(1 << 20), ["\u{100030}"; 200].join(" "));
        let e = Vocab::from_packed("", "##", &bomb).unwrap_err().to_string();
        assert!(e.contains("expands past 64 MiB"), "{e}");
    }

    #[test]
    fn every_token_is_found_and_no_other() {
        let list = ["", "##a", "[UNK]", "a", "ab", "abc", "b", "é", "東京"];
        let v = Vocab::from_front_coded(&front_code(&list).unwrap()).unwrap();
        for (id, t) in list.iter().enumerate() {
            assert_eq!(v.get(t), Some(id as u32), "{t:?}");
        }
        for t in ["aa", "abcd", "##", "z", "東", "[unk]"] {
            assert_eq!(v.get(t), None, "{t:?}");
        }
    }

    #[test]
    fn unsorted_lists_and_repeats_read_as_a_map_would() {
        // Out of order, and "b" twice: the later id wins.
        let v = Vocab::from_front_coded(&front_code(&["b", "a", "c", "b"]).unwrap()).unwrap();
        assert_eq!(tokens(&v), [("a".into(), 1), ("b".into(), 3), ("c".into(), 2)]);
        let v = Vocab::from_pairs(vec![("x".into(), 7), ("w".into(), 1), ("x".into(), 2)]).unwrap();
        assert_eq!(tokens(&v), [("w".into(), 1), ("x".into(), 2)]);
        assert_eq!(v.get("x"), Some(2));
    }
}
