// The watch page: player + room (viewers, live/offline, chat, danmaku, likes, gifts).
import { clockTime, el, session, setStatus, timeAgo, userColorClass } from "./util.js";
import { Room } from "./room.js";
import { Danmaku } from "./danmaku.js";
import { Player, chooseTech, techLabel } from "./player.js";

const TOKEN_KEY = "onair.chat-token";
const MAX_CHAT_ITEMS = 200;
const LIKE_FLUSH_MS = 300;
/** Without a room to say whether the stream is live, try to play after this long. */
const ROOM_GRACE_MS = 5000;
/** How often "Last live 3 hours ago" is worked out again. */
const OFFLINE_CARD_MS = 30_000;
/** Gift pop-ups over the video at once; the oldest goes first. */
const MAX_GIFT_POPUPS = 4;
/** A gift pop-up is removed when its fade-out (site.css) ends; this removes it too
 * where the animation does not run or end (e.g. a tab in the background). */
const GIFT_POPUP_MAX_MS = 6000;
const GIFT_ICONS = { rose: "🌹", star: "⭐", rocket: "🚀" };

const $ = (id) => document.getElementById(id);
const video = $("video");
const badge = $("badge");
const waiting = $("waiting");
const chatList = $("chat-list");
const chatForm = $("chat-form");
const chatInput = $("chat-input");
const chatSend = $("chat-send");
const chatStatus = $("chat-status");
const chatMore = $("chat-more");
const unmute = $("unmute");
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

// ---- what the stream is: title, description, last time live -------------------

/** The last answer of GET /api/v1/live/{app}/{name}; null when there is none (the
 * server does not say: public list off, signed playback, an older server). */
let info = null;
let infoRequest = 0;
/** When the stream was last live, Unix seconds (the server's word, or this page
 * seeing it end). */
let lastLiveAt = null;

async function loadInfo() {
  const request = ++infoRequest;
  let answer = info;
  try {
    const response = await fetch(`/api/v1/live/${encodeURIComponent(app)}/${encodeURIComponent(name)}`,
      { cache: "no-store" });
    answer = response.ok ? await response.json() : null;
  } catch {
    // Unreachable: keep what is shown.
  }
  if (request !== infoRequest) return; // a later request answers instead
  info = answer && typeof answer === "object" ? answer : null;
  if (info?.last_live_at) lastLiveAt = Math.max(lastLiveAt ?? 0, Number(info.last_live_at));
  showInfo();
}

function showInfo() {
  const title = typeof info?.title === "string" ? info.title.trim() : "";
  const description = typeof info?.description === "string" ? info.description.trim() : "";
  $("stream-title").textContent = title || path;
  $("stream-description").textContent = description;
  $("stream-description").hidden = !description;
  document.title = `${title || path} — onair`;
  showOfflineCard();
}

/** The waiting state over the video: "Connecting…", or the offline card with the
 * last title and when the stream was last live. */
function showOfflineCard() {
  const offline = streamState === "offline";
  $("waiting-text").textContent = offline ? "Offline" : "Connecting…";
  const title = offline && typeof info?.title === "string" ? info.title.trim() : "";
  $("offline-title").textContent = title;
  $("offline-title").hidden = !title;
  const last = offline ? lastLiveAt : null;
  $("offline-last").hidden = !last;
  if (last) {
    const time = $("offline-last-time");
    time.dateTime = new Date(last * 1000).toISOString();
    time.title = new Date(last * 1000).toLocaleString();
    time.textContent = timeAgo(last);
  }
  $("offline-note").hidden = !offline;
}

// ---- stream state and player -------------------------------------------------

let streamState = "connecting";
let player = null;

function showState(state) {
  badge.dataset.state = state;
  badge.textContent = state === "live" ? "LIVE" : state === "offline" ? "OFFLINE" : "CONNECTING";
  waiting.hidden = state === "live";
  showOfflineCard();
}

function setStreamState(state) {
  const previous = streamState;
  const changed = state !== previous;
  streamState = state;
  if (previous === "live" && state === "offline") lastLiveAt = Math.max(lastLiveAt ?? 0, Date.now() / 1000);
  showState(state);
  // Going live or offline may come with a new title (and a last-live time).
  if (changed && previous !== "connecting") loadInfo();
  if (!player) return;
  if (state === "live" && (changed || !player.wanted)) player.play();
  if (state === "offline") player.stop();
}

/** The browser would only play muted (no interaction with the site yet): offer
 * the sound with one click. */
function offerUnmute() {
  unmute.hidden = false;
}

unmute.addEventListener("click", () => {
  video.muted = false;
  video.play().catch(() => {});
  unmute.hidden = true;
});
video.addEventListener("volumechange", () => {
  if (!video.muted) unmute.hidden = true;
});

async function startPlayer() {
  const tech = await chooseTech(forcedTech);
  video.dataset.tech = tech || "none";
  $("player-info").textContent = tech ? `via ${techLabel(tech)}` : "this browser cannot play the stream";
  if (!tech) return;
  const urls = {
    flv: withSignature(`/${path}.flv`),
    hls: withSignature(`/${path}/index.m3u8`),
  };
  player = new Player(video, tech, urls, (note) => console.warn(`player: ${note}`), offerUnmute);
  if (streamState === "live") player.play();
}

// ---- room ----------------------------------------------------------------------

let canSend = false;
let me = null;
let sendBlockedUntil = 0;

function note(text) {
  addChatItem(el("li", { class: "note" }, text));
}

// The list follows new messages until the viewer scrolls up to read; then new
// ones wait below a "New messages" button, which jumps down and follows again.
let following = true;

function atBottom() {
  return chatList.scrollTop + chatList.clientHeight >= chatList.scrollHeight - 8;
}

function scrollToEnd() {
  chatList.scrollTop = chatList.scrollHeight;
}

chatList.addEventListener("scroll", () => {
  following = atBottom();
  if (following) chatMore.hidden = true;
});

chatMore.addEventListener("click", () => {
  following = true;
  chatMore.hidden = true;
  scrollToEnd();
});

function addChatItem(item) {
  chatList.append(item);
  while (chatList.childElementCount > MAX_CHAT_ITEMS) chatList.firstElementChild.remove();
  if (following) scrollToEnd();
  else chatMore.hidden = false;
}

/** The event's server time as local HH:MM. */
function timeOf(event) {
  const ts = Number(event.ts) || Date.now();
  return el("time", { class: "ts", dateTime: new Date(ts).toISOString() }, clockTime(ts));
}

const ROLE_BADGES = { moderator: "MOD", streamer: "HOST" };

/** A chat line: time, role badge, the name in the user's own colour, then `rest`. */
function userLine(event, ...rest) {
  const user = event.user || {};
  const role = user.role || "viewer";
  const roleBadge = ROLE_BADGES[role];
  return el("li", { class: `role-${role}` },
    timeOf(event), " ",
    roleBadge && el("span", { class: "role-badge" }, roleBadge), roleBadge && " ",
    el("span", { class: `who ${userColorClass(user.id ?? user.name)}` }, user.name || "?"),
    ...rest);
}

function showChat(event, live) {
  const item = userLine(event, ": ", el("span", { class: "text" }, event.text));
  item.dataset.id = String(event.id ?? event.seq);
  addChatItem(item);
  if (live) danmaku.add(event.text, { id: event.id ?? event.seq, mine: me && event.user?.id === me.id });
}

function plural(word) {
  if (/(s|x|z|ch|sh)$/i.test(word)) return `${word}es`;
  if (/[^aeiou]y$/i.test(word)) return `${word.slice(0, -1)}ies`;
  return `${word}s`;
}

/** "sent a rose", "sent 2 roses — combo ×3". */
function giftSentence(event) {
  const count = Math.max(1, Math.floor(Number(event.count) || 1));
  const gift = String(event.gift || "gift");
  const what = count === 1 ? `${/^[aeiou]/i.test(gift) ? "an" : "a"} ${gift}` : `${count} ${plural(gift)}`;
  const combo = event.combo > 1 ? ` — combo ×${event.combo}` : "";
  return `sent ${what}${combo}`;
}

function showGift(event, live) {
  addChatItem(userLine(event, " ", el("span", { class: "gift" }, giftSentence(event))));
  if (live) popGift(event);
}

/** Gifts the room summed (a flood): "+412 gifts: 528 roses, 2 rockets". */
function showGiftSummary(event) {
  const kinds = Object.entries(event.gifts || {})
    .map(([gift, count]) => (count === 1 ? `1 ${gift}` : `${count} ${plural(gift)}`));
  addChatItem(el("li", { class: "note" }, timeOf(event), ` +${event.messages} gifts: `, kinds.join(", ") || `${event.count}`));
}

/** A gift pop-up over the video; it fades out (site.css) and is then removed. */
function popGift(event) {
  const layer = $("gift-layer");
  const popup = el("div", { class: "gift-pop" },
    el("span", { class: "gift-icon" }, GIFT_ICONS[event.gift] || "🎁"), " ",
    el("strong", {}, event.user?.name || "?"), ` ${giftSentence(event)}`);
  popup.addEventListener("animationend", () => popup.remove());
  setTimeout(() => popup.remove(), GIFT_POPUP_MAX_MS);
  layer.append(popup);
  while (layer.childElementCount > MAX_GIFT_POPUPS) layer.firstElementChild.remove();
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

/** Says why the chat token was refused (the server's close reason), and how to
 * make one the server accepts when the signature is the problem. The page goes on
 * reading without the token. */
function showTokenRefused(reason) {
  const why = reason || "no reason given";
  const hint = /signature/i.test(why)
    ? el("span", { class: "token-hint" }, "A chat token must be made with this server's secret: run ",
      el("code", {}, "onair token --user NAME"), " with the same ", el("code", {}, "--data-dir"),
      " (and config) as the server.")
    : null;
  const node = $("token-status");
  node.replaceChildren(el("span", { class: "token-reason" }, `Your chat token was refused: ${why}`), hint || "");
  node.hidden = false;
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
      case "gifts": showGiftSummary(event); break;
      case "system": addChatItem(el("li", { class: "note" }, timeOf(event), " ", event.text)); break;
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
    following = true;
    chatMore.hidden = true;
  },
  onBadToken(reason) {
    session.remove(TOKEN_KEY);
    showTokenRefused(reason);
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
window.onair = { room, get player() { return player; }, get info() { return info; }, danmaku };

showState("connecting");
loadInfo();
setInterval(showOfflineCard, OFFLINE_CARD_MS);
room.connect();
startPlayer();
setTimeout(() => {
  // No room (refused, unreachable): play anyway; the player retries on its own.
  if (streamState === "connecting" && player) player.play();
}, ROOM_GRACE_MS);
