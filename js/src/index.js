// The book's figure runtime.  Python (optbook.figures) writes, for every
// interactive figure, a <div class="optbook-figure"> holding a static image,
// a one-line note, and the figure's spec as JSON.  This bundle, loaded on every
// page, replaces each such div by the live figure: controls, and a redraw
// computed in the page on every move.  No server, no network.
//
// One module per kind of figure, as in Python (code/optbook/figures):
//   paths     paths.js    (optbook/figures/paths.py)    optimizer paths on a landscape
//   phase     phase.js    (optbook/figures/phase.py)    a momentum phase diagram beside paths
//   schedule  nqm.js      (optbook/figures/nqm.py)      a schedule and its noisy-quadratic loss
//   runs      runs.js     (optbook/figures/runs.py)     stored curves over a grid
//   heatmap   heatmap.js  (optbook/figures/heatmap.py)  a stored 2-D grid
//   scalar_map scalar_map.js (optbook/figures/scalar_map.py) an odd quintic iterated k times
// The spec of each is defined once, in code/optbook/figures/spec.schema.json;
// spec.js checks a spec against it before the figure is mounted.

import { pathFigure } from "./paths.js";
import { phaseFigure } from "./phase.js";
import { scheduleFigure, nqmSchedule, nqmLoss } from "./nqm.js";
import { runsFigure } from "./runs.js";
import { heatmapFigure } from "./heatmap.js";
import { scalarMapFigure, iterateMap, mapSummary, sampleGrid } from "./scalar_map.js";
import { RULES, makeRule } from "./rules.js";
import { SCHEDULES, makeRate } from "./schedules.js";
import { LANDSCAPES, makeLandscape } from "./landscapes.js";
import { trajectory, runAll } from "./run.js";
import { CSS } from "./style.js";
import { checkSpec } from "./spec.js";

export const KINDS = { paths: pathFigure, phase: phaseFigure, schedule: scheduleFigure, runs: runsFigure,
                heatmap: heatmapFigure, scalar_map: scalarMapFigure };

function addStyle() {
  if (document.getElementById("optbook-figure-style")) return;
  const style = document.createElement("style");
  style.id = "optbook-figure-style";
  style.textContent = CSS;
  document.head.append(style);
}

export function mount(root) {
  const data = root.querySelector("script.optbook-figure-spec");
  if (!data || root.hasAttribute("data-optbook-ready")) return null;
  const spec = checkSpec(JSON.parse(data.textContent));
  const make = KINDS[spec.kind];
  if (!make) throw new Error(`optbook figures: no runtime for kind ${JSON.stringify(spec.kind)}`);
  addStyle();
  root.setAttribute("data-optbook-ready", "");
  // the static image and its note are for readers without scripts
  root.querySelectorAll(".optbook-figure-static").forEach((e) => { e.hidden = true; });
  const live = document.createElement("div");
  live.className = "optbook-figure-live";
  root.append(live);
  const figure = make(live, spec);
  root.optbookFigure = figure;
  return figure;
}

export function mountAll(doc = document) {
  doc.querySelectorAll(".optbook-figure:not([data-optbook-ready])").forEach((root) => {
    try { mount(root); } catch (error) { console.error(error); }
  });
}

if (typeof window !== "undefined") {
  window.optbookFigures = { RULES, SCHEDULES, LANDSCAPES, makeRule, makeRate, makeLandscape,
                            trajectory, runAll, mount, mountAll, nqmSchedule, nqmLoss,
                            iterateMap, mapSummary, sampleGrid };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", () => mountAll());
  else mountAll();
}
