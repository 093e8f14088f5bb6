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

// Thumb icons (paths from Feather icons, MIT): emoji fonts are missing on many machines.
const ICONS = {
  up: "M14 9V5a3 3 0 0 0-3-3l-4 9v11h11.28a2 2 0 0 0 2-1.7l1.38-9a2 2 0 0 0-2-2.3zM7 22H4a2 2 0 0 1-2-2v-7a2 2 0 0 1 2-2h3",
  down: "M10 15v4a3 3 0 0 0 3 3l4-9V2H5.72a2 2 0 0 0-2 1.7l-1.38 9a2 2 0 0 0 2 2.3zm7-13h2.67A2.31 2.31 0 0 1 22 4v7a2.31 2.31 0 0 1-2.33 2H17",
};
const SVG = "http://www.w3.org/2000/svg";

function icon(rating) {
  const svg = document.createElementNS(SVG, "svg");
  for (const [name, value] of Object.entries({ viewBox: "0 0 24 24", width: "16", height: "16", fill: "none",
    stroke: "currentColor", "stroke-width": "2", "stroke-linecap": "round", "stroke-linejoin": "round",
    "aria-hidden": "true", focusable: "false" })) {
    svg.setAttribute(name, value);
  }
  const path = document.createElementNS(SVG, "path");
  path.setAttribute("d", ICONS[rating]);
  svg.append(path);
  return svg;
}

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
    this.up = this.thumb("up", t("helpful"));
    this.down = this.thumb("down", t("notHelpful"));
    this.form = this.reasonForm();
    this.thanks = node("span", "feedback-thanks muted small");
    this.root.append(this.up, this.down, this.thanks, this.form);
  }

  thumb(rating, label) {
    const button = node("button", `thumb thumb-${rating}`);
    button.append(icon(rating));
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
