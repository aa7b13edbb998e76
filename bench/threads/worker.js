// One build's encode speed inside a Web Worker (where a thread pool may
// block), for bench/wasm_threads.mjs: `threads` > 0 starts the threaded
// build's pool first. Posts the kernel, the median query and passages/s, and
// the vectors of a few texts (to check the builds agree).
self.onmessage = async ({ data }) => {
  try {
    const { glue: glueUrl, model: modelUrl, passages: passagesUrl, threads } = data;
    const glue = await import(glueUrl);
    await glue.default();
    if (threads) await glue.initThreadPool(threads);
    const engine = glue.Engine.load(new Uint8Array(await (await fetch(modelUrl)).arrayBuffer()));
    const texts = (await (await fetch(passagesUrl)).text()).split("\n").filter(Boolean).map((l) => JSON.parse(l).text);
    const queries = texts.map((t) => t.split(" ").slice(0, 12).join(" "));
    // Warm-up long enough for V8 to tier the hot loops up.
    engine.embed(texts.slice(0, 8));
    for (const q of queries.slice(0, 20)) engine.embedQuery(q);
    const ms = [];
    for (const q of queries.slice(0, 100)) {
      const t = performance.now();
      engine.embedQuery(q);
      ms.push(performance.now() - t);
    }
    const batchMs = [];
    for (let b = 0; b < 3; b++) {
      const t = performance.now();
      engine.embed(texts.slice(16 + 16 * b, 32 + 16 * b));
      batchMs.push(performance.now() - t);
    }
    const median = (xs) => xs.slice().sort((a, b) => a - b)[xs.length >> 1];
    postMessage({
      kernel: engine.backend().cpu_kernel,
      query_ms_median: +median(ms).toFixed(2),
      passages_per_s: +(16000 / median(batchMs)).toFixed(2),
      check: Array.from(engine.embed(texts.slice(100, 104))),
    });
  } catch (e) {
    postMessage({ error: String(e?.stack ?? e) });
  }
};
