// Drives onair's own pages in headless Chromium: the stream list (titles, pictures),
// the watch page (HTTP-FLV and LL-HLS playback, muted autoplay and its unmute button,
// title and description, chat with times, name colours and scrolling that pauses,
// danmaku, likes, gifts and their pop-ups, a refused chat token, the offline card and
// back, escaping) and the admin dashboard (open-publishing notice, labelled keys, a
// moderator room connection, kick, mute), with screenshots checked for content.
//
//   node tests/browser/pages.mjs CONFIG_JSON
//
// CONFIG_JSON: {"base": "http://127.0.0.1:PORT", "stream": "live/pages",
//   "adminToken": "…", "alice": "<chat token>", "bob": "<chat token>",
//   "wrongToken": "<a chat token signed with another secret>",
//   "artifacts": "/path/to/dir", "signed": {"stream": "paid/show",
//   "query": "expires=…&sig=…"} (optional: a stream whose app needs signed playback)}
//
// The publisher is the caller's: the script prints {"cmd":"stop_publisher"} or
// {"cmd":"start_publisher"} on stdout and waits for one line on stdin before going
// on. It ends with one JSON line, {"ok":true,…figures} (exit 0) or
// {"ok":false,"reason":…,"step":…,"console":[…]} (exit 1).
//
// Environment: CHROMIUM (default /usr/bin/chromium), PAGES_VERBOSE=1 (every console
// message to stderr). Never downloads a browser.

import { mkdir, readFile, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { PNG } from "pngjs";
import { chromium } from "playwright-core";

const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const VERBOSE = Boolean(process.env.PAGES_VERBOSE);
const HARD_TIMEOUT_MS = 360_000;
const STEP_MS = 20_000;

const BASE_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--no-first-run",
  "--disable-sync",
  "--disable-quic",
];
const CHROMIUM_ARGS = [...BASE_ARGS, "--autoplay-policy=no-user-gesture-required"];
/** A browser as people have it: sound only after the viewer interacted with the page. */
const STRICT_AUTOPLAY_ARGS = [...BASE_ARGS, "--autoplay-policy=document-user-activation-required"];

const TITLE = "Pages test: chat & gifts";
const DESCRIPTION = "A <b>description</b>, shown as text.";
const NEXT_TITLE = "Pages test, the second show";

const consoleLines = [];
const figures = {};
let step = "start";

const stdinLines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();

/** Asks the caller to do something to the publisher and waits until it says done. */
async function ask(cmd) {
  process.stdout.write(JSON.stringify({ cmd }) + "\n");
  const { value, done } = await stdinLines.next();
  if (done || value.trim() !== "ok") throw new Error(`caller did not do ${cmd}: ${value}`);
}

function log(line) {
  process.stderr.write(line + "\n");
}

/** Calls the REST API with the admin token; returns the parsed body (or null). */
async function api(config, method, path, body) {
  const headers = { Authorization: `Bearer ${config.adminToken}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(`${config.base}${path}`, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: HTTP ${response.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

/** A few things that say whether chat lines are readable: each shown time is the
 * event's local HH:MM, each user's name colour is the same on every line and page,
 * and every name colour stands out from the chat panel (WCAG contrast ratio). */
async function chatLook(page, user) {
  return page.evaluate((user) => {
    const rgb = (css) => css.match(/[\d.]+/g).slice(0, 3).map(Number);
    const luminance = (css) => {
      const [r, g, b] = rgb(css).map((v) => v / 255)
        .map((v) => (v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4));
      return 0.2126 * r + 0.7152 * g + 0.0722 * b;
    };
    const contrast = (a, b) => {
      const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
      return (hi + 0.05) / (lo + 0.05);
    };
    const panel = getComputedStyle(document.querySelector(".chat")).backgroundColor;
    const lines = [...document.querySelectorAll("#chat-list li")].filter((li) => li.querySelector(".who"));
    const pad = (n) => String(n).padStart(2, "0");
    const times = lines.map((li) => {
      const time = li.querySelector("time.ts");
      const at = new Date(time.dateTime);
      return { text: time.textContent, expected: `${pad(at.getHours())}:${pad(at.getMinutes())}`,
        ageMs: Date.now() - at.getTime() };
    });
    const mine = lines.map((li) => li.querySelector(".who")).filter((who) => who.textContent === user);
    return {
      lines: lines.length,
      timesMatch: times.length > 0 && times.every((t) => /^\d\d:\d\d$/.test(t.text) && t.text === t.expected),
      maxAgeMs: Math.max(...times.map((t) => t.ageMs)),
      userLines: mine.length,
      userClasses: [...new Set(mine.map((who) => who.className))],
      userColors: [...new Set(mine.map((who) => getComputedStyle(who).color))],
      minContrast: Math.min(...lines.map((li) => contrast(getComputedStyle(li.querySelector(".who")).color, panel))),
    };
  }, user);
}

/** Whether the chat list shows its newest line (the viewer follows the chat). */
async function chatScroll(page) {
  return page.evaluate(() => {
    const list = document.getElementById("chat-list");
    return {
      overflows: list.scrollHeight > list.clientHeight,
      atBottom: list.scrollTop + list.clientHeight >= list.scrollHeight - 8,
      scrollTop: Math.round(list.scrollTop),
      moreShown: !document.getElementById("chat-more").hidden,
    };
  });
}

async function waitChatText(page, text) {
  await page.waitForFunction((text) => [...document.querySelectorAll("#chat-list li")].some((li) => li.textContent.includes(text)),
    text, { timeout: STEP_MS, polling: 100 });
}

async function openPage(context, url, label) {
  const page = await context.newPage();
  page.on("console", (msg) => {
    const line = `[${label} ${msg.type()}] ${msg.text()}`;
    if (VERBOSE) log(line);
    if (msg.type() === "error" || msg.type() === "warning") {
      consoleLines.push(line);
      if (!VERBOSE) log(line);
    }
  });
  page.on("pageerror", (error) => {
    const line = `[${label} pageerror] ${error.message}`;
    consoleLines.push(line);
    log(line);
  });
  await page.goto(url, { waitUntil: "load", timeout: STEP_MS });
  return page;
}

/** Waits until the page's video plays: currentTime advances by `seconds` while
 * the picture has a size; returns what the video element says. */
async function waitPlaying(page, seconds) {
  const start = await page.waitForFunction(() => {
    const v = document.getElementById("video");
    return v.readyState >= 2 && v.videoWidth > 0 && v.currentTime > 0 ? v.currentTime : false;
  }, null, { timeout: STEP_MS, polling: 100 });
  const from = await start.jsonValue();
  await page.waitForFunction((from) => document.getElementById("video").currentTime >= from + 1.5,
    from, { timeout: STEP_MS, polling: 100 });
  void seconds;
  return page.evaluate(() => {
    const v = document.getElementById("video");
    return { currentTime: v.currentTime, videoWidth: v.videoWidth, videoHeight: v.videoHeight,
      tech: v.dataset.tech };
  });
}

async function badge(page, state) {
  await page.waitForFunction((state) => document.getElementById("badge").dataset.state === state,
    state, { timeout: STEP_MS, polling: 100 });
}

async function waitCanSend(page) {
  await page.waitForFunction(() => !document.getElementById("chat-input").disabled,
    null, { timeout: STEP_MS, polling: 100 });
}

/** Sends a chat message from `from` and measures how long until `to` shows it in
 * the chat list and as danmaku (both clocks are this machine's). */
async function chatAcross(from, to, text) {
  await to.evaluate((text) => {
    window.__seen = {};
    const mark = () => {
      const inList = [...document.querySelectorAll("#chat-list .text")].some((n) => n.textContent === text);
      const inDanmaku = [...document.querySelectorAll("#danmaku .danmaku-item")].some((n) => n.textContent === text);
      if (inList && !window.__seen.list) window.__seen.list = Date.now();
      if (inDanmaku && !window.__seen.danmaku) window.__seen.danmaku = Date.now();
    };
    new MutationObserver(mark).observe(document.body, { childList: true, subtree: true });
  }, text);
  const sentAt = await from.evaluate((text) => {
    document.getElementById("chat-input").value = text;
    const at = Date.now();
    document.getElementById("chat-send").click();
    return at;
  }, text);
  await to.waitForFunction(() => window.__seen.list && window.__seen.danmaku, null,
    { timeout: STEP_MS, polling: 50 });
  const seen = await to.evaluate(() => window.__seen);
  return { listMs: seen.list - sentAt, danmakuMs: seen.danmaku - sentAt };
}

/** Looks at a screenshot: overall not blank, and the `box` (CSS pixels, e.g. the
 * video) not black. */
async function checkScreenshot(file, box, scale) {
  const png = PNG.sync.read(await readFile(file));
  const luma = (i) => 0.299 * png.data[i] + 0.587 * png.data[i + 1] + 0.114 * png.data[i + 2];
  let sum = 0, sumSq = 0, n = 0;
  for (let i = 0; i < png.data.length; i += 4 * 7) {
    const y = luma(i);
    sum += y; sumSq += y * y; n++;
  }
  const mean = sum / n;
  const result = { file, width: png.width, height: png.height, stddev: Math.sqrt(sumSq / n - mean * mean) };
  if (box) {
    let bright = 0, total = 0, boxSum = 0;
    const x0 = Math.max(0, Math.floor(box.x * scale)), y0 = Math.max(0, Math.floor(box.y * scale));
    const x1 = Math.min(png.width, Math.floor((box.x + box.width) * scale));
    const y1 = Math.min(png.height, Math.floor((box.y + box.height) * scale));
    for (let y = y0; y < y1; y += 3) {
      for (let x = x0; x < x1; x += 3) {
        const v = luma((y * png.width + x) * 4);
        boxSum += v; total++;
        if (v > 40) bright++;
      }
    }
    result.videoMean = total ? boxSum / total : 0;
    result.videoBrightShare = total ? bright / total : 0;
  }
  return result;
}

/** The offline card over the video, as shown. */
async function offlineCard(page) {
  return page.evaluate(() => {
    const time = document.getElementById("offline-last-time");
    return {
      shown: !document.getElementById("waiting").hidden,
      heading: document.getElementById("waiting-text").textContent,
      title: document.getElementById("offline-title").textContent,
      titleShown: !document.getElementById("offline-title").hidden,
      lastLive: document.getElementById("offline-last").textContent,
      lastLiveAgeS: (Date.now() - new Date(time.dateTime).getTime()) / 1000,
    };
  });
}

/** In a browser that allows sound only after an interaction (as browsers do for a
 * site seen for the first time), the watch page plays muted, shows the unmute
 * button, and one click on it brings the sound and hides it. */
async function mutedAutoplay(watchUrl) {
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: STRICT_AUTOPLAY_ARGS,
    timeout: 30_000 });
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await openPage(context, watchUrl, "autoplay");
    await waitPlaying(page, 1.5);
    await page.waitForSelector("#unmute:not([hidden])", { timeout: STEP_MS });
    const before = await page.evaluate(() => ({
      muted: document.getElementById("video").muted,
      buttonText: document.getElementById("unmute").textContent,
    }));
    await page.click("#unmute");
    await page.waitForFunction(() => !document.getElementById("video").muted && document.getElementById("unmute").hidden,
      null, { timeout: STEP_MS, polling: 100 });
    const from = await page.evaluate(() => document.getElementById("video").currentTime);
    await page.waitForFunction((from) => document.getElementById("video").currentTime > from + 0.5,
      from, { timeout: STEP_MS, polling: 100 });
    const after = await page.evaluate(() => ({
      muted: document.getElementById("video").muted,
      paused: document.getElementById("video").paused,
      buttonShown: !document.getElementById("unmute").hidden,
    }));
    return { before, after };
  } finally {
    await browser.close().catch(() => {});
  }
}

async function main() {
  const config = JSON.parse(process.argv[2] || "{}");
  const { base, stream, adminToken, alice, bob, wrongToken, artifacts, signed } = config;
  if (!base || !stream || !adminToken || !alice || !bob || !wrongToken || !artifacts) {
    throw new Error("usage: node pages.mjs '{\"base\",\"stream\",\"adminToken\",\"alice\",\"bob\",\"wrongToken\",\"artifacts\"}'");
  }
  await mkdir(artifacts, { recursive: true });
  const profile = await mkdtemp(join(tmpdir(), "onair-pages-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1280, height: 800 },
    timeout: 30_000,
  });
  try {
    step = "the stream gets a title and description";
    await api(config, "PATCH", `/api/v1/streams/${stream}`, { title: TITLE, description: DESCRIPTION });

    step = "stream list shows the title and a picture box, and links to the watch page";
    const list = await openPage(context, `${base}/`, "list");
    const link = list.locator(`#streams tr[data-stream="${stream}"] a.stream-link`);
    await link.waitFor({ timeout: STEP_MS });
    await list.waitForFunction((title) => document.querySelector("#streams a.stream-link")?.textContent === title,
      TITLE, { timeout: STEP_MS, polling: 100 });
    // The snapshot answers 404 (not made yet): the picture must stay hidden, not broken.
    await list.waitForFunction(() => document.querySelector("#streams .thumb img")?.complete,
      null, { timeout: STEP_MS, polling: 100 });
    figures.listRow = await list.locator(`#streams tr[data-stream="${stream}"]`).innerText();
    figures.listItem = await list.evaluate((stream) => {
      const row = document.querySelector(`#streams tr[data-stream="${stream}"]`);
      const img = row.querySelector(".thumb img");
      const box = row.querySelector(".thumb").getBoundingClientRect();
      return {
        title: row.querySelector("a.stream-link").textContent,
        path: row.querySelector(".stream-path").textContent,
        imgSrc: new URL(img.src).pathname,
        imgHidden: img.hidden || getComputedStyle(img).display === "none",
        imgNaturalWidth: img.naturalWidth,
        boxWidth: Math.round(box.width),
        boxHeight: Math.round(box.height),
      };
    }, stream);
    figures.listItem.brokenImage = !figures.listItem.imgHidden && figures.listItem.imgNaturalWidth === 0;
    await link.click();
    await list.waitForURL(`**/watch/${stream}`, { timeout: STEP_MS });
    figures.listLinksTo = new URL(list.url()).pathname;
    await list.close();

    step = "open watch pages";
    const watchUrl = `${base}/watch/${stream}`;
    const a = await openPage(context, `${watchUrl}?token=${encodeURIComponent(alice)}`, "alice");
    const b = await openPage(context, `${watchUrl}#token=${encodeURIComponent(bob)}`, "bob");
    figures.tokenLeftUrl = !(await a.evaluate(() => location.href.includes("token=")));

    step = "watch page plays HTTP-FLV";
    await badge(a, "live");
    figures.playback = await waitPlaying(a, 1.5);
    // This browser lets pages play sound at once: no unmute button.
    figures.autoplayWithSound = await a.evaluate(() => ({
      muted: document.getElementById("video").muted,
      unmuteShown: !document.getElementById("unmute").hidden,
    }));

    step = "watch page shows the title and description";
    await a.waitForFunction((title) => document.getElementById("stream-title").textContent === title,
      TITLE, { timeout: STEP_MS, polling: 100 });
    figures.streamInfo = await a.evaluate(() => ({
      title: document.getElementById("stream-title").textContent,
      description: document.getElementById("stream-description").textContent,
      descriptionShown: !document.getElementById("stream-description").hidden,
      descriptionElements: document.querySelectorAll("#stream-description *").length,
      documentTitle: document.title,
    }));

    step = "watch page plays LL-HLS";
    const hls = await openPage(context, `${watchUrl}?player=hls`, "hls");
    figures.hlsPlayback = await waitPlaying(hls, 1.5);
    await hls.close();

    step = "chat reaches the other page";
    await waitCanSend(a);
    await waitCanSend(b);
    figures.chat = await chatAcross(a, b, `hello from alice ${Date.now()}`);
    log(`chat latency: list ${figures.chat.listMs} ms, danmaku ${figures.chat.danmakuMs} ms`);

    step = "chat resumes after a drop with nothing lost or doubled";
    await b.evaluate(() => window.onair.room.socket.close());
    await b.waitForFunction(() => document.getElementById("chat-status").textContent.includes("reconnecting"),
      null, { timeout: STEP_MS, polling: 20 });
    const missed = [1, 2, 3].map((i) => `while you were away ${i} ${Date.now()}`);
    for (const text of missed) {
      await a.evaluate((text) => {
        document.getElementById("chat-input").value = text;
        document.getElementById("chat-send").click();
      }, text);
    }
    await b.waitForFunction((missed) => {
      const texts = [...document.querySelectorAll("#chat-list .text")].map((n) => n.textContent);
      return missed.every((m) => texts.includes(m));
    }, missed, { timeout: STEP_MS, polling: 100 });
    await waitCanSend(b);
    figures.resume = await b.evaluate((missed) => {
      const texts = [...document.querySelectorAll("#chat-list .text")].map((n) => n.textContent);
      const seqs = [...document.querySelectorAll("#chat-list li[data-id]")].map((n) => n.dataset.id);
      return {
        counts: missed.map((m) => texts.filter((t) => t === m).length),
        duplicateIds: seqs.length - new Set(seqs).size,
        inOrder: missed.map((m) => texts.indexOf(m)).every((v, i, all) => i === 0 || v > all[i - 1]),
      };
    }, missed);

    step = "chat lines have times and a stable colour per user";
    figures.chatLookB = await chatLook(b, "alice");
    figures.chatLookA = await chatLook(a, "alice");

    step = "chat scrolling pauses when the viewer scrolls up";
    const room = `/api/v1/rooms/${stream}/messages`;
    for (let i = 0; i < 40; i++) await api(config, "POST", room, { text: `filler line ${i} to make the chat scroll` });
    await waitChatText(b, "filler line 39 to make");
    await b.waitForFunction(() => {
      const list = document.getElementById("chat-list");
      return list.scrollTop + list.clientHeight >= list.scrollHeight - 8;
    }, null, { timeout: STEP_MS, polling: 100 });
    figures.scroll = { following: await chatScroll(b) };
    await b.locator("#chat-list").hover();
    await b.mouse.wheel(0, -600);
    await b.waitForFunction(() => {
      const list = document.getElementById("chat-list");
      return list.scrollTop + list.clientHeight < list.scrollHeight - 200;
    }, null, { timeout: STEP_MS, polling: 100 });
    await api(config, "POST", room, { text: "a line that arrives while you read" });
    await waitChatText(b, "a line that arrives while you read");
    await b.waitForSelector("#chat-more:not([hidden])", { timeout: STEP_MS });
    // Not at the bottom: the new line did not pull the list down.
    figures.scroll.paused = await chatScroll(b);
    figures.scroll.buttonText = await b.textContent("#chat-more");
    await b.click("#chat-more");
    await b.waitForFunction(() => {
      const list = document.getElementById("chat-list");
      return list.scrollTop + list.clientHeight >= list.scrollHeight - 8 && document.getElementById("chat-more").hidden;
    }, null, { timeout: STEP_MS, polling: 100 });
    await api(config, "POST", room, { text: "a line after jumping back down" });
    await waitChatText(b, "a line after jumping back down");
    await b.waitForFunction(() => {
      const list = document.getElementById("chat-list");
      return list.scrollTop + list.clientHeight >= list.scrollHeight - 8;
    }, null, { timeout: STEP_MS, polling: 100 });
    figures.scroll.resumed = await chatScroll(b);

    step = "a <script> message is text";
    const hostile = `<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">`;
    await chatAcross(a, b, hostile);
    figures.escaped = await b.evaluate((hostile) => ({
      shownAsText: [...document.querySelectorAll("#chat-list .text")].some((n) => n.textContent === hostile),
      elements: document.querySelectorAll("#chat-list script, #chat-list img, #danmaku script, #danmaku img").length,
      pwned: window.__pwned ?? null,
    }), hostile);
    figures.escaped.pwnedSender = await a.evaluate(() => window.__pwned ?? null);

    step = "likes reach the other page";
    const before = Number(await b.textContent("#likes"));
    for (let i = 0; i < 3; i++) await a.click("#like");
    await b.waitForFunction((before) => Number(document.getElementById("likes").textContent) >= before + 3,
      before, { timeout: STEP_MS, polling: 100 });
    figures.likes = { before, after: Number(await b.textContent("#likes")) };

    step = "gifts read as sentences and pop up over the video";
    // Back to back, so that the second one falls within the combo window.
    await a.evaluate(() => window.onair.room.send({ type: "gift", gift: "rose", count: 2 }));
    await a.click("#gifts button[data-gift=rose]");
    const popup = await b.waitForFunction(() => [...document.querySelectorAll("#gift-layer .gift-pop")]
      .find((pop) => pop.textContent.includes("alice sent 2 roses")), null, { timeout: STEP_MS, polling: 50 });
    figures.giftPopup = await popup.evaluate((pop) => ({
      text: pop.textContent,
      animation: getComputedStyle(pop).animationName,
      overVideo: (() => {
        const p = pop.getBoundingClientRect();
        const v = document.querySelector(".video-box").getBoundingClientRect();
        return p.top >= v.top && p.bottom <= v.bottom && p.left >= v.left && p.right <= v.right;
      })(),
    }));
    await waitChatText(b, "alice sent 2 roses");
    await waitChatText(b, "alice sent a rose — combo ×2");
    figures.giftLines = await b.evaluate(() => [...document.querySelectorAll("#chat-list li")]
      .filter((li) => li.querySelector(".gift")).map((li) => li.textContent.replace(/^\d\d:\d\d /, "")));
    // Each pop-up fades out and is then taken out of the page.
    await b.waitForFunction(() => document.querySelectorAll("#gift-layer .gift-pop").length === 0,
      null, { timeout: STEP_MS, polling: 100 });
    figures.giftPopupRemoved = await popup.evaluate((pop) => !pop.isConnected);

    step = "watch page screenshot";
    const watchShot = join(artifacts, "watch.png");
    await a.screenshot({ path: watchShot });
    const videoBox = await a.locator("#video").boundingBox();
    figures.watchScreenshot = await checkScreenshot(watchShot, videoBox, 1);

    step = "danmaku toggles from the keyboard";
    await a.focus("#danmaku-toggle");
    await a.keyboard.press("Enter");
    figures.danmakuToggle = await a.evaluate(() => ({
      pressed: document.getElementById("danmaku-toggle").getAttribute("aria-pressed"),
      layer: document.getElementById("danmaku").dataset.on,
    }));
    await a.keyboard.press("Space");

    step = "phone-sized layout";
    const phone = await context.newPage();
    await phone.setViewportSize({ width: 375, height: 667 });
    await phone.goto(watchUrl, { waitUntil: "load", timeout: STEP_MS });
    await badge(phone, "live");
    figures.phone = await phone.evaluate(() => {
      const video = document.querySelector(".video-box").getBoundingClientRect();
      const chat = document.querySelector(".chat").getBoundingClientRect();
      return {
        overflowX: document.documentElement.scrollWidth - window.innerWidth,
        videoWidth: Math.round(video.width),
        chatBelowVideo: chat.top >= video.bottom,
        chatWidth: Math.round(chat.width),
      };
    });
    await phone.screenshot({ path: join(artifacts, "watch-phone.png"), fullPage: true });
    await phone.close();

    if (signed) {
      step = "signed playback: the page's signature opens media and room";
      const paid = await openPage(context, `${base}/watch/${signed.stream}?${signed.query}`, "signed");
      await badge(paid, "live");
      figures.signed = await waitPlaying(paid, 1.5);
      await paid.close();
      const unsigned = await openPage(context, `${base}/watch/${signed.stream}`, "unsigned");
      await unsigned.waitForTimeout(3000);
      figures.unsigned = await unsigned.evaluate(() => ({
        badge: document.getElementById("badge").dataset.state,
        videoWidth: document.getElementById("video").videoWidth,
      }));
      await unsigned.close();
    }

    step = "a refused chat token says so and why";
    const refused = await openPage(context, `${watchUrl}?token=${encodeURIComponent(wrongToken)}`, "refused");
    await refused.waitForSelector("#token-status:not([hidden])", { timeout: STEP_MS });
    await badge(refused, "live");
    figures.tokenRefused = await refused.evaluate(() => ({
      reason: document.querySelector("#token-status .token-reason")?.textContent ?? "",
      hint: document.querySelector("#token-status .token-hint")?.textContent ?? "",
      canSend: !document.getElementById("chat-input").disabled,
      tokenKept: sessionStorage.getItem("onair.chat-token"),
    }));
    await refused.close();

    step = "muted autoplay offers to unmute";
    figures.mutedAutoplay = await mutedAutoplay(watchUrl);

    step = "offline card when the publisher stops";
    await ask("stop_publisher");
    await badge(a, "offline");
    figures.offlineWaiting = await a.isVisible("#waiting");
    await a.waitForSelector("#offline-last:not([hidden])", { timeout: STEP_MS });
    figures.offlineCard = await offlineCard(a);

    step = "offline card after a reload";
    await a.reload({ waitUntil: "load", timeout: STEP_MS });
    await badge(a, "offline");
    await a.waitForSelector("#offline-last:not([hidden])", { timeout: STEP_MS });
    figures.offlineCardReloaded = await offlineCard(a);

    step = "playback resumes when the publisher returns, with the new title";
    await api(config, "PATCH", `/api/v1/streams/${stream}`, { title: NEXT_TITLE });
    await ask("start_publisher");
    await badge(a, "live");
    figures.resumed = await waitPlaying(a, 1.5);
    try {
      await a.waitForFunction((title) => document.getElementById("stream-title").textContent === title,
        NEXT_TITLE, { timeout: STEP_MS, polling: 100 });
    } finally {
      figures.titleAfterLive = await a.textContent("#stream-title");
      figures.infoAfterLive = await a.evaluate(() => window.onair.info);
    }

    step = "admin signs in";
    const admin = await openPage(context, `${base}/admin?confirm=off`, "admin");
    await admin.fill("#admin-token", adminToken);
    await admin.click("#login-form button[type=submit]");
    const card = admin.locator(`article.card[data-stream="${stream}"]`);
    await card.waitFor({ timeout: STEP_MS });
    figures.publishOpen = {
      shown: await admin.isVisible("#publish-open"),
      text: await admin.textContent("#publish-open"),
    };
    // A few samples in the chart before the screenshot.
    await admin.waitForTimeout(4500);
    const adminShot = join(artifacts, "admin.png");
    await admin.screenshot({ path: adminShot, fullPage: true });
    figures.adminScreenshot = await checkScreenshot(adminShot, await card.boundingBox(), 1);

    step = "admin creates a key with a label";
    await admin.fill("#key-stream", "live/newkey");
    await admin.fill("#key-label", "OBS at home");
    await admin.click("#key-form button[type=submit]");
    await admin.waitForFunction(() => /^[0-9a-f]{64}$/.test(document.getElementById("new-key-value").textContent)
      && !document.getElementById("new-key").hidden, null, { timeout: STEP_MS, polling: 100 });
    await admin.waitForFunction(() => [...document.querySelectorAll("#keys tbody td")].some((td) => td.textContent === "live/newkey"),
      null, { timeout: STEP_MS, polling: 100 });
    figures.keyShown = true;
    figures.keyWarning = {
      shown: await admin.isVisible("#new-key-warning"),
      text: await admin.textContent("#new-key-warning"),
    };
    figures.keysTable = await admin.evaluate(() => {
      const head = [...document.querySelectorAll("#keys thead th")].map((th) => th.textContent);
      const row = [...document.querySelectorAll("#keys tbody tr")]
        .find((tr) => [...tr.cells].some((td) => td.textContent === "live/newkey"));
      const cell = (name) => row.cells[head.indexOf(name)];
      return {
        head,
        label: cell("Label").textContent,
        created: cell("Created").textContent,
        createdIso: cell("Created").querySelector("time")?.dateTime ?? null,
        lastUsed: cell("Last used").textContent,
      };
    });

    step = "admin deletes a message";
    await card.locator("button[data-action=moderate]").click();
    await admin.waitForSelector("#mod-panel:not([hidden])", { timeout: STEP_MS });
    // The moderation view joins with a moderator token, not as an anonymous viewer.
    await admin.waitForFunction(() => window.onairAdmin.room?.socket?.readyState === WebSocket.OPEN,
      null, { timeout: STEP_MS, polling: 100 });
    figures.moderatorToken = await admin.evaluate(() => {
      const token = window.onairAdmin.room.token;
      if (!token) return null;
      const claims = JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
      return { sub: claims.sub, role: claims.role };
    });
    const doomed = `delete me ${Date.now()}`;
    await chatAcross(b, a, doomed);
    const modItem = admin.locator("#mod-chat li", { hasText: doomed });
    await modItem.waitFor({ timeout: STEP_MS });
    await modItem.locator("button[data-action=delete]").click();
    await a.waitForFunction((doomed) => ![...document.querySelectorAll("#chat-list .text")].some((n) => n.textContent === doomed),
      doomed, { timeout: STEP_MS, polling: 100 });
    figures.deleted = true;

    step = "admin mutes bob";
    await admin.fill("#user-id", "bob");
    await admin.click("#user-form button[data-action=mute]");
    await admin.waitForFunction(() => document.getElementById("mod-status").textContent === "Muted bob.",
      null, { timeout: STEP_MS, polling: 100 });
    await b.fill("#chat-input", "can anyone hear me?");
    await b.click("#chat-send");
    await b.waitForFunction(() => document.getElementById("chat-status").dataset.code === "muted",
      null, { timeout: STEP_MS, polling: 100 });
    figures.muteMessage = await b.textContent("#chat-status");
    figures.muteShown = await b.isVisible("#chat-status");

    step = "admin kicks the publisher";
    await card.locator("button[data-action=kick]").click();
    await badge(a, "offline");
    figures.kicked = true;

    process.stdout.write(JSON.stringify({ ok: true, ...figures }) + "\n");
  } finally {
    await context.close().catch(() => {});
    await rm(profile, { recursive: true, force: true }).catch(() => {});
  }
}

const hardStop = setTimeout(() => {
  process.stdout.write(JSON.stringify({ ok: false, reason: "hard timeout", step, figures, console: consoleLines }) + "\n");
  process.exit(1);
}, HARD_TIMEOUT_MS);

main()
  .then(() => {
    clearTimeout(hardStop);
    process.exit(0);
  })
  .catch((error) => {
    clearTimeout(hardStop);
    process.stdout.write(JSON.stringify({ ok: false, reason: String(error.message || error), step, figures, console: consoleLines }) + "\n");
    process.exit(1);
  });
