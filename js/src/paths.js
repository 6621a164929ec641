// A path figure: sliders -> every optimizer re-run in the page -> paths,
// loss curves and a readout of where each run ended.

import { select } from "d3";
import { slider, menu, fmt } from "./controls.js";
import { pathPanel, lossPanel } from "./draw.js";
import { makeLandscape } from "./landscapes.js";
import { runAll } from "./run.js";
import { t } from "./i18n.js";

/** Fill in "{lr}"-style fields of a headline from the slider values. */
export function headline(template, values) {
  return (template || "").replace(/\{(\w+)(?::[^}]*)?\}/g, (m, k) => (k in values ? fmt(values[k]) : m));
}

/** The regime a value falls in: the first band whose upper bound it does not exceed. */
export function regime(regimes, values) {
  if (!regimes) return "";
  const v = values[regimes.param];
  const band = regimes.bands.find(([upper]) => v <= upper);
  return band ? band[1] : regimes.last;
}

export function readoutText(label, run, minimum) {
  const steps = run.values.length - 1;
  return run.divergedAt !== null
    ? t("{label}: diverged at step {step}", { label, step: run.divergedAt })
    : t("{label}: f − f* after {steps} steps = {value}", { label, steps, value: fmt(run.values[steps] - minimum) });
}

/**
 * Build the figure in `root`.  `extra(panels, figure)` (optional) may add a
 * panel before the path and loss panels (the phase diagram does).
 */
export function pathFigure(root, spec, extra = null) {
  const choices = spec.choices || [{ label: "", landscape: spec.landscape, steps: spec.steps, constants: {} }];
  const lands = choices.map((c) => makeLandscape(c.landscape));
  let choice = spec.choice || 0;
  const values = Object.fromEntries(spec.params.map((p) => [p.name, p.value]));

  const controls = select(root).append("div").attr("class", "optbook-fig-controls").node();
  const head = select(root).append("div").attr("class", "optbook-fig-headline").attr("aria-live", "polite");
  const panels = select(root).append("div").attr("class", "optbook-fig-panels").node();
  const hooks = [];
  const sliders = {};
  if (extra) extra(panels, { onRedraw: (f) => hooks.push(f), sliders, values, redraw: () => redraw() });
  const names = spec.optimizers.map((o) => o.label || o.name);
  const colors = spec.optimizers.map((o) => o.color || "#000");
  const paths = pathPanel(panels, names, colors);
  const losses = lossPanel(panels, names, colors);
  const readout = select(root).append("ul").attr("class", "optbook-fig-readout").attr("aria-live", "polite");
  const items = spec.optimizers.map((o, k) => {
    const li = readout.append("li");
    li.append("span").attr("class", "optbook-fig-swatch").style("background", colors[k]);
    return li.append("span");
  });

  let last = null;
  function redraw() {
    const c = choices[choice];
    const land = lands[choice];
    const runs = runAll(spec, land, values, c.constants || {}, c.steps || spec.steps);
    paths.update(land, runs);
    losses.update(runs, land.min);
    const text = headline(c.headline || spec.headline, { ...values, ...(c.constants || {}) });
    const note = regime(spec.regimes, values);
    head.text(note ? t("{text}: {note}", { text, note }) : text);
    runs.forEach(({ label, run }, k) => items[k].text(readoutText(label, run, land.min)));
    last = runs;
    hooks.forEach((f) => f(values, runs));
    root.dispatchEvent(new CustomEvent("optbook:redraw", { detail: { runs } }));
  }

  if (spec.choices) {
    controls.append(menu(spec.choiceLabel || t("landscape"), choices, choice, (k) => { choice = k; redraw(); }).element);
  }
  for (const p of spec.params) {
    sliders[p.name] = slider(p, (v) => { values[p.name] = v; redraw(); });
    controls.append(sliders[p.name].element);
  }
  redraw();
  return { redraw, values, sliders, paths, losses, get runs() { return last; } };
}
