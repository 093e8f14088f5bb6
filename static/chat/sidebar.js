// The conversation list (newest first), the search over one's own conversations and, on small screens, the
// drawer they live in.

import { t } from "./i18n.js";
import { setLanguage } from "./render.js";
import { element } from "./thread.js";

const SEARCH_DELAY_MS = 250;

export class Sidebar {
  constructor({ panel, list, emptyNote, scrim, toggle, conversationUrl, search }) {
    Object.assign(this, { panel, list, emptyNote, scrim, toggle, conversationUrl, search });
    toggle.addEventListener("click", () => (panel.classList.contains("open") ? this.close() : this.open()));
    scrim.addEventListener("click", () => this.close());
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && panel.classList.contains("open")) {
        this.close();
        toggle.focus();
      }
    });
    this.searchTimer = null;
    this.searchRun = 0;
    search.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.runSearch();
    });
    search.input.addEventListener("input", () => {
      clearTimeout(this.searchTimer);
      this.searchTimer = setTimeout(() => this.runSearch(), SEARCH_DELAY_MS);
    });
  }

  // Searching the titles and messages of one's own conversations (server side); an empty box shows the list.
  async runSearch() {
    const query = this.search.input.value.trim();
    const run = ++this.searchRun;
    const { results, status, list } = this.search;
    if (!query) {
      results.hidden = true;
      this.list.hidden = false;
      return;
    }
    let data;
    try {
      const response = await fetch(`${this.search.url}?q=${encodeURIComponent(query)}`, { headers: { Accept: "application/json" } });
      if (!response.ok) throw new Error(t("searchFailed", { status: response.status }));
      data = await response.json();
    } catch (error) {
      if (run === this.searchRun) status.textContent = error.message;
      return;
    }
    if (run !== this.searchRun) return;
    list.replaceChildren(
      ...data.results.map((item) => {
        const link = element("a", "", "");
        link.href = this.conversationUrl.replace("{id}", item.id);
        link.dataset.conversation = item.id;
        const title = element("span", "search-title", item.title);
        const snippet = element("span", "search-snippet", item.snippet);
        setLanguage(title, item.title);
        setLanguage(snippet, item.snippet);
        link.append(title, snippet);
        const li = element("li");
        li.append(link);
        return li;
      }),
    );
    status.textContent = data.results.length ? "" : t("noResults");
    results.hidden = false;
    this.list.hidden = true;
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
    // Keyboard users continue inside the drawer they opened (Escape closes it and comes back to the toggle).
    this.panel.querySelector("a, button, input")?.focus();
  }

  close() {
    this.panel.classList.remove("open");
    this.scrim.hidden = true;
    this.toggle.setAttribute("aria-expanded", "false");
  }
}
