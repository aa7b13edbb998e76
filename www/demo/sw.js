// Service worker of the offline QA demo: after the first visit the page works
// with the network off.
//
// - The page, its script and style, the npm package and the wasm engine are
//   cached at install, in a cache named after VERSION, and served cache-first.
// - manifest.json (any index folder's) goes to the network first; when the
//   network is unreachable, the cached copy answers.
// - Every other file (the model, vectors, BM25 term blocks, passage shards)
//   passes through untouched: the package's worker keeps those in its own
//   Cache API cache (ernie-search-<model fingerprint>) and reads them from
//   there first.
// A new VERSION (scripts/demo.sh writes a hash of the cached files here)
// installs a new cache and deletes the demo's older ones on activation; the
// package's caches are left alone.

const VERSION = "dev";
const PREFIX = "ernie-demo-";
const CACHE = PREFIX + VERSION;
const FILES = ["./", "index.html", "demo.js", "demo.css", "pkg/index.js", "pkg/worker.js", "pkg/text.js", "pkg/ernie_search.js", "pkg/ernie_search_bg.wasm"];
const URLS = FILES.map((f) => new URL(f, self.registration.scope).href);

self.addEventListener("install", (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE);
      // Past the HTTP cache: the files of this version, not older copies.
      await cache.addAll(URLS.map((url) => new Request(url, { cache: "reload" })));
      await self.skipWaiting();
    })(),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    (async () => {
      for (const name of await caches.keys()) {
        if (name.startsWith(PREFIX) && name !== CACHE) await caches.delete(name);
      }
      await self.clients.claim();
    })(),
  );
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  // The page answers every query string (?index=, ?q=) from one cached copy.
  const key = url.origin + url.pathname;
  if (URLS.includes(key)) return event.respondWith(cacheFirst(request, key));
  if (url.pathname.endsWith("/manifest.json")) return event.respondWith(networkFirst(request));
});

async function cacheFirst(request, key) {
  const cache = await caches.open(CACHE);
  const hit = await cache.match(key);
  if (hit) return hit;
  const response = await fetch(request);
  if (response.ok && response.type === "basic") await cache.put(key, response.clone());
  return response;
}

async function networkFirst(request) {
  try {
    return await fetch(request);
  } catch (e) {
    // The package's worker cached the manifest it last loaded.
    const hit = await caches.match(request.url);
    if (hit) return hit;
    throw e;
  }
}

// demo.js asks what is cached: { version, cache, cached, total }.
self.addEventListener("message", (event) => {
  if (event.data?.type !== "status" || !event.ports[0]) return;
  event.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE);
      const have = await Promise.all(URLS.map((url) => cache.match(url)));
      event.ports[0].postMessage({ version: VERSION, cache: CACHE, cached: have.filter(Boolean).length, total: URLS.length });
    })(),
  );
});
