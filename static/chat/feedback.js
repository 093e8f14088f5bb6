// Thumbs up / down under an answer; a thumbs down opens an optional reason (wrong, incomplete, wrong source,
// outdated, other) and comment. The choice is sent by app.js (`feedback` request) and confirmed by the server.

import { t } from "./i18n.js";

const REASONS = [
  ["wrong", "reasonWrong"],
  ["incomplete", "reasonIncomplete"],
  ["wrong_source", "reasonWrongSource"],
  ["outdated", "reasonOutdated"],
  ["other", "reasonOther"],
];

function node(tag, className, text) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text !== undefined) el.textContent = text;
  return el;
}

export class FeedbackControls {
  constructor(answerId, onChoice) {
    this.answerId = answerId;
    this.onChoice = onChoice;
    this.root = node("div", "feedback");
    this.up = this.thumb("up", "👍", t("helpful"));
    this.down = this.thumb("down", "👎", t("notHelpful"));
    this.form = this.reasonForm();
    this.thanks = node("span", "feedback-thanks muted small");
    this.root.append(this.up, this.down, this.thanks, this.form);
  }

  thumb(rating, symbol, label) {
    const button = node("button", `thumb thumb-${rating}`, symbol);
    button.type = "button";
    button.setAttribute("aria-label", label);
    button.title = label;
    button.setAttribute("aria-pressed", "false");
    button.addEventListener("click", () => {
      if (rating === "up") {
        this.form.hidden = true;
        this.onChoice({ rating: "up", reason: "", comment: "" });
      } else {
        this.openForm();
      }
    });
    return button;
  }

  reasonForm() {
    const form = node("form", "feedback-form");
    form.hidden = true;
    const fieldset = node("fieldset");
    fieldset.append(node("legend", "", t("feedbackQuestion")));
    for (const [value, key] of REASONS) {
      const id = `reason-${this.answerId}-${value}`;
      const input = node("input");
      Object.assign(input, { type: "radio", name: `reason-${this.answerId}`, value, id });
      const label = node("label", "reason", "");
      label.htmlFor = id;
      label.append(input, " ", t(key));
      fieldset.append(label);
    }
    const commentId = `comment-${this.answerId}`;
    const commentLabel = node("label", "comment-label", t("comment"));
    commentLabel.htmlFor = commentId;
    const comment = node("textarea", "feedback-comment");
    Object.assign(comment, { id: commentId, rows: 2, maxLength: 2000 });
    const bar = node("div", "feedback-bar");
    const cancel = node("button", "link-button", t("cancel"));
    cancel.type = "button";
    cancel.addEventListener("click", () => this.closeForm());
    const send = node("button", "button-primary feedback-send", t("send"));
    send.type = "submit";
    bar.append(cancel, send);
    form.append(fieldset, commentLabel, comment, bar);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const reason = form.querySelector("input[type=radio]:checked")?.value || "";
      this.onChoice({ rating: "down", reason, comment: comment.value.trim() });
      this.closeForm();
    });
    form.addEventListener("keydown", (event) => {
      if (event.key === "Escape") this.closeForm();
    });
    return form;
  }

  openForm() {
    this.form.hidden = false;
    this.form.querySelector("input[type=radio]").focus();
  }

  closeForm() {
    this.form.hidden = true;
    this.down.focus();
  }

  // feedback: {rating, reason} as stored, or null; hidden when there is nothing to rate.
  show(feedback, rateable) {
    this.root.hidden = !rateable;
    const rating = feedback ? feedback.rating : null;
    this.up.setAttribute("aria-pressed", String(rating === "up"));
    this.down.setAttribute("aria-pressed", String(rating === "down"));
  }

  confirm() {
    this.thanks.textContent = t("thanks");
  }
}
