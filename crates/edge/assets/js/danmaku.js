// Chat flying across the video (danmaku): each message enters at the right edge in
// a free lane and leaves at the left; a bounded number fly at once.
import { el } from "./util.js";

const LANE_PX = 30;
const CROSSING_MS = 8000;
const MAX_FLYING = 60;

export class Danmaku {
  constructor(layer) {
    this.layer = layer;
    this.on = true;
    this.laneFreeAt = [];
  }

  setOn(on) {
    this.on = on;
    this.layer.dataset.on = String(on);
    if (!on) this.layer.replaceChildren();
  }

  /** Flies `text`; `id` lets a deleted message be taken down. */
  add(text, { id, mine = false } = {}) {
    if (!this.on || this.layer.childElementCount >= MAX_FLYING) return;
    const width = this.layer.clientWidth || 640;
    const lanes = Math.max(1, Math.floor((this.layer.clientHeight || 360) * 0.8 / LANE_PX));
    const now = performance.now();
    let lane = 0;
    for (let i = 0; i < lanes; i++) {
      if ((this.laneFreeAt[i] || 0) <= now) { lane = i; break; }
      if ((this.laneFreeAt[i] || 0) < (this.laneFreeAt[lane] || 0)) lane = i;
    }
    const item = el("span", { class: mine ? "danmaku-item mine" : "danmaku-item" }, text);
    if (id !== undefined) item.dataset.id = String(id);
    item.style.top = `${lane * LANE_PX + 4}px`;
    this.layer.append(item);
    const itemWidth = item.offsetWidth;
    const distance = width + itemWidth;
    const speed = distance / CROSSING_MS;
    // The lane is free again once this item's tail has entered, plus a gap.
    this.laneFreeAt[lane] = now + (itemWidth + 40) / speed;
    const flight = item.animate(
      [{ transform: `translateX(${width}px)` }, { transform: `translateX(${-itemWidth}px)` }],
      { duration: CROSSING_MS, easing: "linear" },
    );
    flight.addEventListener("finish", () => item.remove());
  }

  remove(id) {
    for (const item of this.layer.querySelectorAll(".danmaku-item")) {
      if (item.dataset.id === String(id)) item.remove();
    }
  }
}
