// One build's encode speed inside a Web Worker (where a thread pool may
// block), for bench/wasm_threads.mjs: `threads` > 0 starts the threaded
// build's pool first. Posts bench/encode_measure.mjs's figures for the build,
// with the vectors of a few texts (to check the builds agree).
import { measure } from "../encode_measure.mjs";

self.onmessage = async ({ data }) => {
  try {
    const { glue: glueUrl, model, passages, threads } = data;
    const glue = await import(glueUrl);
    const bytes = new Uint8Array(await (await fetch(model)).arrayBuffer());
    const [{ build: _, ...figures }] = await measure([["worker", glue, undefined]], bytes, await (await fetch(passages)).text(), { threads, check: true });
    postMessage(figures);
  } catch (e) {
    postMessage({ error: String(e?.stack ?? e) });
  }
};
