// The admin dashboard: live streams with charts, kick, stream keys, chat moderation.
// Everything goes through the REST API with the admin token the operator enters;
// the token is kept in this tab only (sessionStorage).
import { el, formatDuration, session, setStatus, STREAM_PATH } from "./util.js";
import { StreamChart } from "./chart.js";
import { Room } from "./room.js";

const TOKEN_KEY = "onair.admin-token";
const POLL_MS = 2000;
const ROOM_POLL_MS = 5000;
const MAX_MOD_ITEMS = 300;

const $ = (id) => document.getElementById(id);
let adminToken = session.get(TOKEN_KEY);

class Unauthorized extends Error {}

/** Calls the API; returns the parsed body (or null); throws with the API's message. */
async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${adminToken}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store",
  });
  const text = await response.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  if (response.status === 401 || response.status === 403) {
    throw new Unauthorized(json?.error?.message || "the admin token was refused");
  }
  if (!response.ok) {
    throw new Error(json?.error?.message || `HTTP ${response.status}`);
  }
  return json;
}

function failed(error, statusNode) {
  if (error instanceof Unauthorized) {
    signOut(error.message);
    return;
  }
  setStatus(statusNode, error.message, "error");
}

// ---- sign in -----------------------------------------------------------------------

let pollTimer = null;

async function signIn(token) {
  adminToken = token;
  let server;
  try {
    server = await api("GET", "/api/v1/server");
  } catch (error) {
    signOut(error instanceof Unauthorized ? "That is not the admin token." : `Could not reach the server: ${error.message}`);
    return;
  }
  session.set(TOKEN_KEY, token);
  $("login").hidden = true;
  $("dashboard").hidden = false;
  $("logout").hidden = false;
  // `open`: anyone may publish and keys are not checked; `key` and `webhook` check.
  $("publish-open").hidden = server?.config?.publish_auth !== "open";
  pollStreams();
  loadKeys();
}

function signOut(reason = "") {
  adminToken = null;
  session.remove(TOKEN_KEY);
  clearTimeout(pollTimer);
  for (const card of cards.values()) card.chart.destroy();
  cards.clear();
  $("stream-cards").replaceChildren();
  closeRoom();
  $("dashboard").hidden = true;
  $("logout").hidden = true;
  $("login").hidden = false;
  setStatus($("login-status"), reason, reason ? "error" : "");
}

$("login-form").addEventListener("submit", (submit) => {
  submit.preventDefault();
  const token = $("admin-token").value.trim();
  $("admin-token").value = "";
  if (token) signIn(token);
});
$("logout").addEventListener("click", () => signOut());

// ---- streams -------------------------------------------------------------------------

const cards = new Map();

function streamCard(stream) {
  const facts = el("p", { class: "facts" });
  const chartBox = el("div", { class: "chart" });
  const kick = el("button", { type: "button", class: "danger", dataset: { action: "kick" } }, "Kick publisher");
  const moderate = el("button", { type: "button", dataset: { action: "moderate" } }, "Moderate chat");
  const watch = `/watch/${stream.stream}`;
  const node = el("article", { class: "card", dataset: { stream: stream.stream } },
    el("h3", {}, el("a", { href: watch, target: "_blank", rel: "noopener" }, stream.stream)),
    facts, chartBox, el("div", { class: "actions" }, kick, moderate));
  kick.addEventListener("click", async () => {
    if (!confirmAction(`Disconnect the publisher of ${stream.stream}?`)) return;
    try {
      await api("DELETE", `/api/v1/streams/${stream.stream}`);
      setStatus($("streams-status"), `Kicked the publisher of ${stream.stream}.`, "ok");
      pollStreams();
    } catch (error) {
      failed(error, $("streams-status"));
    }
  });
  moderate.addEventListener("click", () => openRoom(stream.stream));
  $("stream-cards").append(node);
  return { node, facts, chart: new StreamChart(chartBox) };
}

/** The dashboard asks before destructive actions unless `?confirm=off` (for tests
 * and kiosks). */
function confirmAction(question) {
  return new URLSearchParams(location.search).get("confirm") === "off" || window.confirm(question);
}

function describe(stream) {
  const v = stream.video;
  const video = v ? `${v.codec} ${v.width ?? "?"}×${v.height ?? "?"} ${Math.round(v.fps)} fps` : "no video";
  const audio = stream.audio ? `${stream.audio.codec}` : "no audio";
  return `${video}, ${audio} · in ${Math.round(stream.bitrate_in_kbps)} kbps · out ${Math.round(stream.bitrate_out_kbps)} kbps · ${stream.viewers.total} viewers · live ${formatDuration(stream.uptime_seconds)}`;
}

async function pollStreams() {
  clearTimeout(pollTimer);
  if (!adminToken) return;
  try {
    const { streams } = await api("GET", "/api/v1/streams");
    const now = Date.now() / 1000;
    const seen = new Set();
    for (const stream of streams) {
      seen.add(stream.stream);
      let card = cards.get(stream.stream);
      if (!card) {
        card = streamCard(stream);
        cards.set(stream.stream, card);
      }
      card.facts.textContent = describe(stream);
      card.chart.push(now, stream.bitrate_in_kbps, stream.viewers.total);
    }
    for (const [path, card] of cards) {
      if (!seen.has(path)) {
        card.chart.destroy();
        card.node.remove();
        cards.delete(path);
      }
    }
    if (streams.length === 0) setStatus($("streams-status"), "Nothing is live.");
    else if ($("streams-status").dataset.kind !== "ok") setStatus($("streams-status"), "");
  } catch (error) {
    failed(error, $("streams-status"));
    if (error instanceof Unauthorized) return;
  }
  pollTimer = setTimeout(pollStreams, POLL_MS);
}

// ---- stream keys -------------------------------------------------------------------

/** A Unix-seconds time as a local date and time. */
function dateCell(unixSeconds) {
  const date = new Date(unixSeconds * 1000);
  return el("time", { dateTime: date.toISOString() }, date.toLocaleString());
}

async function loadKeys() {
  try {
    const { keys } = await api("GET", "/api/v1/keys");
    $("keys").querySelector("tbody").replaceChildren(...keys.map((key) => {
      const revoke = el("button", { type: "button", class: "danger" }, "Revoke");
      revoke.addEventListener("click", async () => {
        if (!confirmAction(`Revoke key ${key.id}?`)) return;
        try {
          await api("DELETE", `/api/v1/keys/${encodeURIComponent(key.id)}`);
          setStatus($("keys-status"), `Revoked ${key.id}.`, "ok");
          loadKeys();
        } catch (error) {
          failed(error, $("keys-status"));
        }
      });
      return el("tr", { dataset: { id: key.id } },
        el("td", {}, key.id),
        el("td", {}, key.stream),
        el("td", { class: key.label ? "" : "none" }, key.label || "—"),
        el("td", {}, dateCell(key.created_at)),
        el("td", { class: key.last_used_at ? "" : "none" }, key.last_used_at ? dateCell(key.last_used_at) : "never"),
        el("td", {}, revoke));
    }));
  } catch (error) {
    failed(error, $("keys-status"));
  }
}

$("key-form").addEventListener("submit", async (submit) => {
  submit.preventDefault();
  const stream = $("key-stream").value.trim();
  if (!STREAM_PATH.test(stream)) {
    setStatus($("keys-status"), "A stream is app/name, e.g. live/demo.", "error");
    return;
  }
  const label = $("key-label").value.trim();
  try {
    const created = await api("POST", "/api/v1/keys", label ? { stream, label } : { stream });
    $("new-key-stream").textContent = created.stream;
    $("new-key-value").textContent = created.key;
    // The server says when it does not check keys (publishing is open).
    const warning = created.keys_checked === false ? created.warning || "This server does not check stream keys." : "";
    $("new-key-warning").textContent = warning;
    $("new-key-warning").hidden = !warning;
    $("new-key").hidden = false;
    $("key-label").value = "";
    setStatus($("keys-status"), `Created ${created.id}. Publish to rtmp://…/${created.stream}?key=<the key>.`, "ok");
    loadKeys();
  } catch (error) {
    failed(error, $("keys-status"));
  }
});

// ---- chat moderation ------------------------------------------------------------------

let room = null;
let roomPath = null;
let roomTimer = null;
/** Counts openRoom calls, so a slow token answer cannot open a room chosen earlier. */
let roomOpening = 0;

function closeRoom() {
  roomOpening += 1;
  room?.close();
  room = null;
  roomPath = null;
  clearTimeout(roomTimer);
  $("mod-panel").hidden = true;
}

/** A moderator chat token for the moderation view's room connection, so it joins
 * as staff and is not counted as a viewer; null when the server cannot make one
 * (an older server without POST /api/v1/tokens): then the view joins anonymously. */
async function moderatorToken() {
  try {
    const answer = await api("POST", "/api/v1/tokens",
      { user: "admin", name: "admin", role: "moderator", ttl: 3600 });
    return typeof answer?.token === "string" ? answer.token : null;
  } catch (error) {
    if (error instanceof Unauthorized) throw error;
    return null;
  }
}

async function openRoom(path) {
  if (!STREAM_PATH.test(path)) {
    setStatus($("mod-status"), "A stream is app/name, e.g. live/demo.", "error");
    return;
  }
  closeRoom();
  const opening = ++roomOpening;
  let token = null;
  try {
    token = await moderatorToken();
  } catch (error) {
    failed(error, $("mod-status"));
    return;
  }
  if (opening !== roomOpening) return; // another room was opened meanwhile
  roomPath = path;
  $("mod-stream").value = path;
  $("mod-room").textContent = path;
  $("mod-chat").replaceChildren();
  $("mod-panel").hidden = false;
  setStatus($("mod-status"), "");
  // The chat as viewers see it, history included; this view sends nothing.
  room = new Room(path, {
    token,
    history: true,
    onEvent: (event) => {
      if (event.type === "chat") addModItem(event);
      if (event.type === "delete") {
        for (const item of $("mod-chat").querySelectorAll("li[data-id]")) {
          if (item.dataset.id === String(event.id)) item.classList.add("deleted");
        }
      }
      if (event.type === "stream") refreshRoom();
    },
    onState: (state, detail) => {
      if (state === "closed") setStatus($("mod-status"), detail, "error");
    },
  });
  room.connect();
  refreshRoom();
}

function addModItem(event) {
  const id = event.id ?? event.seq;
  const user = event.user || {};
  const button = (label, action) => {
    const b = el("button", { type: "button", dataset: { action } }, label);
    b.addEventListener("click", () => moderate(action, { id, user: user.id }));
    return b;
  };
  const item = el("li", { dataset: { id: String(id), user: user.id || "" } },
    el("span", { class: "who" }, `${user.name || "?"} (${user.id || "?"})`),
    el("span", { class: "text" }, event.text),
    button("Delete", "delete"), button("Mute", "mute"), button("Ban", "ban"));
  const list = $("mod-chat");
  list.append(item);
  while (list.childElementCount > MAX_MOD_ITEMS) list.firstElementChild.remove();
}

async function refreshRoom() {
  clearTimeout(roomTimer);
  if (!roomPath) return;
  try {
    const state = await api("GET", `/api/v1/rooms/${roomPath}`);
    $("mod-room-state").textContent = `${state.stream}, ${state.members} connected, ${state.viewers} viewers, ${state.likes_total} likes, slow mode ${state.slow_mode_seconds ? `${state.slow_mode_seconds} s` : "off"}`;
    const until = (entry) => entry.until ? `${entry.user_id} (until ${new Date(entry.until).toLocaleTimeString()})` : entry.user_id;
    $("muted-list").textContent = state.muted.map(until).join(", ") || "nobody";
    $("banned-list").textContent = state.banned.map(until).join(", ") || "nobody";
    if (document.activeElement !== $("slow-seconds")) $("slow-seconds").value = String(state.slow_mode_seconds);
  } catch (error) {
    failed(error, $("mod-status"));
    if (error instanceof Unauthorized) return;
  }
  roomTimer = setTimeout(refreshRoom, ROOM_POLL_MS);
}

async function moderate(action, { id, user, seconds }) {
  const base = `/api/v1/rooms/${roomPath}`;
  const forUser = encodeURIComponent(user || "");
  const body = { user_id: user };
  if (seconds) body.seconds = seconds;
  const calls = {
    delete: () => api("DELETE", `${base}/messages/${id}`),
    mute: () => api("POST", `${base}/mutes`, body),
    unmute: () => api("DELETE", `${base}/mutes/${forUser}`),
    ban: () => api("POST", `${base}/bans`, body),
    unban: () => api("DELETE", `${base}/bans/${forUser}`),
  };
  const done = {
    delete: `Deleted message ${id}.`,
    mute: `Muted ${user}.`,
    unmute: `Unmuted ${user}.`,
    ban: `Banned ${user}.`,
    unban: `Unbanned ${user}.`,
  };
  if (!user && action !== "delete") return;
  try {
    await calls[action]();
    setStatus($("mod-status"), done[action], "ok");
    refreshRoom();
  } catch (error) {
    failed(error, $("mod-status"));
  }
}

$("mod-form").addEventListener("submit", (submit) => {
  submit.preventDefault();
  openRoom($("mod-stream").value.trim());
});

$("user-form").addEventListener("submit", (submit) => {
  submit.preventDefault();
  const action = submit.submitter?.dataset.action || "mute";
  const seconds = Number($("user-seconds").value) || undefined;
  moderate(action, { user: $("user-id").value.trim(), seconds });
});

$("slow-form").addEventListener("submit", async (submit) => {
  submit.preventDefault();
  const seconds = Math.max(0, Math.floor(Number($("slow-seconds").value) || 0));
  try {
    await api("PUT", `/api/v1/rooms/${roomPath}/slow-mode`, { seconds });
    setStatus($("mod-status"), seconds ? `Slow mode: one message per ${seconds} s.` : "Slow mode is off.", "ok");
    refreshRoom();
  } catch (error) {
    failed(error, $("mod-status"));
  }
});

// For the browser tests and for poking at the page from the console.
window.onairAdmin = { get room() { return room; } };

if (adminToken) signIn(adminToken);
