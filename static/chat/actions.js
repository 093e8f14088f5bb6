// Rename, delete and export the conversation on screen (POST to the chat views, with the page's CSRF token).

import { t } from "./i18n.js";

export class ConversationActions {
  constructor({ title, bar, renameButton, deleteButton, exportLink, form, input, cancel, csrfToken, renameUrl, deleteUrl, exportUrl, onRenamed, onDeleted, onError }) {
    Object.assign(this, { title, bar, exportLink, form, input, csrfToken, renameUrl, deleteUrl, exportUrl, onRenamed, onDeleted, onError });
    this.renameButton = renameButton;
    this.conversation = null;
    renameButton.addEventListener("click", () => this.startRename());
    deleteButton.addEventListener("click", () => this.confirmDelete());
    cancel.addEventListener("click", () => this.endRename());
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.rename();
    });
    input.addEventListener("keydown", (event) => {
      if (event.key === "Escape") this.endRename();
    });
  }

  // The actions apply to a stored conversation only: a new one has nothing to rename or delete yet.
  show(conversationId) {
    this.conversation = conversationId;
    this.bar.hidden = conversationId === null;
    if (conversationId === null) this.exportLink.removeAttribute("href");
    else this.exportLink.href = this.exportUrl.replace("{id}", conversationId);
    this.endRename();
  }

  startRename() {
    if (this.conversation === null) return;
    this.input.value = this.title.textContent;
    this.form.hidden = false;
    this.title.hidden = true;
    this.bar.hidden = true;
    this.input.focus();
    this.input.select();
  }

  endRename() {
    const wasOpen = !this.form.hidden;
    this.form.hidden = true;
    this.title.hidden = false;
    this.bar.hidden = this.conversation === null;
    // Keyboard users land back where they started instead of at the top of the page.
    if (wasOpen && this.conversation !== null) this.renameButton.focus();
  }

  async rename() {
    const id = this.conversation;
    const data = await this.post(this.renameUrl.replace("{id}", id), { title: this.input.value });
    if (!data) return;
    this.endRename();
    this.onRenamed(id, data.conversation.title);
  }

  async confirmDelete() {
    const id = this.conversation;
    if (id === null || !window.confirm(t("confirmDelete"))) return;
    const data = await this.post(this.deleteUrl.replace("{id}", id), {});
    if (data) this.onDeleted(id);
  }

  async post(url, fields) {
    let response;
    try {
      response = await fetch(url, {
        method: "POST",
        headers: { Accept: "application/json", "X-CSRFToken": this.csrfToken },
        body: new URLSearchParams(fields),
      });
    } catch {
      this.onError(t("unreachable"));
      return null;
    }
    if (response.redirected) {
      location.assign(response.url); // signed out meanwhile
      return null;
    }
    const data = await response.json().catch(() => null);
    if (!response.ok) {
      this.onError(data?.error?.detail || t("refused", { status: response.status }));
      return null;
    }
    return data;
  }
}
