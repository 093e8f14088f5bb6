// How one answer event changes an answer's state (docs/websocket-protocol.md); drawing is thread.js's business.

export function applyStreamEvent(answer, event) {
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
