// The message thread: user bubbles, answers (sanitised markdown, status line, sources) and inline notices.
// It only draws; what an answer contains is decided by the protocol code in app.js.

import { renderMarkdown, renderSources, setLanguage } from "./render.js";

export const FINAL = new Set(["complete", "cancelled", "failed"]);
const STATUS_TEXT = { pending: "Searching the documents…", streaming: "", cancelled: "Stopped", failed: "" };

export function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

export class Thread {
  constructor({ scroller, list, empty, documentUrl }) {
    Object.assign(this, { scroller, list, empty, documentUrl });
  }

  clear() {
    this.list.replaceChildren();
    this.empty.hidden = false;
  }

  nearBottom() {
    const { scrollTop, scrollHeight, clientHeight } = this.scroller;
    return scrollHeight - scrollTop - clientHeight < 120;
  }

  scrollToBottom() {
    this.scroller.scrollTop = this.scroller.scrollHeight;
  }

  append(node) {
    this.list.append(node);
    this.empty.hidden = true;
    return node;
  }

  addUserBubble(content) {
    const article = element("article", "msg msg-user");
    const bubble = element("div", "bubble", content);
    setLanguage(bubble, content);
    article.append(bubble);
    return this.append(article);
  }

  addNotice(text, anchor) {
    const notice = element("div", "notice notice-error", text);
    notice.setAttribute("role", "alert");
    setLanguage(notice, text);
    if (anchor) anchor.append(notice);
    else this.append(notice);
    return notice;
  }

  // The elements of one answer; `paint` fills them from the answer's state.
  addAnswer(id) {
    const article = element("article", "msg msg-assistant");
    article.dataset.messageId = id;
    const body = element("div", "answer markdown");
    const statusLine = element("div", "answer-status");
    const sourcesBox = element("section", "sources");
    const sourcesList = element("ol", "sources-list");
    sourcesBox.append(element("h3", "sources-heading", "Sources"), sourcesList);
    article.append(body, statusLine, sourcesBox);
    this.append(article);
    return { article, body, statusLine, sourcesBox, sourcesList };
  }

  paint(answer) {
    const { article, body, statusLine, sourcesBox, sourcesList } = answer.dom;
    const follow = this.nearBottom();
    article.dataset.status = answer.status;
    article.setAttribute("aria-busy", String(!FINAL.has(answer.status)));
    renderMarkdown(body, answer.text, answer.id, answer.sources);
    renderSources(sourcesList, answer.id, answer.sources, this.documentUrl);
    sourcesBox.hidden = answer.sources.length === 0;
    statusLine.replaceChildren();
    if (answer.status === "failed") {
      this.addNotice(answer.error || "The answer could not be completed.", statusLine);
    } else if (STATUS_TEXT[answer.status]) {
      statusLine.append(element("span", `status-pill status-${answer.status}`, STATUS_TEXT[answer.status]));
    }
    if (answer.status === "streaming") statusLine.append(element("span", "typing", "●●●"));
    if (follow) this.scrollToBottom();
  }

  // Tokens can arrive hundreds a second: re-render at most once per frame.
  schedulePaint(answer) {
    if (answer.frame) return;
    answer.frame = requestAnimationFrame(() => {
      answer.frame = 0;
      this.paint(answer);
    });
  }
}
