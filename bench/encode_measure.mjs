// The encode-speed measurement the wasm benches share, run where the engines
// live: Node (bench/wasm_encode.mjs), a page (its --chromium) or a Web Worker
// (bench/threads/worker.js, for the threaded build).

/**
 * Every build of `builds` ([name, glue module, wasm bytes or URL or
 * undefined: the glue's default]; a name `build:KERNEL` forces that int8
 * kernel with `setKernel`) encodes the same texts, taking turns query
 * by query and batch by batch, so that the machine's noise falls on all
 * alike: the median of 100 query encodes (12-word windows) and passages/s
 * (median of 3 batches of 16), after a warm-up. `threads` > 0 starts each
 * glue's thread pool first; `check` adds the vectors of 4 texts (to compare
 * builds bit for bit).
 */
export async function measure(builds, model, jsonl, { threads = 0, check = false } = {}) {
  const engines = [];
  for (const [name, glue, wasm] of builds) {
    const { memory } = await glue.default(wasm === undefined ? undefined : { module_or_path: wasm });
    if (threads) await glue.initThreadPool(threads);
    const engine = glue.Engine.load(model);
    const choice = engine.backend().kernel_choice;
    const kernel = name.split(":")[1];
    if (kernel) engine.setKernel(kernel);
    engines.push({ name, glue, memory, engine, choice });
  }
  const texts = jsonl.split("\n").filter(Boolean).map((l) => JSON.parse(l).text);
  const timed = await timeEncoders(engines.map((e) => ({ query: (q) => e.engine.embedQuery(q), batch: (b) => e.engine.embed(b) })), texts);
  return engines.map((e, i) => ({
    build: e.name,
    kernel: e.engine.backend().cpu_kernel,
    ...(e.choice ? { kernel_choice: e.choice } : {}),
    kernels_checked: e.glue.Engine.checkKernels(),
    ...timed[i],
    // The instance's linear memory after the runs (it only grows): the
    // weights in the kernel's layout plus the buffers.
    wasm_memory_mb: +(e.memory.buffer.byteLength / 1e6).toFixed(1),
    ...(check ? { check: Array.from(e.engine.embed(texts.slice(100, 104))) } : {}),
  }));
}

/**
 * The protocol itself, for any encoders (`{ query(text), batch(texts) }`,
 * either may return a promise: Transformers.js's do): a warm-up (one batch
 * of 8, 20 queries), then 100 queries (12-word windows of `texts`) and 3
 * batches of 16, the encoders taking turns, the order flipped each time.
 * Returns each one's query median (ms) and passages/s (median batch).
 */
export async function timeEncoders(encoders, texts) {
  const queries = texts.map((t) => t.split(" ").slice(0, 12).join(" "));
  const run = async (f, x) => {
    const r = f(x);
    if (r?.then) await r;
  };
  // Warm-up long enough for V8 to tier the hot loops up from Liftoff.
  for (const e of encoders) {
    await run(e.batch, texts.slice(8, 16));
    for (const q of queries.slice(0, 20)) await run(e.query, q);
  }
  const ms = encoders.map(() => []);
  const batchMs = encoders.map(() => []);
  const turns = (i) => (i % 2 ? [...encoders.keys()].reverse() : [...encoders.keys()]);
  for (const [i, q] of queries.slice(0, 100).entries()) {
    for (const e of turns(i)) {
      const t = performance.now();
      await run(encoders[e].query, q);
      ms[e].push(performance.now() - t);
    }
  }
  for (let b = 0; b < 3; b++) {
    for (const e of turns(b)) {
      const t = performance.now();
      await run(encoders[e].batch, texts.slice(16 + 16 * b, 32 + 16 * b));
      batchMs[e].push(performance.now() - t);
    }
  }
  const median = (xs) => xs.slice().sort((a, b) => a - b)[xs.length >> 1];
  return encoders.map((_, e) => ({
    query_ms_median: +median(ms[e]).toFixed(2),
    passages_per_s: +(16000 / median(batchMs[e])).toFixed(2),
  }));
}
