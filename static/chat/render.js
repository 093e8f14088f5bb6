// Answers are model output, and model output may be steered by document text: treat it as hostile.
// Markdown is parsed by marked with raw HTML escaped, the result is sanitised by DOMPurify, and only then
// does it reach the DOM. The page's Content-Security-Policy (no inline scripts) is the second wall.

import { t } from "./i18n.js";

const { marked, DOMPurify } = window;

const HANGUL = /[\u1100-\u11ff\u3130-\u318f\uac00-\ud7a3]/;
const CITATION = /\[(S\d+(?:\s*,\s*S\d+)*)\]/g;
// Links may go to the web, to mail, or within our site; javascript:, data: and the like lose their href.
const SAFE_URL = /^(?:https?:|mailto:|#|\/(?!\/))/i;

const PURIFY_OPTIONS = {
  USE_PROFILES: { html: true },
  // Images would fetch third-party URLs (tracking, exfiltration); forms and media have no place in an answer.
  FORBID_TAGS: ["style", "img", "picture", "source", "video", "audio", "iframe", "object", "embed", "form",
    "input", "button", "textarea", "select", "option", "svg", "math", "link", "meta", "base"],
  FORBID_ATTR: ["style", "class", "id", "srcset", "action", "formaction", "target"],
  ALLOW_DATA_ATTR: false,
  ALLOWED_URI_REGEXP: SAFE_URL,
  RETURN_DOM_FRAGMENT: true,
};

const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
const escapeHtml = (text) => String(text).replace(/[&<>"']/g, (c) => ESCAPES[c]);

marked.use({
  gfm: true,
  breaks: true,
  // Raw HTML in an answer is shown as text, never interpreted (DOMPurify would also strip the dangerous parts).
  renderer: { html: (token) => escapeHtml(token.text) },
});

DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "A" && node.hasAttribute("href") && !node.getAttribute("href").startsWith("#")) {
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer nofollow");
  }
});

export function languageOf(text) {
  return HANGUL.test(text) ? "ko" : "";
}

export function setLanguage(element, text) {
  const lang = languageOf(text);
  if (lang) element.setAttribute("lang", lang);
  else element.removeAttribute("lang");
}

export function sourceAnchor(messageId, label) {
  return `src-${messageId}-${label}`;
}

function citationBadge(messageId, label, known) {
  if (!known) {
    const span = document.createElement("span");
    span.className = "cite cite-unknown";
    span.textContent = label;
    span.title = t("notASource");
    return span;
  }
  const link = document.createElement("a");
  link.className = "cite";
  link.href = `#${sourceAnchor(messageId, label)}`;
  link.textContent = label;
  link.dataset.label = label;
  return link;
}

// Turn "[S1]" and "[S1, S2]" in text nodes into badges linking to the source list (not inside code or links).
function linkCitations(root, messageId, labels) {
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT, {
    acceptNode: (node) =>
      node.parentElement && node.parentElement.closest("code, pre, a") ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT,
  });
  const nodes = [];
  while (walker.nextNode()) {
    if (CITATION.test(walker.currentNode.nodeValue)) nodes.push(walker.currentNode);
    CITATION.lastIndex = 0;
  }
  for (const node of nodes) {
    const parts = document.createDocumentFragment();
    let last = 0;
    for (const match of node.nodeValue.matchAll(CITATION)) {
      parts.append(node.nodeValue.slice(last, match.index));
      match[1].split(/\s*,\s*/).forEach((label, index) => {
        if (index) parts.append(" ");
        parts.append(citationBadge(messageId, label, labels.has(label)));
      });
      last = match.index + match[0].length;
    }
    parts.append(node.nodeValue.slice(last));
    node.replaceWith(parts);
  }
}

export function renderMarkdown(container, text, messageId, sources) {
  const fragment = DOMPurify.sanitize(marked.parse(text || ""), PURIFY_OPTIONS);
  linkCitations(fragment, messageId, new Set((sources || []).map((item) => item.label)));
  container.replaceChildren(fragment);
  setLanguage(container, text);
}

export function renderSources(list, messageId, sources, documentUrl) {
  list.replaceChildren(
    ...sources.map((item) => {
      const li = document.createElement("li");
      li.id = sourceAnchor(messageId, item.label);
      const link = document.createElement("a");
      const page = Number.isInteger(item.page) && item.page > 0 ? item.page : null;
      const base = documentUrl.replace("{id}", encodeURIComponent(item.document_id));
      link.href = page ? `${base}?page=${page}#page-${page}` : base;
      link.className = "source-link";
      if (item.snippet) link.title = item.snippet;
      const badge = document.createElement("span");
      badge.className = "cite";
      badge.textContent = item.label;
      const title = document.createElement("span");
      title.className = "source-title";
      title.textContent = item.title || t("untitled");
      setLanguage(title, item.title || "");
      link.append(badge, " ", title);
      if (page) {
        const pageLabel = document.createElement("span");
        pageLabel.className = "source-page";
        pageLabel.textContent = t("page", { page });
        link.append(" ", pageLabel);
      }
      li.append(link);
      return li;
    }),
  );
}
