// The deciding measurement over time (uPlot): the rules' signal per assessed frame, the
// level's thresholds as dashed lines, each repetition's judged value as a dot in its status
// colour, and a cursor line that follows the video. Clicking the plot seeks the video.
import uPlot from "../vendor/uplot-1.6.32/uPlot.esm.js";
import { statusColour } from "./status.js";

const LINE_COLOURS = ["#7b3fbf", "#0f8a8a", "#b0741c"];

export function measurementPlot(target, series, { onSeek, width }) {
  const x = series.times;
  const data = [x, series.values];
  const plotSeries = [
    {},
    { label: `${series.name} (${series.unit})`, stroke: "#1f5fbf", width: 1.5, spanGaps: false, points: { show: false } },
  ];
  series.thresholds.forEach((line, i) => {
    data.push(x.map(() => line.value));
    plotSeries.push({
      label: `${line.name} ${line.value}`,
      stroke: LINE_COLOURS[i % LINE_COLOURS.length],
      dash: [6, 4],
      width: 1.5,
      points: { show: false },
    });
  });
  // Judged values: one dot per repetition at the frame of its extreme, drawn by the hook
  // below in the repetition's status colour.
  const byIndex = new Map();
  for (const rep of series.reps) {
    const i = nearest(x, rep.time);
    if (i >= 0 && rep.value !== null && rep.value !== undefined) byIndex.set(i, rep);
  }

  let cursorTime = null;
  const cursorPlugin = {
    hooks: {
      draw: [
        (u) => {
          // Judged points in their status colour, numbered.
          const ctx = u.ctx;
          ctx.save();
          for (const [i, rep] of byIndex) {
            const cx = u.valToPos(x[i], "x", true);
            const cy = u.valToPos(rep.value, "y", true);
            ctx.fillStyle = statusColour(rep.status);
            ctx.beginPath();
            ctx.arc(cx, cy, 5 * devicePixelRatio, 0, 2 * Math.PI);
            ctx.fill();
            ctx.fillStyle = "#1d2330";
            ctx.font = `${11 * devicePixelRatio}px sans-serif`;
            ctx.fillText(String(rep.index), cx + 6 * devicePixelRatio, cy - 6 * devicePixelRatio);
          }
          if (cursorTime !== null) {
            const cx = u.valToPos(cursorTime, "x", true);
            ctx.strokeStyle = "#c62f2f";
            ctx.lineWidth = 2 * devicePixelRatio;
            ctx.beginPath();
            ctx.moveTo(cx, u.bbox.top);
            ctx.lineTo(cx, u.bbox.top + u.bbox.height);
            ctx.stroke();
          }
          ctx.restore();
        },
      ],
    },
  };

  const plot = new uPlot(
    {
      width,
      height: 150,
      plugins: [cursorPlugin],
      scales: { x: { time: false } },
      axes: [{ label: "seconds into the test", size: 36 }, { label: series.unit, size: 44, space: 18 }],
      series: plotSeries,
      legend: { show: true },
      cursor: { drag: { x: false, y: false } },
    },
    data,
    target,
  );
  plot.over.addEventListener("click", () => {
    const left = plot.cursor.left;
    if (left === undefined || left < 0) return;
    onSeek(plot.posToVal(left, "x"));
  });
  return {
    plot,
    setCursor(time) {
      if (time === cursorTime) return;
      cursorTime = time;
      plot.redraw(false, false);
    },
    resize(w) {
      plot.setSize({ width: w, height: 150 });
    },
  };
}

function nearest(sorted, value) {
  if (!sorted.length) return -1;
  let lo = 0;
  let hi = sorted.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid] < value) lo = mid + 1;
    else hi = mid;
  }
  if (lo > 0 && Math.abs(sorted[lo - 1] - value) < Math.abs(sorted[lo] - value)) return lo - 1;
  return lo;
}
