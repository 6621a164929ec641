// A stored grid over two numeric axes (e.g. learning rate η x weight decay λ),
// one or more panels sharing one colour scale (e.g. "Adam + L2" and "AdamW").
// Each cell shows the mean over seeds; pointer or keyboard focus on a cell
// reads out its coordinates, mean, min–max and every seed's stored value; the
// best cell of each panel is marked.  Clicking a cell (or Enter on it) selects
// it and, when the spec stores curves, draws them with the runs figure's panel.
//
// Spec (written by optbook.figures.heatmap.heatmap_figure):
//   x, y:   {name, label, labels: [...], values: [...]}   (columns, rows)
//   panels: [{label, color, values: [seed][row][col]}]      null = diverged
//   value:  {label, best: "min" | "max", scale: "linear" | "log", domain: [lo, hi]}
//   curves (optional): {panel: {title, x, y, readout}, data: [panel][row][col] -> {y: [[...]], x?}}
//   selected: [row, col]

import { select, scaleSequential, scaleLog, scaleLinear, interpolateViridis, axisBottom, axisLeft, range,
         format, rgb } from "d3";
import { svgPanel } from "./draw.js";
import { curvePanel, seriesReadout, fmt4, fillReadout } from "./runs.js";
import { t } from "./i18n.js";

const fmt3 = format(".3~g");
const ok = (v) => v !== null && v !== undefined && Number.isFinite(v);

/** mean, min, max over seeds of one cell, and how many seeds diverged. */
export function cellStats(values, row, col) {
  const seeds = values.map((s) => s[row][col]);
  const live = seeds.filter(ok);
  const diverged = seeds.length - live.length;
  if (!live.length) return { seeds, diverged, mean: null, min: null, max: null };
  return { seeds, diverged, mean: live.reduce((a, b) => a + b, 0) / live.length,
           min: Math.min(...live), max: Math.max(...live) };
}

/** [row, col] of the best cell whose seeds all finished (lowest or highest mean). */
export function bestCell(values, best) {
  let at = null, score = null;
  const rows = values[0].length, cols = values[0][0].length;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const s = cellStats(values, r, c);
      if (s.diverged || s.mean === null) continue;
      const better = best === "max" ? s.mean > score : s.mean < score;
      if (score === null || better) { score = s.mean; at = [r, c]; }
    }
  }
  return at;
}

export function cellText(spec, panel, row, col) {
  const s = cellStats(panel.values, row, col);
  const where = `${spec.x.label} = ${spec.x.labels[col]}, ${spec.y.label} = ${spec.y.labels[row]}`;
  const seeds = s.seeds.map((v) => (ok(v) ? String(v) : t("diverged"))).join(", ");
  if (s.mean === null) return t("{panel}, {where}: every seed diverged", { panel: panel.label, where });
  const spread = s.seeds.length > 1 ? ` (${fmt4(s.min)}–${fmt4(s.max)})` : "";
  const lost = s.diverged ? t(", {count} of {seeds} seeds diverged", { count: s.diverged, seeds: s.seeds.length }) : "";
  return t("{panel}, {where}: {value} mean {mean}{spread}; seeds {list}{lost}",
    { panel: panel.label, where, value: spec.value.label, mean: fmt4(s.mean), spread, list: seeds, lost });
}

export function heatmapFigure(root, spec) {
  const rows = spec.y.values.length, cols = spec.x.values.length;
  const head = select(root).append("div").attr("class", "optbook-fig-headline").attr("aria-live", "polite");
  const panelsDiv = select(root).append("div").attr("class", "optbook-fig-panels").node();
  const hover = select(root).append("div").attr("class", "optbook-fig-hover").attr("aria-live", "polite");
  const [lo, hi] = spec.value.domain;
  const colour = scaleSequential(spec.value.best === "max" ? interpolateViridis : (t) => interpolateViridis(1 - t))
    .domain(spec.value.scale === "log" ? [Math.log(lo), Math.log(hi)] : [lo, hi]).clamp(true);
  const fill = (v) => (ok(v) ? colour(spec.value.scale === "log" ? Math.log(Math.max(v, 1e-300)) : v) : "#ffffff");
  const ink = (v) => { if (!ok(v)) return "#000"; const c = colour(spec.value.scale === "log" ? Math.log(v) : v);
    const { r, g, b } = rgb(c); return 0.299 * r + 0.587 * g + 0.114 * b > 140 ? "#000" : "#fff"; };
  let selected = spec.selected || [0, 0];
  const focus = spec.panels.map(() => null);
  const grids = [];

  spec.panels.forEach((panel, p) => {
    const W = 330, H = 300;
    const { svg, inner } = svgPanel(panelsDiv, W, H, { left: 58, right: 10, top: 24, bottom: 40 });
    svg.attr("tabindex", 0).attr("aria-label", t("{panel}: {value} over {x} and {y}; arrow keys move between cells, Enter selects",
      { panel: panel.label, value: spec.value.label, x: spec.x.label, y: spec.y.label }));
    const cw = (inner.x1 - inner.x0) / cols, ch = (inner.y0 - inner.y1) / rows;
    const cx = (c) => inner.x0 + c * cw, cy = (r) => inner.y0 - (r + 1) * ch;   // row 0 at the bottom
    svg.append("text").attr("x", (inner.x0 + inner.x1) / 2).attr("y", 16).attr("text-anchor", "middle")
      .attr("class", "optbook-fig-title").text(panel.label);
    const cells = [];
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) cells.push({ r, c, s: cellStats(panel.values, r, c) });
    const g = svg.append("g");
    const cell = g.selectAll("g").data(cells).join("g").attr("class", "optbook-heat-cell")
      .attr("data-row", (d) => d.r).attr("data-col", (d) => d.c);
    cell.append("rect").attr("x", (d) => cx(d.c)).attr("y", (d) => cy(d.r)).attr("width", cw).attr("height", ch)
      .attr("fill", (d) => fill(d.s.mean)).attr("stroke", "#fff").attr("stroke-width", 1);
    cell.append("text").attr("x", (d) => cx(d.c) + cw / 2).attr("y", (d) => cy(d.r) + ch / 2)
      .attr("text-anchor", "middle").attr("dominant-baseline", "central").attr("class", "optbook-fig-tip")
      .attr("fill", (d) => ink(d.s.mean))
      .text((d) => (d.s.mean === null ? t("div.") : fmt3(d.s.mean) + (d.s.diverged ? "*" : "")));
    const best = bestCell(panel.values, spec.value.best);
    if (best) {
      svg.append("rect").attr("x", cx(best[1]) + 1.5).attr("y", cy(best[0]) + 1.5).attr("width", cw - 3)
        .attr("height", ch - 3).attr("fill", "none").attr("stroke", "#d62728").attr("stroke-width", 3)
        .attr("class", "optbook-heat-best");
      svg.append("text").attr("x", cx(best[1]) + cw - 4).attr("y", cy(best[0]) + 11).attr("text-anchor", "end")
        .attr("font-size", 11).attr("fill", "#d62728").text("★");
    }
    const mark = svg.append("rect").attr("fill", "none").attr("stroke", "#000").attr("stroke-width", 2)
      .attr("stroke-dasharray", "4,2").attr("width", cw).attr("height", ch).style("display", "none")
      .attr("pointer-events", "none");
    const chosen = svg.append("rect").attr("fill", "none").attr("stroke", "#000").attr("stroke-width", 1.5)
      .attr("width", cw - 6).attr("height", ch - 6).attr("pointer-events", "none")
      .style("display", spec.curves ? null : "none");
    // axes: the stored values, one tick per column/row
    const xa = scaleLinear([0, cols], [inner.x0, inner.x1]), ya = scaleLinear([0, rows], [inner.y0, inner.y1]);
    svg.append("g").attr("transform", `translate(0,${inner.y0})`)
      .call(axisBottom(xa).tickValues(range(cols).map((c) => c + 0.5)).tickFormat((v) => spec.x.labels[v - 0.5]));
    svg.append("g").attr("transform", `translate(${inner.x0},0)`)
      .call(axisLeft(ya).tickValues(range(rows).map((r) => r + 0.5)).tickFormat((v) => spec.y.labels[v - 0.5]));
    svg.append("text").attr("x", (inner.x0 + inner.x1) / 2).attr("y", inner.y0 + 33).attr("text-anchor", "middle")
      .attr("class", "optbook-fig-axis").text(spec.x.label);
    svg.append("text").attr("transform", `translate(12,${(inner.y0 + inner.y1) / 2}) rotate(-90)`)
      .attr("text-anchor", "middle").attr("class", "optbook-fig-axis").text(spec.y.label);

    const at = (r, c) => {
      focus[p] = [r, c];
      mark.attr("x", cx(c)).attr("y", cy(r)).style("display", null);
      hover.text(cellText(spec, panel, r, c));
    };
    cell.on("pointerenter", (event, d) => at(d.r, d.c))
      .on("click", (event, d) => { at(d.r, d.c); choose(d.r, d.c); });
    svg.on("pointerleave", () => mark.style("display", "none"))
      .on("focus", () => { const f = focus[p] || selected; at(f[0], f[1]); })
      .on("keydown", (event) => {
        const [r, c] = focus[p] || selected;
        const moves = { ArrowRight: [r, c + 1], ArrowLeft: [r, c - 1], ArrowUp: [r + 1, c], ArrowDown: [r - 1, c],
                        Home: [r, 0], End: [r, cols - 1] };
        if (event.key === "Enter" || event.key === " ") { event.preventDefault(); choose(r, c); return; }
        if (!(event.key in moves)) return;
        event.preventDefault();
        const [nr, nc] = moves[event.key];
        at(Math.max(0, Math.min(rows - 1, nr)), Math.max(0, Math.min(cols - 1, nc)));
      });
    grids.push({ svg, at, chosen, cx, cy, best });
  });

  // the shared colour scale: a horizontal bar on a row of its own under the grids, as wide as a grid,
  // so that on a phone the grids keep their full width (a vertical bar beside the last grid shrank it)
  // and its labels are as large as the grids' own
  const legend = svgPanel(panelsDiv, 330, 62, { left: 58, right: 18, top: 22, bottom: 22 });
  legend.svg.attr("class", "optbook-fig-svg optbook-fig-legend").attr("aria-label", `colour scale of ${spec.value.label}`);
  const L = legend.inner, steps = 40, span = L.x1 - L.x0;
  const scaleL = (spec.value.scale === "log" ? scaleLog() : scaleLinear()).domain([lo, hi]).range([L.x0, L.x1]);
  legend.svg.append("g").selectAll("rect").data(range(steps)).join("rect")
    .attr("x", (k) => L.x0 + (k * span) / steps).attr("width", span / steps + 0.5)
    .attr("y", L.y1).attr("height", L.y0 - L.y1)
    .attr("fill", (k) => fill(scaleL.invert(L.x0 + ((k + 0.5) * span) / steps)));
  legend.svg.append("g").attr("transform", `translate(0,${L.y0})`).call(axisBottom(scaleL).ticks(5, "~g"));
  legend.svg.append("text").attr("x", L.x0).attr("y", 14).attr("class", "optbook-fig-axis").text(spec.value.label);

  const readout = select(root).append("ul").attr("class", "optbook-fig-readout");
  spec.panels.forEach((panel, p) => {
    const b = grids[p].best;
    const li = readout.append("li");
    li.append("span").attr("class", "optbook-fig-swatch").style("background", panel.color || "#000");
    li.append("span").text(b ? t("best of {text}", { text: cellText(spec, panel, b[0], b[1]) })
      : t("{panel}: no cell where every seed finished", { panel: panel.label }));
  });

  let curves = null, curveList = null;
  if (spec.curves) {
    const box = select(root).append("div").attr("class", "optbook-fig-panels").node();
    const series = spec.panels.map((panel, p) => ({ name: String(p), label: panel.label, color: panel.color || "#000",
                                                     mean: true }));
    curves = curvePanel(box, spec.curves.panel, series, hover);
    curveList = select(root).append("ul").attr("class", "optbook-fig-readout optbook-fig-curve-readout")
      .attr("aria-live", "polite");
  }

  function choose(r, c) {
    selected = [r, c];
    grids.forEach((g) => g.chosen.attr("x", g.cx(c) + 3).attr("y", g.cy(r) + 3));
    head.text((spec.title ? t("{title}; ", { title: spec.title }) : "")
      + t("selected {x} = {xv}, {y} = {yv}", { x: spec.x.label, xv: spec.x.labels[c], y: spec.y.label, yv: spec.y.labels[r] })
      + (spec.curves ? t(" (click a cell to draw its curves)") : ""));
    if (!curves) return;
    const data = { series: Object.fromEntries(spec.panels.map((panel, p) => [String(p), spec.curves.data[p][r][c]])) };
    curves.update(data);
    const lines = spec.panels.map((panel, p) => ({ color: panel.color || "#000",
      text: seriesReadout(spec.curves.panel, { label: panel.label }, data.series[String(p)]) }));
    fillReadout(curveList, lines);
    root.dispatchEvent(new CustomEvent("optbook:redraw", { detail: { selected } }));
  }
  choose(selected[0], selected[1]);
  return { choose, get selected() { return selected; }, values: {}, cellText: (p, r, c) => cellText(spec, spec.panels[p], r, c) };
}
