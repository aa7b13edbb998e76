// <ernie-search-box index="/_ernie/">: a search box over an index folder.
//
// Attributes: index (the folder's URL), model, backend ("auto" | "cpu" |
// "gpu"), mode ("hybrid" | "dense" | "lexical"), k (results, default 8),
// placeholder, preload (load at once instead of on first focus), encoder
// ("auto" | "table" | "transformer": what encodes queries; auto takes the
// light engine when the folder has a token table and clusters), progressive
// (with the table: load the transformer after the first search and use it
// for later ones). The host's data-encoder says which encoder answered.
// Theme with CSS custom properties (--ernie-accent, --ernie-bg, --ernie-fg,
// --ernie-muted, --ernie-border, --ernie-radius, --ernie-font, --ernie-mark,
// --ernie-error, --ernie-max-height) or ::part(input | listbox | option |
// title | excerpt | status | notice | error).
// Choosing a result fires a cancelable, bubbling "ernie-select" event
// (detail: the result), then follows the result's url (http and https only).
//
// Passage text only ever enters the page as text nodes: the DOM is built with
// createElement and text (text.js's h()), never from HTML strings.

import { Retriever } from "./index.js";
import { around, bestSentence, clip, h, loadProgress, safeLink } from "./text.js";

const DEBOUNCE_MS = 150;
const EXCERPT_CHARS = 240; // the best sentence and context around it
const CONTEXT_CHARS = 60; // text kept before the best sentence

const CSS = `
:host { display: block; position: relative; font: var(--ernie-font, inherit); color: var(--ernie-fg, inherit);
  --_accent: var(--ernie-accent, #3157d5); --_border: var(--ernie-border, #c8ccd4); --_bg: var(--ernie-bg, #fff);
  --_muted: var(--ernie-muted, #5b6170); --_radius: var(--ernie-radius, 8px); }
[hidden] { display: none !important; }
input { width: 100%; box-sizing: border-box; padding: .55em .8em; font: inherit; color: inherit; background: var(--_bg);
  border: 1px solid var(--_border); border-radius: var(--_radius); }
input:focus { outline: 2px solid var(--_accent); outline-offset: 1px; }
[role=listbox] { position: absolute; z-index: 10; left: 0; right: 0; margin: .3em 0 0; padding: .25em; list-style: none;
  background: var(--_bg); border: 1px solid var(--_border); border-radius: var(--_radius);
  box-shadow: 0 8px 24px rgb(0 0 0 / .14); max-height: var(--ernie-max-height, 60vh); overflow-y: auto; }
[role=option] { padding: .5em .7em; border-radius: calc(var(--_radius) - 2px); cursor: pointer; }
[role=option]:hover { background: color-mix(in srgb, var(--_accent) 6%, transparent); }
[role=option][aria-selected=true] { background: color-mix(in srgb, var(--_accent) 13%, transparent); box-shadow: inset 3px 0 var(--_accent); }
.title { font-weight: 600; color: var(--_accent); }
.excerpt { margin-top: .15em; font-size: .9em; color: var(--_muted); overflow-wrap: anywhere; }
mark { background: var(--ernie-mark, color-mix(in srgb, var(--_accent) 20%, transparent)); color: inherit; border-radius: 2px; }
.status, .notice, .error { margin-top: .35em; font-size: .85em; color: var(--_muted); }
.error { color: var(--ernie-error, #b3261e); }
progress { display: block; width: 100%; height: 4px; accent-color: var(--_accent); }
`;

/**
 * The passage's excerpt as nodes: the sentence sharing the most query words
 * (the first such) in a <mark>, with some text around it to fill the excerpt.
 */
function excerpt(text, query) {
  const best = bestSentence(text, query);
  if (!best) return [clip(text, EXCERPT_CHARS)];
  const { head, sentence, tail } = around(best, EXCERPT_CHARS, CONTEXT_CHARS);
  return [head, h("mark", {}, clip(sentence, EXCERPT_CHARS)), tail];
}

function editable(el) {
  return el instanceof HTMLElement && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName));
}

export class ErnieSearchBox extends HTMLElement {
  #input;
  #list;
  #status;
  #statusText;
  #progress;
  #notice;
  #baseNotice = ""; // shown until a search has its own notice
  #error;
  #loading = null; // Promise<Retriever>, once a load has started
  #loadError = null; // shown for good: the page must be reloaded to retry
  #results = [];
  #active = -1;
  #timer = 0;
  #seq = 0; // only the latest search may render
  #onKey = (e) => this.#globalKey(e);

  constructor() {
    super();
    const root = this.attachShadow({ mode: "open" });
    this.#input = h("input", {
      part: "input", type: "search", role: "combobox", "aria-autocomplete": "list", "aria-expanded": "false",
      "aria-controls": "list", "aria-label": "Search", autocomplete: "off", spellcheck: "false",
    });
    this.#list = h("ul", { part: "listbox", id: "list", role: "listbox", "aria-label": "Search results", hidden: true });
    this.#statusText = h("span");
    this.#progress = h("progress", { hidden: true });
    this.#status = h("div", { part: "status", class: "status", role: "status", hidden: true }, this.#statusText, this.#progress);
    this.#notice = h("div", { part: "notice", class: "notice", hidden: true });
    this.#error = h("div", { part: "error", class: "error", role: "alert", hidden: true });
    root.append(h("style", {}, CSS), this.#input, this.#list, this.#status, this.#notice, this.#error);

    this.#input.addEventListener("input", () => {
      clearTimeout(this.#timer);
      this.#timer = setTimeout(() => this.#search(), DEBOUNCE_MS);
    });
    this.#input.addEventListener("keydown", (e) => this.#key(e));
    this.#input.addEventListener("focus", () => {
      this.#load().catch(() => {}); // the error is shown by #load
      if (this.#results.length) this.#setOpen(true);
    });
    this.addEventListener("focusout", () => this.#setOpen(false));
    // Keep focus in the input while a result is clicked.
    this.#list.addEventListener("pointerdown", (e) => e.preventDefault());
    this.#list.addEventListener("click", (e) => {
      const li = e.target.closest?.("[role=option]");
      if (li) this.#choose(Number(li.dataset.index));
    });
  }

  connectedCallback() {
    this.#input.placeholder = this.getAttribute("placeholder") ?? "Search (Ctrl+K or /)";
    document.addEventListener("keydown", this.#onKey);
    if (this.hasAttribute("preload")) this.#load().catch(() => {});
  }

  disconnectedCallback() {
    document.removeEventListener("keydown", this.#onKey);
  }

  /** Focuses the box and shows its results, if any. */
  open() {
    this.#input.focus();
    this.#input.select();
  }

  #load() {
    this.#loading ??= this.#startLoad();
    return this.#loading;
  }

  async #startLoad() {
    const files = new Map(); // file kind -> { loaded, total }
    this.#showStatus("Loading search…");
    try {
      const r = await Retriever.load({
        index: this.getAttribute("index") ?? undefined,
        model: this.getAttribute("model") ?? undefined,
        backend: this.getAttribute("backend") ?? "auto",
        encoder: this.getAttribute("encoder") ?? "auto",
        progressive: this.hasAttribute("progressive"),
        onProgress: (p) => {
          files.set(p.file, p);
          const { text, bar } = loadProgress(files.values());
          this.#showStatus(`Loading search… ${text}`, bar);
        },
      });
      const info = await r.info();
      if (info.fallback) this.#baseNotice = `GPU requested; searching on the CPU instead (${info.fallback}).`;
      this.#showNotice(null);
      this.#status.hidden = true;
      return r;
    } catch (e) {
      this.#status.hidden = true;
      this.#loadError = `Search is unavailable: ${e.message}`;
      this.#showError(this.#loadError);
      throw e;
    }
  }

  async #search() {
    const seq = ++this.#seq;
    const query = this.#input.value.trim();
    if (!query) return this.#render([], "");
    let retriever;
    try {
      retriever = await this.#load();
    } catch {
      return; // #load showed why
    }
    if (seq !== this.#seq) return;
    const k = Number(this.getAttribute("k") ?? 8);
    try {
      const a = await retriever.search(query, { k, mode: this.getAttribute("mode") ?? "hybrid", details: true });
      if (seq !== this.#seq) return;
      this.dataset.encoder = a.encoder ?? "";
      // A part that failed to load: the results come from the rest, and the next search retries.
      this.#showNotice(a.partial ? `Some results may be missing: ${a.note}` : null);
      this.#render(a.hits, query);
    } catch (e) {
      if (seq !== this.#seq) return;
      this.#render([], query);
      this.#showError(`Search failed: ${e.message}`);
    }
  }

  #showNotice(text) {
    this.#notice.textContent = text ?? this.#baseNotice;
    this.#notice.hidden = !this.#notice.textContent;
  }

  #render(results, query) {
    // The query these results answer, on the host: tests and pages can wait for it.
    this.dataset.query = query;
    this.#results = results;
    this.#active = -1;
    if (this.#loadError) this.#showError(this.#loadError);
    else this.#error.hidden = true;
    this.#list.replaceChildren(
      ...results.map((r, i) =>
        h("li", { part: "option", role: "option", id: `option-${i}`, "aria-selected": "false", "data-index": i, "data-id": r.id },
          h("div", { part: "title", class: "title" }, r.title || r.id),
          h("div", { part: "excerpt", class: "excerpt" }, ...excerpt(r.text, query)),
        ),
      ),
    );
    if (query && !results.length) this.#showStatus(`No results for “${clip(query, 60)}”`);
    else this.#status.hidden = true;
    this.#setOpen(results.length > 0 && this.shadowRoot.activeElement === this.#input);
  }

  #setOpen(open) {
    this.#list.hidden = !open;
    this.#input.setAttribute("aria-expanded", String(open));
    if (!open) this.#setActive(-1);
  }

  #setActive(i) {
    this.#list.children[this.#active]?.setAttribute("aria-selected", "false");
    this.#active = i;
    const li = this.#list.children[i];
    if (li) {
      li.setAttribute("aria-selected", "true");
      this.#input.setAttribute("aria-activedescendant", li.id);
      li.scrollIntoView({ block: "nearest" });
    } else {
      this.#input.removeAttribute("aria-activedescendant");
    }
  }

  #key(e) {
    const n = this.#results.length;
    const open = !this.#list.hidden;
    if ((e.key === "ArrowDown" || e.key === "ArrowUp") && n) {
      e.preventDefault();
      if (!open) this.#setOpen(true);
      const step = e.key === "ArrowDown" ? 1 : -1;
      this.#setActive(this.#active < 0 ? (step > 0 ? 0 : n - 1) : (this.#active + step + n) % n);
    } else if (e.key === "Enter" && open && this.#active >= 0) {
      e.preventDefault();
      this.#choose(this.#active);
    } else if (e.key === "Escape") {
      e.preventDefault();
      if (open) return this.#setOpen(false);
      this.#input.value = "";
      this.#render([], "");
    }
  }

  /** Ctrl/Cmd+K anywhere, or "/" outside a text field, opens the first box on the page. */
  #globalKey(e) {
    if (document.querySelector("ernie-search-box") !== this) return;
    const ctrlK = (e.ctrlKey || e.metaKey) && e.key.toLowerCase() === "k";
    const slash = e.key === "/" && !e.ctrlKey && !e.metaKey && !e.altKey && !editable(e.composedPath()[0]);
    if (ctrlK || slash) {
      e.preventDefault();
      this.open();
    }
  }

  #choose(i) {
    const result = this.#results[i];
    if (!result) return;
    this.#setOpen(false);
    const event = new CustomEvent("ernie-select", { detail: result, bubbles: true, composed: true, cancelable: true });
    if (!this.dispatchEvent(event)) return;
    // A passage's url is data: only web links are followed, never javascript: ones.
    const link = safeLink(result.url);
    if (link) location.assign(link);
  }

  #showStatus(text, progress = null) {
    this.#statusText.textContent = text;
    this.#progress.hidden = !progress;
    if (progress) [this.#progress.value, this.#progress.max] = progress;
    this.#status.hidden = false;
  }

  #showError(text) {
    this.#error.textContent = text;
    this.#error.hidden = false;
  }
}

if (!customElements.get("ernie-search-box")) customElements.define("ernie-search-box", ErnieSearchBox);
