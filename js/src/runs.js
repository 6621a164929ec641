// Stored runs (training cannot run in a page): a grid of named axes, each a
// slider snapping to its stored values (numbers) or a menu (names); for the
// selected grid point, one or more panels of curves -- every seed thin, their
// mean thick, reference series in grey, marks (suggested rates, bands) -- a
// hover/keyboard readout of the exact stored values at the nearest x, and a
// readout list of what a reader compares (final value per series as mean
// (min–max) over seeds, or "diverged at step k").
//
// Spec (written by optbook.figures.runs.curves_figure):
//   axes:   [{name, label, labels: [...], values: [...], numeric, value}]
//   panels: [{title, x: {label, scale, domain}, y: {label, scale, domain},
//             readout: "final" | "min" | "none", marks: [...]}]
//   series: [{name, label, color, mean, reference}]
//   points: one per grid point (last axis fastest):
//           {panels: [{series: {name: {y: [[seed values]], x?: [...]}}, marks: [...]}],
//            notes?: [lines added to the readout]}
//   x values shared by a panel's series: panels[i].x.values (a series' own x wins)
// null in a curve is a diverged (non-finite) value; the curve stops there.

import { select, scaleLinear, scaleLog, axisBottom, axisLeft, line, pointer, format } from "d3";
import { menu } from "./controls.js";
import { svgPanel } from "./draw.js";
import { t } from "./i18n.js";

export const fmt4 = format(".4~g");
const GREY = "#999999";
const ok = (v) => v !== null && v !== undefined && Number.isFinite(v);

/** A slider over an axis's stored values (snaps), value and symbol shown, or a menu. */
export function axisControl(axis, onChange) {
  if (!axis.numeric) {
    const m = menu(axis.label, axis.labels.map((label) => ({ label })), axis.value, onChange);
    m.select.setAttribute("data-optbook-axis", axis.name);
    return m.element;
  }
  const wrap = document.createElement("label");
  wrap.className = "optbook-fig-control";
  const name = document.createElement("span");
  name.className = "optbook-fig-name";
  name.textContent = axis.label;
  const input = document.createElement("input");
  Object.assign(input, { type: "range", min: 0, max: axis.values.length - 1, step: 1 });
  input.value = axis.value;
  input.setAttribute("data-optbook-axis", axis.name);
  input.setAttribute("aria-label", axis.title || axis.label);
  const output = document.createElement("output");
  output.className = "optbook-fig-value";
  const show = (k) => {
    output.textContent = axis.labels[k];
    input.setAttribute("aria-valuetext", `${axis.label} = ${axis.labels[k]}`);
  };
  input.addEventListener("input", () => { show(+input.value); onChange(+input.value); });
  show(axis.value);
  wrap.append(name, input, output);
  return wrap;
}

/** Mixed-radix position of the axes' indices (first axis most significant). */
export function pointIndex(axes, index) {
  return axes.reduce((acc, a) => acc * a.values.length + index[a.name], 0);
}

/** The mean over seeds at each x; null where a seed is not finite there. */
export function seedMean(ys) {
  const n = Math.max(...ys.map((y) => y.length));
  const out = new Array(n).fill(null);
  for (let t = 0; t < n; t++) {
    let s = 0, all = true;
    for (const y of ys) { if (!ok(y[t])) { all = false; break; } s += y[t]; }
    if (all) out[t] = s / ys.length;
  }
  return out;
}

/** Index of the first non-finite value, or -1. */
export function firstBad(y) { return y.findIndex((v) => !ok(v)); }

const range = (xs) => `${fmt4(Math.min(...xs))}–${fmt4(Math.max(...xs))}`;

/** What the readout list says about one series of one panel (a string). */
export function seriesReadout(panel, s, data) {
  const xs = data.x || panel.x.values;
  const seeds = data.y;
  const what = panel.y.label ? `${panel.y.label} ` : "";
  const xname = panel.x.symbol || panel.x.label;
  if (panel.readout === "min") {      // over a swept x: lowest seed mean; where seeds diverged
    const mean = seedMean(seeds);
    let k = -1;
    mean.forEach((v, t) => { if (ok(v) && (k < 0 || v < mean[k])) k = t; });
    const lost = xs.map((x, t) => [x, seeds.filter((y) => !ok(y[t])).length]).filter(([, c]) => c > 0)
      .map(([x, c]) => t("{x} {value}: {count} of {seeds} seeds diverged", { x: xname, value: x, count: c, seeds: seeds.length }));
    if (k < 0) return t("{label}: no {x} where every seed finished", { label: s.label, x: xname });
    const at = seeds.map((y) => y[k]);
    const text = t("{label}: lowest {what}{value}", { label: s.label, what, value: fmt4(mean[k]) })
      + (seeds.length > 1 ? ` (${range(at)})` : "") + t(" at {x} = {value}", { x: xname, value: fmt4(xs[k]) });
    return lost.length ? `${text}; ${lost.join(", ")}` : text;
  }
  const bad = seeds.map(firstBad);
  const diverged = bad.map((k, i) => (k >= 0 ? t("seed {seed} diverged at {x} {value}", { seed: i, x: xname, value: xs[k] }) : null))
    .filter(Boolean);
  if (bad.every((k) => k >= 0)) {
    const at = Math.min(...bad);
    return t(seeds.length > 1 ? "{label}: every seed diverged (first at {x} {value})"
      : "{label}: diverged at {x} {value}", { label: s.label, x: xname, value: xs[at] });
  }
  const live = seeds.filter((y, i) => bad[i] < 0);
  const finals = live.map((y) => y[y.length - 1]);
  const mean = finals.reduce((a, b) => a + b, 0) / finals.length;
  const text = t("{label}: final {what}{value}", { label: s.label, what, value: fmt4(mean) })
    + (live.length > 1 ? t(" ({range}) over {count} seeds", { range: range(finals), count: live.length }) : "");
  return diverged.length ? `${text}; ${diverged.join(", ")}` : text;
}

/** The x value of series data at index k. */
const xAt = (panel, d, k) => (d.x || panel.x.values)[k];

/** Index of the x nearest `x` (on the panel's scale) in the array xs. */
function nearest(xs, x, log) {
  const f = log ? (v) => Math.log(v) : (v) => v;
  let best = 0;
  for (let k = 1; k < xs.length; k++) if (Math.abs(f(xs[k]) - f(x)) < Math.abs(f(xs[best]) - f(x))) best = k;
  return best;
}

/**
 * One panel of stored curves.  update(panelData) redraws for a grid point;
 * a pointer over the panel, or the arrow keys when it has focus, moves a cursor
 * and writes the stored value of every drawn series and seed at the nearest x
 * into `hover` (an aria-live element).
 */
export function curvePanel(parent, panel, series, hover) {
  const W = 430, H = 300;
  const { svg, inner } = svgPanel(parent, W, H, { left: 54, right: 12, top: 24, bottom: 36 });
  svg.attr("aria-label", t("{title}: use the arrow keys to read the stored values", { title: panel.title }))
    .attr("tabindex", 0).attr("role", "img").attr("focusable", "true");
  const logx = panel.x.scale === "log", logy = panel.y.scale === "log";
  const x = (logx ? scaleLog() : scaleLinear()).domain(panel.x.domain).range([inner.x0, inner.x1]);
  const y = (logy ? scaleLog() : scaleLinear()).domain(panel.y.domain).range([inner.y0, inner.y1]).clamp(true);
  svg.append("g").attr("transform", `translate(0,${inner.y0})`)
    .call(axisBottom(x).ticks(logx ? 4 : 5, logx ? "~g" : undefined));
  svg.append("g").attr("transform", `translate(${inner.x0},0)`)
    .call(axisLeft(y).ticks(logy ? 4 : 6, logy ? "~g" : undefined));
  svg.append("text").attr("x", (inner.x0 + inner.x1) / 2).attr("y", inner.y0 + 31)
    .attr("text-anchor", "middle").attr("class", "optbook-fig-axis").text(panel.x.label);
  svg.append("text").attr("transform", `translate(${inner.x0 - 42},${(inner.y0 + inner.y1) / 2}) rotate(-90)`)
    .attr("text-anchor", "middle").attr("class", "optbook-fig-axis").text(panel.y.label || "");
  svg.append("text").attr("x", (inner.x0 + inner.x1) / 2).attr("y", 16)
    .attr("text-anchor", "middle").attr("class", "optbook-fig-title").text(panel.title || "");
  const bands = svg.append("g"), refs = svg.append("g"), runs = svg.append("g"), marks = svg.append("g");
  const clampX = (v) => Math.max(inner.x0, Math.min(inner.x1, x(v)));
  const drawMarks = (list) => {
    bands.selectAll("rect").data(list.filter((m) => m.type === "band")).join("rect")
      .attr("x", (m) => clampX(m.x0)).attr("width", (m) => clampX(m.x1) - clampX(m.x0))
      .attr("y", inner.y1).attr("height", inner.y0 - inner.y1).attr("fill", (m) => m.color || "#dddddd");
    const lines = list.filter((m) => m.type === "vline" || m.type === "hline");
    marks.selectAll("line").data(lines).join("line")
      .attr("x1", (m) => (m.type === "vline" ? x(m.x) : inner.x0))
      .attr("x2", (m) => (m.type === "vline" ? x(m.x) : inner.x1))
      .attr("y1", (m) => (m.type === "vline" ? inner.y1 : y(m.y)))
      .attr("y2", (m) => (m.type === "vline" ? inner.y0 : y(m.y)))
      .attr("stroke", (m) => m.color || "#000").attr("stroke-width", 1)
      .attr("stroke-dasharray", (m) => (m.dash === false ? null : "4,3"));
    marks.selectAll("text").data(lines.filter((m) => m.type === "hline" && m.text)).join("text")
      .attr("x", inner.x1 - 4).attr("y", (m) => y(m.y) - 4).attr("text-anchor", "end")
      .attr("class", "optbook-fig-tip").text((m) => m.text);
    marks.selectAll("path").data(list.filter((m) => m.type === "point")).join("path")
      .attr("d", (m) => `M${x(m.x) - 5},${y(m.y) - 5}h10v10h-10z`)
      .attr("transform", (m) => `rotate(45 ${x(m.x)} ${y(m.y)})`)
      .attr("fill", (m) => m.color || "#000").attr("stroke", "white");
  };
  const cursor = svg.append("line").attr("stroke", "#555").attr("stroke-dasharray", "2,2")
    .attr("y1", inner.y1).attr("y2", inner.y0).style("display", "none");
  const dots = svg.append("g").attr("pointer-events", "none");   // each seed at the cursor, numbered
  let current = null, drawn = [], cursorX = null;

  function update(data) {
    current = data;
    drawn = series.filter((s) => data.series[s.name]);
    const path = (d) => (ys) => line().defined((v) => ok(v) && (!logy || v > 0))
      .x((v, k) => Math.round(x(xAt(panel, d, k)) * 10) / 10).y((v) => Math.round(y(v) * 10) / 10)(ys);
    const style = (s) => ({ color: s.reference ? GREY : s.color, width: s.mean ? 0.9 : 1.5,
                            opacity: s.mean ? 0.55 : 0.9 });
    for (const [group, keep] of [[refs, (s) => s.reference], [runs, (s) => !s.reference]]) {
      const list = [];
      for (const s of drawn.filter(keep)) {
        const d = data.series[s.name], st = style(s);
        d.y.forEach((ys) => list.push({ d: path(d)(ys), ...st }));
        if (s.mean && d.y.length > 1) list.push({ d: path(d)(seedMean(d.y)), color: st.color, width: 2.4, opacity: 1 });
      }
      group.selectAll("path").data(list).join("path").attr("fill", "none").attr("d", (p) => p.d)
        .attr("stroke", (p) => p.color).attr("stroke-width", (p) => p.width).attr("stroke-opacity", (p) => p.opacity);
    }
    drawMarks([...(panel.marks || []), ...(data.marks || [])]);
    if (cursorX !== null) show(cursorX);
  }

  /** The hover text at data x: every drawn series, every seed, at its nearest stored x. */
  function readAt(xv) {
    const xname = panel.x.symbol || panel.x.label;
    const parts = drawn.map((s) => {
      const d = current.series[s.name];
      const xs = d.x || panel.x.values;
      const k = nearest(xs, xv, logx);
      const vals = d.y.map((ys) => (ok(ys[k]) ? String(ys[k]) : t("diverged"))).join(", ");
      const mean = s.mean && d.y.length > 1 && d.y.every((ys) => ok(ys[k]))
        ? t(" (mean {value})", { value: fmt4(d.y.reduce((a, ys) => a + ys[k], 0) / d.y.length) }) : "";
      return { x: xs[k], text: `${s.label}: ${vals}${mean}` };
    });
    const at = parts.length ? parts[0].x : xv;
    const marks = [];
    drawn.forEach((s) => {
      const d = current.series[s.name];
      const xs = d.x || panel.x.values;
      const k = nearest(xs, xv, logx);
      d.y.forEach((ys, i) => {
        if (ok(ys[k]) && (!logy || ys[k] > 0)) {
          marks.push({ x: x(xs[k]), y: y(ys[k]), color: s.reference ? GREY : s.color, seed: d.y.length > 1 ? String(i) : "" });
        }
      });
    });
    return { x: at, marks, text: `${panel.title ? `${panel.title}, ` : ""}${xname} = ${at}: `
      + parts.map((p) => (p.x === at ? p.text : p.text + t(" [at {x}]", { x: p.x }))).join("; ") };
  }

  function show(xv) {
    if (!current || !drawn.length) return;
    const r = readAt(xv);
    cursorX = r.x;
    cursor.attr("x1", x(r.x)).attr("x2", x(r.x)).style("display", null);
    const g = dots.style("display", null).selectAll("g").data(r.marks).join((enter) => {
      const e = enter.append("g");
      e.append("circle").attr("r", 2.8).attr("fill", "white").attr("stroke-width", 1.3);
      e.append("text").attr("class", "optbook-fig-tip").attr("dx", 4).attr("dy", -3);
      return e;
    });
    g.attr("transform", (m) => `translate(${m.x},${m.y})`);
    g.select("circle").attr("stroke", (m) => m.color);
    g.select("text").text((m) => m.seed);
    hover.text(r.text);
  }

  /** The x values the keyboard steps through: those of the first drawn series. */
  const stops = () => { const d = current.series[drawn[0].name]; return d.x || panel.x.values; };
  svg.on("pointermove", (event) => { const [px] = pointer(event); show(x.invert(px)); })
    .on("pointerleave", () => { cursor.style("display", "none"); dots.style("display", "none"); })
    .on("keydown", (event) => {
      if (!current || !drawn.length) return;
      const xs = stops();
      let k = cursorX === null ? -1 : nearest(xs, cursorX, logx);
      const step = Math.max(1, Math.round(xs.length / 20));
      const keys = { ArrowRight: k + 1, ArrowLeft: k - 1, PageUp: k + step, PageDown: k - step,
                     Home: 0, End: xs.length - 1, ArrowUp: k + step, ArrowDown: k - step };
      if (!(event.key in keys)) return;
      event.preventDefault();
      k = Math.max(0, Math.min(xs.length - 1, keys[event.key]));
      show(xs[k]);
    });
  return { update, svg, show, readAt };
}

export function runsFigure(root, spec) {
  const index = Object.fromEntries(spec.axes.map((a) => [a.name, a.value]));
  const controls = select(root).append("div").attr("class", "optbook-fig-controls").node();
  const head = select(root).append("div").attr("class", "optbook-fig-headline").attr("aria-live", "polite");
  // Three or more panels go on an equal-column grid, so the one that wraps to a
  // row of its own is drawn as wide as the others, not stretched.
  const panelsClass = spec.panels.length >= 3 ? "optbook-fig-panels optbook-fig-panels-grid" : "optbook-fig-panels";
  const panelsDiv = select(root).append("div").attr("class", panelsClass).node();
  const hover = select(root).append("div").attr("class", "optbook-fig-hover").attr("aria-live", "polite");
  const panels = spec.panels.map((p) => curvePanel(panelsDiv, p, spec.series, hover));
  const readout = select(root).append("ul").attr("class", "optbook-fig-readout").attr("aria-live", "polite");
  let last = null;

  function redraw() {
    const point = spec.points[pointIndex(spec.axes, index)];
    const lines = [];
    point.panels.forEach((data, i) => {
      panels[i].update(data);
      const p = spec.panels[i];
      for (const s of spec.series) {       // readout "none": the series' name only (a legend)
        if (!data.series[s.name]) continue;
        lines.push({ color: s.reference ? GREY : s.color,
                     text: p.readout === "none" ? s.label : seriesReadout(p, s, data.series[s.name]) });
      }
      for (const m of [...(p.marks || []), ...(data.marks || [])]) {
        if (m.label) lines.push({ color: m.color || "#000", text: m.label });
      }
    });
    for (const note of point.notes || []) lines.push({ color: "transparent", text: note });
    head.text(headlineOf(spec, index));
    fillReadout(readout, lines);
    last = point;
    root.dispatchEvent(new CustomEvent("optbook:redraw", { detail: { point } }));
  }

  for (const a of spec.axes) {
    controls.append(axisControl(a, (k) => { index[a.name] = k; redraw(); }));
  }
  redraw();
  return { redraw, index, panels, values: {}, get point() { return last; } };
}

/** "{lr}" fields of the headline replaced by the selected axes' labels. */
/** Fill a readout list (a d3 selection of <ul>) with {color, text} lines: a swatch, then the text. */
export function fillReadout(list, lines) {
  list.selectAll("li").data(lines).join((enter) => {
    const li = enter.append("li");
    li.append("span").attr("class", "optbook-fig-swatch");
    li.append("span").attr("class", "optbook-fig-text");
    return li;
  }).call((li) => {
    li.select(".optbook-fig-swatch").style("background", (d) => d.color);
    li.select(".optbook-fig-text").text((d) => d.text);
  });
}

export function headlineOf(spec, index) {
  const shown = Object.fromEntries(spec.axes.map((a) => [a.name, a.labels[index[a.name]]]));
  return (spec.headline || "").replace(/\{(\w+)\}/g, (m, k) => (k in shown ? shown[k] : m));
}
