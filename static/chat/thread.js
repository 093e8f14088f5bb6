// The message thread: user bubbles (with edit), answers (sanitised markdown, status line, sources, actions and
// earlier attempts) and inline notices. It only draws and reports clicks; what an answer contains and what a click
// sends is decided by the protocol code in app.js.

import { FeedbackControls } from "./feedback.js";
import { t } from "./i18n.js";
import { renderMarkdown, renderSources, setLanguage } from "./render.js";

export const FINAL = new Set(["complete", "cancelled", "failed"]);
const STATUS_TEXT = { pending: "searching", streaming: "", cancelled: "stopped", failed: "" };

export function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function button(className, text, onClick, label) {
  const node = element("button", className, text);
  node.type = "button";
  if (label) node.setAttribute("aria-label", label);
  node.addEventListener("click", onClick);
  return node;
}

export class Thread {
  // handlers: onEdit(questionId, content), onRegenerate(answerId), onFeedback(answerId, {rating, reason, comment}),
  // onShowAttempt(answerId), canRevise() -> bool (false while an answer is being written).
  constructor({ scroller, list, empty, documentUrl, handlers }) {
    Object.assign(this, { scroller, list, empty, documentUrl, handlers });
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

  append(node, after) {
    if (after) after.after(node);
    else this.list.append(node);
    this.empty.hidden = true;
    return node;
  }

  // Everything from `node` on leaves the screen (an edited question and what followed it).
  removeFrom(node) {
    while (node.nextSibling) node.nextSibling.remove();
    node.remove();
    this.empty.hidden = this.list.children.length > 0;
  }

  addUserBubble(content, id = null) {
    const article = element("article", "msg msg-user");
    if (id !== null) article.dataset.messageId = id;
    const bubble = element("div", "bubble", content);
    setLanguage(bubble, content);
    article.append(bubble);
    if (id !== null) this.addEditControls(article, bubble, id);
    return this.append(article);
  }

  setQuestionId(article, id) {
    article.dataset.messageId = id;
    if (!article.querySelector(".edit-question")) this.addEditControls(article, article.querySelector(".bubble"), id);
  }

  addEditControls(article, bubble, id) {
    const edit = button("link-button edit-question", t("edit"), () => this.openEditor(article, bubble, id), t("editLabel"));
    const form = element("form", "edit-form");
    form.hidden = true;
    const label = element("label", "visually-hidden", t("editLabel"));
    const field = element("textarea", "edit-input");
    field.id = `edit-${id}`;
    label.htmlFor = field.id;
    field.rows = 3;
    const bar = element("div", "edit-bar");
    const submit = element("button", "button-primary edit-submit", t("askAgain"));
    submit.type = "submit";
    const cancel = button("link-button edit-cancel", t("cancel"), () => this.closeEditor(article, edit));
    bar.append(cancel, submit);
    form.append(label, field, bar);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const content = field.value.trim();
      if (!content || content === bubble.textContent.trim() || !this.handlers.canRevise()) return;
      this.closeEditor(article, edit);
      this.handlers.onEdit(id, content);
    });
    field.addEventListener("keydown", (event) => {
      if (event.key === "Escape") this.closeEditor(article, edit);
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
        event.preventDefault();
        form.requestSubmit();
      }
    });
    article.append(edit, form);
  }

  openEditor(article, bubble, id) {
    if (!this.handlers.canRevise()) return;
    const form = article.querySelector(".edit-form");
    const field = form.querySelector("textarea");
    field.value = bubble.textContent;
    form.hidden = false;
    bubble.hidden = true;
    article.querySelector(".edit-question").hidden = true;
    field.focus();
  }

  closeEditor(article, edit) {
    article.querySelector(".edit-form").hidden = true;
    article.querySelector(".bubble").hidden = false;
    edit.hidden = false;
    edit.focus();
  }

  addNotice(text, anchor) {
    const notice = element("div", "notice notice-error", text);
    notice.setAttribute("role", "alert");
    setLanguage(notice, text);
    if (anchor) anchor.append(notice);
    else this.append(notice);
    return notice;
  }

  // The elements of one answer; `paint` fills them from the answer's state. `after`: the node it follows
  // (a regenerated answer goes right after the attempt it replaces).
  addAnswer(id, after) {
    const article = element("article", "msg msg-assistant");
    article.dataset.messageId = id;
    const body = element("div", "answer markdown");
    const statusLine = element("div", "answer-status");
    const sourcesBox = element("section", "sources");
    const sourcesList = element("ol", "sources-list");
    const heading = element("h3", "sources-heading", t("sources"));
    heading.id = `sources-${id}`;
    sourcesBox.setAttribute("aria-labelledby", heading.id);
    sourcesBox.append(heading, sourcesList);
    const tools = element("div", "answer-tools");
    tools.setAttribute("role", "group");
    tools.setAttribute("aria-label", t("answerActions"));
    const pager = element("div", "attempts");
    pager.hidden = true;
    const copy = button("link-button copy-answer", t("copy"), () => this.copy(id, copy));
    const regenerate = button("link-button regenerate-answer", t("regenerate"), () => this.handlers.onRegenerate(id));
    const feedback = new FeedbackControls(id, (choice) => this.handlers.onFeedback(id, choice));
    tools.append(pager, copy, regenerate, feedback.root);
    article.append(body, statusLine, sourcesBox, tools);
    this.append(article, after);
    return { article, body, statusLine, sourcesBox, sourcesList, tools, pager, copy, regenerate, feedback };
  }

  async copy(id, copyButton) {
    const text = this.list.querySelector(`article.msg-assistant[data-message-id="${id}"] .answer`)?.dataset.source;
    let done = false;
    try {
      await navigator.clipboard.writeText(text || "");
      done = true;
    } catch {
      done = false;
    }
    copyButton.textContent = done ? t("copied") : t("copyFailed");
    setTimeout(() => (copyButton.textContent = t("copy")), 2000);
  }

  // attempts: the answers to the same question, oldest first; the shown one is `answer`.
  paintAttempts(answer, attempts) {
    const { pager } = answer.dom;
    pager.replaceChildren();
    pager.hidden = attempts.length < 2;
    if (attempts.length < 2) return;
    const index = attempts.indexOf(answer.id);
    const previous = button("link-button attempt-previous", "‹", () => this.handlers.onShowAttempt(attempts[index - 1]), t("previousAttempt"));
    const next = button("link-button attempt-next", "›", () => this.handlers.onShowAttempt(attempts[index + 1]), t("nextAttempt"));
    previous.disabled = index <= 0;
    next.disabled = index >= attempts.length - 1;
    const label = element("span", "attempt-label", t("attempt", { n: index + 1, total: attempts.length }));
    pager.append(previous, label, next);
  }

  paint(answer, { latest = false } = {}) {
    const { article, body, statusLine, sourcesBox, sourcesList, tools, regenerate, feedback } = answer.dom;
    const follow = this.nearBottom();
    const done = FINAL.has(answer.status);
    article.dataset.status = answer.status;
    article.setAttribute("aria-busy", String(!done));
    renderMarkdown(body, answer.text, answer.id, answer.sources);
    body.dataset.source = answer.text;
    renderSources(sourcesList, answer.id, answer.sources, this.documentUrl);
    sourcesBox.hidden = answer.sources.length === 0;
    statusLine.replaceChildren();
    if (answer.status === "failed") {
      this.addNotice(answer.error || t("answerFailed"), statusLine);
    } else if (STATUS_TEXT[answer.status]) {
      const key = STATUS_TEXT[answer.status];
      statusLine.append(element("span", `status-pill status-${answer.status}`, t(key)));
    }
    if (answer.status === "streaming") {
      const dots = element("span", "typing", "●●●");
      dots.setAttribute("aria-hidden", "true");
      statusLine.append(dots);
    }
    tools.hidden = !done;
    regenerate.hidden = !latest;
    feedback.show(answer.feedback, Boolean(answer.text));
    if (follow) this.scrollToBottom();
  }

  // Tokens can arrive hundreds a second: re-render at most once per frame.
  schedulePaint(answer, options) {
    if (answer.frame) return;
    answer.frame = requestAnimationFrame(() => {
      answer.frame = 0;
      this.paint(answer, options());
    });
  }
}
