// One WebSocket to /ws/chat/ that comes back by itself. Answers keep running on the server while the socket is
// down; the page resumes them on every (re)open, so reconnecting is safe to do eagerly.

const CLOSE_UNAUTHENTICATED = 4401;
const BASE_DELAY_MS = 500;
const MAX_DELAY_MS = 15000;

export class ChatConnection {
  constructor(path, { onOpen, onEvent, onStateChange, onUnauthenticated }) {
    this.url = `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}${path}`;
    this.handlers = { onOpen, onEvent, onStateChange, onUnauthenticated };
    this.socket = null;
    this.attempt = 0;
    this.timer = null;
    this.state = "connecting";
    window.addEventListener("online", () => this.reconnectNow());
  }

  get isOpen() {
    return this.socket !== null && this.socket.readyState === WebSocket.OPEN;
  }

  connect() {
    clearTimeout(this.timer);
    this.timer = null;
    const socket = new WebSocket(this.url);
    this.socket = socket;
    socket.addEventListener("open", () => {
      if (socket !== this.socket) return;
      this.attempt = 0;
      this.setState("open");
      this.handlers.onOpen();
    });
    socket.addEventListener("message", (frame) => {
      if (socket !== this.socket) return;
      let event;
      try {
        event = JSON.parse(frame.data);
      } catch {
        return;
      }
      this.handlers.onEvent(event);
    });
    socket.addEventListener("close", (close) => {
      if (socket !== this.socket) return;
      if (close.code === CLOSE_UNAUTHENTICATED) {
        // The session is gone: reconnecting would be refused again.
        this.setState("closed");
        this.handlers.onUnauthenticated();
        return;
      }
      this.scheduleReconnect();
    });
  }

  // Exponential backoff with jitter, so a restarted server is not hit by every tab at the same instant.
  scheduleReconnect() {
    this.setState("reconnecting");
    const delay = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** this.attempt) * (0.5 + Math.random() / 2);
    this.attempt += 1;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  reconnectNow() {
    if (this.state === "reconnecting") {
      this.attempt = 0;
      this.connect();
    }
  }

  setState(state) {
    this.state = state;
    this.handlers.onStateChange(state);
  }

  // Returns false when the frame could not be sent; callers keep what they need to replay on the next open.
  send(payload) {
    if (!this.isOpen) return false;
    this.socket.send(JSON.stringify(payload));
    return true;
  }
}
