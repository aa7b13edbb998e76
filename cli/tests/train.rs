//! The training stages end to end on a tiny synthetic checkpoint and a tiny
//! BEIR set: every stage and loss runs, a SIGKILLed run resumes to the exact
//! weights of an uninterrupted one, and bad input stops with a clear error.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use ernie_search::synthetic::{random_bert, tiny_config, tiny_tokenizer_json, write_checkpoint, WORDS};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ernie-search"))
}

fn run(args: &[&str]) -> Output {
    bin().args(args).env("ERNIE_SEARCH_CACHE", "/nonexistent-cache").output().expect("run ernie-search")
}

fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout)
}

fn fails(args: &[&str]) -> String {
    let out = run(args);
    assert_eq!(out.status.code(), Some(2), "{args:?} should fail: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn checkpoint(dir: &Path) -> PathBuf {
    write_checkpoint(dir, 11).unwrap()
}

/// 60 passages of 10 words; query i asks with 3 words of passage i.
fn beir(dir: &Path) -> PathBuf {
    let b = dir.join("set");
    std::fs::create_dir_all(b.join("qrels")).unwrap();
    let (mut corpus, mut queries) = (Vec::new(), Vec::new());
    let mut train = vec!["query-id\tcorpus-id\tscore".to_string()];
    let mut dev = train.clone();
    for i in 0..60 {
        let words: Vec<&str> = (0..10).map(|j| WORDS[(i * 7 + j * 13) % WORDS.len()]).collect();
        corpus.push(serde_json::json!({"_id": format!("p{i:02}"), "title": "", "text": words.join(" ")}).to_string());
        queries.push(serde_json::json!({"_id": format!("q{i:02}"), "text": words[2..5].join(" ")}).to_string());
        let row = format!("q{i:02}\tp{i:02}\t1");
        if i % 5 == 0 {
            dev.push(row)
        } else {
            train.push(row)
        }
    }
    std::fs::write(b.join("corpus.jsonl"), corpus.join("\n")).unwrap();
    std::fs::write(b.join("queries.jsonl"), queries.join("\n")).unwrap();
    std::fs::write(b.join("qrels/train.tsv"), train.join("\n")).unwrap();
    std::fs::write(b.join("qrels/dev.tsv"), dev.join("\n")).unwrap();
    b
}

fn recipe(dir: &Path, ck: &Path, set: &Path, extra: &str, steps: u64) -> PathBuf {
    let text = format!(
        "seed = 3\n{extra}\n[data]\nset = \"{}\"\nquery_max_len = 12\npassage_max_len = 24\nnegatives = 2\n\
         [model]\ninit = \"{}\"\n[optim]\nlr = 1e-3\ncheckpoint_every = 2\n[mine]\nskip = 1\ndepth = 8\n\
         [warmup]\nsteps = {steps}\nbatch = 4\n[ce]\nsteps = 6\nbatch = 4\n[cascade]\nsteps = 6\nbatch = 4\naccumulate = 2\n\
         [export]\nmax_query_len = 12\nmax_passage_len = 24\n[eval]\nsplit = \"dev\"\nbatch = 16\n[loss]\nid = 0.5\n",
        set.display(),
        ck.display()
    );
    let p = dir.join(format!("recipe-{steps}.toml"));
    std::fs::write(&p, text).unwrap();
    p
}

fn metrics(stage_dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(stage_dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn distill_runs_every_stage_and_exports_a_student() {
    let tmp = tempfile::tempdir().unwrap();
    let (ck, set) = (checkpoint(tmp.path()), beir(tmp.path()));
    let r = recipe(tmp.path(), &ck, &set, "", 6);
    // The CE's own list is longer than the students' ([data] negatives = 2).
    let text = std::fs::read_to_string(&r).unwrap().replace("[ce]\nsteps = 6\n", "[ce]\nsteps = 6\nnegatives = 3\n");
    std::fs::write(&r, text).unwrap();
    let run = tmp.path().join("run");
    let out = ok(&["distill", "--recipe", s(&r), "--run", s(&run)]);
    assert!(out.contains("warm-up") && out.contains("cascade"), "{out}");
    for stage in ["warmup", "ce", "cascade"] {
        assert!(run.join(stage).join("model.safetensors").exists(), "{stage}");
        assert!(std::fs::read_to_string(run.join(stage).join("loss.svg")).unwrap().contains("<svg"), "{stage}");
    }
    // Each loss term is logged apart.
    let warm = metrics(&run.join("warmup"));
    assert_eq!(warm.len(), 6);
    for k in ["l_de", "l_li", "kl_li_de", "samples_per_s"] {
        assert!(warm[0][k].is_number(), "warmup lacks {k}: {}", warm[0]);
    }
    let cascade = metrics(&run.join("cascade"));
    for k in ["l_de", "l_li", "kl_li_de", "kl_ce_li", "l_id"] {
        assert!(cascade[0][k].is_number(), "cascade lacks {k}: {}", cascade[0]);
    }
    let ce = metrics(&run.join("ce"));
    assert!(ce.iter().all(|m| m["l_ce"].is_number() && m["ce_list"] == 4.0), "[ce] negatives = 3 not honoured: {ce:?}");
    // Negatives from BM25, then mined from the warm-up student, none relevant.
    let mined = std::fs::read_to_string(run.join("negatives.jsonl")).unwrap();
    let first: serde_json::Value = serde_json::from_str(mined.lines().next().unwrap()).unwrap();
    let qid = first["qid"].as_str().unwrap();
    assert!(!first["negatives"].as_array().unwrap().iter().any(|p| p.as_str().unwrap()[1..] == qid[1..]));
    // The CE scores were cached for the cascade.
    assert!(std::fs::read_to_string(run.join("ce-scores.tsv")).unwrap().lines().count() >= 6 * 4 * 3);
    // The export is a model file the library reads, with its figures.
    let card: serde_json::Value = serde_json::from_str(&ok(&["info", s(&run.join("student.gguf")), "--json"])).unwrap();
    assert_eq!(card["weights"], "q8_0");
    assert!(card["provenance"]["metrics"]["mrr_10"].is_number(), "{}", card["provenance"]);
    assert!(card["provenance"]["metrics_f32"]["mrr_10"].is_number(), "{}", card["provenance"]);
    // A second distill finds every stage done.
    assert!(ok(&["distill", "--recipe", s(&r), "--run", s(&run)]).contains("finished: skipped"));

    // The cascade with the CE trained jointly: its own loss joins the total.
    let joint = tmp.path().join("joint");
    std::fs::create_dir_all(&joint).unwrap();
    for f in ["negatives.jsonl", "ce-scores.tsv"] {
        std::fs::copy(run.join(f), joint.join(f)).unwrap();
    }
    for stage in ["warmup", "ce"] {
        std::fs::create_dir_all(joint.join(stage)).unwrap();
        std::fs::copy(run.join(stage).join("model.safetensors"), joint.join(stage).join("model.safetensors")).unwrap();
    }
    let rj = std::fs::read_to_string(&r).unwrap().replace("[loss]\n", "[loss]\njoint_ce = true\n");
    std::fs::write(tmp.path().join("joint.toml"), rj).unwrap();
    ok(&["cascade", "--recipe", s(&tmp.path().join("joint.toml")), "--run", s(&joint)]);
    let m = metrics(&joint.join("cascade"));
    assert!(m[0]["l_ce"].is_number() && m[0]["kl_ce_li"].is_number(), "{}", m[0]);

    // A finished CE trained further (`train-ce --from`) starts from its
    // weights: at a vanishing lr it ends where that CE ended, where a fresh
    // CE ends at the initial weights.
    let slow = std::fs::read_to_string(&r).unwrap().replace("[ce]\nsteps = 6\n", "[ce]\nsteps = 2\nlr = 1e-30\n");
    let slow_recipe = tmp.path().join("slow.toml");
    std::fs::write(&slow_recipe, slow).unwrap();
    let ce_of = |folder: &str, from: Option<&Path>| {
        let dir = tmp.path().join(folder);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(run.join("negatives.jsonl"), dir.join("negatives.jsonl")).unwrap();
        let mut args = vec!["train-ce", "--recipe", s(&slow_recipe), "--run", s(&dir)];
        if let Some(f) = from {
            args.extend(["--from", s(f)]);
        }
        ok(&args);
        assert_eq!(metrics(&dir.join("ce")).len(), 2);
        candle_core::safetensors::load(dir.join("ce/model.safetensors"), &candle_core::Device::Cpu).unwrap()
    };
    let trained = candle_core::safetensors::load(run.join("ce/model.safetensors"), &candle_core::Device::Cpu).unwrap();
    let gap = |a: &std::collections::HashMap<String, candle_core::Tensor>| -> f32 {
        trained
            .iter()
            .map(|(n, t)| (t - &a[n]).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap())
            .fold(0.0, f32::max)
    };
    assert!(gap(&ce_of("more", Some(&run.join("ce")))) < 1e-6, "--from did not start from the trained CE");
    assert!(gap(&ce_of("fresh", None)) > 1e-4, "a fresh CE should start elsewhere");
    // A --from that is not a finished CE is refused by name.
    let bad = tmp.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::copy(run.join("negatives.jsonl"), bad.join("negatives.jsonl")).unwrap();
    let e = fails(&["train-ce", "--recipe", s(&slow_recipe), "--run", s(&bad), "--from", s(&tmp.path().join("nope"))]);
    assert!(e.contains("nope/metrics.jsonl"), "{e}");
    let e = fails(&["train-ce", "--recipe", s(&slow_recipe), "--run", s(&bad), "--from", s(&run.join("warmup"))]);
    assert!(e.contains("warmup"), "{e}");
}

#[test]
fn training_moves_the_student_toward_its_positives() {
    let tmp = tempfile::tempdir().unwrap();
    let (ck, set) = (checkpoint(tmp.path()), beir(tmp.path()));
    let r = recipe(tmp.path(), &ck, &set, "", 30);
    let run = tmp.path().join("run");
    ok(&["warmup", "--recipe", s(&r), "--run", s(&run)]);
    let m = metrics(&run.join("warmup"));
    let mean = |xs: &[serde_json::Value]| xs.iter().map(|v| v["l_de"].as_f64().unwrap()).sum::<f64>() / xs.len() as f64;
    let (early, late) = (mean(&m[..5]), mean(&m[m.len() - 5..]));
    assert!(late < early * 0.8, "DE loss did not fall: {early} -> {late}");
}

fn safetensors_bytes(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn a_killed_run_resumes_to_the_same_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let (ck, set) = (checkpoint(tmp.path()), beir(tmp.path()));
    let r = recipe(tmp.path(), &ck, &set, "", 40);
    let (full, killed) = (tmp.path().join("full"), tmp.path().join("killed"));
    ok(&["warmup", "--recipe", s(&r), "--run", s(&full)]);

    // SIGKILL as soon as a checkpoint exists.
    let mut child = bin()
        .args(["warmup", "--recipe", s(&r), "--run", s(&killed)])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let latest = killed.join("warmup/checkpoints/LATEST");
    let start = Instant::now();
    while !latest.exists() && start.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(1));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let finished_before_kill = killed.join("warmup/model.safetensors").exists();
    // Without --resume the folder is refused; with it the run continues.
    if !finished_before_kill {
        assert!(fails(&["warmup", "--recipe", s(&r), "--run", s(&killed)]).contains("--resume"));
    }
    ok(&["warmup", "--recipe", s(&r), "--run", s(&killed), "--resume"]);
    assert_eq!(
        safetensors_bytes(&full.join("warmup/model.safetensors")),
        safetensors_bytes(&killed.join("warmup/model.safetensors")),
        "resumed weights differ from the uninterrupted run"
    );

    // The same with a stop at a known step (deterministic, always mid-run),
    // and the metrics log has each step once.
    let stopped = tmp.path().join("stopped");
    ok(&["warmup", "--recipe", s(&r), "--run", s(&stopped), "--stop-after", "7"]);
    assert!(!stopped.join("warmup/model.safetensors").exists());
    ok(&["warmup", "--recipe", s(&r), "--run", s(&stopped), "--resume"]);
    assert_eq!(
        safetensors_bytes(&full.join("warmup/model.safetensors")),
        safetensors_bytes(&stopped.join("warmup/model.safetensors"))
    );
    let steps: Vec<u64> = metrics(&stopped.join("warmup")).iter().map(|v| v["step"].as_u64().unwrap()).collect();
    assert_eq!(steps, (1..=40).collect::<Vec<_>>());
    // Resuming under another recipe is refused.
    let other = recipe(tmp.path(), &ck, &set, "", 41);
    let out = tmp.path().join("other");
    ok(&["warmup", "--recipe", s(&r), "--run", s(&out), "--stop-after", "2"]);
    assert!(fails(&["warmup", "--recipe", s(&other), "--run", s(&out), "--resume"]).contains("another recipe"));
}

#[test]
fn bad_input_stops_with_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let (ck, set) = (checkpoint(tmp.path()), beir(tmp.path()));
    let dir = tmp.path().join("run");
    // Recipes: unknown key, impossible value.
    let r = recipe(tmp.path(), &ck, &set, "learning_rate = 3", 4);
    assert!(fails(&["warmup", "--recipe", s(&r), "--run", s(&dir)]).contains("learning_rate"));
    let bad = std::fs::read_to_string(recipe(tmp.path(), &ck, &set, "", 4))
        .unwrap()
        .replace("batch = 4\n[ce]", "batch = 0\n[ce]");
    std::fs::write(tmp.path().join("bad.toml"), bad).unwrap();
    assert!(fails(&["warmup", "--recipe", s(&tmp.path().join("bad.toml")), "--run", s(&dir)]).contains("batch"));
    // More negatives than the corpus holds (the batch would draw forever).
    let big = std::fs::read_to_string(recipe(tmp.path(), &ck, &set, "", 4))
        .unwrap()
        .replace("[ce]\nsteps = 6\n", "[ce]\nsteps = 6\nnegatives = 100000\n");
    std::fs::write(tmp.path().join("big.toml"), big).unwrap();
    assert!(fails(&["warmup", "--recipe", s(&tmp.path().join("big.toml")), "--run", s(&dir)]).contains("do not fit"));

    let r = recipe(tmp.path(), &ck, &set, "", 4);
    let qrels = set.join("qrels/train.tsv");
    let good = std::fs::read_to_string(&qrels).unwrap();
    // A qrel naming an unknown passage.
    std::fs::write(&qrels, format!("{good}\nq01\tp-missing\t1")).unwrap();
    assert!(fails(&["warmup", "--recipe", s(&r), "--run", s(&dir)]).contains("p-missing"));
    // A query with no positive.
    std::fs::write(&qrels, good.replace("q01\tp01\t1", "q01\tp01\t0")).unwrap();
    assert!(fails(&["warmup", "--recipe", s(&r), "--run", s(&dir)]).contains("no positive"));
    std::fs::write(&qrels, &good).unwrap();
    // An empty corpus.
    let corpus = std::fs::read_to_string(set.join("corpus.jsonl")).unwrap();
    std::fs::write(set.join("corpus.jsonl"), "").unwrap();
    assert!(fails(&["warmup", "--recipe", s(&r), "--run", s(&dir)]).contains("empty"));
    std::fs::write(set.join("corpus.jsonl"), corpus).unwrap();
    // Cascade before the CE exists.
    assert!(fails(&["cascade", "--recipe", s(&r), "--run", s(&dir)]).contains("negatives.jsonl"));
    // A learning rate that blows the model up ends in a clear error, not a
    // silent garbage model (fit's unit tests cover the skipped NaN steps).
    let hot = std::fs::read_to_string(&r).unwrap().replace("lr = 1e-3", "lr = 1e30");
    std::fs::write(tmp.path().join("hot.toml"), hot).unwrap();
    let err = fails(&["warmup", "--recipe", s(&tmp.path().join("hot.toml")), "--run", s(&tmp.path().join("hot"))]);
    assert!(err.contains("not finite") || err.contains("NaN"), "{err}");
    // A checkpoint never half-written: only complete ckpt folders are pointed at.
    for entry in std::fs::read_dir(tmp.path().join("hot/warmup/checkpoints")).into_iter().flatten().flatten() {
        let p = entry.path();
        if p.is_dir() {
            assert!(p.join("state.json").exists() && p.join("model.safetensors").exists());
        }
    }
}

/// The trainable encoder computes what the exported model file computes in
/// the library, so what training optimises is what the browser runs.
#[test]
fn trainable_student_matches_the_exported_model() {
    use ernie_search::format::model::{quantize_tensors, write_model, WeightDType};
    use ernie_search::model::{ModelSpec, Pooling};
    use ernie_search_train::{bert::Batch, model, params::Params};
    let cfg = tiny_config();
    let tensors = random_bert(&cfg, 5).unwrap();
    let dev = candle_core::Device::Cpu;
    let mut params = Params::from_tensors(tensors.clone(), model::STUDENT, &dev).unwrap();
    let student = model::Student::new(&cfg, &mut params, Pooling::Mean, true, 16, 1, &dev).unwrap();
    let spec = ModelSpec {
        bert: cfg.clone(),
        pooling: Pooling::Mean,
        normalize: true,
        max_query_len: 16,
        max_passage_len: 32,
    };
    let q = quantize_tensors(tensors, WeightDType::F32).unwrap();
    let bytes = write_model("t", &spec, WeightDType::F32, &tiny_tokenizer_json(), &serde_json::json!({}), &q).unwrap();
    let emb = ernie_search::Embedder::from_bytes_with(&bytes, ernie_search::Kernel::Dense).unwrap();
    let texts = ["the river of paris", "who wrote the first book in the world", "red"];
    let toks = emb.tokenize_passages(&texts).unwrap();
    let want = emb.embed_tokens(&toks).unwrap();
    let rows: Vec<Vec<u32>> = toks.iter().map(|t| t.ids.clone()).collect();
    let got: Vec<Vec<f32>> =
        student.encode(&params, &Batch::from_ids(&rows, &dev).unwrap(), false).unwrap().de.to_vec2().unwrap();
    for (g, w) in got.iter().zip(&want) {
        let err = g.iter().zip(w).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(err < 1e-5, "max abs error {err}");
    }
}

#[test]
fn ablate_writes_the_table_into_the_benchmarks_file() {
    let tmp = tempfile::tempdir().unwrap();
    let (ck, set) = (checkpoint(tmp.path()), beir(tmp.path()));
    let r = recipe(tmp.path(), &ck, &set, "", 4);
    let text = std::fs::read_to_string(&r).unwrap()
        + "[ablate]\nli_head_steps = 3\nsmall_teacher_weight = 5.0\n[ablate.small]\nsteps = 3\nbatch = 4\n";
    std::fs::write(&r, text).unwrap();
    let bench = tmp.path().join("BENCH.md");
    std::fs::write(&bench, "# B\n\n<!-- ablation:start -->\nold\n<!-- ablation:end -->\n\ntail\n").unwrap();
    let run = tmp.path().join("ab");
    let rows = "zero-shot,de,sofd,cascade,cascade-q8,l3-de,l3-deep,l3-deep-mse";
    ok(&[
        "ablate",
        "--recipe",
        s(&r),
        "--run",
        s(&run),
        "--rows",
        rows,
        "--small-layers",
        "1",
        "--benchmarks",
        s(&bench),
    ]);
    let b = std::fs::read_to_string(&bench).unwrap();
    assert!(!b.contains("old") && b.ends_with("tail\n"), "{b}");
    for label in [
        "zero-shot init",
        "DE alone",
        "DE + SOFD",
        "cascade CE -> LI -> DE",
        "Q8_0 export",
        "3-layer: DE alone",
        "6-layer LI -> LI -> DE",
        "6-layer DE vectors (MSE)",
    ] {
        assert!(b.contains(label), "{label} missing: {b}");
    }
    // Every row keeps its TREC run, which scores what its result says, and the
    // table compares each row with its peer query by query.
    let qrels =
        ernie_search::metrics::parse_qrels_tsv(&std::fs::read_to_string(set.join("qrels/dev.tsv")).unwrap()).unwrap();
    for row in rows.split(',') {
        let trec = std::fs::read_to_string(run.join(format!("rows/{row}/run.dev.trec")))
            .unwrap_or_else(|e| panic!("{row}: {e}"));
        let (mean, _) = ernie_search::metrics::evaluate(&qrels, &ernie_search::metrics::parse_trec_run(&trec).unwrap());
        let result: serde_json::Value =
            serde_json::from_slice(&std::fs::read(run.join(format!("rows/{row}/result.json"))).unwrap()).unwrap();
        assert!(
            (mean.mrr_10 - result["scores"]["mrr_10"].as_f64().unwrap()).abs() < 1e-6,
            "{row}: run and result disagree"
        );
    }
    let line = |label: &str| {
        b.lines()
            .find(|l| l.starts_with(&format!("| {label} |")))
            .unwrap_or_else(|| panic!("no {label} row: {b}"))
            .to_string()
    };
    assert!(line("DE + SOFD (LI -> DE)").contains("] vs de |"), "{b}");
    assert!(line("cascade, Q8_0 export").contains("] vs cascade |"), "{b}");
    assert!(line("3-layer: cascade 6-layer LI -> LI -> DE").contains("] vs l3-de |"), "{b}");
    assert!(!line("DE alone").contains(" vs "), "{b}");
    // The smaller rows take [ablate.small]'s budget; the deep row learns from
    // the trained cascade row's LI (its own loss term, non-zero).
    let deep = metrics(&run.join("rows/l3-deep"));
    assert_eq!(deep.last().unwrap()["step"], 3, "{deep:?}");
    assert_eq!(metrics(&run.join("rows/cascade")).last().unwrap()["step"], 6);
    assert!(deep.iter().all(|m| m["kl_deep_li"].as_f64().is_some_and(|v| v.is_finite() && v > 0.0)), "{deep:?}");
    assert!(!metrics(&run.join("rows/l3-de"))[0].as_object().unwrap().contains_key("kl_deep_li"));
    let mse = metrics(&run.join("rows/l3-deep-mse"));
    assert!(
        mse.iter()
            .all(|m| m["mse_deep_de"].as_f64().is_some_and(|v| v.is_finite() && v > 0.0)
                && m.get("kl_deep_li").is_none()),
        "{mse:?}"
    );
    // [ablate] small_teacher_weight weighs the teacher's term in the total.
    for m in &mse {
        let (l, de, t) = (m["loss"].as_f64().unwrap(), m["l_de"].as_f64().unwrap(), m["mse_deep_de"].as_f64().unwrap());
        assert!((l - (de + 5.0 * t)).abs() < 1e-4 * l.abs().max(1.0), "{m:?}");
    }
    assert!(!b.contains("direct CE"), "rows not asked for ran");
    assert!(run.join("li-head-L2/model.safetensors").exists(), "the shared LI head was not trained");
    assert!(
        fails(&["ablate", "--recipe", s(&r), "--run", s(&run), "--rows", "cascade,nope"]).contains("no row \"nope\"")
    );
    // A deep row whose teacher row has not run says which row to run.
    let e = fails(&[
        "ablate",
        "--recipe",
        s(&r),
        "--run",
        s(&tmp.path().join("ab2")),
        "--rows",
        "l3-deep",
        "--small-layers",
        "1",
    ]);
    assert!(e.contains("taught by row cascade"), "{e}");

    // The deep teacher's cached, re-padded token vectors score exactly what
    // the teacher scores on the batch encoded whole.
    {
        use ernie_search_train::{commands, model, recipe::Recipe, stages};
        let mut ctx = stages::Context::open(Recipe::load(&r).unwrap(), &run, tmp.path()).unwrap();
        ctx.data.load_negatives(&run.join("negatives-init.jsonl")).unwrap();
        let layers = ctx.init_cfg.num_hidden_layers;
        let src = run.join("rows/cascade");
        let mut deep = stages::DeepTeacher::load(&ctx, &src, layers).unwrap();
        let mut params = commands::student_params(&ctx, layers, Some(&src)).unwrap();
        let student = ctx.student(&mut params, layers).unwrap();
        for index in 0..3 {
            let batch = ctx.data.batch(3, index, 4, 2);
            let (cands, _, _) = ctx.data.candidates(&batch);
            let got: Vec<Vec<f32>> = deep.scores(&ctx, &batch, &cands).unwrap().to_vec2().unwrap();
            let q = student.encode(&params, &ctx.query_batch(&batch).unwrap(), true).unwrap();
            let p = student.encode(&params, &ctx.passage_batch(&cands).unwrap(), true).unwrap();
            let want: Vec<Vec<f32>> = model::li_scores(&q, &p).unwrap().to_vec2().unwrap();
            for (g, w) in got.iter().flatten().zip(want.iter().flatten()) {
                assert!((g - w).abs() < 1e-4, "{got:?} vs {want:?}");
            }
            let (tq, tp) = deep.de_vectors(&ctx, &batch, &cands).unwrap();
            for (t, e) in [(tq, &q.de), (tp, &p.de)] {
                let diff = (t - e).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
                assert!(diff < 1e-5, "cached DE vectors differ by {diff}");
            }
        }
        assert!(deep.encoded > 0 && deep.encoded < 3 * (4 + 12), "texts are encoded once: {}", deep.encoded);
    }
    // Finished rows are cached: a second run trains nothing.
    let again = ok(&["ablate", "--recipe", s(&r), "--run", s(&run), "--rows", rows, "--small-layers", "1"]);
    assert!(!again.contains("windows in"), "{again}");
    // A row asked for alone is still compared with its peer from an earlier command.
    let alone = ok(&["ablate", "--recipe", s(&r), "--run", s(&run), "--rows", "cascade", "--small-layers", "1"]);
    assert!(alone.contains("] vs de |"), "{alone}");

    // The probe reranks the same BM25 candidates with every scorer, the
    // 1-layer row included: R@20 (all 8 candidates) is the same for all.
    let students = format!("init,{},{}", s(&run.join("rows/de")), s(&run.join("rows/l3-de")));
    let out = ok(&[
        "probe",
        "--recipe",
        s(&r),
        "--run",
        s(&run),
        "--students",
        &students,
        "--init-li",
        s(&run.join("li-head-L2")),
        "--ce",
        s(&run.join("ce")),
        "--queries",
        "5",
        "--depth",
        "8",
    ]);
    let table: Vec<Vec<&str>> = out
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| scorer"))
        .map(|l| l.split(" | ").collect())
        .collect();
    assert_eq!(table.len(), 1 + 3 * 2 + 1, "BM25, DE and LI of 3 students, the CE: {out}");
    assert!(
        table[1][0].contains("initial model: DE")
            && table[6][0].contains("rows/l3-de: LI")
            && table[7][0].contains("cross-encoder"),
        "{out}"
    );
    assert!(table.iter().all(|row| row[4] == table[0][4]), "every scorer reranks the same candidates: {out}");
    assert!(fails(&["probe", "--recipe", s(&r), "--run", s(&run), "--students", s(&tmp.path().join("nowhere"))])
        .contains("cannot read"));

    // The LI temperature calibration measures the very KL the SOFD row logged
    // at its first step (initial weights, the shared LI head, batches 0 and 1).
    let out = ok(&[
        "calibrate",
        "--recipe",
        s(&r),
        "--run",
        s(&run),
        "--init-li",
        s(&run.join("li-head-L2")),
        "--tau-li",
        "2,1,0.5",
        "--batches",
        "2",
    ]);
    let kl = |tau: &str| -> f64 {
        let line =
            out.lines().find(|l| l.starts_with(&format!("| {tau} |"))).unwrap_or_else(|| panic!("no tau {tau}: {out}"));
        line.split(" | ").nth(1).unwrap().split_whitespace().next().unwrap().parse().unwrap()
    };
    let logged = metrics(&run.join("rows/sofd"))[0]["kl_li_de"].as_f64().unwrap();
    assert!((kl("1") - logged).abs() < 1e-3, "calibrate {} vs logged {logged}: {out}", kl("1"));
    assert_eq!(out.matches("(smallest)").count(), 1, "{out}");
    assert!(fails(&["calibrate", "--recipe", s(&r), "--run", s(&run), "--tau-li", "0"]).contains("must be positive"));
}

#[test]
fn table_ablate_trains_every_row_and_caches_its_teachers() {
    let tmp = tempfile::tempdir().unwrap();
    let (ck, set) = (checkpoint(tmp.path()), beir(tmp.path()));
    let r = recipe(tmp.path(), &ck, &set, "", 4);
    let text = std::fs::read_to_string(&r).unwrap() + "[ablate]\nli_head_steps = 3\n";
    std::fs::write(&r, text).unwrap();
    let model = tmp.path().join("m.gguf");
    ok(&["convert", "--checkpoint", s(&ck), "--out", s(&model), "--max-query-len", "12", "--max-passage-len", "24"]);
    let index = tmp.path().join("idx");
    ok(&["index", s(&set.join("corpus.jsonl")), "--model", s(&model), "--out", s(&index), "--no-table"]);
    let (run, report) = (tmp.path().join("tab"), tmp.path().join("tab.md"));
    let args = |depth: &str| {
        let mut a: Vec<String> = ["table", "ablate", "--recipe", s(&r), "--run", s(&run), "--model", s(&model)]
            .iter()
            .map(|x| x.to_string())
            .collect();
        a.extend(
            ["--index", s(&index), "--depth", depth, "--steps", "6", "--dims", "8", "--probe-queries", "5"]
                .map(String::from),
        );
        a.extend(["--out".to_string(), s(&report).to_string()]);
        a
    };
    let call = |depth: &str| {
        let a = args(depth);
        ok(&a.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let tables = tmp.path().join("tables");
    let mut first = args("4");
    first.extend(["--tables".to_string(), s(&tables).to_string()]);
    let out = ok(&first.iter().map(String::as_str).collect::<Vec<_>>());
    // Each full-dimension row's table is a table file of the index's encoder.
    for slug in ["init", "de", "de-kl", "li", "ce", "cascade"] {
        assert!(tables.join(format!("{slug}.tbl")).exists(), "{slug}.tbl missing");
    }
    let t = s(&tables.join("cascade.tbl")).to_string();
    let eval = ok(&["table", "eval", "--index", s(&index), "--table", &t, "--data", s(&set), "--split", "dev"]);
    assert!(eval.contains("table"), "{eval}");
    // The teachers were trained and their scores cached in the run folder.
    for f in ["ce/model.safetensors", "li-head-L2/model.safetensors", "table-teachers.json"] {
        assert!(run.join(f).exists(), "{f} missing: {out}");
    }
    let md = std::fs::read_to_string(&report).unwrap();
    let rows: Vec<&str> = md.lines().filter(|l| l.starts_with("| ") && !l.starts_with("| table taught by")).collect();
    for label in
        ["no training", "DE alone", "KL(DE)", "KL(LI) (SOFD", "KL(CE) (direct", "the cascade's terms", "8 dims"]
    {
        assert!(rows.iter().any(|l| l.contains(label)), "no {label:?} row in\n{md}");
    }
    // Paired against the DE-alone row: every taught row but DE alone itself.
    let paired = rows.iter().filter(|l| l.contains(" [")).count();
    assert_eq!(paired, 6, "{md}");
    assert!(md.contains("the CE (the run's)"), "the probe: {md}");
    let teachers = std::fs::metadata(run.join("table-teachers.json")).unwrap().modified().unwrap();
    call("4");
    assert_eq!(std::fs::metadata(run.join("table-teachers.json")).unwrap().modified().unwrap(), teachers, "reused");
    // Another depth scores the candidates again; a depth past the corpus is refused.
    call("3");
    let cached: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("table-teachers.json")).unwrap()).unwrap();
    assert!(cached["candidates"].as_array().unwrap().iter().all(|c| c.as_array().unwrap().len() == 3));
    let a = args("1000");
    let err = fails(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(err.contains("--depth 1000"), "{err}");
    // A KL weight that is not a finite number >= 0 is refused before any work.
    for kl in ["--kl=-1", "--kl=NaN"] {
        let mut a = args("3");
        a.push(kl.to_string());
        let err = fails(&a.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(err.contains("a KL term's weight is a finite number"), "{kl}: {err}");
    }
}

/// `scripts/gpu-run.sh` (issue 22's device script) on the CPU, as the device
/// would run it: the bundle packed by `scripts/gpu-pack.sh` (f16 weights), every
/// step to the end, the results where the device tool returns them; and without
/// a GPU it stops at once, saying so.
#[test]
fn the_gpu_script_dry_runs_on_the_cpu() {
    let tmp = tempfile::tempdir().unwrap();
    let (ck, set) = (checkpoint(tmp.path()), beir(tmp.path()));
    let r = recipe(tmp.path(), &ck, &set, "", 4);
    let text =
        std::fs::read_to_string(&r).unwrap() + "[ablate]\nli_head_steps = 3\n[ablate.small]\nsteps = 3\nbatch = 4\n";
    std::fs::write(&r, text).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let bundle = tmp.path().join("gpu");
    let pack = Command::new("bash")
        .arg(root.join("scripts/gpu-pack.sh"))
        .args(["--bin", env!("CARGO_BIN_EXE_ernie-search"), "--model", s(&ck), "--data", s(&set), "--out", s(&bundle)])
        .env("GPU_PACK_XZ_LEVEL", "0")
        .output()
        .unwrap();
    assert!(pack.status.success(), "gpu-pack: {}", String::from_utf8_lossy(&pack.stderr));
    let script = |out: &Path, bundle: &Path, args: &[&str], smi: &str| {
        Command::new("bash")
            .arg(root.join("scripts/gpu-run.sh"))
            .args(args)
            .env("BUNDLE", bundle)
            .env("OUT", out)
            .env("RECIPE", &r)
            .env("ROWS", "zero-shot,de,cascade,sofd,direct,l3-de,l3-cascade")
            .env("SMALL_LAYERS", "1")
            .env("BENCH_STEPS", "1")
            .env("BENCH_QUERY_LEN", "12")
            .env("BENCH_PASSAGE_LEN", "24")
            .env("BUDGET_S", "600")
            .env("ERNIE_SEARCH_CACHE", "/nonexistent-cache")
            .env("NVIDIA_SMI", smi)
            .output()
            .unwrap()
    };

    let out = tmp.path().join("out");
    let o = script(&out, &bundle, &["--dry-run"], "nvidia-smi");
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap_or_default();
    assert!(o.status.success(), "gpu-run --dry-run: {summary}\n{}", String::from_utf8_lossy(&o.stderr));
    for line in ["| bench-ours-cpu | ok |", "| ablate | ok |", "| probe | ok |", "finished in"] {
        assert!(
            summary.contains(line),
            "{line} missing: {summary}\n{}",
            std::fs::read_to_string(out.join("log.txt")).unwrap()
        );
    }
    // The peer's step ran and says how it ended (no torch here is a failure of its own, not the run's).
    assert!(summary.contains("| bench-st-cpu | "), "{summary}");
    let bench = std::fs::read_to_string(out.join("bench.jsonl")).unwrap();
    let ours: serde_json::Value = serde_json::from_str(bench.lines().next().unwrap()).unwrap();
    assert_eq!(ours["engine"], "bench-ours-cpu");
    assert!(ours["r"]["samples_per_s"].as_f64().is_some_and(|v| v > 0.0), "{bench}");
    let table = std::fs::read_to_string(out.join("table.md")).unwrap();
    assert!(table.contains("Evaluated on set `dev`"), "{table}");
    for label in
        ["zero-shot init", "DE alone", "DE + SOFD", "direct CE -> DE", "cascade CE -> LI -> DE", "3-layer: cascade"]
    {
        assert!(table.contains(label), "{label} missing: {table}");
    }
    let probe = std::fs::read_to_string(out.join("probe.md")).unwrap();
    assert!(probe.contains("cross-encoder"), "{probe}");
    let recipe = std::fs::read_to_string(out.join("recipe.toml")).unwrap();
    assert!(recipe.starts_with("device = \"cpu\"\n") && !recipe.contains(s(&set)), "{recipe}");
    let listed = Command::new("tar").arg("-tzf").arg(out.join("runs.tar.gz")).output().unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.contains("rows/cascade/run.dev.trec") && listed.contains("rows/l3-cascade/result.json"), "{listed}");
    assert!(!listed.contains(".safetensors"), "weights went back: {listed}");
    // At most 8 files come back from the device, none in a sub-folder.
    let files: Vec<_> = std::fs::read_dir(&out).unwrap().map(|e| e.unwrap()).collect();
    assert!(files.len() <= 8 && files.iter().all(|e| e.file_type().unwrap().is_file()), "{files:?}");

    // bench train refuses a shape the model cannot hold rather than indexing past its tables.
    let e = fails(&["bench", "train", "--checkpoint", s(&ck), "--passage-len", "65", "--steps", "1"]);
    assert!(e.contains("does not fit the model's 64 positions"), "{e}");

    // No GPU: stopped within seconds, saying why, with the summary kept.
    let t0 = Instant::now();
    let no_gpu = tmp.path().join("no-gpu");
    let o = script(&no_gpu, &bundle, &[], "/nonexistent/nvidia-smi");
    assert_eq!(o.status.code(), Some(3));
    assert!(t0.elapsed() < Duration::from_secs(60));
    let summary = std::fs::read_to_string(no_gpu.join("summary.md")).unwrap();
    assert!(summary.contains("stopped: no GPU"), "{summary}");
    // No bundle: named, with the command that makes one.
    let o = script(&tmp.path().join("no-bundle"), &tmp.path().join("empty"), &["--dry-run"], "nvidia-smi");
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stdout).contains("scripts/gpu-pack.sh"));
}
