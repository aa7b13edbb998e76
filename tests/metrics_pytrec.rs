//! Our metric code against pytrec_eval's numbers on a fixed run with score
//! ties, missing queries and unjudged queries (tests/fixtures/metrics, made
//! by make_fixture.py with pytrec-eval-terrier).

use ernie_search::metrics::{evaluate, parse_qrels_tsv, parse_trec_run, write_trec_run, Scores};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/metrics");

fn read(name: &str) -> String {
    std::fs::read_to_string(format!("{DIR}/{name}")).expect(name)
}

fn as_pairs(s: &Scores) -> [(&'static str, f64); 6] {
    [
        ("mrr@10", s.mrr_10),
        ("recall@1", s.recall_1),
        ("recall@5", s.recall_5),
        ("recall@20", s.recall_20),
        ("recall@100", s.recall_100),
        ("ndcg@10", s.ndcg_10),
    ]
}

#[test]
fn metrics_match_pytrec_eval() {
    let qrels = parse_qrels_tsv(&read("qrels.tsv")).unwrap();
    let run = parse_trec_run(&read("run.trec")).unwrap();
    let expected: serde_json::Value = serde_json::from_str(&read("expected.json")).unwrap();
    let (mean, per_query) = evaluate(&qrels, &run);
    for (k, v) in as_pairs(&mean) {
        let want = expected["mean"][k].as_f64().unwrap();
        assert!((v - want).abs() < 1e-9, "mean {k}: ours {v}, pytrec_eval {want}");
    }
    let exp_q = expected["per_query"].as_object().unwrap();
    assert_eq!(per_query.len(), exp_q.len());
    for (qid, s) in &per_query {
        for (k, v) in as_pairs(s) {
            let want = exp_q[qid][k].as_f64().unwrap();
            assert!((v - want).abs() < 1e-9, "{qid} {k}: ours {v}, pytrec_eval {want}");
        }
    }
}

#[test]
fn trec_run_files_round_trip() {
    let run = parse_trec_run(&read("run.trec")).unwrap();
    let mut out = Vec::new();
    write_trec_run(&mut out, &run, "t").unwrap();
    let back = parse_trec_run(std::str::from_utf8(&out).unwrap()).unwrap();
    let qrels = parse_qrels_tsv(&read("qrels.tsv")).unwrap();
    assert_eq!(evaluate(&qrels, &run).0, evaluate(&qrels, &back).0);
    assert!(parse_trec_run("q1 Q0 p1 1 notanumber x").unwrap_err().contains("line 1"));
}
