#!/usr/bin/env node
// Browser parity test: the wasm build, run in headless Chromium, must
// reproduce the native library's embeddings and rankings on the fixture
// written by `cargo run --release --example wasm_fixture -- target/wasm-fixture`,
// and refuse bad input with clear messages.
//
//   node tests/browser/wasm_parity.mjs [--fixture target/wasm-fixture] [--chromium /usr/bin/chromium]
//
// Normally run through scripts/test-browser.sh, which builds everything first.
// Exits non-zero, saying why, on any failure.

import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join, resolve, sep } from "node:path";
import { launch, root, serveFiles, suite } from "./harness.mjs";

const t = suite("wasm_parity");

const EMBED_TOL = 1e-4; // max |wasm - native| over every embedding value
const SCORE_TOL = 1e-4; // max |wasm - native| over top-k scores
const QUANT_TOL = 1e-3; // the same, for a Q8_0 row whose f32 twin is within EMBED_TOL
const FUSED_TOL = 1e-3;
const GPU_TOL = 1e-3; // max |WebGPU - native| over every embedding value (the issue's bound for Q8_0) // convex fusion divides by a score range: small dense differences grow
const TIE_EPS = 1e-6; // scores this close count as tied: their order may differ
const PAGE_TIMEOUT_MS = 120_000;

/** A static server for `dir` (the repository root): cross-origin isolated, nothing cached. */
function serve(dir) {
  return serveFiles({
    mount: (path) => [[dir, path]],
    headers: () => ({
      "cache-control": "no-store",
      // Cross-origin isolation: performance.now() then has microsecond
      // resolution instead of 100 us, which the latency numbers need.
      "cross-origin-opener-policy": "same-origin",
      "cross-origin-embedder-policy": "require-corp",
    }),
  });
}

function maxAbsDiff(a, b) {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/**
 * Compares ranked lists. Ids must match position by position, except inside a
 * run of tied native scores (within TIE_EPS), where only the set must match;
 * at the cut, a wasm hit outside the native list must tie with its last score.
 * Returns [problems, tolerated tie swaps, max score difference].
 */
function compareRanking(want, got, tol = SCORE_TOL) {
  const problems = [];
  let swaps = 0;
  if (got.length !== want.length) return [[`${got.length} hits instead of ${want.length}`], 0, Infinity];
  const scoreDiff = maxAbsDiff(want.map((h) => h.score), got.map((h) => h.score));
  if (scoreDiff > tol) problems.push(`score difference ${scoreDiff.toExponential(2)} > ${tol}`);
  for (let i = 0; i < want.length; ) {
    let j = i + 1;
    while (j < want.length && Math.abs(want[j].score - want[i].score) <= TIE_EPS) j++;
    const w = want.slice(i, j).map((h) => h.id);
    const g = got.slice(i, j).map((h) => h.id);
    if (w.join() !== g.join()) {
      const atCut = j === want.length;
      const ok = g.every((id, n) => w.includes(id) || (atCut && Math.abs(got[i + n].score - want[j - 1].score) <= TIE_EPS));
      if (ok && (j - i > 1 || atCut)) swaps++;
      else problems.push(`rank ${i + 1}${j - i > 1 ? `-${j}` : ""}: native ${w.join(",")} vs wasm ${g.join(",")}`);
    }
    i = j;
  }
  for (const h of got) {
    if (!Number.isInteger(h.ordinal) || typeof h.id !== "string") problems.push(`malformed hit ${JSON.stringify(h)}`);
  }
  return [problems, swaps, scoreDiff];
}

async function main() {
  const opt = t.args({ fixture: "target/wasm-fixture" });
  const fixtureDir = resolve(root, opt.fixture);
  if (!fixtureDir.startsWith(root + sep)) t.die(`the fixture directory must be inside the repository (${root}), since the page is served from there`);
  for (const f of ["expected.json", "tiny.gguf", "tiny-f32.gguf", "other.gguf", "tiny.index", "lexical.meta"]) {
    if (!existsSync(join(fixtureDir, f))) t.die(`${join(opt.fixture, f)} is missing; run: cargo run --release --example wasm_fixture -- ${opt.fixture}`);
  }
  t.needPkg();
  t.needChromium(opt.chromium);
  const expected = JSON.parse(await readFile(join(fixtureDir, "expected.json"), "utf8"));

  const server = await serve(root);
  const { port } = server.address();
  let browser;
  const logs = [];
  let result;
  try {
    // WebGPU on SwiftShader (a CPU emulation) for the GPU backend's parity.
    browser = await launch(opt.chromium, { webgpu: true, args: ["--headless"] });
    const { context } = browser;
    const page = context.pages()[0] ?? (await context.newPage());
    page.on("console", (m) => logs.push(`console.${m.type()}: ${m.text()}`));
    page.on("pageerror", (e) => logs.push(`pageerror: ${e.message}`));
    page.on("requestfailed", (r) => logs.push(`requestfailed: ${r.url()} ${r.failure()?.errorText}`));
    page.on("response", (r) => r.status() >= 400 && logs.push(`HTTP ${r.status()}: ${r.url()}`));
    const rel = fixtureDir.slice(root.length + 1).split(sep).join("/");
    const url = `http://127.0.0.1:${port}/tests/browser/wasm_parity.html?fixture=${encodeURIComponent(rel)}`;
    await page.goto(url);
    try {
      await page.waitForFunction(() => window.parityResult || window.parityError, null, { timeout: PAGE_TIMEOUT_MS });
    } catch (e) {
      throw new Error(`the page did not finish within ${PAGE_TIMEOUT_MS / 1000}s`);
    }
    const error = await page.evaluate(() => window.parityError);
    if (error) throw new Error(`the page failed: ${error}`);
    result = await page.evaluate(() => window.parityResult);
  } catch (e) {
    console.error(`wasm_parity: FAIL: ${e.message}`);
    if (logs.length) console.error("browser log:\n  " + logs.join("\n  "));
    process.exitCode = 1;
    return;
  } finally {
    await browser?.close();
    server.close();
  }

  const failures = [];
  const check = (ok, msg) => ok || failures.push(msg);

  // Model card and index description.
  check(result.dim === expected.dim, `dim ${result.dim} != ${expected.dim}`);
  check(result.info?.model?.fingerprint === expected.fingerprint, `info().model.fingerprint ${result.info?.model?.fingerprint} != ${expected.fingerprint}`);
  check(result.info?.index?.count === expected.count, `info().index.count ${result.info?.index?.count} != ${expected.count}`);
  check(result.info?.index?.dtype === "f32", `info().index.dtype ${result.info?.index?.dtype} != f32`);
  check(result.bare.hasIndex === false && result.bare.info?.index === null, "an engine loaded without an index reports one");

  // Embeddings. Each row of the Q8_0 model must agree within EMBED_TOL, or,
  // when its f32 twin agrees within EMBED_TOL (so the arithmetic matches),
  // within QUANT_TOL: a Q8_0 matmul rounds its activations to 8 bits, and a
  // last-bit difference upstream can flip one rounding (see wasm_fixture.rs).
  const rows = [];
  const texts = expected.passage_batch.texts;
  texts.forEach((t, i) =>
    rows.push({
      what: `passage ${JSON.stringify(t)}`,
      d: maxAbsDiff(expected.passage_batch.embeddings[i], result.batch[i] ?? []),
      twin: maxAbsDiff(expected.f32_twin.passage_batch[i], result.twin.batch[i] ?? []),
    }),
  );
  expected.queries.forEach((q, i) =>
    rows.push({
      what: `query ${JSON.stringify(q.text)}`,
      d: maxAbsDiff(q.embedding, result.queries[i]?.embedding ?? []),
      twin: maxAbsDiff(expected.f32_twin.queries[i], result.twin.queries[i] ?? []),
    }),
  );
  rows.push({ what: "query 0, engine without an index", d: maxAbsDiff(expected.queries[0].embedding, result.bare.query), twin: 0 });
  if (result.twin.batch.length !== texts.length) failures.push(`f32 twin: ${result.twin.batch.length} passage rows instead of ${texts.length}`);
  const maxOf = (xs) => xs.reduce((m, x) => Math.max(m, x), 0);
  const passageDiff = maxOf(rows.slice(0, texts.length).map((r) => r.d));
  const queryDiff = maxOf(rows.slice(texts.length).map((r) => r.d));
  const twinDiff = maxOf(rows.map((r) => r.twin));
  const flips = rows.filter((r) => r.d > EMBED_TOL && r.d <= QUANT_TOL && r.twin <= EMBED_TOL);
  for (const r of rows) {
    if (process.env.PARITY_VERBOSE) console.log(`  q8_0 ${r.d.toExponential(2)}  f32 ${r.twin.toExponential(2)}  ${r.what}`);
    check(r.twin <= EMBED_TOL, `${r.what}: the f32 twin's embedding differs by ${r.twin.toExponential(2)} (> ${EMBED_TOL})`);
    check(r.d <= EMBED_TOL || flips.includes(r), `${r.what}: embedding differs by ${r.d.toExponential(2)} (> ${EMBED_TOL}${r.twin <= EMBED_TOL ? `, and > ${QUANT_TOL} even allowing for Q8_0 rounding flips` : ""})`);
  }

  // Rankings.
  let swaps = 0;
  let scoreDiff = 0;
  let rankProblems = 0;
  expected.queries.forEach((q, i) => {
    const [problems, s, d] = compareRanking(q.top, result.queries[i]?.top ?? []);
    swaps += s;
    scoreDiff = Math.max(scoreDiff, d);
    rankProblems += problems.length;
    problems.forEach((p) => failures.push(`top-${expected.k} for ${JSON.stringify(q.text)}: ${p}`));
  });
  const [afterProblems] = compareRanking(expected.queries[0].top, result.after);
  afterProblems.forEach((p) => failures.push(`search after the bad-input checks: ${p}`));
  const [afterHybrid] = compareRanking(expected.queries[0].convex.hits, result.afterHybrid.hits, FUSED_TOL);
  afterHybrid.forEach((p) => failures.push(`hybrid search after the bad-input checks: ${p}`));

  // Lexical and hybrid rankings, and the mode each answer reports.
  let fusedProblems = 0;
  expected.queries.forEach((q, i) => {
    const got = result.queries[i] ?? {};
    const label = (what) => `${what} top-${expected.k} for ${JSON.stringify(q.text)}`;
    if (q.lexical === null) check(got.lexical === null && /no keyword/.test(got.lexicalError), `${label("lexical")}: expected a refusal, got ${JSON.stringify(got.lexical ?? got.lexicalError)}`);
    else compareRanking(q.lexical, got.lexical ?? [])[0].forEach((p) => (fusedProblems++, failures.push(`${label("lexical")}: ${p}`)));
    for (const [name, tol] of [["rrf", SCORE_TOL], ["convex", FUSED_TOL]]) {
      const [w, g] = [q[name], got[name] ?? {}];
      check(w.mode === g.mode && (w.note ?? null) === (g.note ?? null), `${label(name)}: mode ${g.mode} / note ${g.note} instead of ${w.mode} / ${w.note}`);
      compareRanking(w.hits, g.hits ?? [], tol)[0].forEach((p) => (fusedProblems++, failures.push(`${label(name)}: ${p}`)));
    }
  });
  const added = result.added;
  check(added.counts[0] === 10 && added.counts[1] === expected.count, `addPassages counts ${added.counts} (want 10, ${expected.count})`);
  check(added.hybrid === expected.k, `hybrid search over added passages gave ${added.hybrid} hits`);
  expected.queries.forEach((q, i) => {
    if (q.lexical === null) check(added.lexical[i] === null, `added passages: lexical search of ${JSON.stringify(q.text)} should be refused`);
    else compareRanking(q.lexical, added.lexical[i] ?? [])[0].forEach((p) => failures.push(`added passages, lexical top-${expected.k} for ${JSON.stringify(q.text)}: ${p}`));
  });
  const lazy = result.lazy;
  check(lazy.loadedAfterFirst === lazy.first.length && lazy.first.length < lazy.blocks, `lazy blocks: the first query needed ${lazy.first.length} of ${lazy.blocks} blocks, ${lazy.loadedAfterFirst} were loaded`);
  check(result.infoAfter?.lexical?.passages === expected.count && result.infoAfter?.fusion?.alpha === expected.alpha, `info() after loading BM25: ${JSON.stringify(result.infoAfter?.lexical)} fusion ${JSON.stringify(result.infoAfter?.fusion)}`);
  check(result.info?.index?.rows === expected.rows, `info().index.rows ${result.info?.index?.rows} != ${expected.rows} (windows)`);

  // WebGPU backend: embeddings (within the issue's 1e-3) and dense top-10
  // against the native dense kernel, whose arithmetic (dequantized weights,
  // f32 activations) the GPU kernels share.
  const gpu = result.gpu ?? {};
  const requireGpu = process.env.ERNIE_SEARCH_REQUIRE_GPU === "1";
  let gpuSummary;
  if (gpu.error) failures.push(`WebGPU engine failed: ${gpu.error}`);
  else if (gpu.backend?.backend !== "gpu") {
    const why = `WebGPU backend not used: ${JSON.stringify(gpu.backend)}`;
    if (requireGpu) failures.push(`${why} (ERNIE_SEARCH_REQUIRE_GPU=1)`);
    else console.error(`\n!!!!!!!! wasm_parity: SKIPPED the WebGPU checks: ${why} !!!!!!!!\n`);
    check(gpu.backend?.backend === "cpu" && gpu.backend?.fallback, `no GPU and no fallback reason: ${JSON.stringify(gpu.backend)}`);
    gpuSummary = `WebGPU: not available (${gpu.backend?.fallback})`;
  } else {
    const g = expected.gpu;
    const dPass = maxOf(texts.map((_, i) => maxAbsDiff(g.passage_batch[i], gpu.batch[i] ?? [])));
    const dQuery = maxOf(expected.queries.map((_, i) => maxAbsDiff(g.queries[i].embedding, gpu.queries[i]?.embedding ?? [])));
    const dQuant = maxOf(texts.map((_, i) => maxAbsDiff(expected.passage_batch.embeddings[i], gpu.batch[i] ?? [])));
    check(dPass <= GPU_TOL && dQuery <= GPU_TOL, `WebGPU embeddings differ from the native dense kernel by ${dPass.toExponential(2)} / ${dQuery.toExponential(2)} (> ${GPU_TOL})`);
    // Not asserted: the quantized CPU kernel rounds activations to 8 bits per
    // block (its own error vs exact arithmetic), which the GPU does not.
    let gpuSwaps = 0;
    expected.queries.forEach((q, i) => {
      const [problems, s] = compareRanking(g.queries[i].top, gpu.queries[i]?.top ?? []);
      gpuSwaps += s;
      problems.forEach((p) => failures.push(`WebGPU top-${expected.k} for ${JSON.stringify(q.text)}: ${p}`));
    });
    check(gpu.hybrid === expected.k, `WebGPU hybrid search gave ${gpu.hybrid} hits`);
    check(gpu.backendAfter?.backend === "gpu" && gpu.backendAfter?.scan === "gpu" && !gpu.backendAfter?.fallback, `the WebGPU engine fell back during the test: ${JSON.stringify(gpu.backendAfter)}`);
    check(gpu.info?.backend?.backend === "gpu", `info().backend ${JSON.stringify(gpu.info?.backend)}`);
    check(compareRanking(expected.queries[0].top, gpu.cpuTop ?? [])[0].length === 0, "the GPU engine's sync (CPU) search differs from native");
    const a = gpu.backend.adapter ?? {};
    gpuSummary = `WebGPU (${a.name}, ${a.device_type}, int8 dot4 ${a.int8_dot4}): embeddings vs native dense ${Math.max(dPass, dQuery).toExponential(2)}, (limit ${GPU_TOL}; vs the quantized CPU kernel, which also rounds activations, ${dQuant.toExponential(2)}, not asserted); dense top-${expected.k} for ${expected.queries.length} queries ${failures.some((f) => f.startsWith("WebGPU top")) ? "MISMATCH" : "identical"}${gpuSwaps ? ` (${gpuSwaps} tied runs reordered)` : ""}; load ${gpu.loadMs.toFixed(0)} ms, search ${gpu.searchMs.toFixed(1)} ms (SwiftShader: not a speed figure)`;
  }

  // The int8 kernels: each equals the scalar reference bit for bit inside
  // the browser, and the relaxed-SIMD build gives this build's embeddings
  // exactly.
  const k = result.kernels;
  check(k.simd128.kernel === "fused simd128, 1 thread" && k.simd128.checked > 0, `simd128 build: kernel ${k.simd128.kernel}, ${k.simd128.checked} kernel checks`);
  let relaxedSummary;
  if (result.relaxed.skipped) {
    console.error(`\n!!!!!!!! wasm_parity: SKIPPED the relaxed-SIMD build: ${result.relaxed.skipped} !!!!!!!!\n`);
    relaxedSummary = `relaxed SIMD: skipped (${result.relaxed.skipped})`;
  } else if (result.relaxed.error) {
    failures.push(`the relaxed-SIMD build failed: ${result.relaxed.error}`);
  } else {
    // The build times its two kernels at load and keeps the faster.
    const times = Object.fromEntries([...(k.relaxed.choice ?? "").matchAll(/(relaxed-simd|simd128) ([\d.]+) ms/g)].map((m) => [m[1], Number(m[2])]));
    // (Equal to the printed hundredth, either may have won.)
    const fast = ["relaxed-simd", "simd128"].filter((n) => times[n] === Math.min(times["relaxed-simd"], times.simd128));
    const faster = fast.join(" or ");
    check(Object.keys(times).length === 2 && fast.some((n) => k.relaxed.kernel === `fused ${n}, 1 thread`), `relaxed build: kernel ${k.relaxed.kernel}, chosen by ${JSON.stringify(k.relaxed.choice)}`);
    check(k.relaxed.checked > k.simd128.checked, `relaxed build: ${k.relaxed.checked} kernel checks (the simd128 build: ${k.simd128.checked})`);
    const same = (a, b) => a.length === b.length && a.every((x, i) => Object.is(x, b[i]));
    const differ = [];
    for (const name of ["relaxed-simd", "simd128"]) {
      const run = result.relaxed[name];
      check(run.kernel === `fused ${name}, 1 thread`, `setKernel(${name}): the engine runs ${run.kernel}`);
      differ.push(...run.batch.map((r, i) => !same(r, result.batch[i]) && `${name}: passage ${i}`), ...run.queries.map((r, i) => !same(r, result.queries[i].embedding) && `${name}: query ${i}`));
    }
    check(differ.filter(Boolean).length === 0, `the relaxed-SIMD build's embeddings differ from the simd128 build's: ${differ.filter(Boolean).join(", ")}`);
    check(/no int8 kernel "avx2" in this build; it runs .*relaxed-simd/.test(result.relaxed.refused), `setKernel("avx2") in the browser: ${JSON.stringify(result.relaxed.refused)}`);
    relaxedSummary = `relaxed SIMD: ${k.relaxed.checked} kernel checks (shape x GEMM kernel, and the quantization) equal the scalar reference bit for bit (simd128 build: ${k.simd128.checked}); ${k.relaxed.choice} -> ${faster}; embeddings with either kernel ${differ.filter(Boolean).length ? "DIFFER" : "identical"} to the simd128 build's`;
  }

  // Bad input.
  check(result.hugeK.ok, `search(query, 2**31) should return all ${expected.count} passages, got: ${result.hugeK.message}`);
  for (const b of result.bad) check(b.ok, `${b.label}: expected an error containing ${JSON.stringify(b.substring)}, got: ${b.message}`);

  console.log(`wasm_parity: ${result.userAgent}`);
  console.log(`wasm_parity: init ${result.initMs.toFixed(1)} ms, Engine.load ${result.loadMs.toFixed(1)} ms (model + ${result.info?.index?.count}-passage index)`);
  console.log(`wasm_parity: embeddings, ${texts.length} passages (one batch) + ${expected.queries.length} queries, dim ${result.dim}, max |wasm - native|:`);
  console.log(`  q8_0 model: passages ${passageDiff.toExponential(2)}, queries ${queryDiff.toExponential(2)} (limit ${EMBED_TOL}; ${flips.length} row(s) over it from Q8_0 activation-rounding flips, limit ${QUANT_TOL})`);
  console.log(`  f32 twin:   ${twinDiff.toExponential(2)} (limit ${EMBED_TOL})`);
  console.log(`wasm_parity: top-${expected.k} for ${expected.queries.length} queries: ${rankProblems ? "MISMATCH" : "identical ids"}${swaps ? ` (${swaps} tied runs reordered)` : ""}, max score diff ${scoreDiff.toExponential(2)}`);
  console.log(`wasm_parity: lexical, hybrid (RRF) and hybrid (convex, alpha ${expected.alpha}) top-${expected.k}: ${fusedProblems ? "MISMATCH" : "identical"}; term blocks fetched lazily: ${lazy.first.length} of ${lazy.blocks} for the first query, ${lazy.fetched} over all ${expected.queries.length}`);
  console.log(`wasm_parity: addPassages: ${added.counts[1]} passages indexed in the browser, lexical rankings as the built index`);
  console.log(`wasm_parity: ${gpuSummary}`);
  if (relaxedSummary) console.log(`wasm_parity: ${relaxedSummary}`);
  console.log(`wasm_parity: bad input: ${result.bad.filter((b) => b.ok).length}/${result.bad.length} rejected with the expected message`);
  for (const b of result.bad) console.log(`  ${b.ok ? "ok  " : "FAIL"} ${b.label}: ${b.message}`);
  console.log(`  ${result.hugeK.ok ? "ok  " : "FAIL"} search(query, 2**31) returns every passage: ${result.hugeK.message}`);
  console.log(`wasm_parity: latency (info, not asserted): query encode median ${result.latency.queryEncodeMedianMs.toFixed(3)} ms, search (encode + scan) median ${result.latency.searchMedianMs.toFixed(3)} ms over ${result.latency.runs} queries (timer resolution: ${result.latency.crossOriginIsolated ? "isolated, ~5 us" : "not isolated, 100 us"})`);

  if (failures.length) {
    console.error(`wasm_parity: FAIL (${failures.length}):\n  ` + failures.join("\n  "));
    if (logs.length) console.error("browser log:\n  " + logs.join("\n  "));
    process.exitCode = 1;
  } else {
    console.log("wasm_parity: PASS");
  }
}

t.run(main);
