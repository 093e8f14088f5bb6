// The conversation list (newest first) and, on small screens, the drawer it lives in.

import { setLanguage } from "./render.js";
import { element } from "./thread.js";

export class Sidebar {
  constructor({ panel, list, emptyNote, scrim, toggle, conversationUrl }) {
    Object.assign(this, { panel, list, emptyNote, scrim, toggle, conversationUrl });
    toggle.addEventListener("click", () => (panel.classList.contains("open") ? this.close() : this.open()));
    scrim.addEventListener("click", () => this.close());
  }

  markActive(conversationId) {
    for (const link of this.list.querySelectorAll("a[data-conversation]")) {
      const active = Number(link.dataset.conversation) === conversationId;
      link.classList.toggle("active", active);
      if (active) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
  }

  // A conversation that just got a question moves to the top (the list is ordered by last activity).
  bringToTop(conversationId, title) {
    let link = this.list.querySelector(`a[data-conversation="${conversationId}"]`);
    if (link) {
      this.list.prepend(link.parentElement);
    } else {
      link = element("a", "", title);
      link.href = this.conversationUrl.replace("{id}", conversationId);
      link.dataset.conversation = conversationId;
      setLanguage(link, title);
      const item = element("li");
      item.append(link);
      this.list.prepend(item);
    }
    this.emptyNote.hidden = true;
    this.markActive(conversationId);
  }

  rename(conversationId, title) {
    const link = this.list.querySelector(`a[data-conversation="${conversationId}"]`);
    if (!link) return;
    link.textContent = title;
    setLanguage(link, title);
  }

  remove(conversationId) {
    this.list.querySelector(`a[data-conversation="${conversationId}"]`)?.parentElement.remove();
    this.emptyNote.hidden = this.list.children.length > 0;
  }

  open() {
    this.panel.classList.add("open");
    this.scrim.hidden = false;
    this.toggle.setAttribute("aria-expanded", "true");
  }

  close() {
    this.panel.classList.remove("open");
    this.scrim.hidden = true;
    this.toggle.setAttribute("aria-expanded", "false");
  }
}
