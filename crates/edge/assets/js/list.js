// The stream list at `/`: polls the public GET /api/v1/live. Rows are kept and
// updated in place, so a stream's picture is not fetched again on every poll.
import { el, formatDuration, setStatus } from "./util.js";

const POLL_MS = 3000;
/** How often a stream's picture is asked for again. */
const SNAPSHOT_MS = 30_000;
const table = document.getElementById("streams");
const body = table.querySelector("tbody");
const status = document.getElementById("list-status");
/** stream path → its row's parts */
const rows = new Map();

/** The stream's picture; hidden while it has none (the box keeps its size, so
 * nothing moves, and no broken-image icon shows). */
function thumbnail(stream) {
  const img = el("img", { alt: "", width: 160, height: 90, decoding: "async", hidden: true });
  img.addEventListener("load", () => { img.hidden = false; });
  img.addEventListener("error", () => { img.hidden = true; });
  const base = `/${encodeURIComponent(stream.app)}/${encodeURIComponent(stream.name)}/snapshot.jpg`;
  const load = () => { img.src = `${base}?t=${Math.floor(Date.now() / SNAPSHOT_MS)}`; };
  load();
  return { box: el("div", { class: "thumb" }, img), img, load };
}

function createRow(stream) {
  const watch = `/watch/${encodeURIComponent(stream.app)}/${encodeURIComponent(stream.name)}`;
  const thumb = thumbnail(stream);
  const parts = {
    thumb,
    link: el("a", { href: watch, class: "stream-link" }),
    path: el("span", { class: "stream-path" }),
    video: el("td"),
    audio: el("td"),
    viewers: el("td", { class: "viewers" }),
    uptime: el("td"),
  };
  parts.row = el("tr", { dataset: { stream: stream.stream } },
    el("td", { class: "thumb-cell" }, el("a", { href: watch, tabindex: -1, "aria-hidden": "true" }, thumb.box)),
    el("td", {}, parts.link, parts.path),
    parts.video, parts.audio, parts.viewers, parts.uptime);
  parts.timer = setInterval(thumb.load, SNAPSHOT_MS);
  return parts;
}

function updateRow(parts, stream) {
  const video = stream.video;
  const size = video && video.width && video.height ? ` ${video.width}×${video.height}` : "";
  const fps = video && video.fps ? ` @ ${Math.round(video.fps)} fps` : "";
  const title = typeof stream.title === "string" ? stream.title.trim() : "";
  parts.link.textContent = title || stream.stream;
  parts.path.textContent = title ? stream.stream : "";
  parts.path.hidden = !title;
  parts.video.textContent = video ? `${video.codec}${size}${fps}` : "—";
  parts.audio.textContent = stream.audio ? stream.audio.codec : "—";
  parts.viewers.textContent = String(stream.viewers);
  parts.uptime.textContent = formatDuration(stream.uptime_seconds);
}

function show(streams) {
  const seen = new Set();
  for (const stream of streams) {
    seen.add(stream.stream);
    let parts = rows.get(stream.stream);
    if (!parts) {
      parts = createRow(stream);
      rows.set(stream.stream, parts);
    }
    updateRow(parts, stream);
  }
  for (const [path, parts] of rows) {
    if (!seen.has(path)) {
      clearInterval(parts.timer);
      parts.row.remove();
      rows.delete(path);
    }
  }
  // In the server's order, moving only rows out of place (a moved row loses focus).
  streams.forEach((stream, i) => {
    const row = rows.get(stream.stream).row;
    if (body.children[i] !== row) body.insertBefore(row, body.children[i] || null);
  });
}

async function refresh() {
  try {
    const response = await fetch("/api/v1/live", { cache: "no-store" });
    if (response.status === 404) {
      setStatus(status, "The public stream list is turned off on this server.");
      table.hidden = true;
      return false;
    }
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const { streams } = await response.json();
    show(streams);
    table.hidden = streams.length === 0;
    setStatus(status, streams.length === 0 ? "Nothing is live right now." : "");
  } catch (error) {
    setStatus(status, `Could not load the list (${error.message}); retrying…`, "error");
  }
  return true;
}

async function loop() {
  if (await refresh()) setTimeout(loop, POLL_MS);
}
loop();
