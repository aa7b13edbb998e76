//! A built static site's HTML into passages: main content only, split at
//! headings, each passage linked to its page and anchor.
//!
//! What counts as content, in order: the element marked `data-ernie-body`,
//! else `<main>`, else `<article>`, else `<body>`. Inside it, subtrees marked
//! `data-ernie-ignore` (Pagefind's `data-pagefind-ignore` works too) and
//! scripts, styles, navigation, forms and templates are skipped. Broken HTML
//! is parsed as a browser would (html5ever); bytes that are not UTF-8 are
//! replaced, not fatal.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use ernie_search::format::shard::Passage;
use scraper::{ElementRef, Html, Node, Selector};

/// Elements whose text is never content.
const SKIP: &[&str] = &[
    "script", "style", "noscript", "template", "nav", "form", "button", "select", "textarea", "svg", "iframe", "head",
];
/// Elements that end a line of text (so words do not run together).
const BLOCK: &[&str] = &[
    "p",
    "div",
    "li",
    "ul",
    "ol",
    "section",
    "article",
    "br",
    "tr",
    "td",
    "th",
    "table",
    "pre",
    "blockquote",
    "dd",
    "dt",
    "figcaption",
    "header",
    "footer",
    "aside",
    "details",
    "summary",
];
const IGNORE_ATTRS: &[&str] = &["data-ernie-ignore", "data-pagefind-ignore"];
const BODY_ATTR: &str = "data-ernie-body";

#[derive(Debug, Default)]
pub struct SiteStats {
    pub pages: usize,
    /// Pages with no text in their content element.
    pub empty_pages: usize,
    /// Pages whose bytes were not all UTF-8.
    pub lossy_pages: usize,
    /// Symbolic links skipped: never followed, so a link cannot publish a
    /// folder outside the site or loop.
    pub links_skipped: Vec<PathBuf>,
}

/// Every HTML page under `root` (but `skip_dir`), as passages in path order.
pub fn read_site(root: &Path, skip_dir: &Path) -> Result<(Vec<Passage>, SiteStats)> {
    if !root.is_dir() {
        bail!("{} is not a folder (pass the built site's output folder, e.g. public/)", root.display());
    }
    let mut files = Vec::new();
    let mut stats = SiteStats::default();
    collect_html(root, skip_dir, &mut files, &mut stats.links_skipped)?;
    files.sort();
    let mut passages = Vec::new();
    for file in &files {
        let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
        let text = String::from_utf8_lossy(&bytes);
        stats.pages += 1;
        stats.lossy_pages += matches!(text, std::borrow::Cow::Owned(_)) as usize;
        let url = page_url(root, file);
        let page = page_passages(&text, &url);
        if page.is_empty() {
            stats.empty_pages += 1;
        }
        passages.extend(page);
    }
    if passages.is_empty() {
        bail!(
            "{}: {} HTML page(s), none with text in <main>, <article>, <body> or [{BODY_ATTR}]: nothing to index",
            root.display(),
            stats.pages
        );
    }
    Ok((passages, stats))
}

fn collect_html(dir: &Path, skip: &Path, out: &mut Vec<PathBuf>, links: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let entry = entry?;
        let path = entry.path();
        let hidden = path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if hidden || path == skip {
            continue;
        }
        // The entry's own type: a link is not followed, whatever it points to.
        let kind = entry.file_type().with_context(|| format!("cannot stat {}", path.display()))?;
        if kind.is_symlink() {
            links.push(path);
        } else if kind.is_dir() {
            collect_html(&path, skip, out, links)?;
        } else if kind.is_file() && path.extension().is_some_and(|e| e == "html" || e == "htm") {
            out.push(path);
        }
    }
    Ok(())
}

/// `/docs/intro.html`; an `index.html` is served as its folder (`/docs/`).
fn page_url(root: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(root).unwrap_or(file);
    let parts: Vec<String> = rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
    let mut url = format!("/{}", parts.join("/"));
    if url.ends_with("/index.html") {
        url.truncate(url.len() - "index.html".len());
    }
    url
}

/// One section of a page: the heading it starts with, its anchor and text.
#[derive(Default)]
struct Section {
    heading: String,
    anchor: Option<String>,
    text: String,
}

/// A page's passages: one per section between headings.
pub fn page_passages(html: &str, url: &str) -> Vec<Passage> {
    let doc = Html::parse_document(html);
    let title = select_text(&doc, "title").or_else(|| select_text(&doc, "h1")).unwrap_or_else(|| url.to_string());
    let Some(body) = content_root(&doc) else { return Vec::new() };
    let mut sections = vec![Section::default()];
    walk(body, &mut sections);
    let mut out = Vec::new();
    for (n, s) in sections.into_iter().enumerate() {
        let text = collapse(&s.text);
        if text.is_empty() {
            continue;
        }
        let heading = collapse(&s.heading);
        let title =
            if heading.is_empty() || heading == title { title.clone() } else { format!("{title} › {heading}") };
        let (id, link) = match &s.anchor {
            Some(a) => (format!("{url}#{a}"), format!("{url}#{a}")),
            None if n == 0 => (url.to_string(), url.to_string()),
            None => (format!("{url}#section-{n}"), url.to_string()),
        };
        out.push(Passage { id, title, text, url: Some(link) });
    }
    out
}

fn content_root(doc: &Html) -> Option<ElementRef<'_>> {
    let marked = format!("[{BODY_ATTR}]");
    [marked.as_str(), "main", "article", "body"].iter().find_map(|sel| {
        let s = Selector::parse(sel).ok()?;
        doc.select(&s).next()
    })
}

fn select_text(doc: &Html, sel: &str) -> Option<String> {
    let s = Selector::parse(sel).ok()?;
    let t = collapse(&doc.select(&s).next()?.text().collect::<String>());
    (!t.is_empty()).then_some(t)
}

fn walk(el: ElementRef, sections: &mut Vec<Section>) {
    for child in el.children() {
        match child.value() {
            Node::Text(t) => {
                if let Some(s) = sections.last_mut() {
                    s.text.push_str(t);
                }
            }
            Node::Element(e) => {
                let Some(child_el) = ElementRef::wrap(child) else { continue };
                let name = e.name();
                if SKIP.contains(&name)
                    || IGNORE_ATTRS.iter().any(|a| e.attr(a).is_some())
                    || e.attr("hidden").is_some()
                {
                    continue;
                }
                if matches!(name, "h1" | "h2" | "h3" | "h4" | "h5" | "h6") {
                    let anchor = e.attr("id").map(str::to_string).or_else(|| inner_anchor(child_el));
                    sections.push(Section { heading: child_el.text().collect(), anchor, text: String::new() });
                    continue;
                }
                let block = BLOCK.contains(&name);
                if block {
                    push_space(sections);
                }
                walk(child_el, sections);
                if block {
                    push_space(sections);
                }
            }
            _ => {}
        }
    }
}

/// `<h2><a id="x"></a>...</h2>` or `<a name="x">`: the anchor inside a heading.
fn inner_anchor(h: ElementRef) -> Option<String> {
    h.descendants()
        .filter_map(ElementRef::wrap)
        .find_map(|e| e.value().attr("id").or_else(|| e.value().attr("name")).map(str::to_string))
}

fn push_space(sections: &mut [Section]) {
    if let Some(s) = sections.last_mut() {
        s.text.push(' ');
    }
}

fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_main_content_at_headings_with_anchors() {
        let html = r#"<!doctype html><html><head><title>Guide</title><script>var x = "no";</script></head>
            <body><nav>Home | Docs</nav><main>
              <p>Intro text.</p>
              <h2 id="install">Install</h2><p>Run <code>cargo</code> build.</p>
              <div data-ernie-ignore><p>Ads here</p></div>
              <h2><a name="use"></a>Use it</h2><p>Search <b>fast</b>.</p><p>Second paragraph.</p>
            </main><footer>Copyright</footer></body></html>"#;
        let p = page_passages(html, "/guide/");
        assert_eq!(p.len(), 3);
        assert_eq!((p[0].id.as_str(), p[0].text.as_str(), p[0].title.as_str()), ("/guide/", "Intro text.", "Guide"));
        assert_eq!(p[1].url.as_deref(), Some("/guide/#install"));
        assert_eq!((p[1].title.as_str(), p[1].text.as_str()), ("Guide › Install", "Run cargo build."));
        assert_eq!(p[2].url.as_deref(), Some("/guide/#use"));
        assert_eq!(p[2].text, "Search fast. Second paragraph.");
        assert!(p.iter().all(|x| !x.text.contains("Ads") && !x.text.contains("Home") && !x.text.contains("Copyright")));
    }

    #[test]
    fn broken_html_and_script_text_are_handled() {
        let html = "<title>T</title><body><p>unclosed <b>bold <i>text<p>next &lt;script&gt; <script>alert(1)</script>";
        let p = page_passages(html, "/x.html");
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].text, "unclosed bold text next <script>");
        assert!(page_passages("<html><body>  </body></html>", "/e.html").is_empty());
    }

    #[test]
    fn urls_follow_the_files() {
        let root = Path::new("/site");
        assert_eq!(page_url(root, Path::new("/site/index.html")), "/");
        assert_eq!(page_url(root, Path::new("/site/docs/index.html")), "/docs/");
        assert_eq!(page_url(root, Path::new("/site/docs/a.html")), "/docs/a.html");
    }
}
