//! A WordPiece vocabulary as the tokenizer looks it up: every token in one
//! buffer, sorted, each with its id, found by binary search.
//!
//! A `HashMap<String, u32>` cost the light engine's cold load a string
//! allocation and a SipHash per token (30,522 for BERT), most of the 75 ms
//! its wasm spent reading the table head; an index folder's vocabulary
//! arrives sorted and front-coded ([`front_code`]), so this form is read in
//! one pass with no hashing and no per-token allocation.

use crate::{Error, Result};

/// The most bytes a front-coded vocabulary may expand to: a line may repeat
/// a long token for a few bytes, so a crafted one of a few MB could ask for
/// gigabytes. BERT's 30,522 tokens take 0.2 MB; multilingual ones, a few MB.
const MAX_TOKEN_BYTES: usize = 64 << 20;

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
        let mut sorted = true;
        for (i, line) in s.lines().enumerate() {
            let (n, rest) = line.split_once('\t').ok_or_else(|| bad(i, "no tab"))?;
            let n: usize = n.parse().map_err(|_| bad(i, "the shared length is not a number"))?;
            // The previous token is the buffer's tail.
            let start = v.len().checked_sub(1).map_or(0, |last| v.start(last));
            let prev = &v.text[start..];
            let cut = match n {
                0 => Some(0),
                n => prev.char_indices().nth(n - 1).map(|(at, c)| at + c.len_utf8()),
            }
            .ok_or_else(|| bad(i, "it shares more characters than the token before it has"))?;
            if v.text.len() + cut + rest.len() > MAX_TOKEN_BYTES {
                return Err(bad(i, "the vocabulary expands past 64 MiB"));
            }
            // The shared prefix is copied from the previous token's bytes.
            v.text.extend_from_within(start..start + cut);
            v.text.push_str(rest);
            let end = u32::try_from(v.text.len()).map_err(|_| bad(i, "over 4 GiB of tokens"))?;
            v.ends.push(end);
            v.ids.push(i as u32);
            let len = v.ends.len();
            sorted &= len < 2 || v.token(len - 2) < v.token(len - 1);
        }
        match sorted {
            true => Ok(v),
            // Not sorted or with repeats (a file not written by `front_code`
            // from a sorted list): sorted here.
            false => Self::from_pairs(v.iter().map(|(t, i)| (t.to_string(), i)).collect()),
        }
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
/// it shares with the token before it, a tab, the rest. Sorted tokens share
/// long prefixes, so gzip takes this to 54 KB where the JSON array of the
/// same sorted tokens is 87 KB (BERT's 30,522). `None`: a token holds a tab
/// or a line break, which this form cannot carry.
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
