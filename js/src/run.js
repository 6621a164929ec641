// optbook.landscapes.trajectory in JavaScript: run one update rule on a landscape.

import { makeRule } from "./rules.js";
import { makeRate } from "./schedules.js";

/**
 * Run `steps` steps from x0.  Options: rate (number or schedule spec), noise
 * (flat array of standard normals, 2 per step) times sigma, hessian ("exact"
 * diagonal, or "hutchinson" with Rademacher signs `probes`, 2 per step),
 * escape (the divergence box is the window enlarged this much about its centre).
 * Returns {path: Float64Array (x0, y0, x1, y1, ...), values, divergedAt (step or null)}.
 * A rejected point (non-finite, or outside the box) stops the run; the rest of
 * the path repeats the last accepted point, as in optbook.
 */
export function trajectory(land, rule, { steps, x0 = land.x0, rate = 0.1, noise = null, sigma = 0,
                                         hessian = null, probes = null, escape = 10 }) {
  const eta = makeRate(rate);
  const cx = (land.xlim[0] + land.xlim[1]) / 2, cy = (land.ylim[0] + land.ylim[1]) / 2;
  const hx = ((land.xlim[1] - land.xlim[0]) / 2) * escape, hy = ((land.ylim[1] - land.ylim[0]) / 2) * escape;
  const accepted = (x, y, f, g) => Number.isFinite(x) && Number.isFinite(y) && Number.isFinite(f)
    && Math.abs(x - cx) <= hx && Math.abs(y - cy) <= hy && Number.isFinite(g[0]) && Number.isFinite(g[1]);

  const path = new Float64Array(2 * (steps + 1));
  const values = new Float64Array(steps + 1);
  let theta = [x0[0], x0[1]];
  let grad = land.grad(theta[0], theta[1]);
  path[0] = theta[0]; path[1] = theta[1]; values[0] = land.value(theta[0], theta[1]);
  const state = rule.init();
  let divergedAt = null;
  for (let t = 1; t <= steps; t++) {
    let g = grad;
    if (sigma > 0) g = [g[0] + noise[2 * (t - 1)] * sigma, g[1] + noise[2 * (t - 1) + 1] * sigma];
    let h = null;
    if (hessian === "exact") h = land.hessianDiag(theta[0], theta[1]);
    else if (hessian === "hutchinson") h = hutchinson(land.hessian(theta[0], theta[1]), probes, t - 1);
    const d = rule.direction(g, state, theta, h);
    const lr = eta(t - 1);
    const next = [theta[0] + -lr * d[0], theta[1] + -lr * d[1]];
    grad = land.grad(next[0], next[1]);
    const f = land.value(next[0], next[1]);
    if (!accepted(next[0], next[1], f, grad)) {
      divergedAt = t;
      for (let k = t; k <= steps; k++) {
        path[2 * k] = path[2 * t - 2]; path[2 * k + 1] = path[2 * t - 1]; values[k] = values[t - 1];
      }
      break;
    }
    theta = next;
    path[2 * t] = next[0]; path[2 * t + 1] = next[1]; values[t] = f;
  }
  return { path, values, divergedAt };
}

/** Hutchinson's diagonal estimate u * (H u) with the Rademacher probe u of step k. */
export function hutchinson(H, probes, k) {
  const u0 = probes[2 * k], u1 = probes[2 * k + 1];
  return [u0 * (H[0][0] * u0 + H[0][1] * u1), u1 * (H[1][0] * u0 + H[1][1] * u1)];
}

/** One optimizer of a figure spec, its arguments resolved against the slider values. */
export function resolveArgs(args, values, constants = {}) {
  const out = {};
  for (const [key, arg] of Object.entries(args)) out[key] = resolve(arg, values, constants);
  return out;
}

function resolve(arg, values, constants) {
  if (arg === null || typeof arg !== "object") return arg;
  if ("param" in arg) {
    let v = values[arg.param];
    if (arg.times !== undefined) v = (typeof arg.times === "string" ? constants[arg.times] : arg.times) * v;
    if (arg.round) v = Math.round(v);
    return v;
  }
  if ("schedule" in arg) return { schedule: arg.schedule, args: resolveArgs(arg.args, values, constants) };
  return arg;
}

/** Every optimizer of `spec` run at the slider `values` on `land`: [{name, label, run}]. */
export function runAll(spec, land, values, constants = {}, steps = spec.steps) {
  return spec.optimizers.map((opt) => {
    const { lr, ...hp } = resolveArgs(opt.args, values, constants);
    const sigma = opt.sigma ? resolve(opt.sigma, values, constants) : 0;
    const run = trajectory(land, makeRule(opt.rule, hp), {
      steps, x0: spec.x0 || land.x0, rate: lr, noise: spec.noise, sigma,
      hessian: opt.hessian || null, probes: spec.probes, escape: spec.escape ?? 10,
    });
    return { name: opt.name, label: opt.label || opt.name, color: opt.color, run };
  });
}
