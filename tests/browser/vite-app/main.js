// One search through the package as an app would import it: by name, both exports.
import { Retriever } from "ernie-search";
import "ernie-search/widget";

const query = new URLSearchParams(location.search).get("q") ?? "";
try {
  const retriever = await Retriever.load({ index: "/_ernie/" });
  const hits = await retriever.search(query, { k: 3 });
  window.result = { ids: hits.map((h) => h.id), widget: customElements.get("ernie-search-box") !== undefined };
} catch (e) {
  window.result = { error: e.message };
}
