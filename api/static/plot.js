// Hand-drawn canvas charts for the dashboard (no library: the machine has no internet).
// plotSeries(canvas, series, options) draws bars and/or lines over a shared x axis of
// equally spaced buckets; every series is {values: number[], color, kind: "bar"|"line"};
// options: {labels: [[bucket index, text]...], emptyText}.
"use strict";

const Plot = (() => {
  const PAD = { left: 44, right: 10, top: 10, bottom: 22 };

  function niceMax(value) {
    if (!(value > 0)) return 1;
    const power = Math.pow(10, Math.floor(Math.log10(value)));
    // Tops whose quarters (the grid lines) are round numbers.
    for (const step of [1, 2, 4, 6, 8, 10]) {
      if (value <= step * power) return step * power;
    }
    return 10 * power;
  }

  function prepare(canvas) {
    // Draw at the device's pixel ratio so lines stay crisp, whatever the CSS size.
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth || canvas.width;
    const height = canvas.clientHeight || canvas.height;
    if (canvas.width !== Math.round(width * ratio)) canvas.width = Math.round(width * ratio);
    if (canvas.height !== Math.round(height * ratio)) canvas.height = Math.round(height * ratio);
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    return { ctx, width, height };
  }

  function axes(ctx, box, top, count, labels) {
    ctx.font = "11px system-ui, sans-serif";
    ctx.fillStyle = "#6b7280";
    ctx.strokeStyle = "#e3e6eb";
    ctx.lineWidth = 1;
    for (let i = 0; i <= 4; i++) {
      const y = Math.round(box.y + box.h - (box.h * i) / 4) + 0.5;
      ctx.beginPath(); ctx.moveTo(box.x, y); ctx.lineTo(box.x + box.w, y); ctx.stroke();
      const value = (top * i) / 4;
      ctx.textAlign = "right"; ctx.textBaseline = "middle";
      ctx.fillText(format(value), box.x - 6, y);
    }
    ctx.textAlign = "center"; ctx.textBaseline = "top";
    for (const [index, text] of labels) {
      ctx.fillText(text, box.x + (box.w * (index + 0.5)) / count, box.y + box.h + 6);
    }
  }

  function format(value) {
    if (value >= 1000) return (value / 1000).toFixed(value >= 10000 ? 0 : 1) + "k";
    return Number.isInteger(value) ? String(value) : value.toFixed(1);
  }

  function bars(ctx, box, values, top, color, slot) {
    ctx.fillStyle = color;
    const width = Math.max(1, slot * 0.7);
    values.forEach((value, i) => {
      if (!(value > 0)) return;
      const h = (box.h * value) / top;
      ctx.fillRect(box.x + slot * i + (slot - width) / 2, box.y + box.h - h, width, h);
    });
  }

  function line(ctx, box, values, top, color, slot) {
    // A line through the known points, with a dot on each non-zero one (a lone point stays
    // visible; a run of zeros stays a plain line).
    const points = values.map((value, i) => (value === null || value === undefined) ? null
      : [box.x + slot * (i + 0.5), box.y + box.h - (box.h * value) / top]);
    ctx.strokeStyle = color;
    ctx.fillStyle = color;
    ctx.lineWidth = 2;
    ctx.beginPath();
    points.forEach((point, i) => {
      if (!point) return;
      if (points[i - 1]) ctx.lineTo(...point); else ctx.moveTo(...point);
    });
    ctx.stroke();
    for (const [i, point] of points.entries()) {
      if (!point || !(values[i] > 0)) continue;
      ctx.beginPath(); ctx.arc(point[0], point[1], 2.5, 0, 2 * Math.PI); ctx.fill();
    }
  }

  function plotSeries(canvas, series, options = {}) {
    const { ctx, width, height } = prepare(canvas);
    const box = { x: PAD.left, y: PAD.top, w: width - PAD.left - PAD.right,
                  h: height - PAD.top - PAD.bottom };
    const count = Math.max(1, ...series.map((s) => s.values.length));
    const highest = Math.max(0, ...series.flatMap((s) => s.values.filter((v) => v != null)));
    const top = niceMax(highest);
    axes(ctx, box, top, count, options.labels || []);
    const slot = box.w / count;
    for (const s of series) {
      (s.kind === "bar" ? bars : line)(ctx, box, s.values, top, s.color, slot);
    }
    if (highest === 0 && options.emptyText) {
      ctx.fillStyle = "#9aa1ad"; ctx.textAlign = "center"; ctx.textBaseline = "middle";
      ctx.font = "12px system-ui, sans-serif";
      ctx.fillText(options.emptyText, box.x + box.w / 2, box.y + box.h / 2);
    }
  }

  return { plotSeries };
})();
