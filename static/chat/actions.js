// Rename and delete the conversation on screen (POST to the chat views, with the page's CSRF token).

export class ConversationActions {
  constructor({ title, bar, renameButton, deleteButton, form, input, cancel, csrfToken, renameUrl, deleteUrl, onRenamed, onDeleted, onError }) {
    Object.assign(this, { title, bar, form, input, csrfToken, renameUrl, deleteUrl, onRenamed, onDeleted, onError });
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
    this.form.hidden = true;
    this.title.hidden = false;
    this.bar.hidden = this.conversation === null;
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
    if (id === null || !window.confirm("Delete this conversation and all its answers? This cannot be undone.")) return;
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
      this.onError("The server could not be reached; nothing was changed.");
      return null;
    }
    if (response.redirected) {
      location.assign(response.url); // signed out meanwhile
      return null;
    }
    const data = await response.json().catch(() => null);
    if (!response.ok) {
      this.onError(data?.error?.detail || `The change was refused (HTTP ${response.status}).`);
      return null;
    }
    return data;
  }
}
