// Stored training curves (training cannot run in a page): menus pick one run
// of a grid (e.g. layer norm x peak rate x warmup), the page draws its
// learning-rate schedule and the validation loss of every seed, the same
// rate without warmup in grey, and reads out the final losses.

import { select, scaleLinear, axisBottom, axisLeft, pointer } from "d3";
import { menu, fmt } from "./controls.js";
import { svgPanel } from "./draw.js";
import { SCHEDULES } from "./schedules.js";

/** The stored run at the menus' indices: spec.curves[norm][warmup][lr] = [seed][eval]. */
export function pick(spec, index) {
  const at = (name) => spec.menus.find((m) => m.name === name).options[index[name]].value;
  const norm = at("norm"), lr = at("lr"), warmup = at("warmup");
  const w = spec.menus.find((m) => m.name === "warmup").options.findIndex((o) => o.value === warmup);
  const j = spec.menus.find((m) => m.name === "lr").options.findIndex((o) => o.value === lr);
  return { norm, lr, warmup, curves: spec.curves[norm][w][j], reference: spec.curves[norm][0][j],
           finals: spec.finals[norm][w][j], referenceFinals: spec.finals[norm][0][j] };
}

const range3 = (xs) => `${Math.min(...xs).toFixed(3)}–${Math.max(...xs).toFixed(3)}`;

export function readoutLines(spec, run) {
  const label = spec.menus.find((m) => m.name === "norm").options.find((o) => o.value === run.norm).label;
  const lines = [`${label}, η = ${fmt(run.lr)}, warmup ${run.warmup}: final validation loss `
    + `${range3(run.finals)} (seeds ${run.finals.map((v) => v.toFixed(3)).join(", ")})`];
  if (run.warmup) {
    lines.push(`no warmup, η = ${fmt(run.lr)}: final validation loss ${range3(run.referenceFinals)} `
      + `(seeds ${run.referenceFinals.map((v) => v.toFixed(3)).join(", ")})`);
  }
  return lines;
}

export function curvesFigure(root, spec) {
  const index = Object.fromEntries(spec.menus.map((m) => [m.name, m.value]));
  const T = spec.steps, evals = spec.evalSteps;
  const color = spec.color || "#000", grey = "#999999";
  const controls = select(root).append("div").attr("class", "optbook-fig-controls").node();
  const head = select(root).append("div").attr("class", "optbook-fig-headline").attr("aria-live", "polite");
  const panels = select(root).append("div").attr("class", "optbook-fig-panels").node();

  const left = svgPanel(panels, 400, 300, { left: 52, right: 12, top: 24, bottom: 34 });
  left.svg.attr("aria-label", "learning rate against steps");
  const xl = scaleLinear([0, T], [left.inner.x0, left.inner.x1]);
  const yl = scaleLinear([0, spec.etaMax], [left.inner.y0, left.inner.y1]);
  left.svg.append("g").attr("transform", `translate(0,${left.inner.y0})`).call(axisBottom(xl).ticks(5));
  left.svg.append("g").attr("transform", `translate(${left.inner.x0},0)`).call(axisLeft(yl).ticks(5));
  left.svg.append("text").attr("x", (left.inner.x0 + left.inner.x1) / 2).attr("y", left.inner.y0 + 30)
    .attr("text-anchor", "middle").attr("class", "optbook-fig-axis").text("step t");
  const leftTitle = left.svg.append("text").attr("x", (left.inner.x0 + left.inner.x1) / 2).attr("y", 16)
    .attr("text-anchor", "middle").attr("class", "optbook-fig-title");
  const etaLine = left.svg.append("path").attr("fill", "none").attr("stroke", color).attr("stroke-width", 1.8);

  const right = svgPanel(panels, 430, 300, { left: 46, right: 12, top: 24, bottom: 34 });
  right.svg.attr("aria-label", "validation loss of each seed against steps");
  const xr = scaleLinear([0, T], [right.inner.x0, right.inner.x1]);
  const yr = scaleLinear([0, spec.yMax], [right.inner.y0, right.inner.y1]).clamp(true);
  right.svg.append("g").attr("transform", `translate(0,${right.inner.y0})`).call(axisBottom(xr).ticks(5));
  right.svg.append("g").attr("transform", `translate(${right.inner.x0},0)`).call(axisLeft(yr).ticks(6));
  right.svg.append("text").attr("x", (right.inner.x0 + right.inner.x1) / 2).attr("y", right.inner.y0 + 30)
    .attr("text-anchor", "middle").attr("class", "optbook-fig-axis").text("step");
  right.svg.append("text").attr("x", (right.inner.x0 + right.inner.x1) / 2).attr("y", 16)
    .attr("text-anchor", "middle").attr("class", "optbook-fig-title").text("validation loss (each seed)");
  right.svg.append("line").attr("x1", right.inner.x0).attr("x2", right.inner.x1)
    .attr("y1", yr(spec.chance)).attr("y2", yr(spec.chance)).attr("stroke", "#000")
    .attr("stroke-dasharray", "2,3").attr("stroke-width", 0.8);
  right.svg.append("text").attr("x", right.inner.x1 - 4).attr("y", yr(spec.chance) - 4)
    .attr("text-anchor", "end").attr("class", "optbook-fig-tip").text("chance");
  const refLines = right.svg.append("g"), runLines = right.svg.append("g");
  const cursor = right.svg.append("line").attr("stroke", "#888").attr("stroke-dasharray", "3,3")
    .attr("y1", right.inner.y1).attr("y2", right.inner.y0).style("display", "none");
  const tip = right.svg.append("text").attr("class", "optbook-fig-tip").attr("x", right.inner.x0 + 4)
    .attr("y", right.inner.y0 - 6);

  const readout = select(root).append("ul").attr("class", "optbook-fig-readout").attr("aria-live", "polite");
  const path = (ys) => ys.map((v, k) => `${k ? "L" : "M"}${Math.round(xr(evals[k]) * 10) / 10},`
    + `${Math.round(yr(v) * 10) / 10}`).join("");

  let last = null;
  function redraw() {
    const run = pick(spec, index);
    const eta = SCHEDULES.linear_warmup({ peak: run.lr, warmup_steps: run.warmup });
    etaLine.attr("d", Array.from({ length: T }, (_, t) => `${t ? "L" : "M"}${Math.round(xl(t) * 10) / 10},`
      + `${Math.round(yl(eta(t)) * 10) / 10}`).join(""));
    leftTitle.text(`linear warmup over ${run.warmup} steps to η = ${fmt(run.lr)}`);
    refLines.selectAll("path").data(run.warmup ? run.reference : []).join("path")
      .attr("fill", "none").attr("stroke", grey).attr("stroke-width", 1).attr("d", path);
    runLines.selectAll("path").data(run.curves).join("path")
      .attr("fill", "none").attr("stroke", color).attr("stroke-width", 1.6).attr("d", path);
    const label = spec.menus[0].options[index.norm].label;
    head.text(`${label}, peak η = ${fmt(run.lr)}, warmup ${run.warmup} steps, ${T} steps, `
      + `${run.curves.length} seeds` + (run.warmup ? " (grey: no warmup)" : ""));
    const lines = readoutLines(spec, run);
    readout.selectAll("li").data(lines).join((enter) => {
      const li = enter.append("li");
      li.append("span").attr("class", "optbook-fig-swatch");
      li.append("span").attr("class", "optbook-fig-text");
      return li;
    }).call((li) => {
      li.select(".optbook-fig-swatch").style("background", (d, k) => (k ? grey : color));
      li.select(".optbook-fig-text").text((d) => d);
    });
    last = run;
    root.dispatchEvent(new CustomEvent("optbook:redraw", { detail: { run } }));
  }

  right.svg.on("pointermove", (event) => {
    if (!last) return;
    const [px] = pointer(event);
    const s = xr.invert(px);
    let k = 0;
    evals.forEach((e, i) => { if (Math.abs(e - s) < Math.abs(evals[k] - s)) k = i; });
    cursor.attr("x1", xr(evals[k])).attr("x2", xr(evals[k])).style("display", null);
    const base = last.warmup ? `  no warmup ${last.reference.map((c) => c[k].toFixed(3)).join("/")}` : "";
    tip.text(`step ${evals[k]}: ${last.curves.map((c) => c[k].toFixed(3)).join("/")}${base}`);
  }).on("pointerleave", () => { cursor.style("display", "none"); tip.text(""); });

  for (const m of spec.menus) {
    controls.append(menu(m.label, m.options, m.value, (k) => { index[m.name] = k; redraw(); }).element);
  }
  redraw();
  return { redraw, index, values: {}, get run() { return last; } };
}
