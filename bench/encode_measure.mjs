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
    engines.push({ name, glue, memory, engine, choice, ms: [], batchMs: [] });
  }
  const texts = jsonl.split("\n").filter(Boolean).map((l) => JSON.parse(l).text);
  const queries = texts.map((t) => t.split(" ").slice(0, 12).join(" "));
  // Warm-up long enough for V8 to tier the hot loops up from Liftoff.
  for (const e of engines) {
    e.engine.embed(texts.slice(8, 16));
    for (const q of queries.slice(0, 20)) e.engine.embedQuery(q);
  }
  for (const [i, q] of queries.slice(0, 100).entries()) {
    for (const e of i % 2 ? engines.slice().reverse() : engines) {
      const t = performance.now();
      e.engine.embedQuery(q);
      e.ms.push(performance.now() - t);
    }
  }
  for (let b = 0; b < 3; b++) {
    for (const e of b % 2 ? engines.slice().reverse() : engines) {
      const t = performance.now();
      e.engine.embed(texts.slice(16 + 16 * b, 32 + 16 * b));
      e.batchMs.push(performance.now() - t);
    }
  }
  const median = (xs) => xs.slice().sort((a, b) => a - b)[xs.length >> 1];
  return engines.map((e) => ({
    build: e.name,
    kernel: e.engine.backend().cpu_kernel,
    ...(e.choice ? { kernel_choice: e.choice } : {}),
    kernels_checked: e.glue.Engine.checkKernels(),
    query_ms_median: +median(e.ms).toFixed(2),
    passages_per_s: +(16000 / median(e.batchMs)).toFixed(2),
    // The instance's linear memory after the runs (it only grows): the
    // weights in the kernel's layout plus the buffers.
    wasm_memory_mb: +(e.memory.buffer.byteLength / 1e6).toFixed(1),
    ...(check ? { check: Array.from(e.engine.embed(texts.slice(100, 104))) } : {}),
  }));
}
