// A live chart of one stream's incoming bitrate and viewers (uPlot, vendored).
import uPlot from "../vendor/uplot/uPlot.esm.js";

const POINTS = 90;

export class StreamChart {
  constructor(target) {
    this.data = [[], [], []];
    this.plot = new uPlot(
      {
        width: Math.max(260, target.clientWidth || 320),
        height: 150,
        legend: { live: false },
        cursor: { show: false },
        scales: { x: { time: true }, kbps: { range: (_, min, max) => [0, Math.max(10, max * 1.2)] },
          n: { range: (_, min, max) => [0, Math.max(2, max + 1)] } },
        series: [
          {},
          { label: "kbps in", scale: "kbps", stroke: "#e5484d", width: 2 },
          { label: "viewers", scale: "n", stroke: "#8ab4ff", width: 2 },
        ],
        axes: [
          { stroke: "#9aa3b2", grid: { stroke: "#2a2f3a" } },
          { scale: "kbps", stroke: "#9aa3b2", grid: { stroke: "#2a2f3a" } },
          { scale: "n", side: 1, stroke: "#9aa3b2", grid: { show: false } },
        ],
      },
      this.data,
      target,
    );
  }

  push(seconds, kbps, viewers) {
    const [x, a, b] = this.data;
    x.push(seconds);
    a.push(kbps);
    b.push(viewers);
    if (x.length > POINTS) {
      x.shift();
      a.shift();
      b.shift();
    }
    this.plot.setData(this.data);
  }

  destroy() {
    this.plot.destroy();
  }
}
