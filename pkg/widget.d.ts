import type { Result } from "./index.js";

/**
 * `<ernie-search-box index="/_ernie/">`: a search box (ARIA combobox) over an
 * index folder. Attributes: `index`, `model`, `backend` ("auto" | "cpu" |
 * "gpu"), `mode` ("hybrid" | "dense" | "lexical"), `k` (default 8),
 * `placeholder`, `preload` (load at once, not on first focus).
 * Ctrl/Cmd+K or "/" focuses the first box on the page; arrows move through
 * the results, Enter follows one, Esc closes the list.
 * Theme: `--ernie-accent`, `--ernie-bg`, `--ernie-fg`, `--ernie-muted`,
 * `--ernie-border`, `--ernie-radius`, `--ernie-font`, `--ernie-mark`,
 * `--ernie-error`, `--ernie-max-height`, or `::part(...)`.
 * Choosing a result dispatches `ernie-select` (cancelable; detail: the
 * result), then follows the result's http(s) url unless it was canceled.
 */
export class ErnieSearchBox extends HTMLElement {
  /** Focuses the box and selects its text. */
  open(): void;
}

declare global {
  interface HTMLElementTagNameMap {
    "ernie-search-box": ErnieSearchBox;
  }
  interface HTMLElementEventMap {
    "ernie-select": CustomEvent<Result>;
  }
}
