// The watch page: player + room (viewers, live/offline, chat, danmaku, likes, gifts).
import { el, session, setStatus } from "./util.js";
import { Room } from "./room.js";
import { Danmaku } from "./danmaku.js";
import { Player, chooseTech, techLabel } from "./player.js";

const TOKEN_KEY = "onair.chat-token";
const MAX_CHAT_ITEMS = 200;
const LIKE_FLUSH_MS = 300;
/** Without a room to say whether the stream is live, try to play after this long. */
const ROOM_GRACE_MS = 5000;

const $ = (id) => document.getElementById(id);
const video = $("video");
const badge = $("badge");
const waiting = $("waiting");
const chatList = $("chat-list");
const chatForm = $("chat-form");
const chatInput = $("chat-input");
const chatSend = $("chat-send");
const chatStatus = $("chat-status");
const danmaku = new Danmaku($("danmaku"));

// ---- what to watch, and as whom ----------------------------------------------

const [, , app = "", name = ""] = location.pathname.split("/").map(decodeURIComponent);
const path = `${app}/${name}`;
const params = new URLSearchParams(location.search);
const forcedTech = params.get("player");
// Signed playback: the page's signature opens the media and the room too.
const signature = new URLSearchParams();
for (const key of ["expires", "sig"]) {
  if (params.has(key)) signature.set(key, params.get(key));
}
const withSignature = (url) => {
  const text = signature.toString();
  return text ? `${url}?${text}` : url;
};

/** The chat token: from `?token=` or `#token=` (then kept in this tab and taken
 * out of the address bar), else the one kept earlier in this tab. */
function chatToken() {
  const hash = new URLSearchParams(location.hash.slice(1));
  const given = params.get("token") || hash.get("token");
  if (given) {
    session.set(TOKEN_KEY, given);
    params.delete("token");
    hash.delete("token");
    const query = params.toString();
    const rest = hash.toString();
    history.replaceState(null, "", `${location.pathname}${query ? `?${query}` : ""}${rest ? `#${rest}` : ""}`);
    return given;
  }
  return session.get(TOKEN_KEY);
}
const token = chatToken();

$("title").textContent = path;
document.title = `${path} — onair`;

// ---- stream state and player -------------------------------------------------

let streamState = "connecting";
let player = null;

function showState(state) {
  badge.dataset.state = state;
  badge.textContent = state === "live" ? "LIVE" : state === "offline" ? "OFFLINE" : "CONNECTING";
  waiting.hidden = state === "live";
  if (state === "offline") {
    waiting.textContent = "The stream is offline. It starts here by itself when it goes live.";
  } else if (state !== "live") {
    waiting.textContent = "Connecting…";
  }
}

function setStreamState(state) {
  const changed = state !== streamState;
  streamState = state;
  showState(state);
  if (!player) return;
  if (state === "live" && (changed || !player.wanted)) player.play();
  if (state === "offline") player.stop();
}

async function startPlayer() {
  const tech = await chooseTech(forcedTech);
  video.dataset.tech = tech || "none";
  $("player-info").textContent = tech ? `via ${techLabel(tech)}` : "this browser cannot play the stream";
  if (!tech) return;
  const urls = {
    flv: withSignature(`/${path}.flv`),
    hls: withSignature(`/${path}/index.m3u8`),
  };
  player = new Player(video, tech, urls, (note) => console.warn(`player: ${note}`));
  if (streamState === "live") player.play();
}

// ---- room ----------------------------------------------------------------------

let canSend = false;
let me = null;
let sendBlockedUntil = 0;

function note(text) {
  addChatItem(el("li", { class: "note" }, text));
}

function addChatItem(item) {
  const atBottom = chatList.scrollTop + chatList.clientHeight >= chatList.scrollHeight - 8;
  chatList.append(item);
  while (chatList.childElementCount > MAX_CHAT_ITEMS) chatList.firstElementChild.remove();
  if (atBottom) chatList.scrollTop = chatList.scrollHeight;
}

function userLine(user, ...rest) {
  const role = user?.role || "viewer";
  return el("li", { class: `role-${role}` }, el("span", { class: "who" }, user?.name || "?"), ...rest);
}

function showChat(event, live) {
  const item = userLine(event.user, el("span", { class: "text" }, event.text));
  item.dataset.id = String(event.id ?? event.seq);
  addChatItem(item);
  if (live) danmaku.add(event.text, { id: event.id ?? event.seq, mine: me && event.user?.id === me.id });
}

function showGift(event, live) {
  const combo = event.combo > 1 ? ` — combo ×${event.combo} (${event.combo_total})` : "";
  addChatItem(userLine(event.user, el("span", { class: "gift" }, `sent ${event.gift} ×${event.count}${combo}`)));
  if (live) $("gift-toast").textContent = `${event.user?.name || "?"}: ${event.gift} ×${event.combo_total ?? event.count}${combo ? ` (combo ×${event.combo})` : ""}`;
}

function updateInput() {
  const blocked = Date.now() < sendBlockedUntil;
  chatInput.disabled = !canSend;
  chatSend.disabled = !canSend || blocked;
  if (!canSend && room.socket) {
    chatInput.placeholder = me ? "You cannot send in this room" : "Read-only: sign in to chat";
  } else if (canSend) {
    chatInput.placeholder = "Say something…";
  }
}

function explainReadOnly(welcome) {
  if (welcome.can_send) return;
  if (!welcome.user) {
    setStatus(chatStatus, "Read-only: chatting needs a chat token from the platform (open this page with ?token=…).");
  } else {
    setStatus(chatStatus, "This room does not let you send messages.");
  }
}

const ERROR_TEXT = {
  rate_limited: (e) => `You are sending too fast; try again in ${Math.ceil((e.retry_after_ms || 1000) / 1000)} s.`,
  slow_mode: (e) => `Slow mode is on; you can send again in ${Math.ceil((e.retry_after_ms || 1000) / 1000)} s.`,
  muted: () => "You are muted in this room: you can read but not send.",
  banned: () => "You are banned from this room.",
  login_required: () => "Read-only: chatting needs a chat token.",
  text_too_long: (e) => e.message,
  empty_text: () => "The message is empty.",
  control_character: () => "The message contains a character that cannot be sent.",
};

function showError(event) {
  const text = (ERROR_TEXT[event.code] || ((e) => e.message || e.code))(event);
  setStatus(chatStatus, text, "error");
  chatStatus.dataset.code = event.code || "";
  if (event.retry_after_ms) {
    sendBlockedUntil = Date.now() + event.retry_after_ms;
    updateInput();
    setTimeout(updateInput, event.retry_after_ms + 50);
  }
}

const room = new Room(path, {
  token,
  query: signature,
  onWelcome(welcome) {
    canSend = Boolean(welcome.can_send);
    me = welcome.user;
    $("viewers").textContent = String(welcome.viewers ?? 0);
    $("likes").textContent = String(welcome.likes ?? 0);
    setStreamState(welcome.stream === "live" ? "live" : "offline");
    if (canSend) {
      if (chatStatus.dataset.kind !== "error") setStatus(chatStatus, me ? `Chatting as ${me.name}` : "Chatting anonymously");
    } else {
      explainReadOnly(welcome);
    }
    updateInput();
  },
  onEvent(event, live) {
    switch (event.type) {
      case "chat": showChat(event, live); break;
      case "gift": showGift(event, live); break;
      case "system": addChatItem(el("li", { class: "note" }, event.text)); break;
      case "delete":
        for (const item of chatList.querySelectorAll("li[data-id]")) {
          if (item.dataset.id === String(event.id)) item.remove();
        }
        danmaku.remove(event.id);
        break;
      case "like": $("likes").textContent = String(event.total); break;
      case "viewers": $("viewers").textContent = String(event.count); break;
      case "stream": if (live) setStreamState(event.state === "live" ? "live" : "offline"); break;
      case "error": showError(event); break;
      case "gap": note(`${event.lost} older messages are no longer available.`); break;
      default: break; // skipped, custom and types added later
    }
  },
  onReset() {
    chatList.replaceChildren();
  },
  onBadToken() {
    session.remove(TOKEN_KEY);
    setStatus(chatStatus, "Your chat token was refused (expired?); reading without it.", "error");
  },
  onState(state, detail) {
    if (state === "open") return;
    canSend = false;
    updateInput();
    if (state === "closed") setStatus(chatStatus, detail, "error");
    else if (state === "reconnecting") setStatus(chatStatus, "Chat disconnected; reconnecting…");
  },
});

// ---- controls ----------------------------------------------------------------------

chatForm.addEventListener("submit", (submit) => {
  submit.preventDefault();
  const text = chatInput.value.trim();
  if (!text || !canSend) return;
  if (room.send({ type: "chat", text })) {
    chatInput.value = "";
    if (chatStatus.dataset.kind === "error") setStatus(chatStatus, "");
  } else {
    setStatus(chatStatus, "Not connected; the message was not sent.", "error");
  }
});

let pendingLikes = 0;
let likeTimer = null;
$("like").addEventListener("click", () => {
  if (!canSend) {
    setStatus(chatStatus, "Liking needs a chat token.", "error");
    return;
  }
  pendingLikes += 1;
  likeTimer ??= setTimeout(() => {
    room.send({ type: "like", count: pendingLikes });
    pendingLikes = 0;
    likeTimer = null;
  }, LIKE_FLUSH_MS);
});

for (const button of document.querySelectorAll("#gifts button[data-gift]")) {
  button.addEventListener("click", () => {
    if (!canSend) {
      setStatus(chatStatus, "Sending gifts needs a chat token.", "error");
      return;
    }
    room.send({ type: "gift", gift: button.dataset.gift, count: 1 });
  });
}

const toggle = $("danmaku-toggle");
toggle.addEventListener("click", () => {
  const on = toggle.getAttribute("aria-pressed") !== "true";
  toggle.setAttribute("aria-pressed", String(on));
  toggle.textContent = `Danmaku: ${on ? "on" : "off"}`;
  danmaku.setOn(on);
});

// ---- start -----------------------------------------------------------------------

// For the browser tests and for poking at the page from the console.
window.onair = { room, get player() { return player; }, danmaku };

showState("connecting");
room.connect();
startPlayer();
setTimeout(() => {
  // No room (refused, unreachable): play anyway; the player retries on its own.
  if (streamState === "connecting" && player) player.play();
}, ROOM_GRACE_MS);
