// Text helpers shared by the widget (widget.js) and the offline QA demo
// (www/demo/demo.js): building DOM nodes from text, finding the sentence of
// a passage that best matches a query, cutting a passage around it, sizes,
// load progress and safe links. No dependencies; module-private to the
// package (not in package.json's "exports").
//
// Passage text only ever becomes text nodes here: h() appends strings with
// append(), which never parses them as HTML.

/**
 * Lucene's English stop words (as the index's analyzer): they say nothing
 * about which sentence matches a query.
 * @type {ReadonlySet<string>}
 */
export const STOP_WORDS = new Set(
  "a an and are as at be but by for if in into is it no not of on or such that the their then there these they this to was will with".split(" "),
);

/**
 * An element with attributes and children. Strings among the children become
 * text nodes (never HTML); an attribute that is null, undefined or false is
 * left out, and true sets it empty.
 * @param {string} tag
 * @param {Record<string, string | number | boolean | null | undefined>} [attrs]
 * @param {...(Node | string)} children
 * @returns {HTMLElement}
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) if (v != null && v !== false) el.setAttribute(k, v === true ? "" : v);
  el.append(...children); // append() turns strings into text nodes
  return el;
}

/**
 * The words of `text`, lowercased: runs of letters and digits.
 * @param {string} text
 * @returns {string[]}
 */
export function words(text) {
  return text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
}

/**
 * `text` cut into sentences, each with its trailing whitespace (so joined
 * they give `text` back): Intl.Segmenter's for `locale` (undefined: the
 * browser's), else a split after . ! or ?.
 * @param {string} text
 * @param {string} [locale]
 * @returns {string[]}
 */
export function sentences(text, locale) {
  if (typeof Intl.Segmenter === "function") return Array.from(new Intl.Segmenter(locale, { granularity: "sentence" }).segment(text), (s) => s.segment);
  return text.split(/(?<=[.!?])\s+/);
}

/**
 * At most `n` characters of `s`, cut at a space (if one is in its second
 * half), with an ellipsis when cut.
 * @param {string} s
 * @param {number} n
 * @returns {string}
 */
export function clip(s, n) {
  if (s.length <= n) return s;
  const cut = s.slice(0, n);
  return cut.slice(0, cut.lastIndexOf(" ") > n / 2 ? cut.lastIndexOf(" ") : n) + "…";
}

/**
 * A byte count for people: "12 kB" below a megabyte, else "3.4 MB".
 * @param {number} bytes
 * @returns {string}
 */
export function size(bytes) {
  return bytes < 1e6 ? `${Math.ceil(bytes / 1e3)} kB` : `${(bytes / 1e6).toFixed(1)} MB`;
}

/**
 * The progress of a load over its files, from the latest progress event of
 * each (`{ loaded, total }`, total null while unknown): the text ("1.2 MB",
 * or "1.2 MB of 3.4 MB" once every total is known) and, once known,
 * [loaded, total] for a <progress>.
 * @param {Iterable<{ loaded: number, total: number | null | undefined }>} files
 * @returns {{ text: string, bar: [number, number] | null }}
 */
export function loadProgress(files) {
  const all = [...files];
  const loaded = all.reduce((n, f) => n + f.loaded, 0);
  const known = all.every((f) => f.total != null);
  const total = all.reduce((n, f) => n + (f.total ?? 0), 0);
  return { text: `${size(loaded)}${known ? ` of ${size(total)}` : ""}`, bar: known ? [loaded, total] : null };
}

/**
 * The sentence of `text` sharing the most words with `query` (the first
 * such), with the text before and after it; null when no sentence shares
 * one. Query words of one character, stop words and those in `ignore` do not
 * count. before + sentence + after is `text`; the sentence has no trailing
 * whitespace (after starts with it).
 * @param {string} text
 * @param {string} query
 * @param {{ ignore?: ReadonlySet<string>, locale?: string }} [options]
 * @returns {{ before: string, sentence: string, after: string } | null}
 */
export function bestSentence(text, query, { ignore, locale } = {}) {
  const q = new Set(words(query).filter((w) => w.length > 1 && !STOP_WORDS.has(w) && !ignore?.has(w)));
  const parts = sentences(text, locale);
  let best = -1;
  let bestScore = 0;
  parts.forEach((s, i) => {
    const score = new Set(words(s).filter((w) => q.has(w))).size;
    if (score > bestScore) [best, bestScore] = [i, score];
  });
  if (best < 0) return null;
  const before = parts.slice(0, best).join("");
  const sentence = parts[best].trimEnd();
  const after = parts.slice(best).join("").slice(sentence.length);
  return { before, sentence, after };
}

/**
 * A passage cut around its best sentence (from bestSentence) to about
 * `max` characters: at most `context` characters before it (from a word
 * start, after an ellipsis), the sentence whole, then what fits of the rest
 * (clipped).
 * @param {{ before: string, sentence: string, after: string }} best
 * @param {number} max
 * @param {number} context
 * @returns {{ head: string, sentence: string, tail: string }}
 */
export function around({ before, sentence, after }, max, context) {
  const head = before.length > context ? "…" + before.slice(-context).replace(/^\S*\s/, "") : before;
  const room = Math.max(max - head.length - sentence.length, 0);
  return { head, sentence, tail: clip(after, room) };
}

/**
 * `url` (relative to the page) as an absolute href when it is a web link
 * (http or https); null for anything else (javascript:, data:, a malformed
 * URL, none), which must never become a link or be followed.
 * @param {string | null | undefined} url
 * @returns {string | null}
 */
export function safeLink(url) {
  if (!url) return null;
  try {
    const u = new URL(url, location.href);
    return u.protocol === "http:" || u.protocol === "https:" ? u.href : null;
  } catch {
    return null;
  }
}
