// Picks the lowest-latency way this browser can play a stream and keeps it playing:
// restarts after an error or a stall, and on demand when the stream comes back.
//
// Order: WebRTC (WHEP; not served yet, so never chosen), HTTP-FLV through mpegts.js
// (needs Media Source Extensions), LL-HLS through hls.js (MSE too), native HLS
// (Safari on iOS has no MSE). `?player=flv|hls|native` forces one.
import { ASSETS, backoffDelay, loadScript } from "./util.js";

const STALL_MS = 6000;

function mse() {
  return Boolean(window.MediaSource || window.ManagedMediaSource);
}

/** Every way to play, best first. Each has `available()` and
 * `create(video, urls, onError, start)`; `start()` starts the video element. */
const TECHS = {
  webrtc: {
    label: "WebRTC",
    // The server does not answer WHEP yet; when it does, this turns on.
    available: async () => false,
    create: () => { throw new Error("WebRTC playback is not available"); },
  },
  flv: {
    label: "HTTP-FLV (mpegts.js)",
    available: async () => {
      if (!mse()) return false;
      await loadScript(`${ASSETS}/vendor/mpegts.js/mpegts.js`);
      return Boolean(window.mpegts?.getFeatureList?.().mseLivePlayback);
    },
    create: (video, urls, onError, start) => {
      const player = window.mpegts.createPlayer(
        { type: "flv", isLive: true, url: urls.flv },
        {
          enableWorker: false,
          enableStashBuffer: false,
          lazyLoad: false,
          autoCleanupSourceBuffer: true,
          liveBufferLatencyChasing: true,
          liveBufferLatencyMaxLatency: 1.5,
          liveBufferLatencyMinRemain: 0.3,
        },
      );
      player.on(window.mpegts.Events.ERROR, (type, detail) => onError(`${type}: ${detail}`));
      player.attachMediaElement(video);
      player.load();
      start();
      return () => {
        try {
          player.pause();
          player.unload();
          player.detachMediaElement();
          player.destroy();
        } catch { /* already torn down */ }
      };
    },
  },
  hls: {
    label: "LL-HLS (hls.js)",
    available: async () => {
      if (!mse()) return false;
      await loadScript(`${ASSETS}/vendor/hls.js/hls.min.js`);
      return Boolean(window.Hls?.isSupported());
    },
    create: (video, urls, onError, start) => {
      const hls = new window.Hls({ lowLatencyMode: true, backBufferLength: 30 });
      hls.on(window.Hls.Events.ERROR, (_, data) => {
        if (data.fatal) onError(`${data.type}: ${data.details}`);
      });
      hls.loadSource(urls.hls);
      hls.attachMedia(video);
      start();
      return () => hls.destroy();
    },
  },
  native: {
    label: "HLS (native)",
    available: async () => document.createElement("video").canPlayType("application/vnd.apple.mpegurl") !== "",
    create: (video, urls, onError, start) => {
      const failed = () => onError("the browser could not play the stream");
      video.addEventListener("error", failed);
      video.src = urls.hls;
      start();
      return () => {
        video.removeEventListener("error", failed);
        video.removeAttribute("src");
        video.load();
      };
    },
  },
};

const ORDER = ["webrtc", "flv", "hls", "native"];

/** The tech to use: the forced one (`flv`, `hls`, `native`) or the best available. */
export async function chooseTech(forced) {
  if (forced === "hls") {
    // hls.js where MSE exists, else the browser's own HLS.
    for (const name of ["hls", "native"]) {
      if (await TECHS[name].available().catch(() => false)) return name;
    }
    return null;
  }
  if (forced && TECHS[forced]) {
    return (await TECHS[forced].available().catch(() => false)) ? forced : null;
  }
  for (const name of ORDER) {
    if (await TECHS[name].available().catch(() => false)) return name;
  }
  return null;
}

export function techLabel(name) {
  return TECHS[name]?.label ?? "none";
}

/** Keeps one tech playing into `video` while `play()` is in force. `onMuted()` is
 * called when the browser would only play it muted (autoplay policy). */
export class Player {
  constructor(video, tech, urls, onNote, onMuted) {
    this.video = video;
    this.tech = tech;
    this.urls = urls;
    this.onNote = onNote || (() => {});
    this.onMuted = onMuted || (() => {});
    this.teardown = null;
    this.wanted = false;
    this.retryTimer = null;
    this.lastTime = 0;
    this.lastProgress = 0;
    this.failures = 0;
    this.watchdog = setInterval(() => this.check(), 1000);
  }

  /** Starts playing (again, from the live edge). */
  play() {
    this.wanted = true;
    this.restart();
  }

  /** Stops and shows nothing: the stream is offline. */
  stop() {
    this.wanted = false;
    clearTimeout(this.retryTimer);
    this.destroy();
  }

  restart() {
    clearTimeout(this.retryTimer);
    this.destroy();
    if (!this.wanted) return;
    this.lastProgress = performance.now();
    this.lastTime = this.video.currentTime;
    try {
      this.teardown = TECHS[this.tech].create(this.video, this.urls, (why) => this.failed(why),
        () => this.startVideo());
    } catch (error) {
      this.failed(String(error.message || error));
    }
  }

  /** Plays with sound when the browser lets the page, else muted: browsers refuse
   * sound before the viewer has interacted with the site, but allow muted video. */
  startVideo() {
    const video = this.video;
    video.play().catch((error) => {
      if (error?.name !== "NotAllowedError" || video.muted) return;
      video.muted = true;
      this.onMuted();
      video.play().catch(() => {});
    });
  }

  failed(why) {
    this.onNote(`playback error (${why}); retrying`);
    this.destroy();
    clearTimeout(this.retryTimer);
    // Backs off while it keeps failing (a refused signature, a server going away).
    if (this.wanted) this.retryTimer = setTimeout(() => this.restart(), backoffDelay(1 + this.failures++));
  }

  destroy() {
    const teardown = this.teardown;
    this.teardown = null;
    if (teardown) teardown();
  }

  /** A live stream that stopped advancing (publisher dropped and came back,
   * buffer ran dry) is restarted at the live edge. */
  check() {
    if (!this.wanted || !this.teardown || this.video.paused && this.video.currentTime > 0) return;
    const now = performance.now();
    if (this.video.currentTime !== this.lastTime) {
      this.lastTime = this.video.currentTime;
      this.lastProgress = now;
      this.failures = 0;
    } else if (now - this.lastProgress > STALL_MS) {
      this.onNote("playback stalled; restarting");
      this.restart();
    }
  }
}
