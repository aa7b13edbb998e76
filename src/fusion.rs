//! Hybrid ranking: the dense and the lexical candidate lists, fused.
//!
//! Each side contributes its best [`FUSION_DEPTH`] passages. Both scores of
//! every candidate are exact (the flat scan scores all passages, BM25 scores
//! every passage holding a query term), so a passage found by one side keeps
//! its true score on the other.
//!
//! - Reciprocal rank fusion: `sum of 1 / (k + rank)` over the lists a
//!   passage is in (Cormack et al. 2009, k = 60).
//! - Convex: `alpha * dense + (1 - alpha) * lexical`, each score min-max
//!   min-max normalised over the candidates (Bruch et al. 2023 find this
//!   simple scheme as good as any). `alpha` is tuned on a dev split and
//!   stored in the index manifest.

use serde::{Deserialize, Serialize};

use crate::index::{top_k, Hit};

/// Candidates each side contributes.
pub const FUSION_DEPTH: usize = 100;

/// Which ranking a search returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Vectors only.
    Dense,
    /// BM25 only.
    Lexical,
    /// Both, fused.
    #[default]
    Hybrid,
}

impl Mode {
    pub fn parse(s: &str) -> crate::Result<Self> {
        match s {
            "dense" => Ok(Mode::Dense),
            "lexical" => Ok(Mode::Lexical),
            "hybrid" => Ok(Mode::Hybrid),
            _ => Err(crate::Error::Invalid(format!("unknown search mode {s:?}: use dense, lexical or hybrid"))),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Dense => "dense",
            Mode::Lexical => "lexical",
            Mode::Hybrid => "hybrid",
        }
    }
}

/// What turns the query into a vector for the dense side: the transformer
/// student, or the token table distilled from it (`crate::table`: no
/// transformer at query time, a few KB of rows per query).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QueryEncoder {
    #[default]
    Transformer,
    Table,
}

impl QueryEncoder {
    pub fn parse(s: &str) -> crate::Result<Self> {
        match s {
            "transformer" => Ok(QueryEncoder::Transformer),
            "table" => Ok(QueryEncoder::Table),
            _ => Err(crate::Error::Invalid(format!("unknown query encoder {s:?}: use transformer or table"))),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            QueryEncoder::Transformer => "transformer",
            QueryEncoder::Table => "table",
        }
    }
}

/// How hybrid mode combines the two lists.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "lowercase")]
pub enum Fusion {
    Rrf { k: f32 },
    Convex { alpha: f32 },
}

impl Fusion {
    /// The weighted sum with the dense side's weight `alpha`: 0 is BM25 only, 1 dense only.
    pub fn convex(alpha: f32) -> crate::Result<Self> {
        if !(0.0..=1.0).contains(&alpha) {
            return Err(crate::Error::Invalid(format!(
                "the hybrid weight alpha {} is outside 0..1 (0: BM25 only, 1: dense only)",
                crate::error::show_f32(alpha)
            )));
        }
        Ok(Fusion::Convex { alpha })
    }
}

impl Default for Fusion {
    /// RRF needs no tuning: the safe choice when no tuned weight is known.
    fn default() -> Self {
        Fusion::Rrf { k: 60.0 }
    }
}

/// A passage found by either side, with both of its scores.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    pub ordinal: usize,
    pub dense: f32,
    pub lexical: f32,
    /// 1-based rank in each side's top list, if it is in it.
    pub dense_rank: Option<usize>,
    pub lexical_rank: Option<usize>,
}

/// The union of both sides' top lists, ready to fuse any number of ways
/// (tuning tries many weights on the same candidates).
#[derive(Debug, Clone)]
pub struct Candidates {
    pub items: Vec<Candidate>,
    /// (max, min) of each side's scores over the candidates, for min-max normalisation.
    dense_range: (f32, f32),
    lexical_range: (f32, f32),
}

impl Candidates {
    /// `lexical` is `None` when the query has no searchable term; only
    /// passages with a positive BM25 score count as lexical candidates.
    pub fn gather(dense: &[f32], lexical: Option<&[f32]>, ids: &[String], depth: usize) -> Self {
        let top_dense = top_k(dense.iter().copied().enumerate(), ids, depth);
        let top_lex = match lexical {
            Some(l) => top_k(l.iter().copied().enumerate().filter(|(_, s)| *s > 0.0), ids, depth),
            None => Vec::new(),
        };
        let mut items: Vec<Candidate> = Vec::with_capacity(top_dense.len() + top_lex.len());
        let mut slot = std::collections::HashMap::new();
        for (list, is_dense) in [(&top_dense, true), (&top_lex, false)] {
            for (r, h) in list.iter().enumerate() {
                let i = *slot.entry(h.ordinal).or_insert_with(|| {
                    items.push(Candidate {
                        ordinal: h.ordinal,
                        dense: dense[h.ordinal],
                        lexical: lexical.map_or(0.0, |l| l[h.ordinal]),
                        dense_rank: None,
                        lexical_rank: None,
                    });
                    items.len() - 1
                });
                if is_dense {
                    items[i].dense_rank = Some(r + 1);
                } else {
                    items[i].lexical_rank = Some(r + 1);
                }
            }
        }
        let range = |f: fn(&Candidate) -> f32| {
            items.iter().map(f).fold((f32::NEG_INFINITY, f32::INFINITY), |(hi, lo), s| (hi.max(s), lo.min(s)))
        };
        let (dense_range, lexical_range) = (range(|c| c.dense), range(|c| c.lexical));
        Self { items, dense_range, lexical_range }
    }

    /// The best `k` candidates under `fusion`; ties as everywhere (larger id first).
    pub fn fuse(&self, fusion: Fusion, ids: &[String], k: usize) -> Vec<Hit> {
        let scored = self.items.iter().map(|c| (c.ordinal, self.fused_score(c, fusion)));
        top_k(scored, ids, k)
    }

    /// The dense side's own top list, best first.
    pub fn dense_top(&self) -> Vec<Hit> {
        self.side(&|c| c.dense_rank.map(|r| (r, c.dense)))
    }

    /// The lexical side's own top list (positive BM25 only), best first.
    pub fn lexical_top(&self) -> Vec<Hit> {
        self.side(&|c| c.lexical_rank.map(|r| (r, c.lexical)))
    }

    /// Not generic: one sort compiled for both sides.
    fn side(&self, rank: &dyn Fn(&Candidate) -> Option<(usize, f32)>) -> Vec<Hit> {
        let mut v: Vec<(usize, Hit)> =
            self.items.iter().filter_map(|c| rank(c).map(|(r, s)| (r, Hit { ordinal: c.ordinal, score: s }))).collect();
        v.sort_by_key(|(r, _)| *r);
        v.into_iter().map(|(_, h)| h).collect()
    }

    pub fn fused_score(&self, c: &Candidate, fusion: Fusion) -> f32 {
        match fusion {
            Fusion::Rrf { k } => {
                let part = |r: Option<usize>| r.map_or(0.0, |r| 1.0 / (k + r as f32));
                part(c.dense_rank) + part(c.lexical_rank)
            }
            Fusion::Convex { alpha } => {
                alpha * normalise(c.dense, self.dense_range) + (1.0 - alpha) * normalise(c.lexical, self.lexical_range)
            }
        }
    }
}

fn normalise(s: f32, (hi, lo): (f32, f32)) -> f32 {
    if hi > lo {
        (s - lo) / (hi - lo)
    } else if hi > 0.0 {
        1.0 // one candidate, or all equal
    } else {
        0.0 // no lexical match at all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("p{i:02}")).collect()
    }

    #[test]
    fn rrf_rewards_agreement() {
        let ids = ids(4);
        let dense = [0.9, 0.8, 0.1, 0.0];
        let lex = [0.0, 5.0, 4.0, 0.0];
        let c = Candidates::gather(&dense, Some(&lex), &ids, 2);
        let hits = c.fuse(Fusion::default(), &ids, 4);
        // p01 is 2nd and 1st; p00 only 1st dense; p02 only 2nd lexical.
        assert_eq!(hits.iter().map(|h| h.ordinal).collect::<Vec<_>>(), [1, 0, 2]);
    }

    #[test]
    fn convex_ends_are_the_single_modes() {
        let ids = ids(5);
        let dense = [0.5, 0.9, 0.7, 0.1, 0.3];
        let lex = [3.0, 0.0, 1.0, 2.0, 0.0];
        let c = Candidates::gather(&dense, Some(&lex), &ids, 5);
        let order = |a: f32| c.fuse(Fusion::Convex { alpha: a }, &ids, 3).iter().map(|h| h.ordinal).collect::<Vec<_>>();
        assert_eq!(order(1.0), [1, 2, 0]);
        assert_eq!(order(0.0)[..3], [0, 3, 2]);
    }

    #[test]
    fn no_lexical_terms_means_dense_order() {
        let ids = ids(3);
        let dense = [0.2, 0.9, 0.5];
        let c = Candidates::gather(&dense, None, &ids, 10);
        for f in [Fusion::default(), Fusion::Convex { alpha: 0.3 }] {
            assert_eq!(c.fuse(f, &ids, 3).iter().map(|h| h.ordinal).collect::<Vec<_>>(), [1, 2, 0]);
        }
    }

    #[test]
    fn candidates_keep_exact_scores_from_both_sides() {
        let ids = ids(4);
        let dense = [0.9, 0.1, 0.2, 0.3];
        let lex = [0.0, 7.0, 0.0, 0.0];
        let c = Candidates::gather(&dense, Some(&lex), &ids, 1);
        let p1 = c.items.iter().find(|c| c.ordinal == 1).unwrap();
        assert_eq!((p1.dense, p1.lexical, p1.dense_rank, p1.lexical_rank), (0.1, 7.0, None, Some(1)));
    }
}
