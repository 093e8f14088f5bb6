// The chat page: sidebar of conversations, the message thread, the composer, and the socket protocol
// (docs/websocket-protocol.md). Every answer remembers the last `seq` it rendered so a reconnect can `resume`
// exactly where it left off; duplicate or stale events are dropped by that same number.

import { ChatConnection } from "./connection.js";
import { renderMarkdown, renderSources, setLanguage } from "./render.js";

const config = JSON.parse(document.getElementById("chat-config").textContent);
const FINAL = new Set(["complete", "cancelled", "failed"]);
const TITLE_MAX_CHARS = 80;

const $ = (id) => document.getElementById(id);
const ui = {
  thread: $("thread"),
  messages: $("messages"),
  empty: $("empty-state"),
  title: $("conversation-title"),
  list: $("conversation-list"),
  noConversations: $("no-conversations"),
  composer: $("composer"),
  prompt: $("prompt"),
  send: $("send"),
  stop: $("stop"),
  count: $("char-count"),
  connection: $("connection-state"),
  sidebar: $("sidebar"),
  scrim: $("scrim"),
  menu: $("menu-toggle"),
};

const state = {
  conversation: config.conversation,
  // The question sent but not yet `accepted`; re-sent with the same client_id after a reconnect (idempotent).
  pendingAsk: null,
  // Assistant messages shown in this view, by id.
  answers: new Map(),
  // The id of the answer the stop button applies to.
  active: null,
  // Bumped on every view change so a slow history fetch cannot paint over a newer view.
  view: 0,
};

const connection = new ChatConnection(config.socketPath, {
  onOpen: replayAfterOpen,
  onEvent: handleEvent,
  onStateChange: showConnectionState,
  onUnauthenticated: () => location.assign(`${config.loginUrl}?next=${encodeURIComponent(location.pathname)}`),
});

// --- rendering --------------------------------------------------------------------------------------------

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function nearBottom() {
  const { scrollTop, scrollHeight, clientHeight } = ui.thread;
  return scrollHeight - scrollTop - clientHeight < 120;
}

function scrollToBottom() {
  ui.thread.scrollTop = ui.thread.scrollHeight;
}

function addUserBubble(content) {
  const article = element("article", "msg msg-user");
  const bubble = element("div", "bubble", content);
  setLanguage(bubble, content);
  article.append(bubble);
  ui.messages.append(article);
  ui.empty.hidden = true;
  return article;
}

function addNotice(text, anchor) {
  const notice = element("div", "notice notice-error", text);
  notice.setAttribute("role", "alert");
  setLanguage(notice, text);
  if (anchor) anchor.append(notice);
  else ui.messages.append(notice);
  return notice;
}

function createAnswer({ id, content = "", status = "pending", sources = [], error = "" }) {
  const article = element("article", "msg msg-assistant");
  article.dataset.messageId = id;
  const body = element("div", "answer markdown");
  const statusLine = element("div", "answer-status");
  const sourcesBox = element("section", "sources");
  sourcesBox.append(element("h3", "sources-heading", "Sources"), element("ol", "sources-list"));
  article.append(body, statusLine, sourcesBox);
  ui.messages.append(article);
  ui.empty.hidden = true;
  const answer = { id, text: content, status, sources, error, lastSeq: 0, stopRequested: false, frame: 0 };
  answer.dom = { article, body, statusLine, sourcesBox, sourcesList: sourcesBox.querySelector("ol") };
  state.answers.set(id, answer);
  paint(answer);
  return answer;
}

const STATUS_TEXT = { pending: "Searching the documents…", streaming: "", cancelled: "Stopped", failed: "" };

function paint(answer) {
  const { article, body, statusLine, sourcesBox, sourcesList } = answer.dom;
  const follow = nearBottom();
  article.dataset.status = answer.status;
  article.setAttribute("aria-busy", String(!FINAL.has(answer.status)));
  renderMarkdown(body, answer.text, answer.id, answer.sources);
  renderSources(sourcesList, answer.id, answer.sources, config.documentUrl);
  sourcesBox.hidden = answer.sources.length === 0;
  statusLine.replaceChildren();
  if (answer.status === "failed") {
    const detail = answer.error || "The answer could not be completed.";
    addNotice(detail, statusLine);
  } else if (STATUS_TEXT[answer.status]) {
    statusLine.append(element("span", `status-pill status-${answer.status}`, STATUS_TEXT[answer.status]));
  }
  if (answer.status === "streaming") statusLine.append(element("span", "typing", "●●●"));
  if (follow) scrollToBottom();
}

// Tokens can arrive hundreds a second: re-render at most once per frame.
function schedulePaint(answer) {
  if (answer.frame) return;
  answer.frame = requestAnimationFrame(() => {
    answer.frame = 0;
    paint(answer);
  });
}

function renderHistory(messages) {
  ui.messages.replaceChildren();
  state.answers.clear();
  state.active = null;
  for (const message of messages) {
    if (message.role === "user") {
      addUserBubble(message.content);
      continue;
    }
    const live = !FINAL.has(message.status);
    // An unfinished answer is replayed from its stream; its stored text is not the latest.
    const answer = createAnswer({
      id: message.id,
      content: live ? "" : message.content,
      status: message.status,
      sources: live ? [] : message.sources || [],
      error: message.error,
    });
    if (live) {
      state.active = answer.id;
      connection.send({ type: "resume", message: answer.id, after_seq: 0 });
    }
  }
  ui.empty.hidden = messages.length > 0;
  scrollToBottom();
  updateComposer();
}

// --- sidebar and navigation -------------------------------------------------------------------------------

function shortTitle(content) {
  const line = content.split(/\s+/).join(" ").trim();
  return line.length <= TITLE_MAX_CHARS ? line : `${line.slice(0, TITLE_MAX_CHARS - 1).trimEnd()}…`;
}

function markActiveConversation() {
  for (const link of ui.list.querySelectorAll("a[data-conversation]")) {
    const active = Number(link.dataset.conversation) === state.conversation;
    link.classList.toggle("active", active);
    if (active) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

function bringConversationToTop(id, title) {
  let link = ui.list.querySelector(`a[data-conversation="${id}"]`);
  if (!link) {
    link = element("a", "", title);
    link.href = config.conversationUrl.replace("{id}", id);
    link.dataset.conversation = id;
    setLanguage(link, title);
    const item = element("li");
    item.append(link);
    ui.list.prepend(item);
  } else {
    ui.list.prepend(link.parentElement);
  }
  ui.noConversations.hidden = true;
  markActiveConversation();
}

function setTitle(text) {
  ui.title.textContent = text;
  setLanguage(ui.title, text);
  document.title = `${text} · Protostar`;
}

function leaveView() {
  state.view += 1;
  state.pendingAsk = null;
  state.answers.clear();
  state.active = null;
  ui.messages.replaceChildren();
  closeSidebar();
}

function showNewConversation(push) {
  leaveView();
  state.conversation = null;
  if (push) history.pushState({}, "", config.homeUrl);
  setTitle("New conversation");
  ui.empty.hidden = false;
  markActiveConversation();
  updateComposer();
  ui.prompt.focus();
}

async function showConversation(id, push) {
  leaveView();
  const view = state.view;
  state.conversation = id;
  markActiveConversation();
  if (push) history.pushState({}, "", config.conversationUrl.replace("{id}", id));
  let data;
  try {
    const response = await fetch(config.messagesUrl.replace("{id}", id), { headers: { Accept: "application/json" } });
    if (response.status === 404) throw new Error("This conversation does not exist.");
    if (!response.ok) throw new Error(`Could not load the conversation (HTTP ${response.status}).`);
    data = await response.json();
  } catch (error) {
    if (view === state.view) addNotice(error.message);
    return;
  }
  if (view !== state.view) return;
  setTitle(data.conversation.title);
  renderHistory(data.messages);
}

function conversationFromPath() {
  const match = location.pathname.match(/\/c\/(\d+)\/?$/);
  return match ? Number(match[1]) : null;
}

// --- composer ---------------------------------------------------------------------------------------------

function charCount(text) {
  return [...text].length;
}

function busy() {
  const active = state.answers.get(state.active);
  return state.pendingAsk !== null || (active !== undefined && !FINAL.has(active.status));
}

function updateComposer() {
  const count = charCount(ui.prompt.value);
  const tooLong = count > config.maxChars;
  ui.count.textContent = `${count.toLocaleString()} / ${config.maxChars.toLocaleString()}`;
  ui.count.classList.toggle("over", tooLong);
  ui.prompt.disabled = state.pendingAsk !== null;
  ui.send.disabled = busy() || tooLong || !ui.prompt.value.trim();
  ui.stop.hidden = !busy();
  const active = state.answers.get(state.active);
  ui.stop.disabled = Boolean(active && active.stopRequested) || Boolean(state.pendingAsk && state.pendingAsk.stopRequested);
  ui.composer.classList.toggle("is-busy", busy());
  ui.prompt.style.height = "auto";
  ui.prompt.style.height = `${Math.min(ui.prompt.scrollHeight, 240)}px`;
}

function ask() {
  const content = ui.prompt.value.trim();
  if (!content || busy() || charCount(content) > config.maxChars) return;
  const clientId = crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random().toString(16).slice(2)}`;
  state.pendingAsk = {
    clientId,
    content,
    conversation: state.conversation,
    bubble: addUserBubble(content),
    stopRequested: false,
    view: state.view,
  };
  ui.prompt.value = "";
  scrollToBottom();
  sendAsk();
  updateComposer();
}

function sendAsk() {
  const pending = state.pendingAsk;
  if (!pending) return;
  connection.send({ type: "ask", conversation: pending.conversation, content: pending.content, client_id: pending.clientId });
}

function requestStop() {
  if (state.pendingAsk) {
    // Not accepted yet: there is no message id to stop; stop as soon as there is.
    state.pendingAsk.stopRequested = true;
  } else {
    const answer = state.answers.get(state.active);
    if (!answer || FINAL.has(answer.status)) return;
    answer.stopRequested = true;
    connection.send({ type: "stop", message: answer.id });
  }
  updateComposer();
}

// --- protocol ---------------------------------------------------------------------------------------------

function replayAfterOpen() {
  // Answers first (they resume from the last seq each one rendered), then a question that was never accepted.
  for (const answer of state.answers.values()) {
    if (FINAL.has(answer.status)) continue;
    connection.send({ type: "resume", message: answer.id, after_seq: answer.lastSeq });
    if (answer.stopRequested) connection.send({ type: "stop", message: answer.id });
  }
  sendAsk();
}

function onAccepted(event) {
  const pending = state.pendingAsk;
  if (!pending || pending.view !== state.view) return;
  state.pendingAsk = null;
  const isNew = state.conversation === null;
  state.conversation = event.conversation;
  if (isNew) {
    history.replaceState({}, "", config.conversationUrl.replace("{id}", event.conversation));
    setTitle(shortTitle(pending.content));
  }
  bringConversationToTop(event.conversation, shortTitle(pending.content));
  // A replayed accept (same client_id after a reconnect) may find the answer already on screen.
  const answer = state.answers.get(event.message) || createAnswer({ id: event.message });
  state.active = answer.id;
  if (pending.stopRequested) {
    answer.stopRequested = true;
    connection.send({ type: "stop", message: answer.id });
  }
  updateComposer();
}

function onRequestError(event) {
  // A refused request (bad input, unknown conversation): the socket stays usable.
  const pending = state.pendingAsk;
  if (pending) {
    state.pendingAsk = null;
    addNotice(event.detail, pending.bubble);
    if (!ui.prompt.value) ui.prompt.value = pending.content;
  } else {
    addNotice(event.detail);
  }
  updateComposer();
}

function applyStreamEvent(answer, event) {
  if (event.type === "reset") {
    // Everything shown so far is void; the answer follows again from `sources` (numbering may restart).
    Object.assign(answer, { text: "", sources: [], error: "", status: "streaming", lastSeq: event.seq });
    return;
  }
  if (event.seq <= answer.lastSeq) return; // already rendered (a resume overlapping what arrived)
  answer.lastSeq = event.seq;
  if (event.type === "sources") {
    answer.sources = event.items || [];
    if (answer.status === "pending") answer.status = "streaming";
  } else if (event.type === "token") {
    answer.text += event.text;
    answer.status = "streaming";
  } else if (event.type === "end") {
    answer.status = event.finish_reason === "cancelled" ? "cancelled" : "complete";
  } else if (event.type === "error") {
    answer.status = "failed";
    answer.error = event.detail;
  }
}

function handleEvent(event) {
  if (event.type === "accepted") {
    onAccepted(event);
    return;
  }
  if (event.type === "error" && (event.message === undefined || event.seq === undefined)) {
    const answer = state.answers.get(event.message);
    if (answer && event.code === "not_found") {
      // A resume for a message that is gone: show why instead of waiting forever.
      Object.assign(answer, { status: "failed", error: event.detail });
      paint(answer);
      updateComposer();
    } else if (!answer && event.message === undefined) {
      onRequestError(event);
    }
    return;
  }
  const answer = state.answers.get(event.message);
  if (!answer) return; // an answer of a view the user has left
  applyStreamEvent(answer, event);
  if (FINAL.has(answer.status)) {
    paint(answer);
    updateComposer();
  } else {
    schedulePaint(answer);
    if (event.type === "sources" || event.type === "reset") updateComposer();
  }
}

function showConnectionState(connectionState) {
  const reconnecting = connectionState === "reconnecting";
  ui.connection.hidden = !reconnecting;
  ui.connection.textContent = reconnecting ? "Reconnecting…" : "";
  document.body.classList.toggle("is-offline", reconnecting);
}

// --- mobile sidebar ---------------------------------------------------------------------------------------

function openSidebar() {
  ui.sidebar.classList.add("open");
  ui.scrim.hidden = false;
  ui.menu.setAttribute("aria-expanded", "true");
}

function closeSidebar() {
  ui.sidebar.classList.remove("open");
  ui.scrim.hidden = true;
  ui.menu.setAttribute("aria-expanded", "false");
}

// --- wiring -----------------------------------------------------------------------------------------------

function plainClick(event) {
  return event.button === 0 && !event.metaKey && !event.ctrlKey && !event.shiftKey && !event.altKey;
}

ui.composer.addEventListener("submit", (event) => {
  event.preventDefault();
  ask();
});
ui.prompt.addEventListener("keydown", (event) => {
  // Enter while an IME is composing (Korean input) confirms the syllable; it must not send.
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
    event.preventDefault();
    ask();
  }
});
ui.prompt.addEventListener("input", updateComposer);
ui.stop.addEventListener("click", requestStop);
ui.list.addEventListener("click", (event) => {
  const link = event.target.closest("a[data-conversation]");
  if (!link || !plainClick(event)) return;
  event.preventDefault();
  showConversation(Number(link.dataset.conversation), true);
});
$("new-conversation").addEventListener("click", (event) => {
  if (!plainClick(event)) return;
  event.preventDefault();
  showNewConversation(true);
});
ui.menu.addEventListener("click", () => (ui.sidebar.classList.contains("open") ? closeSidebar() : openSidebar()));
ui.scrim.addEventListener("click", closeSidebar);
ui.thread.addEventListener("click", (event) => {
  // Citation badges jump to their source and flash it.
  const cite = event.target.closest("a.cite");
  if (!cite) return;
  const target = document.getElementById(cite.getAttribute("href").slice(1));
  if (!target) return;
  event.preventDefault();
  target.scrollIntoView({ block: "nearest", behavior: "smooth" });
  target.classList.remove("flash");
  void target.offsetWidth; // restart the animation
  target.classList.add("flash");
});
window.addEventListener("popstate", () => {
  const id = conversationFromPath();
  if (id === null) showNewConversation(false);
  else showConversation(id, false);
});

renderHistory(JSON.parse(document.getElementById("chat-history").textContent));
connection.connect();
updateComposer();
if (!ui.prompt.disabled) ui.prompt.focus();
