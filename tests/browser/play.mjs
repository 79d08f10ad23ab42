// Plays a live stream in headless Chromium and reports whether the video really
// advanced: HTTP-FLV with mpegts.js, or HLS / LL-HLS with hls.js in low-latency mode.
//
//   node tests/browser/play.mjs flv http://127.0.0.1:8080/live/demo.flv
//   node tests/browser/play.mjs hls http://127.0.0.1:8080/live/demo/index.m3u8
//
// Prints one JSON line on stdout and exits 0 when the video played:
//   {"ok":true,"currentTime":…,"videoWidth":…,"videoHeight":…,"firstFrameMs":…,
//    "played":…,"frames":…,"latency":…}
// (played: seconds of continuous playback, seeks excluded; frames: decoded video frames;
// latency: hls only, seconds hls.js sits behind the live edge by the playlist's
// EXT-X-PROGRAM-DATE-TIME, measured once playback has run)
// else {"ok":false,"reason":…,"console":[…]} and exits 1. The page's console errors
// and warnings also go to stderr.
//
// Environment: CHROMIUM (default /usr/bin/chromium), PLAY_TIMEOUT_MS (how long to
// wait for playback, default 20000), PLAY_ADVANCE_S (how far currentTime must
// advance, default 2), PLAY_VERBOSE=1 (copy every console message to stderr).
//
// Never downloads a browser: playwright-core drives the Chromium that is installed.

import { createServer } from "node:http";
import { readFile, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const HERE = dirname(fileURLToPath(import.meta.url));
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const PLAY_TIMEOUT_MS = Number(process.env.PLAY_TIMEOUT_MS || 20_000);
const ADVANCE_S = Number(process.env.PLAY_ADVANCE_S || 2);
const VERBOSE = Boolean(process.env.PLAY_VERBOSE);
// Launch + page load + playback, with room to spare; past it the process just exits.
const HARD_TIMEOUT_MS = PLAY_TIMEOUT_MS + 40_000;

const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--no-first-run",
  "--disable-sync",
  "--disable-quic",
  "--autoplay-policy=no-user-gesture-required",
];

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>onair playback</title></head>
<body>
<video id="v" muted autoplay playsinline width="640" height="360"></video>
<script src="/mpegts.js"></script>
<script src="/hls.js"></script>
</body></html>
`;

const consoleLines = [];

function finish(result) {
  process.stdout.write(JSON.stringify(result) + "\n");
  process.exitCode = result.ok ? 0 : 1;
}

function fail(reason) {
  finish({ ok: false, reason, console: consoleLines });
}

/// Serves the test page, mpegts.js and hls.js from node_modules on 127.0.0.1, port
/// chosen by the OS.
async function startPageServer() {
  const scripts = {
    "/mpegts.js": await readFile(join(HERE, "node_modules/mpegts.js/dist/mpegts.js")),
    "/hls.js": await readFile(join(HERE, "node_modules/hls.js/dist/hls.min.js")),
  };
  const server = createServer((req, res) => {
    if (req.url === "/" || req.url === "/index.html") {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
      res.end(PAGE);
    } else if (scripts[req.url]) {
      res.writeHead(200, { "content-type": "text/javascript; charset=utf-8" });
      res.end(scripts[req.url]);
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  return server;
}

/// Runs in the page: starts the player and records what the video element does.
function startPlayer([kind, url]) {
  const video = document.getElementById("v");
  const state = {
    supported:
      kind === "hls"
        ? typeof Hls !== "undefined" && Hls.isSupported()
        : typeof mpegts !== "undefined" && mpegts.isSupported(),
    h264Aac:
      typeof MediaSource !== "undefined" &&
      MediaSource.isTypeSupported('video/mp4; codecs="avc1.42E01E,mp4a.40.2"'),
    errors: [],
    firstFrameMs: null,
    // Seconds of continuous playback: the sum of small forward steps of currentTime,
    // so a seek (mpegts.js jumps over a startup stall to the first buffered frame)
    // does not count as playing.
    played: 0,
    lastTime: null,
  };
  window.__flv = state;
  if (!state.supported || !state.h264Aac) return state;
  let player;
  if (kind === "hls") {
    player = new Hls({ lowLatencyMode: true, liveDurationInfinity: true });
    player.on(Hls.Events.ERROR, (_event, data) => {
      if (data.fatal) state.errors.push(`hls.js ${data.type} ${data.details}`);
    });
    player.attachMedia(video);
  } else {
    player = mpegts.createPlayer({ type: "flv", isLive: true, url });
    player.on(mpegts.Events.ERROR, (type, detail, info) => {
      state.errors.push(`${type} ${detail} ${JSON.stringify(info)}`);
    });
    player.attachMediaElement(video);
  }
  window.__player = player;
  let loadedAt = 0;
  const firstFrame = () => {
    if (state.firstFrameMs !== null) return;
    if (video.currentTime > 0 || video.readyState >= 2) {
      state.firstFrameMs = Math.round(performance.now() - loadedAt);
    }
  };
  const progress = () => {
    const now = video.currentTime;
    if (state.lastTime !== null && now > state.lastTime && now - state.lastTime < 1) {
      state.played += now - state.lastTime;
    }
    state.lastTime = now;
  };
  video.addEventListener("loadeddata", firstFrame);
  video.addEventListener("timeupdate", firstFrame);
  video.addEventListener("timeupdate", progress);
  video.addEventListener("seeked", () => {
    state.lastTime = video.currentTime;
  });
  video.addEventListener("error", () => {
    const e = video.error;
    state.errors.push(`video element error ${e && e.code}: ${e && e.message}`);
  });
  loadedAt = performance.now();
  let played;
  if (kind === "hls") {
    player.loadSource(url);
    played = video.play();
  } else {
    player.load();
    played = player.play();
  }
  if (played && played.catch) {
    played.catch((e) => state.errors.push(`play() rejected: ${e}`));
  }
  return state;
}

function snapshot() {
  const v = document.getElementById("v");
  const s = window.__flv;
  return {
    currentTime: v.currentTime,
    videoWidth: v.videoWidth,
    videoHeight: v.videoHeight,
    readyState: v.readyState,
    paused: v.paused,
    buffered: Array.from({ length: v.buffered.length }, (_, i) => [
      v.buffered.start(i),
      v.buffered.end(i),
    ]),
    frames: v.getVideoPlaybackQuality().totalVideoFrames,
    firstFrameMs: s.firstFrameMs,
    played: s.played,
    errors: s.errors,
    latency: typeof window.__player.latency === "number" ? window.__player.latency : null,
  };
}

/// Opens the page and copies its console errors and warnings to stderr.
async function openPage(browser) {
  const page = browser.pages()[0] || (await browser.newPage());
  page.on("console", (msg) => {
    const line = `[${msg.type()}] ${msg.text()}`;
    if (VERBOSE) process.stderr.write(line + "\n");
    if (msg.type() === "error" || msg.type() === "warning") {
      consoleLines.push(line);
      if (!VERBOSE) process.stderr.write(line + "\n");
    }
  });
  page.on("pageerror", (error) => {
    const line = `[pageerror] ${error.message}`;
    consoleLines.push(line);
    process.stderr.write(line + "\n");
  });
  return page;
}

async function main() {
  const [kind, url] = process.argv.slice(2);
  if (!url || !["flv", "hls"].includes(kind)) {
    fail("usage: node play.mjs flv|hls URL");
    return;
  }
  let pageServer;
  let context;
  let profile;
  try {
    pageServer = await startPageServer();
    const pageUrl = `http://127.0.0.1:${pageServer.address().port}/`;
    profile = await mkdtemp(join(tmpdir(), "onair-chromium-"));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      timeout: 30_000,
    });
    const page = await openPage(context);
    await page.goto(pageUrl, { waitUntil: "load", timeout: 15_000 });
    const start = await page.evaluate(startPlayer, [kind, url]);
    if (!start.supported) {
      fail(`${kind} player isSupported() is false: this Chromium has no Media Source Extensions`);
      return;
    }
    if (!start.h264Aac) {
      fail(
        'MediaSource.isTypeSupported(\'video/mp4; codecs="avc1.42E01E,mp4a.40.2"\') is false: ' +
          "this Chromium build cannot play H.264/AAC",
      );
      return;
    }
    const deadline = Date.now() + PLAY_TIMEOUT_MS;
    let last;
    while (Date.now() < deadline) {
      last = await page.evaluate(snapshot);
      if (last.errors.length > 0) {
        fail(`player error: ${last.errors.join("; ")}; last state ${JSON.stringify(last)}`);
        return;
      }
      if (
        last.firstFrameMs !== null &&
        last.played >= ADVANCE_S &&
        last.videoWidth > 0 &&
        last.videoHeight > 0
      ) {
        finish({
          ok: true,
          currentTime: last.currentTime,
          videoWidth: last.videoWidth,
          videoHeight: last.videoHeight,
          firstFrameMs: last.firstFrameMs,
          played: Number(last.played.toFixed(3)),
          frames: last.frames,
          latency: last.latency === null ? null : Number(last.latency.toFixed(3)),
        });
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    fail(
      `video did not advance ${ADVANCE_S} s with a picture within ${PLAY_TIMEOUT_MS} ms; ` +
        `last state ${JSON.stringify(last)}`,
    );
  } catch (error) {
    fail(`${error && error.stack ? error.stack : error}`);
  } finally {
    await context?.close().catch(() => {});
    if (pageServer) {
      const closed = new Promise((resolve) => pageServer.close(resolve));
      pageServer.closeAllConnections();
      await closed;
    }
    if (profile) await rm(profile, { recursive: true, force: true }).catch(() => {});
  }
}

const hardTimeout = setTimeout(() => {
  fail(`hard timeout: gave up after ${HARD_TIMEOUT_MS} ms`);
  process.exit(1);
}, HARD_TIMEOUT_MS);
hardTimeout.unref();

await main();
clearTimeout(hardTimeout);
