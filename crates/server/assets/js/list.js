// The stream list at `/`: polls the public GET /api/v1/live.
import { el, formatDuration, setStatus } from "./util.js";

const POLL_MS = 3000;
const table = document.getElementById("streams");
const body = table.querySelector("tbody");
const status = document.getElementById("list-status");

function row(stream) {
  const video = stream.video;
  const size = video && video.width && video.height ? ` ${video.width}×${video.height}` : "";
  const fps = video && video.fps ? ` @ ${Math.round(video.fps)} fps` : "";
  const watch = `/watch/${encodeURIComponent(stream.app)}/${encodeURIComponent(stream.name)}`;
  return el("tr", { dataset: { stream: stream.stream } },
    el("td", {}, el("a", { href: watch }, stream.stream)),
    el("td", {}, video ? `${video.codec}${size}${fps}` : "—"),
    el("td", {}, stream.audio ? stream.audio.codec : "—"),
    el("td", { class: "viewers" }, String(stream.viewers)),
    el("td", {}, formatDuration(stream.uptime_seconds)),
  );
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
    body.replaceChildren(...streams.map(row));
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
