//! GPU backend vs CPU backend, in one run: batch-encode passages/s and top-10
//! scan latency over a 100k x 384 index (f32, f16, int8), with the bytes/s
//! each scan reaches and its fraction of a memory-bandwidth floor.
//!
//! ```text
//! XDG_RUNTIME_DIR=/tmp VK_ICD_FILENAMES=/usr/share/vulkan/icd.d/lvp_icd.x86_64.json \
//!   cargo run --release --example gpu_bench -- [--passages 100000] [--dim 384] \
//!   [--batch 16] [--words 100] [--model models/minilm-q8.gguf] [--runs 5] [--scan no]
//! ```
//!
//! The floor is `--bandwidth GB/s` when given (a real GPU's datasheet
//! figure), otherwise this machine's measured single-pass host read
//! bandwidth, which is what a software adapter (lavapipe) reads from. On
//! lavapipe/SwiftShader the GPU numbers check plumbing, not speed.

#[cfg(any(target_arch = "wasm32", not(feature = "gpu")))]
fn main() {}

#[cfg(all(not(target_arch = "wasm32"), feature = "gpu"))]
fn main() -> std::process::ExitCode {
    match bench::run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gpu_bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(all(not(target_arch = "wasm32"), feature = "gpu"))]
mod bench {
    use std::time::Instant;

    use ernie_search::backend::block_on;
    use ernie_search::format::model::WeightDType;
    use ernie_search::gpu::{GpuContext, GpuIndex};
    use ernie_search::{Backend, Embedder, FlatIndex, GpuOptions, Kernel, Pooling, VectorDType};

    type R<T> = std::result::Result<T, Box<dyn std::error::Error>>;

    struct Args {
        passages: usize,
        dim: usize,
        batch: usize,
        model: String,
        runs: usize,
        bandwidth: Option<f64>,
        words: usize,
        scan: bool,
    }

    fn args() -> R<Args> {
        let mut a = Args {
            passages: 100_000,
            dim: 384,
            batch: 16,
            model: "models/minilm-q8.gguf".into(),
            runs: 5,
            bandwidth: None,
            words: 100,
            scan: true,
        };
        let v: Vec<String> = std::env::args().skip(1).collect();
        let mut i = 0;
        while i < v.len() {
            let val = v.get(i + 1).ok_or_else(|| format!("{} needs a value", v[i]))?;
            match v[i].as_str() {
                "--passages" => a.passages = val.parse()?,
                "--dim" => a.dim = val.parse()?,
                "--batch" => a.batch = val.parse()?,
                "--model" => a.model = val.clone(),
                "--runs" => a.runs = val.parse()?,
                "--bandwidth" => a.bandwidth = Some(val.parse()?),
                "--words" => a.words = val.parse()?,
                "--scan" => a.scan = val != "no",
                o => return Err(format!("unknown argument {o}").into()),
            }
            i += 2;
        }
        Ok(a)
    }

    fn median(mut v: Vec<f64>) -> f64 {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    }

    fn time<T>(runs: usize, mut f: impl FnMut() -> R<T>) -> R<f64> {
        f()?; // warm-up
        let mut t = Vec::new();
        for _ in 0..runs {
            let s = Instant::now();
            f()?;
            t.push(s.elapsed().as_secs_f64());
        }
        Ok(median(t))
    }

    /// One pass summing a 512 MiB buffer: what a scan can at best read per second.
    fn host_read_bandwidth() -> f64 {
        let v = vec![1u64; 64 << 20];
        let s = Instant::now();
        let mut acc = [0u64; 8];
        for c in v.chunks_exact(8) {
            for i in 0..8 {
                acc[i] = acc[i].wrapping_add(c[i]);
            }
        }
        std::hint::black_box(acc);
        (v.len() * 8) as f64 / s.elapsed().as_secs_f64()
    }

    fn unit_rows(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                let v: Vec<f32> = (0..dim)
                    .map(|_| {
                        s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
                        let mut z = s;
                        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                        ((z ^ (z >> 31)) >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
                    })
                    .collect();
                let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                v.into_iter().map(|x| x / n).collect()
            })
            .collect()
    }

    pub fn run() -> R<()> {
        let a = args()?;
        let ctx = block_on(GpuContext::new(&GpuOptions::default())).ok_or("adapter request timed out")??;
        let rep = ctx.report().clone();
        println!(
            "gpu_bench: adapter {} ({}, {}), driver {}, int8 dot4 {}, max storage binding {} MiB",
            rep.name,
            rep.api,
            rep.device_type,
            rep.driver,
            rep.int8_dot4,
            rep.max_storage_binding >> 20
        );
        if rep.device_type == "cpu" {
            println!("gpu_bench: NOTE: a software adapter (CPU emulation): the GPU figures check correctness and plumbing, not speed");
        }
        let floor_bw = match a.bandwidth {
            Some(gb) => gb * 1e9,
            None => host_read_bandwidth(),
        };
        println!(
            "gpu_bench: bandwidth floor {:.1} GB/s ({})",
            floor_bw / 1e9,
            if a.bandwidth.is_some() { "given" } else { "measured host read, one thread" }
        );

        // Encoding.
        let (model, name) = match std::fs::read(&a.model) {
            Ok(b) => (b, a.model.clone()),
            Err(_) => (
                ernie_search::synthetic::tiny_model(7, WeightDType::Q8_0, Pooling::Mean)?,
                "tiny synthetic Q8_0 (no --model file)".to_string(),
            ),
        };
        let words = [
            "the",
            "river",
            "city",
            "capital",
            "france",
            "paris",
            "king",
            "queen",
            "battle",
            "music",
            "album",
            "population",
            "century",
            "language",
            "island",
            "mountain",
        ];
        let texts: Vec<String> = (0..a.batch)
            .map(|i| (0..a.words).map(|j| words[(i * 7 + j * 3 + j / 5) % words.len()]).collect::<Vec<_>>().join(" "))
            .collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let cpu = Embedder::from_bytes_with(&model, Kernel::default())?;
        // Software adapters are slow: wait up to 10 minutes per submission.
        let opts = GpuOptions { timeout: std::time::Duration::from_secs(600), ..Default::default() };
        let gpu = block_on(Embedder::load(&model, Kernel::default(), Backend::Gpu, &opts)).ok_or("timeout")??;
        if gpu.backend().backend != "gpu" {
            return Err(format!("the GPU encoder did not start: {:?}", gpu.backend().fallback).into());
        }
        let tokens = cpu.tokenize_passages(&refs)?.iter().map(|t| t.ids.len()).max().unwrap_or(0);
        let runs = a.runs.clamp(1, 3);
        let tc = time(runs, || Ok(cpu.embed_passages(&refs)?))?;
        let tg = time(runs, || Ok(gpu.embed_passages(&refs)?))?;
        let (ec, eg) = (cpu.embed_passages(&refs)?, gpu.embed_passages(&refs)?);
        let diff = ec.iter().flatten().zip(eg.iter().flatten()).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
        println!("\n## batch encode: {name}, batch {} x {tokens} tokens", a.batch);
        println!("| backend | passages/s | batch time |");
        println!("|---|---:|---:|");
        println!("| CPU (candle, {:?}) | {:.1} | {:.3} s |", Kernel::default(), a.batch as f64 / tc, tc);
        println!("| GPU ({}) | {:.1} | {:.3} s |", rep.name, a.batch as f64 / tg, tg);
        if gpu.backend().backend != "gpu" {
            return Err(format!("the GPU encoder fell back during the run: {:?}", gpu.backend().fallback).into());
        }
        println!("GPU/CPU speed {:.2}x; max |gpu - cpu| embedding difference {diff:.2e}", tc / tg);
        if !a.scan {
            return Ok(());
        }

        // Scans.
        println!("\n## top-10 scan over {} x {}", a.passages, a.dim);
        println!("| dtype | bytes | CPU ms | CPU GB/s | GPU ms | GPU GB/s | GPU % of floor | GPU batch-16 ms/query | chunks | top-10 same |");
        println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|");
        let rows = unit_rows(a.passages, a.dim, 3);
        let qs = unit_rows(16, a.dim, 4);
        let qrefs: Vec<&[f32]> = qs.iter().map(Vec::as_slice).collect();
        for dtype in [VectorDType::F32, VectorDType::F16, VectorDType::Int8] {
            let mut index = FlatIndex::new(a.dim, dtype, "bench")?;
            for (i, r) in rows.iter().enumerate() {
                index.push(&format!("p{i}"), r)?;
            }
            let bytes = index.scan_bytes() as f64;
            let gi = block_on(GpuIndex::upload(ctx.clone(), &index)).ok_or("upload timed out")??;
            let mut scores = Vec::new();
            let tc = time(a.runs, || Ok(index.search_with(&qs[0], 10, &mut scores)?))?;
            let tg = time(a.runs, || Ok(block_on(gi.search(&qrefs[..1], 10, index.ids())).ok_or("timeout")??))?;
            let tb = time(a.runs.min(3), || Ok(block_on(gi.search(&qrefs, 10, index.ids())).ok_or("timeout")??))?
                / qrefs.len() as f64;
            let same = qs.iter().take(4).all(|q| {
                let c: Vec<usize> =
                    index.search(q, 10).map(|h| h.iter().map(|h| h.ordinal).collect()).unwrap_or_default();
                let g: Vec<usize> = block_on(gi.search(&[q], 10, index.ids()))
                    .and_then(|r| r.ok())
                    .map(|mut v| v.remove(0).iter().map(|h| h.ordinal).collect())
                    .unwrap_or_default();
                c == g
            });
            println!(
                "| {} | {:.1} MB | {:.2} | {:.2} | {:.2} | {:.2} | {:.1}% | {:.2} | {} | {} |",
                dtype.as_str(),
                bytes / 1e6,
                tc * 1e3,
                bytes / tc / 1e9,
                tg * 1e3,
                bytes / tg / 1e9,
                100.0 * (bytes / tg) / floor_bw,
                tb * 1e3,
                gi.chunks(),
                if same { "yes" } else { "NO" },
            );
        }
        Ok(())
    }
}
