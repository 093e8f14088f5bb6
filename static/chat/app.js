// The chat page: state, the socket protocol (docs/websocket-protocol.md), the composer and navigation between
// conversations. Every answer remembers the last `seq` it rendered so a reconnect can `resume` exactly where it
// left off; duplicate or stale events are dropped by that same number.

import { ConversationActions } from "./actions.js";
import { AnswerBook } from "./answers.js";
import { ChatConnection } from "./connection.js";
import { formatNumber, t } from "./i18n.js";
import { setLanguage } from "./render.js";
import { Sidebar } from "./sidebar.js";
import { applyStreamEvent } from "./stream.js";
import { FINAL, Thread } from "./thread.js";

const config = JSON.parse(document.getElementById("chat-config").textContent);
const TITLE_MAX_CHARS = 80;

const $ = (id) => document.getElementById(id);
const ui = {
  title: $("conversation-title"),
  composer: $("composer"),
  prompt: $("prompt"),
  send: $("send"),
  stop: $("stop"),
  count: $("char-count"),
  connection: $("connection-state"),
  announcer: $("announcer"),
};
const thread = new Thread({
  scroller: $("thread"),
  list: $("messages"),
  empty: $("empty-state"),
  documentUrl: config.documentUrl,
  handlers: {
    onEdit: (questionId, content) => revise("edit", { message: questionId, content }, { questionId, content }),
    onRegenerate: (answerId) => revise("regenerate", { message: answerId }, { answerId }),
    onFeedback: (answerId, choice) => connection.send({ type: "feedback", message: answerId, ...choice }),
    onShowAttempt: (answerId) => showAttempt(answerId),
    canRevise: () => !busy(),
  },
});
const sidebar = new Sidebar({
  panel: $("sidebar"),
  list: $("conversation-list"),
  emptyNote: $("no-conversations"),
  scrim: $("scrim"),
  toggle: $("menu-toggle"),
  conversationUrl: config.conversationUrl,
  search: {
    form: $("search-form"),
    input: $("conversation-search"),
    results: $("search-results"),
    status: $("search-status"),
    list: $("search-list"),
    url: config.searchUrl,
  },
});

const actions = new ConversationActions({
  title: ui.title,
  bar: $("conversation-actions"),
  renameButton: $("rename-conversation"),
  deleteButton: $("delete-conversation"),
  exportLink: $("export-conversation"),
  exportUrl: config.exportUrl,
  form: $("rename-form"),
  input: $("rename-input"),
  cancel: $("rename-cancel"),
  csrfToken: document.querySelector("#rename-form [name=csrfmiddlewaretoken]").value,
  renameUrl: config.renameUrl,
  deleteUrl: config.deleteUrl,
  onRenamed: (id, title) => {
    sidebar.rename(id, title);
    if (state.conversation === id) setTitle(title);
  },
  onDeleted: (id) => {
    sidebar.remove(id);
    if (state.conversation === id) showNewConversation(true);
  },
  onError: (detail) => thread.addNotice(detail),
});

const state = {
  conversation: config.conversation,
  // The question (or regenerate / edit) sent but not yet `accepted`; re-sent with the same client_id after a
  // reconnect (idempotent). `kind` says which.
  pendingAsk: null,
  // The answers and questions shown in this view (the maps belong to `book`).
  answers: null,
  questions: null,
  // The id of the answer the stop button applies to.
  active: null,
  // Bumped on every view change so a slow history fetch cannot paint over a newer view.
  view: 0,
};

const book = new AnswerBook(thread);
state.answers = book.answers;
state.questions = book.questions;
const addAnswer = (fields) => book.addAnswer(fields);
const addQuestion = (content, id, bubble) => book.addQuestion(content, id, bubble);
const paint = (answer) => book.paint(answer);
const showAttempt = (answerId) => book.showAttempt(answerId);

const connection = new ChatConnection(config.socketPath, {
  onOpen: replayAfterOpen,
  onEvent: handleEvent,
  onStateChange: showConnectionState,
  onUnauthenticated: () => location.assign(`${config.loginUrl}?next=${encodeURIComponent(location.pathname)}`),
});

// --- answers and history ----------------------------------------------------------------------------------

function announce(text) {
  ui.announcer.textContent = "";
  // A fresh text node after clearing makes screen readers announce it even when it repeats.
  requestAnimationFrame(() => (ui.announcer.textContent = text));
}

function renderHistory(messages) {
  thread.clear();
  state.answers.clear();
  state.questions.clear();
  state.active = null;
  for (const message of messages) {
    if (message.role === "user") {
      // An edited-over question and its answers are off the path: not shown.
      if (!message.superseded) addQuestion(message.content, message.id);
      continue;
    }
    if (!state.questions.has(message.reply_to)) continue;
    const live = !FINAL.has(message.status);
    // An unfinished answer is replayed from its stream: its stored text is not the latest.
    const answer = addAnswer({
      id: message.id,
      questionId: message.reply_to,
      content: live ? "" : message.content,
      status: message.status,
      sources: live ? [] : message.sources || [],
      error: message.error,
      feedback: message.feedback,
    });
    if (live) {
      state.active = answer.id;
      connection.send({ type: "resume", message: answer.id, after_seq: 0 });
    }
  }
  thread.scrollToBottom();
  updateComposer();
}

// --- navigation -------------------------------------------------------------------------------------------

function shortTitle(content) {
  const line = content.split(/\s+/).join(" ").trim();
  return line.length <= TITLE_MAX_CHARS ? line : `${line.slice(0, TITLE_MAX_CHARS - 1).trimEnd()}…`;
}

function setTitle(text) {
  ui.title.textContent = text;
  setLanguage(ui.title, text);
  document.title = `${text} · Protostar`;
}

// Answers of the view being left keep running on the server; their events are ignored until the user comes
// back, when the history marks them unfinished and they are resumed from the start.
function leaveView() {
  state.view += 1;
  state.pendingAsk = null;
  state.answers.clear();
  state.questions.clear();
  state.active = null;
  thread.clear();
  sidebar.close();
}

function showNewConversation(push) {
  leaveView();
  state.conversation = null;
  actions.show(null);
  if (push) history.pushState({}, "", config.homeUrl);
  setTitle(t("newConversation"));
  sidebar.markActive(null);
  updateComposer();
  ui.prompt.focus();
}

async function fetchHistory(id) {
  const response = await fetch(config.messagesUrl.replace("{id}", id), { headers: { Accept: "application/json" } });
  if (response.redirected) {
    // Signed out meanwhile: the request ended on the sign-in page.
    location.assign(response.url);
    return null;
  }
  if (response.status === 404) throw new Error(t("noSuchConversation"));
  if (!response.ok) throw new Error(t("loadFailed", { status: response.status }));
  return response.json();
}

async function showConversation(id, push) {
  leaveView();
  const view = state.view;
  state.conversation = id;
  actions.show(id);
  sidebar.markActive(id);
  if (push) history.pushState({}, "", config.conversationUrl.replace("{id}", id));
  let data;
  try {
    data = await fetchHistory(id);
  } catch (error) {
    if (view === state.view) thread.addNotice(error.message);
    return;
  }
  if (!data || view !== state.view) return;
  setTitle(data.conversation.title);
  renderHistory(data.messages);
}

function conversationFromPath() {
  const match = location.pathname.match(/\/c\/(\d+)\/?$/);
  return match ? Number(match[1]) : null;
}

// --- composer ---------------------------------------------------------------------------------------------

// The server counts characters (code points), not UTF-16 units.
function charCount(text) {
  return [...text].length;
}

function busy() {
  const active = state.answers.get(state.active);
  return state.pendingAsk !== null || (active !== undefined && !FINAL.has(active.status));
}

function stopAlreadyRequested() {
  const active = state.answers.get(state.active);
  return Boolean((state.pendingAsk && state.pendingAsk.stopRequested) || (active && active.stopRequested));
}

function updateComposer() {
  const count = charCount(ui.prompt.value);
  const tooLong = count > config.maxChars;
  ui.count.textContent = `${formatNumber(count)} / ${formatNumber(config.maxChars)}`;
  ui.count.classList.toggle("over", tooLong);
  ui.prompt.disabled = state.pendingAsk !== null;
  ui.send.disabled = busy() || tooLong || !ui.prompt.value.trim();
  ui.stop.hidden = !busy();
  ui.stop.disabled = stopAlreadyRequested();
  ui.composer.classList.toggle("is-busy", busy());
  // Grow with the text up to a limit (CSSOM writes are allowed by the CSP; style attributes are not).
  ui.prompt.style.height = "auto";
  ui.prompt.style.height = `${Math.min(ui.prompt.scrollHeight, 240)}px`;
}

function newClientId() {
  return crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random().toString(16).slice(2)}`;
}

function ask() {
  const content = ui.prompt.value.trim();
  if (!content || busy() || charCount(content) > config.maxChars) return;
  state.pendingAsk = {
    kind: "ask",
    clientId: newClientId(),
    content,
    conversation: state.conversation,
    bubble: thread.addUserBubble(content),
    stopRequested: false,
    view: state.view,
  };
  ui.prompt.value = "";
  thread.scrollToBottom();
  sendAsk();
  updateComposer();
}

function sendAsk() {
  const pending = state.pendingAsk;
  if (!pending) return;
  if (pending.kind === "ask") {
    connection.send({ type: "ask", conversation: pending.conversation, content: pending.content, client_id: pending.clientId });
  } else {
    connection.send({ type: pending.kind, ...pending.frame, client_id: pending.clientId });
  }
}

// Regenerate the latest answer, or ask an edited question in place of an earlier one (see chat/revisions.py).
function revise(kind, frame, extra) {
  if (busy()) return;
  state.pendingAsk = { kind, frame, clientId: newClientId(), stopRequested: false, view: state.view, ...extra };
  sendAsk();
  updateComposer();
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
  // Answers resume from the last seq each one rendered; then a question that was never accepted is re-sent.
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
  if (pending.kind === "ask") {
    const title = shortTitle(pending.content);
    if (state.conversation === null) {
      history.replaceState({}, "", config.conversationUrl.replace("{id}", event.conversation));
      setTitle(title);
    }
    state.conversation = event.conversation;
    actions.show(event.conversation);
    sidebar.bringToTop(event.conversation, title);
    if (!state.questions.has(event.user_message)) addQuestion(pending.content, event.user_message, pending.bubble);
  } else {
    sidebar.bringToTop(event.conversation, "");
  }
  if (pending.kind === "edit" && !state.questions.has(event.user_message)) {
    book.replaceFromQuestion(pending.questionId, pending.content, event.user_message);
  }
  // A replayed accept (same client_id after a reconnect) may find the answer already on screen.
  const answer = state.answers.get(event.message) || addAnswer({ id: event.message, questionId: event.user_message });
  const earlier = state.questions.get(event.user_message)?.attempts.filter((id) => id !== answer.id) || [];
  for (const id of earlier) paint(state.answers.get(id)); // the regenerate button moves to the new attempt
  state.active = answer.id;
  if (pending.stopRequested) {
    answer.stopRequested = true;
    connection.send({ type: "stop", message: answer.id });
  }
  updateComposer();
  // The composer was disabled while the question was in flight; give the keyboard back for the next one.
  if (document.activeElement === document.body) ui.prompt.focus();
}

function onFeedbackSaved(event) {
  const answer = state.answers.get(event.message);
  if (!answer) return;
  answer.feedback = { rating: event.rating, reason: event.reason };
  paint(answer);
  answer.dom.feedback.confirm();
  announce(t("thanks"));
}

// A refused request (bad input, unknown conversation or message): the socket stays usable.
function onRequestError(event) {
  const answer = state.answers.get(event.message);
  const pending = state.pendingAsk;
  if (pending && pending.kind !== "ask" && (event.message === undefined || event.message === pending.frame.message)) {
    // A refused regenerate or edit: nothing changed on the server; say so where it was asked.
    state.pendingAsk = null;
    const anchor = answer ? answer.dom.tools : state.questions.get(pending.questionId)?.article;
    thread.addNotice(event.detail, anchor);
  } else if (answer && FINAL.has(answer.status)) {
    thread.addNotice(event.detail, answer.dom.tools); // e.g. feedback that could not be stored
  } else if (answer) {
    // e.g. a resume for a message that is gone: say so instead of waiting forever.
    if (!FINAL.has(answer.status)) Object.assign(answer, { status: "failed", error: event.detail });
    paint(answer);
  } else if (event.message === undefined && state.pendingAsk) {
    const pending = state.pendingAsk;
    state.pendingAsk = null;
    thread.addNotice(event.detail, pending.bubble);
    if (!ui.prompt.value) ui.prompt.value = pending.content;
  } else if (event.message === undefined) {
    thread.addNotice(event.detail);
  }
  updateComposer();
}

function handleEvent(event) {
  if (event.type === "accepted") {
    onAccepted(event);
    return;
  }
  if (event.type === "feedback_saved") {
    onFeedbackSaved(event);
    return;
  }
  // Answer events carry `seq`; an error without one answers a request.
  if (event.type === "error" && event.seq === undefined) {
    onRequestError(event);
    return;
  }
  const answer = state.answers.get(event.message);
  if (!answer) return; // an answer of a view the user has left
  const before = answer.status;
  applyStreamEvent(answer, event);
  if (FINAL.has(answer.status)) {
    paint(answer);
    updateComposer();
  } else {
    thread.schedulePaint(answer, () => book.paintOptions(answer));
    if (event.type === "sources" || event.type === "reset") updateComposer();
  }
  // After the final paint, so the finished answer is read out whole, not the last frame painted while streaming.
  announceProgress(answer, before);
}

// Screen readers hear that an answer is being written, then the finished answer once (not every token).
function announceProgress(answer, before) {
  if (before === answer.status) return;
  if (answer.status === "streaming" && !FINAL.has(before)) announce(t("answering"));
  else if (answer.status === "complete") announce(`${t("answerReady")} ${answer.dom.body.textContent || answer.text}`);
  else if (answer.status === "cancelled") announce(t("answerStopped"));
  else if (answer.status === "failed") announce(answer.error || t("answerFailed"));
}

function showConnectionState(connectionState) {
  const reconnecting = connectionState === "reconnecting";
  ui.connection.hidden = !reconnecting;
  ui.connection.textContent = reconnecting ? t("reconnecting") : "";
  document.body.classList.toggle("is-offline", reconnecting);
}

// --- wiring -----------------------------------------------------------------------------------------------

function plainClick(event) {
  return event.button === 0 && !event.metaKey && !event.ctrlKey && !event.shiftKey && !event.altKey;
}

function jumpToSource(event) {
  const cite = event.target.closest("a.cite");
  if (!cite) return;
  const target = document.getElementById(cite.getAttribute("href").slice(1));
  if (!target) return;
  event.preventDefault();
  target.scrollIntoView({ block: "nearest", behavior: "smooth" });
  target.classList.remove("flash");
  void target.offsetWidth; // restarts the highlight animation
  target.classList.add("flash");
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
function openFromSidebar(event) {
  const link = event.target.closest("a[data-conversation]");
  if (!link || !plainClick(event)) return;
  event.preventDefault();
  showConversation(Number(link.dataset.conversation), true);
}
sidebar.list.addEventListener("click", openFromSidebar);
sidebar.search.list.addEventListener("click", openFromSidebar);
$("new-conversation").addEventListener("click", (event) => {
  if (!plainClick(event)) return;
  event.preventDefault();
  showNewConversation(true);
});
thread.scroller.addEventListener("click", jumpToSource);
// The switcher comes back to the conversation on screen (the page may have moved on since it was rendered).
for (const form of document.querySelectorAll(".language-form")) {
  form.addEventListener("submit", () => (form.elements.next.value = location.pathname + location.search));
}
window.addEventListener("popstate", () => {
  const id = conversationFromPath();
  if (id === null) showNewConversation(false);
  else showConversation(id, false);
});

renderHistory(JSON.parse(document.getElementById("chat-history").textContent));
connection.connect();
if (!ui.prompt.disabled) ui.prompt.focus();
