// Chapter 6.1's figure: a learning-rate schedule and the exact expected loss
// of SGD it produces on the noisy quadratic model (optbook.experiments.schedules:
// nqm_schedule, nqm_loss).  Per curvature h_i the second moment obeys
//   m_i <- (1 - eta_t h_i)^2 m_i + eta_t^2 h_i sigma^2,   loss = 1/2 sum_i h_i m_i,
// so the page recomputes it exactly on every move: no sampling, no seed.

import { select, scaleLinear, scaleLog, axisBottom, axisLeft, pointer } from "d3";
import { slider, menu, fmt } from "./controls.js";
import { svgPanel } from "./draw.js";
import { SCHEDULES } from "./schedules.js";
import { t, t as t_ } from "./i18n.js";

/** Python's round() for x >= 0: halves go to the even neighbour. */
export function roundHalfEven(x) {
  const f = Math.floor(x), d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** eta_t for t = 0..steps-1, as nqm_schedule(shape, peak, steps, warmup_frac, cooldown_frac,
 *  cooldown, end_frac): WSD's cooldown shape ("linear", "1-sqrt", "cosine"); the decaying
 *  shapes end at end_frac * peak. */
export function nqmSchedule(shape, peak, steps, warmupFrac, cooldownFrac, cooldown = "linear",
                            endFrac = 0.0) {
  const warm = roundHalfEven(warmupFrac * steps);
  const end = endFrac * peak;
  let eta;
  if (shape === "constant") {
    eta = SCHEDULES.linear_warmup({ peak, warmup_steps: warm });
  } else if (shape === "cosine") {
    eta = SCHEDULES.warmup_cosine({ peak, warmup_steps: warm, total_steps: steps, eta_min: end });
  } else if (shape === "linear") {
    // join_schedules([linear_warmup(peak, W), linear_decay(peak, T - W, end)], [W]) (or the decay alone)
    const up = SCHEDULES.linear_warmup({ peak, warmup_steps: warm });
    const down = SCHEDULES.linear_decay({ peak, total_steps: steps - warm, end });
    eta = warm ? (t) => (t < warm ? up(t) : down(t - warm)) : down;
  } else if (shape === "wsd") {
    let cool = Math.max(1, roundHalfEven(cooldownFrac * steps));
    if (warm + cool > steps) cool = steps - warm;
    eta = SCHEDULES.warmup_stable_decay({ peak, warmup_steps: warm, total_steps: steps,
                                          cooldown_steps: cool, end, cooldown });
  } else {
    throw new Error(`optbook figures: unknown schedule shape ${JSON.stringify(shape)}`);
  }
  return Float64Array.from({ length: steps }, (_, t) => eta(t));
}

/** Expected loss before each step and after the last (length etas.length + 1); non-finite -> Infinity. */
export function nqmLoss(etas, curvatures, noise = 1.0, start = 1.0) {
  const h = curvatures, n = h.length;
  const m = new Float64Array(n).fill(start ** 2);
  const out = new Float64Array(etas.length + 1);
  const total = () => { let s = 0; for (let i = 0; i < n; i++) s += h[i] * m[i]; return 0.5 * s; };
  out[0] = total();
  for (let t = 0; t < etas.length; t++) {
    const eta = etas[t];
    for (let i = 0; i < n; i++) m[i] = (1 - eta * h[i]) ** 2 * m[i] + eta ** 2 * h[i] * noise ** 2;
    out[t + 1] = total();
  }
  return out.map((v) => (Number.isFinite(v) ? v : Infinity));
}

/** The spec's schedule and its constant-rate reference at the control values. */
export function nqmRuns(spec, shape, values) {
  const { peak, warmup_frac: w, cooldown_frac: c } = values;
  const cooldown = values.cooldown ?? "linear", endFrac = values.end_frac ?? 0.0;
  const noise = values.noise ?? spec.noise;
  const etas = nqmSchedule(shape, peak, spec.steps, w, c, cooldown, endFrac);
  const refEtas = nqmSchedule("constant", peak, spec.steps, w, c);
  return { etas, loss: nqmLoss(etas, spec.curvatures, noise, spec.start),
           refEtas, ref: nqmLoss(refEtas, spec.curvatures, noise, spec.start) };
}

function polyline(values, x, y, clampLo = -Infinity) {
  const parts = [];
  for (let t = 0; t < values.length; t++) {
    const v = values[t];
    if (!Number.isFinite(v) || v <= clampLo) continue;
    parts.push(`${parts.length ? "L" : "M"}${Math.round(x(t) * 10) / 10},${Math.round(y(v) * 10) / 10}`);
  }
  return parts.join("");
}

export function scheduleFigure(root, spec) {
  const shapes = spec.choices;
  let choice = spec.choice || 0;
  const values = Object.fromEntries(spec.params.map((p) => [p.name, p.value]));
  // the two menus besides the shape: WSD's cooldown shape and the final rate (fraction of peak)
  const cooldowns = spec.cooldowns || [{ label: "linear", value: "linear" }];
  const ends = spec.ends || [{ label: "0", value: 0.0 }];
  let cooldownChoice = spec.cooldown || 0, endChoice = spec.end || 0;
  values.cooldown = cooldowns[cooldownChoice].value;
  values.end_frac = ends[endChoice].value;
  const T = spec.steps;
  const blue = spec.color || "#0072B2", grey = "#999999";

  const controls = select(root).append("div").attr("class", "optbook-fig-controls").node();
  const head = select(root).append("div").attr("class", "optbook-fig-headline").attr("aria-live", "polite");
  const panels = select(root).append("div").attr("class", "optbook-fig-panels").node();

  // left: eta_t
  const left = svgPanel(panels, 400, 300, { left: 46, right: 12, top: 24, bottom: 34 });
  left.svg.attr("aria-label", t("learning rate against steps"));
  const xl = scaleLinear([0, T], [left.inner.x0, left.inner.x1]);
  const yl = scaleLinear([0, spec.etaMax || 2.05], [left.inner.y0, left.inner.y1]);
  left.svg.append("g").attr("transform", `translate(0,${left.inner.y0})`).call(axisBottom(xl).ticks(5));
  left.svg.append("g").attr("transform", `translate(${left.inner.x0},0)`).call(axisLeft(yl).ticks(5));
  left.svg.append("text").attr("x", (left.inner.x0 + left.inner.x1) / 2).attr("y", left.inner.y0 + 30)
    .attr("text-anchor", "middle").attr("class", "optbook-fig-axis").text(t("step t"));
  left.svg.append("text").attr("transform", `translate(${left.inner.x0 - 34},${(left.inner.y0 + left.inner.y1) / 2}) rotate(-90)`)
    .attr("text-anchor", "middle").attr("class", "optbook-fig-axis").text("ηₜ");
  const leftTitle = left.svg.append("text").attr("x", (left.inner.x0 + left.inner.x1) / 2).attr("y", 16)
    .attr("text-anchor", "middle").attr("class", "optbook-fig-title");
  const etaRef = left.svg.append("path").attr("fill", "none").attr("stroke", grey).attr("stroke-width", 1.4)
    .attr("stroke-dasharray", "4,3");
  const etaLine = left.svg.append("path").attr("fill", "none").attr("stroke", blue).attr("stroke-width", 1.8);

  // right: expected loss, log axis
  const right = svgPanel(panels, 430, 300, { left: 52, right: 12, top: 24, bottom: 34 });
  right.svg.attr("aria-label", t("expected loss against steps"));
  const xr = scaleLinear([0, T], [right.inner.x0, right.inner.x1]);
  const [lo, hi] = spec.lossRange || [1e-3, 10];
  const yr = scaleLog([lo, hi], [right.inner.y0, right.inner.y1]).clamp(true);
  const decades = [];
  for (let d = Math.round(Math.log10(lo)); d <= Math.round(Math.log10(hi)); d++) decades.push(10 ** d);
  right.svg.append("g").attr("transform", `translate(0,${right.inner.y0})`).call(axisBottom(xr).ticks(5));
  right.svg.append("g").attr("transform", `translate(${right.inner.x0},0)`)
    .call(axisLeft(yr).tickValues(decades).tickFormat((v) => `1e${Math.round(Math.log10(v))}`));
  right.svg.append("text").attr("x", (right.inner.x0 + right.inner.x1) / 2).attr("y", right.inner.y0 + 30)
    .attr("text-anchor", "middle").attr("class", "optbook-fig-axis").text(t("step t"));
  right.svg.append("text").attr("x", (right.inner.x0 + right.inner.x1) / 2).attr("y", 16)
    .attr("text-anchor", "middle").attr("class", "optbook-fig-title").text(t("expected loss (noisy quadratic)"));
  const lossRef = right.svg.append("path").attr("fill", "none").attr("stroke", grey).attr("stroke-width", 1.4);
  const lossLine = right.svg.append("path").attr("fill", "none").attr("stroke", blue).attr("stroke-width", 1.8);
  const cursor = right.svg.append("line").attr("stroke", "#888").attr("stroke-dasharray", "3,3")
    .attr("y1", right.inner.y1).attr("y2", right.inner.y0).style("display", "none");
  const tip = right.svg.append("text").attr("class", "optbook-fig-tip").attr("x", right.inner.x0 + 4)
    .attr("y", right.inner.y1 + 12);

  const readout = select(root).append("ul").attr("class", "optbook-fig-readout").attr("aria-live", "polite");
  const item = (color) => {
    const li = readout.append("li");
    li.append("span").attr("class", "optbook-fig-swatch").style("background", color);
    return li.append("span");
  };
  const mainItem = item(blue), refItem = item(grey);

  let last = null;
  const sliders = {};
  function redraw() {
    const shape = shapes[choice].value;
    const runs = nqmRuns(spec, shape, values);
    etaLine.attr("d", polyline(runs.etas, xl, yl));
    etaRef.attr("d", shape === "constant" ? "" : polyline(runs.refEtas, xl, yl));
    lossLine.attr("d", polyline(runs.loss, xr, yr));
    lossRef.attr("d", shape === "constant" ? "" : polyline(runs.ref, xr, yr));
    leftTitle.text(t("{label} schedule", { label: shapes[choice].label }));
    const warm = roundHalfEven(values.warmup_frac * T);
    const cool = Math.min(Math.max(1, roundHalfEven(values.cooldown_frac * T)), T - warm);
    head.text(t("{label}: peak η = {peak}, warmup {warm} steps", { label: shapes[choice].label, peak: fmt(values.peak), warm })
      + (shape === "wsd" ? t(", {cooldown} cooldown {cool} steps", { cooldown: cooldowns[cooldownChoice].label, cool }) : "")
      + (shape !== "constant" ? t(", final η {end}", { end: ends[endChoice].label }) : "")
      + t(", noise σ = {noise}, {steps} steps", { noise: fmt(values.noise ?? spec.noise), steps: T }));
    // the loss a quarter of the way as well: warmup changes it far more than the final loss
    const mid = spec.checkpoint ?? Math.floor(T / 4);
    const line = (label, loss) => t("{label}: expected loss at step {mid} = {a}, after {steps} steps = {b}",
      { label, mid, a: fmt(loss[mid]), steps: T, b: fmt(loss[T]) });
    mainItem.text(line(shapes[choice].label, runs.loss));
    refItem.text(line(spec.refLabel || t("constant η"), runs.ref));
    if (sliders.cooldown_frac) {
      const off = shape !== "wsd";
      sliders.cooldown_frac.input.disabled = off;
      sliders.cooldown_frac.element.style.opacity = off ? "0.5" : "";
    }
    // menus that do nothing for this shape are greyed out (still operable)
    for (const [m, off] of [[cooldownMenu, shape !== "wsd"], [endMenu, shape === "constant"]]) {
      if (m) m.element.style.opacity = off ? "0.5" : "";
    }
    last = runs;
    root.dispatchEvent(new CustomEvent("optbook:redraw", { detail: { runs } }));
  }

  right.svg.on("pointermove", (event) => {
    if (!last) return;
    const [px] = pointer(event);
    const t = Math.max(0, Math.min(T, Math.round(xr.invert(px))));
    cursor.attr("x1", xr(t)).attr("x2", xr(t)).style("display", null);
    const eta = t < T ? `ηₜ = ${fmt(last.etas[t])}  ` : "";
    tip.text(`t = ${t}  ${eta}${t_("loss")} ${fmt(last.loss[t])}  ${t_("constant")} ${fmt(last.ref[t])}`);
  }).on("pointerleave", () => { cursor.style("display", "none"); tip.text(""); });

  let cooldownMenu = null, endMenu = null;
  controls.append(menu(spec.choiceLabel || "schedule", shapes, choice, (k) => { choice = k; redraw(); }).element);
  if (spec.cooldowns) {
    cooldownMenu = menu(t("cooldown (WSD)"), cooldowns, cooldownChoice, (k) => {
      cooldownChoice = k; values.cooldown = cooldowns[k].value; redraw(); });
    cooldownMenu.select.setAttribute("data-optbook-param", "cooldown");
    controls.append(cooldownMenu.element);
  }
  if (spec.ends) {
    endMenu = menu(t("final η"), ends, endChoice, (k) => {
      endChoice = k; values.end_frac = ends[k].value; redraw(); });
    endMenu.select.setAttribute("data-optbook-param", "end_frac");
    controls.append(endMenu.element);
  }
  for (const p of spec.params) {
    sliders[p.name] = slider(p, (v) => { values[p.name] = v; redraw(); });
    controls.append(sliders[p.name].element);
  }
  redraw();
  return { redraw, values, sliders, get choice() { return choice; }, get runs() { return last; } };
}
