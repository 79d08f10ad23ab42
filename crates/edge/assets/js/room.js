// A room connection over WebSocket (`/ws/{app}/{name}`) that survives network blips:
// it reconnects with backoff and resumes with `since=` the last seq it handled, and it
// drops any event at or below that seq, so nothing is lost or shown twice.
import { backoffDelay } from "./util.js";

/** Close codes after which reconnecting cannot help (docs/rooms.md). */
const FINAL = new Map([
  [4003, "You are banned from this room."],
  [4004, "There is no such room."],
]);
const BAD_TOKEN = 4001;

export class Room {
  /**
   * @param {string} path `{app}/{name}`
   * @param {object} options `token` (chat token or null), `query` (extra query, e.g.
   *   the playback signature, as URLSearchParams), `history` (true: ask for the
   *   room's history on the first join), and handlers: `onEvent(event, live)`,
   *   `onWelcome(welcome)`, `onState(state, detail)`, `onReset()`, `onBadToken(reason)`
   *   (the token was refused with 4001; `reason` is the server's close reason).
   */
  constructor(path, options) {
    this.path = path;
    this.token = options.token || null;
    this.query = options.query || new URLSearchParams();
    this.history = options.history !== false;
    this.handlers = options;
    this.lastSeq = null;
    this.liveFrom = 0;
    this.attempt = 0;
    this.socket = null;
    this.stopped = false;
    this.timer = null;
  }

  url() {
    const query = new URLSearchParams(this.query);
    if (this.lastSeq !== null) query.set("since", String(this.lastSeq));
    else if (this.history) query.set("since", "0");
    if (this.token) query.set("token", this.token);
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const text = query.toString();
    return `${scheme}//${location.host}/ws/${this.path}${text ? `?${text}` : ""}`;
  }

  connect() {
    if (this.stopped) return;
    this.state("connecting");
    let socket;
    try {
      socket = new WebSocket(this.url());
    } catch (error) {
      this.retry();
      return;
    }
    this.socket = socket;
    socket.addEventListener("message", (message) => this.receive(message.data));
    socket.addEventListener("close", (close) => this.closed(close));
  }

  receive(data) {
    let event;
    try {
      event = JSON.parse(data);
    } catch {
      return;
    }
    if (!event || typeof event !== "object") return;
    if (event.type === "welcome") {
      this.attempt = 0;
      // What arrives up to last_seq is backlog (history); after it, live.
      this.liveFrom = Number(event.last_seq) || 0;
      if (this.lastSeq === null) this.lastSeq = 0;
      this.state("open");
      this.handlers.onWelcome?.(event);
      return;
    }
    if (event.type === "reset") {
      // The room was recreated: its seqs start again; take what follows as new.
      this.lastSeq = 0;
      this.liveFrom = Number(event.last_seq) || 0;
      this.handlers.onReset?.();
      return;
    }
    if (typeof event.seq === "number") {
      if (this.lastSeq !== null && event.seq <= this.lastSeq) return; // already handled
      this.lastSeq = event.seq;
    }
    const live = typeof event.seq !== "number" || event.seq > this.liveFrom;
    this.handlers.onEvent?.(event, live);
  }

  closed(close) {
    this.socket = null;
    if (this.stopped) return;
    if (FINAL.has(close.code)) {
      this.stopped = true;
      this.state("closed", FINAL.get(close.code));
      return;
    }
    if (close.code === BAD_TOKEN && this.token) {
      // An expired or wrong token: go on reading without it.
      this.token = null;
      this.handlers.onBadToken?.(close.reason || "");
    }
    this.retry();
  }

  retry() {
    const delay = backoffDelay(this.attempt++);
    this.state("reconnecting", delay);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  state(state, detail) {
    this.handlers.onState?.(state, detail);
  }

  /** Sends a client message; false when not connected. */
  send(message) {
    if (!this.socket || this.socket.readyState !== WebSocket.OPEN) return false;
    this.socket.send(JSON.stringify(message));
    return true;
  }

  close() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.socket?.close(1000);
  }
}
