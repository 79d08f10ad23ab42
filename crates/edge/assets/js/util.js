// Small helpers shared by the pages. User data only ever goes into textContent.

/** Builds an element: el("li", {class: "x", dataset: {seq: 3}}, "text", child). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key in node && typeof node[key] !== "function") node[key] = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** "1h 02m", "4m 09s", "12s". */
export function formatDuration(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  if (h > 0) return `${h}h ${String(m).padStart(2, "0")}m`;
  if (m > 0) return `${m}m ${String(r).padStart(2, "0")}s`;
  return `${r}s`;
}

/** Shows a status line; kind "error" or "ok" colours it. */
export function setStatus(node, text, kind = "") {
  node.textContent = text;
  node.dataset.kind = kind;
}

/** A stream path `{app}/{name}` as the server accepts it. */
export const STREAM_PATH = /^[A-Za-z0-9_-]{1,64}\/[A-Za-z0-9_-]{1,64}$/;

/** sessionStorage that never throws (storage may be disabled). */
export const session = {
  get(key) {
    try { return sessionStorage.getItem(key); } catch { return null; }
  },
  set(key, value) {
    try { sessionStorage.setItem(key, value); } catch { /* not kept: fine */ }
  },
  remove(key) {
    try { sessionStorage.removeItem(key); } catch { /* nothing kept */ }
  },
};

/** Exponential backoff with jitter: 0.5 s, 1 s, 2 s … up to `max` ms. */
export function backoffDelay(attempt, max = 10_000) {
  const base = Math.min(max, 500 * 2 ** Math.min(attempt, 10));
  return Math.round(base * (0.5 + Math.random() * 0.5));
}

/** Loads a classic script (a vendored UMD library) once. */
const loading = new Map();
export function loadScript(src) {
  if (!loading.has(src)) {
    loading.set(src, new Promise((resolve, reject) => {
      const script = el("script", { src, async: true });
      script.addEventListener("load", () => resolve());
      script.addEventListener("error", () => {
        loading.delete(src);
        reject(new Error(`could not load ${src}`));
      });
      document.head.append(script);
    }));
  }
  return loading.get(src);
}

/** The versioned assets folder this module was loaded from, e.g. "/assets/3fa9…". */
export const ASSETS = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

/** How long before `now` the moment `unixSeconds` was: "just now", "5 minutes ago",
 * "3 hours ago", "2 days ago"; "on <date>" beyond a month. */
export function timeAgo(unixSeconds, now = Date.now() / 1000) {
  const ago = Math.max(0, Math.floor(now - unixSeconds));
  const count = (n, unit) => `${n} ${unit}${n === 1 ? "" : "s"} ago`;
  if (ago < 60) return "just now";
  if (ago < 3600) return count(Math.floor(ago / 60), "minute");
  if (ago < 86400) return count(Math.floor(ago / 3600), "hour");
  if (ago < 30 * 86400) return count(Math.floor(ago / 86400), "day");
  return `on ${new Date(unixSeconds * 1000).toLocaleDateString()}`;
}

/** Local "HH:MM" of a Unix-milliseconds time. */
export function clockTime(unixMs) {
  const date = new Date(unixMs);
  return `${String(date.getHours()).padStart(2, "0")}:${String(date.getMinutes()).padStart(2, "0")}`;
}

/** How many name colours site.css defines (`.user-c0` … `.user-c11`). */
export const USER_COLORS = 12;

/** The colour class of a user: the same user id always gets the same one (FNV-1a). */
export function userColorClass(userId) {
  let hash = 0x811c9dc5;
  for (const char of String(userId ?? "")) {
    hash ^= char.codePointAt(0);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return `user-c${hash % USER_COLORS}`;
}
