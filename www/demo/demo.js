// The offline QA demo: a question box over an index folder (?index=URL,
// default ./_ernie/ next to the page), answered by the ernie-search npm
// package (pkg/index.js, with the text helpers the widget uses too,
// pkg/text.js; scripts/demo.sh copies them into pkg/ next to this file), with
// the sentence that best answers the question marked in each passage.
// sw.js keeps the page, this script, the package and the wasm for offline
// visits; the package itself keeps the index files in the Cache API.
//
// Passage text only ever enters the page as text: the DOM is built with
// createElement and text nodes (text.js's h()), never from HTML strings.

import { Retriever } from "./pkg/index.js";
import { around, bestSentence, clip, h, loadProgress, safeLink, size } from "./pkg/text.js";

const K = 5; // passages shown
const FULL_CHARS = 700; // longer passages are shown around their best sentence first
const CONTEXT_CHARS = 160; // text kept before the best sentence in a cut passage

// Question words: in a question, never in its answer (stop words do not
// count either: text.js's STOP_WORDS).
const QUESTION_WORDS = new Set("who whom whose what which when where why how does did do".split(" "));

const $ = (id) => document.getElementById(id);
const form = $("ask");
const input = $("q");
const modeSelect = $("mode");
const status = $("status");
const statusText = $("status-text");
const progress = $("progress");
const errorBox = $("error");
const summary = $("summary");
const results = $("results");
const about = $("about");
const offline = $("offline");

const params = new URLSearchParams(location.search);
const indexUrl = new URL(params.get("index") || "./_ernie/", location.href).href;

function ms(t) {
  return t < 1000 ? `${Math.round(t)} ms` : `${(t / 1000).toFixed(1)} s`;
}

function showStatus(text, bar = null) {
  statusText.textContent = text;
  progress.hidden = !bar;
  if (bar) [progress.value, progress.max] = bar;
  status.hidden = false;
}

function showError(text) {
  errorBox.textContent = text;
  errorBox.hidden = false;
}

// ---- loading ---------------------------------------------------------------

let loadError = null; // shown again on every question: a reload retries
const loading = load();
loading.catch(() => {}); // load() shows the error

async function load() {
  const files = new Map(); // file kind -> last progress event
  const t0 = performance.now();
  showStatus("Loading the model and the index…");
  try {
    const retriever = await Retriever.load({
      index: indexUrl,
      onProgress: (p) => {
        files.set(p.file, p);
        const { text, bar } = loadProgress(files.values());
        showStatus(`Loading the model and the index… ${text}`, bar);
      },
    });
    const info = await retriever.info();
    // manifest.json is always asked of the network (offline, sw.js answers with the cached copy).
    const fromCache = info.files.every((f) => f.cached || f.kind === "manifest");
    const bytes = Object.values(info.sizes).reduce((a, b) => a + b, 0);
    about.textContent =
      `${info.index.count.toLocaleString("en")} passages · model ${info.model.name} (${info.model.weights}) · ` +
      `${info.index.dtype} vectors · ${size(bytes)} loaded in ${ms(performance.now() - t0)}` +
      (fromCache ? " from the browser cache" : "");
    status.hidden = true;
    document.body.dataset.state = "ready";
    refreshOffline(info);
    return retriever;
  } catch (e) {
    status.hidden = true;
    loadError = `Could not load the index at ${indexUrl}: ${e.message}.${hint(e.message)}`;
    showError(loadError);
    document.body.dataset.state = "error";
    refreshOffline(null);
    throw e;
  }
}

function hint(message) {
  if (/HTTP 404/.test(message)) return " Is there an index folder at that address? Build one with scripts/demo.sh, or point ?index= at one.";
  if (!navigator.onLine) return " You are offline, and this index was not cached on an earlier visit.";
  if (/cannot fetch/.test(message)) return " Check the network, or point ?index= at another folder.";
  return "";
}

// ---- asking ----------------------------------------------------------------

let seq = 0; // only the latest question may render
let answers = 0; // questions answered (body[data-answers], for tests)

form.addEventListener("submit", async (e) => {
  e.preventDefault();
  const query = input.value.trim();
  const mode = modeSelect.value;
  if (!query) return input.focus();
  const mine = ++seq;
  errorBox.hidden = true;
  let retriever;
  try {
    if (document.body.dataset.state === "loading") {
      summary.textContent = "Your question is answered once the index has loaded…";
      summary.hidden = false;
    }
    retriever = await loading;
  } catch {
    if (mine !== seq) return;
    summary.hidden = true;
    showError(loadError);
    return;
  }
  document.body.dataset.state = "searching";
  const t0 = performance.now();
  try {
    const answer = await retriever.search(query, { k: K, mode, details: true });
    if (mine !== seq) return;
    render(answer.hits, query, answer.mode, performance.now() - t0, answer.note);
    const url = new URL(location.href);
    url.searchParams.set("q", query);
    url.searchParams.set("mode", mode);
    history.replaceState(null, "", url);
  } catch (e) {
    if (mine !== seq) return;
    render([], query, mode, null);
    showError(`Search failed: ${e.message}`);
  } finally {
    if (mine === seq) document.body.dataset.state = "ready";
  }
});

function render(hits, query, mode, took, note = null) {
  results.replaceChildren(...hits.map((r, i) => result(r, i, query)));
  document.body.dataset.answers = String(++answers);
  if (took == null) {
    summary.hidden = true;
    return;
  }
  summary.textContent = hits.length
    ? `${hits.length} best passage${hits.length > 1 ? "s" : ""} · ${mode} search · ${ms(took)}`
    : `No passage matches “${query.length > 60 ? query.slice(0, 60) + "…" : query}” (${mode} search · ${ms(took)})`;
  if (note) summary.textContent += ` · ${note}`;
  summary.hidden = false;
}

function result(r, i, query) {
  const title = r.title || r.id;
  const link = safeLink(r.url);
  const text = h("p", { class: "text" }, ...passage(r.text, query, false));
  const li = h(
    "li",
    { class: "result", "data-id": r.id },
    h("h2", { class: "title" }, link ? h("a", { href: link }, title) : title),
    text,
    h("p", { class: "meta" }, `#${i + 1} · score ${r.score.toFixed(4)} · ${r.id}`),
  );
  if (r.text.length > FULL_CHARS) {
    const more = h("button", { type: "button", class: "more", "aria-expanded": "false" }, "Show the whole passage");
    more.addEventListener("click", () => {
      const full = more.getAttribute("aria-expanded") !== "true";
      text.replaceChildren(...passage(r.text, query, full));
      more.setAttribute("aria-expanded", String(full));
      more.textContent = full ? "Show less" : "Show the whole passage";
    });
    li.querySelector(".meta").append(" · ", more);
  }
  return li;
}

/**
 * The passage as nodes, the sentence sharing the most query words (the
 * first such) in a <mark>. A long passage is cut around that sentence
 * unless `full`.
 */
function passage(text, query, full) {
  const best = bestSentence(text, query, { ignore: QUESTION_WORDS, locale: "en" });
  if (!best) return [full ? text : clip(text, FULL_CHARS)];
  if (full || text.length <= FULL_CHARS) return [best.before, h("mark", {}, best.sentence), best.after];
  const { head, sentence, tail } = around(best, FULL_CHARS, CONTEXT_CHARS);
  return [head, h("mark", {}, sentence), tail];
}

// ---- offline ---------------------------------------------------------------

let swReady = null; // Promise<ServiceWorkerRegistration>, or null without service workers
if ("serviceWorker" in navigator) {
  swReady = navigator.serviceWorker.register("sw.js").then(() => navigator.serviceWorker.ready);
  swReady.catch((e) => (offline.textContent = `Offline use is unavailable: the service worker did not start (${e.message}).`));
  navigator.serviceWorker.addEventListener("controllerchange", () => loading.then((r) => r.info()).then(refreshOffline, () => refreshOffline(null)));
} else {
  offline.textContent = "Offline use is unavailable here: this browser or page (an insecure http:// address?) has no service workers.";
}

/** What the service worker holds: { version, cache, cached, total }. */
async function swStatus() {
  const reg = await swReady;
  return new Promise((resolve, reject) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = ({ data }) => resolve(data);
    setTimeout(() => reject(new Error("the service worker did not answer")), 5000);
    reg.active.postMessage({ type: "status" }, [channel.port2]);
  });
}

/** Says whether a visit without the network will work (info: the retriever's, null if it failed). */
async function refreshOffline(info) {
  if (!swReady) return;
  let sw;
  try {
    sw = await swStatus();
  } catch (e) {
    offline.textContent = `Offline use is unavailable: ${e.message}.`;
    return;
  }
  const page = sw.cached === sw.total;
  const index = info?.cache?.enabled;
  offline.dataset.ready = String(page && !!index);
  offline.textContent = !page
    ? `Caching the page for offline use (${sw.cached} of ${sw.total} files)…`
    : index
      ? `Works offline: the page (${sw.cache}) and the index (${info.cache.name}) are cached in this browser.`
      : `The page is cached for offline use, the index is not${info?.cache?.error ? ` (${info.cache.error})` : ""}.`;
  if (!page) setTimeout(() => refreshOffline(info), 500);
}

addEventListener("online", () => document.body.classList.remove("is-offline"));
addEventListener("offline", () => document.body.classList.add("is-offline"));
if (!navigator.onLine) document.body.classList.add("is-offline");

// ---- start -----------------------------------------------------------------

if (["hybrid", "dense", "lexical"].includes(params.get("mode"))) modeSelect.value = params.get("mode");
if (params.get("q")) {
  input.value = params.get("q");
  form.requestSubmit();
}
input.focus();
