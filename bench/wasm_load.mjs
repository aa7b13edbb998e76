// Model load cost in wasm (Node, one thread): the card alone, the integrity check
// (fingerprint recomputed), the whole CPU load. Needs pkg/ built (scripts/build-wasm.sh).
//   node bench/wasm_load.mjs models/minilm-q8.gguf [RUNS]
import { readFileSync } from "node:fs";
import init, { Engine } from "../pkg/ernie_search.js";
await init({ module_or_path: readFileSync(new URL("../pkg/ernie_search_bg.wasm", import.meta.url)) });
const bytes = new Uint8Array(readFileSync(process.argv[2]));
const runs = Number(process.argv[3] ?? 10);
const median = (f) => { const t = []; for (let i = 0; i < runs; i++) { const s = performance.now(); f(); t.push(performance.now() - s); } t.sort((a, b) => a - b); return t[t.length >> 1]; };
const card = median(() => Engine.modelCard(bytes));
const verify = median(() => Engine.verifyModel(bytes));
const load = median(() => Engine.load(bytes).free());
console.log(JSON.stringify({ bench: "load (wasm, node " + process.version + ")", model_mb: bytes.length / 1e6, runs, card_ms: card, verify_ms: verify, fingerprint_ms: verify - card, load_ms: load, share: (verify - card) / load }));
