//! The paired comparison (`metrics::paired`) against scipy's numbers on
//! fixed per-query values (tests/fixtures/paired, made by make_fixture.py):
//! the t statistic exactly, the randomization test's p within its Monte Carlo
//! error.

use std::collections::BTreeMap;

use ernie_search::metrics::{paired, Scores, RANDOMIZATION_ROUNDS};

const FIXTURE: &str = include_str!("fixtures/paired/expected.json");

fn system(case: &serde_json::Value, side: &str) -> BTreeMap<String, Scores> {
    case[side]
        .as_object()
        .expect("per-query values")
        .iter()
        .map(|(q, v)| (q.clone(), Scores { mrr_10: v.as_f64().expect("number"), ..Scores::default() }))
        .collect()
}

fn case(name: &str) -> (serde_json::Value, ernie_search::metrics::Paired) {
    let all: serde_json::Value = serde_json::from_str(FIXTURE).expect("fixture");
    let c = all[name].clone();
    let p = paired(&system(&c, "a"), &system(&c, "b"), |s| s.mrr_10, RANDOMIZATION_ROUNDS, 7).expect("same queries");
    (c, p)
}

#[test]
fn a_small_gain_matches_scipy() {
    let (c, p) = case("small_gain");
    assert_eq!(p.queries, 300);
    assert!((p.mean_diff - c["mean_diff"].as_f64().unwrap()).abs() < 1e-12);
    assert!((p.t - c["t"].as_f64().unwrap()).abs() < 1e-9, "t {} vs scipy {}", p.t, c["t"]);
    let want = c["permutation_p"].as_f64().unwrap();
    assert!((p.p - want).abs() < 0.02, "p {} vs scipy permutation_test {want}", p.p);
    // Not significant, and the interval says so too.
    let (lo, hi) = p.ci95();
    assert!(lo < 0.0 && hi > 0.0 && p.p > 0.05);
}

#[test]
fn a_clear_gain_is_significant() {
    let (c, p) = case("clear_gain");
    assert!((p.t - c["t"].as_f64().unwrap()).abs() < 1e-9);
    assert!(p.p <= 2.0 / (RANDOMIZATION_ROUNDS + 1) as f64, "p {}", p.p);
    assert!(p.ci95().0 > 0.0);
}

#[test]
fn identical_systems_differ_by_nothing() {
    let (_, p) = case("no_difference");
    assert_eq!((p.mean_diff, p.std_err, p.t, p.p), (0.0, 0.0, 0.0, 1.0));
}

#[test]
fn swapping_the_systems_flips_the_sign_only() {
    let all: serde_json::Value = serde_json::from_str(FIXTURE).unwrap();
    let c = &all["small_gain"];
    let ab = paired(&system(c, "a"), &system(c, "b"), |s| s.mrr_10, 2000, 1).unwrap();
    let ba = paired(&system(c, "b"), &system(c, "a"), |s| s.mrr_10, 2000, 1).unwrap();
    assert!((ab.mean_diff + ba.mean_diff).abs() < 1e-12 && (ab.t + ba.t).abs() < 1e-9);
    assert_eq!(ab.p, ba.p, "same seed, same flips, same |sums|");
}

#[test]
fn runs_of_different_queries_are_refused() {
    let all: serde_json::Value = serde_json::from_str(FIXTURE).unwrap();
    let c = &all["small_gain"];
    let a = system(c, "a");
    let mut b = system(c, "b");
    b.remove("q17");
    let err = paired(&a, &b, |s| s.mrr_10, 100, 1).unwrap_err();
    assert!(err.contains("q17"), "{err}");
    assert!(paired(&BTreeMap::new(), &BTreeMap::new(), |s| s.mrr_10, 100, 1).is_err());
}
