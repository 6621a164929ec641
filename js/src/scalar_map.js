// Kind scalar_map (optbook/figures/scalar_map.py): the odd quintic
//   p(s) = a s + b s^3 + c s^5
// applied k times to every s of a log axis -- what k Newton-Schulz steps do to
// each normalized singular value (optbook.newton_schulz_scalar, the same
// arithmetic in the same order, so the page's numbers are optbook's).
// Controls: a menu of coefficient presets (plus "custom"), sliders a, b, c and
// k; the readout (aria-live) gives p^k at the marked s, the smallest s that
// reaches the threshold, and the largest value with its overshoot above 1.

import { select, scaleLinear, scaleLog, axisBottom, axisLeft } from "d3";
import { slider, menu, fmt } from "./controls.js";
import { svgPanel, plotClip } from "./draw.js";
import { t } from "./i18n.js";

export const BISECTIONS = 60;

/** p^steps(x) for one number, as optbook.newton_schulz_scalar computes it. */
export function iterate1(x, coefficients, steps) {
  const [a, b, c] = coefficients;
  for (let t = 0; t < steps; t++) {
    const x2 = x * x;
    x = a * x + (b * x2 + c * x2 * x2) * x;
  }
  return x;
}

/** p^steps(s) elementwise (a Float64Array). */
export function iterateMap(s, coefficients, steps) {
  return Float64Array.from(s, (x) => iterate1(x, coefficients, steps));
}

/** lo * (hi / lo) ** (i / (n - 1)), i = 0 .. n - 1 (scalar_map.sample_grid). */
export function sampleGrid(domain, n) {
  const [lo, hi] = domain;
  return Float64Array.from({ length: n }, (_, i) => lo * (hi / lo) ** (i / (n - 1)));
}

/** What the readout says (scalar_map.summary): marks, reaching, largest, overflow. */
export function mapSummary(spec, coefficients, steps) {
  const s = sampleGrid(spec.domain, spec.samples);
  const y = iterateMap(s, coefficients, steps);
  const T = spec.threshold;
  let reaching = null;
  const i = y.findIndex((v) => v >= T);
  if (i === 0) reaching = s[0];
  else if (i > 0) {
    let lo = s[i - 1], hi = s[i];
    for (let k = 0; k < BISECTIONS; k++) {
      const mid = 0.5 * (lo + hi);
      if (iterate1(mid, coefficients, steps) >= T) hi = mid; else lo = mid;
    }
    reaching = hi;
  }
  let overflow = null, largest = null;
  for (let k = 0; k < y.length; k++) {
    if (!Number.isFinite(y[k])) { if (overflow === null) overflow = s[k]; continue; }
    if (largest === null || y[k] > largest[0]) largest = [y[k], s[k]];
  }
  const marks = spec.marks.map((m) => [m, iterate1(m, coefficients, steps)]);
  return { s, y, marks, reaching, largest, overflow };
}

function g3(v) {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "∞";
  if (v === -Infinity) return "−∞";
  return fmt(v);
}

/** The readout's three lines (Python: scalar_map.readout_lines, same numbers). */
export function readoutLines(spec, sum, steps) {
  const marks = sum.marks.map(([m, v]) => `s = ${g3(m)} → ${g3(v)}`).join(", ");
  const lines = [t(steps === 1 ? "after {steps} step: {marks}" : "after {steps} steps: {marks}", { steps, marks })];
  lines.push(t("smallest s reaching {threshold}: ", { threshold: g3(spec.threshold) })
    + (sum.reaching === null ? t("none on the axis") : g3(sum.reaching)));
  if (sum.overflow !== null) lines.push(t("overflows from s = {s}", { s: g3(sum.overflow) }));
  else if (sum.largest !== null) {
    const [v, at] = sum.largest;
    lines.push(t("largest value: {v} at s = {s} (overshoot {over})", { v: g3(v), s: g3(at), over: g3(Math.max(0, v - 1)) }));
  }
  return lines;
}

const signed = (v, first) => (first ? fmt(v) : `${v < 0 ? "−" : "+"} ${fmt(Math.abs(v))}`);

export function scalarMapFigure(root, spec) {
  const byName = Object.fromEntries(spec.params.map((p) => [p.name, p]));
  const values = Object.fromEntries(spec.params.map((p) => [p.name, p.value]));
  const presets = spec.choices;
  const custom = presets.length;
  let choice = spec.choice;
  const blue = spec.color, grey = "#9a9a9a";

  const controls = select(root).append("div").attr("class", "optbook-fig-controls").node();
  const head = select(root).append("div").attr("class", "optbook-fig-headline");
  const panels = select(root).append("div").attr("class", "optbook-fig-panels").node();
  const W = 400, H = 290;
  const { svg, inner } = svgPanel(panels, W, H, { left: 46, right: 14, top: 24, bottom: 38 });
  svg.attr("aria-label", t("{y} against {x} (log axis)", { y: spec.yLabel, x: spec.xLabel }));
  const x = scaleLog(spec.domain, [inner.x0, inner.x1]);
  const y = scaleLinear(spec.yDomain, [inner.y0, inner.y1]);
  const decades = [];
  for (let d = Math.ceil(Math.log10(spec.domain[0]) - 1e-9); d <= Math.floor(Math.log10(spec.domain[1]) + 1e-9); d++) {
    decades.push(10 ** d);
  }
  svg.append("g").attr("transform", `translate(0,${inner.y0})`)
    .call(axisBottom(x).tickValues(decades).tickFormat((v) => {
      const d = Math.round(Math.log10(v));
      return d === 0 ? "1" : `1e${d}`;
    }));
  svg.append("g").attr("transform", `translate(${inner.x0},0)`).call(axisLeft(y).ticks(6));
  svg.append("text").attr("x", (inner.x0 + inner.x1) / 2).attr("y", inner.y0 + 32)
    .attr("text-anchor", "middle").attr("class", "optbook-fig-axis").text(spec.xLabel);
  svg.append("text").attr("transform", `translate(${inner.x0 - 34},${(inner.y0 + inner.y1) / 2}) rotate(-90)`)
    .attr("text-anchor", "middle").attr("class", "optbook-fig-axis").text(spec.yLabel);
  svg.append("text").attr("x", (inner.x0 + inner.x1) / 2).attr("y", 16)
    .attr("text-anchor", "middle").attr("class", "optbook-fig-title").text(spec.title);
  const plot = svg.append("g").attr("class", "optbook-fig-plot").attr("clip-path", plotClip(svg, inner));
  const hline = (v, dash, color) => plot.append("line").attr("x1", inner.x0).attr("x2", inner.x1)
    .attr("y1", y(v)).attr("y2", y(v)).attr("stroke", color).attr("stroke-width", 0.8)
    .attr("stroke-dasharray", dash);
  hline(1, null, "#777");
  hline(spec.threshold, "5,3", "#aaa");
  const grid = sampleGrid(spec.domain, spec.samples);
  const clamp = (v) => Math.max(-1e4, Math.min(1e4, v));
  const curve = (ys) => {
    const parts = [];
    let pen = "M";
    for (let i = 0; i < grid.length; i++) {
      if (!Number.isFinite(ys[i])) { pen = "M"; continue; }
      parts.push(`${pen}${Math.round(x(grid[i]) * 10) / 10},${Math.round(clamp(y(ys[i])) * 10) / 10}`);
      pen = "L";
    }
    return parts.join("");
  };
  plot.append("path").attr("d", curve(grid)).attr("fill", "none").attr("stroke", "#777")
    .attr("stroke-width", 0.9).attr("stroke-dasharray", "1.5,2.5");
  if (spec.reference) {
    plot.append("path").attr("fill", "none").attr("stroke", grey).attr("stroke-width", 1.3)
      .attr("d", curve(iterateMap(grid, spec.reference.coefficients, spec.reference.steps)));
  }
  const main = plot.append("path").attr("fill", "none").attr("stroke", blue).attr("stroke-width", 2);
  const dots = spec.marks.map(() => plot.append("circle").attr("r", 3.5).attr("fill", blue)
    .attr("stroke", "white").attr("stroke-width", 1));
  spec.marks.forEach((m) => svg.append("line").attr("x1", x(m)).attr("x2", x(m))
    .attr("y1", inner.y0).attr("y2", inner.y0 - 5).attr("stroke", blue));

  const readout = select(root).append("ul").attr("class", "optbook-fig-readout").attr("aria-live", "polite");
  const items = [0, 1, 2].map(() => readout.append("li"));
  const legend = select(root).append("ul").attr("class", "optbook-fig-key");
  const key = (color, text, dash) => {
    const li = legend.append("li");
    li.append("span").attr("class", "optbook-fig-swatch").style("background", dash ? "none" : color)
      .style("border-top", dash ? `2px dotted ${color}` : null).style("height", dash ? "0" : null);
    return li.append("span").text(text);
  };
  const mainKey = key(blue, "");
  if (spec.reference) key(grey, `${spec.reference.label}`);
  key("#777", t("no step (k = 0: s itself); grey lines at 1 and at {threshold}", { threshold: fmt(spec.threshold) }), true);

  let last = null;
  const sliders = {};
  function redraw() {
    const k = values.steps;
    const coefficients = [values.a, values.b, values.c];
    const sum = mapSummary(spec, coefficients, k);
    main.attr("d", curve(sum.y));
    sum.marks.forEach(([m, v], j) => {
      const shown = Number.isFinite(v);
      dots[j].attr("display", shown ? null : "none").attr("cx", x(m)).attr("cy", shown ? clamp(y(v)) : 0);
    });
    const lines = readoutLines(spec, sum, k);
    items.forEach((li, j) => li.text(lines[j] || ""));
    const label = choice < custom ? presets[choice].label : t("custom");
    const poly = `p(s) = ${signed(values.a, true)} s ${signed(values.b)} s³ ${signed(values.c)} s⁵`;
    head.text(`${label}: ${poly}, applied ${k} time${k === 1 ? "" : "s"}`);
    mainKey.text(`${label}, ${k} step${k === 1 ? "" : "s"}`);
    last = sum;
    root.dispatchEvent(new CustomEvent("optbook:redraw", { detail: { summary: sum } }));
  }

  const presetMenu = menu(spec.choiceLabel, [...presets, { label: t("custom") }], choice, (k) => {
    if (k === custom) return;            // "custom" keeps the sliders where they are
    choice = k;
    ["a", "b", "c"].forEach((name, j) => {
      values[name] = presets[k].coefficients[j];
      sliders[name].set(values[name]);
    });
    redraw();
  });
  controls.append(presetMenu.element);
  for (const p of spec.params) {
    sliders[p.name] = slider(p, (v) => {
      values[p.name] = v;
      if (p.name !== "steps") {
        const match = presets.findIndex((c) => c.coefficients.every((w, j) => w === values["abc"[j]]));
        choice = match >= 0 ? match : custom;
        presetMenu.select.selectedIndex = choice;
      }
      redraw();
    });
    controls.append(sliders[p.name].element);
  }
  redraw();
  return { redraw, values, sliders, get choice() { return choice; }, get summary() { return last; },
           byName };
}
