// Update rules of optbook.optimizers for a 2-D parameter, one per method.
// Each rule(hp) returns {init(), direction(g, state, theta, h)}: the direction
// d_t before the learning rate; the step is theta <- theta + (-eta_t d_t),
// exactly optbook's chain(..., scale_by_learning_rate(eta)).  State is
// mutated in place (the page owns it); the arithmetic order is optbook's.

const zeros = () => [0, 0];
const map2 = (f) => [f(0), f(1)];

// weight decay added to g before the preconditioner (L2) ...
const l2 = (g, theta, wd) => (wd === 0 ? g : map2((i) => g[i] + wd * theta[i]));
// ... or to the direction after it (decoupled: AdamW, Lion, Sophia)
const decoupled = l2;

// v_t = beta v_{t-1} + (1 - dampening) g_t, v_1 = g_1; Nesterov outputs g_t + beta v_t
function trace(u, s, beta, dampening, nesterov) {
  s.v = s.count === 0 ? [u[0], u[1]] : map2((i) => beta * s.v[i] + (1 - dampening) * u[i]);
  s.count += 1;
  return nesterov ? map2((i) => u[i] + beta * s.v[i]) : s.v;
}

const root = (acc, eps, inside) => (inside ? Math.sqrt(acc + eps) : Math.sqrt(acc) + eps);

// Adam's direction m_hat / (sqrt(v_hat) + eps), optionally without bias correction
function adamDirection(g, s, { b1 = 0.9, b2 = 0.999, eps = 1e-8, amsgrad = false, bias_correction = true }) {
  const t = (s.count += 1);
  s.m = map2((i) => b1 * s.m[i] + (1 - b1) * g[i]);
  s.v = map2((i) => b2 * s.v[i] + (1 - b2) * g[i] * g[i]);
  if (amsgrad) s.vmax = map2((i) => Math.max(s.vmax[i], s.v[i]));
  const second = amsgrad ? s.vmax : s.v;
  const c1 = bias_correction ? 1 - b1 ** t : 1.0;
  const c2 = bias_correction ? 1 - b2 ** t : 1.0;
  return map2((i) => (s.m[i] / c1) / (Math.sqrt(second[i] / c2) + eps));
}

export const RULES = {
  // theta <- theta - eta (g + lambda theta)
  sgd: ({ weight_decay = 0 }) => ({
    init: () => ({}),
    direction: (g, s, theta) => l2(g, theta, weight_decay),
  }),
  // v <- beta v + g;  theta <- theta - eta v
  momentum: ({ beta = 0.9, dampening = 0, weight_decay = 0 }) => ({
    init: () => ({ v: zeros(), count: 0 }),
    direction: (g, s, theta) => trace(l2(g, theta, weight_decay), s, beta, dampening, false),
  }),
  // v <- beta v + g;  theta <- theta - eta (g + beta v)
  nesterov: ({ beta = 0.9, weight_decay = 0 }) => ({
    init: () => ({ v: zeros(), count: 0 }),
    direction: (g, s, theta) => trace(l2(g, theta, weight_decay), s, beta, 0, true),
  }),
  // G <- G + g^2;  theta <- theta - eta g / (sqrt(G) + eps)
  adagrad: ({ eps = 1e-10, initial_accumulator_value = 0, weight_decay = 0, eps_inside_sqrt = false }) => ({
    init: () => ({ G: [0 + initial_accumulator_value, 0 + initial_accumulator_value] }),
    direction(g, s, theta) {
      const u = l2(g, theta, weight_decay);
      s.G = map2((i) => s.G[i] + u[i] * u[i]);
      return map2((i) => u[i] / root(s.G[i], eps, eps_inside_sqrt));
    },
  }),
  // v <- beta v + (1 - beta) g^2;  theta <- theta - eta g / (sqrt(v) + eps)
  rmsprop: ({ decay = 0.99, eps = 1e-8, centered = false, momentum = 0, weight_decay = 0, eps_inside_sqrt = false }) => ({
    init: () => ({ sq: zeros(), mean: zeros(), v: zeros(), count: 0 }),
    direction(g, s, theta) {
      const u = l2(g, theta, weight_decay);
      s.sq = map2((i) => decay * s.sq[i] + (1 - decay) * u[i] * u[i]);
      if (centered) s.mean = map2((i) => decay * s.mean[i] + (1 - decay) * u[i]);
      const variance = centered ? map2((i) => s.sq[i] - s.mean[i] * s.mean[i]) : s.sq;
      const out = map2((i) => u[i] / root(variance[i], eps, eps_inside_sqrt));
      return momentum ? trace(out, s, momentum, 0, false) : out;
    },
  }),
  // Adam with L2 weight decay (added to g before the moments)
  adam: (hp) => ({
    init: () => ({ m: zeros(), v: zeros(), vmax: zeros(), count: 0 }),
    direction: (g, s, theta) => adamDirection(l2(g, theta, hp.weight_decay || 0), s, hp),
  }),
  // AdamW: theta <- theta - eta (m_hat / (sqrt(v_hat) + eps) + lambda theta)
  adamw: (hp) => ({
    init: () => ({ m: zeros(), v: zeros(), vmax: zeros(), count: 0 }),
    direction: (g, s, theta) => decoupled(adamDirection(g, s, hp), theta, hp.weight_decay ?? 1e-2),
  }),
  // Lion: theta <- theta - eta (sign(b1 m + (1 - b1) g) + lambda theta);  m <- b2 m + (1 - b2) g
  lion: ({ b1 = 0.9, b2 = 0.99, weight_decay = 0 }) => ({
    init: () => ({ m: zeros() }),
    direction(g, s, theta) {
      const c = map2((i) => Math.sign(b1 * s.m[i] + (1 - b1) * g[i]));
      s.m = map2((i) => b2 * s.m[i] + (1 - b2) * g[i]);
      return decoupled(c, theta, weight_decay);
    },
  }),
  // Sophia: m <- b1 m + (1 - b1) g;  h <- b2 h + (1 - b2) h_hat;
  // theta <- theta - eta (sign(m) min(|m| / (rho h + eps), 1) + lambda theta)
  sophia: ({ b1 = 0.965, b2 = 0.99, rho = 0.04, weight_decay = 0.1, eps = 1e-15, denominator = "released" }) => ({
    init: () => ({ m: zeros(), h: zeros() }),
    direction(g, s, theta, hHat) {
      if (hHat) s.h = map2((i) => b2 * s.h[i] + (1 - b2) * hHat[i]);
      s.m = map2((i) => b1 * s.m[i] + (1 - b1) * g[i]);
      const den = (i) => (denominator === "paper" ? Math.max(rho * s.h[i], eps) : rho * s.h[i] + eps);
      const step = map2((i) => Math.sign(s.m[i]) * Math.min(Math.abs(s.m[i]) / den(i), 1.0));
      return decoupled(step, theta, weight_decay);
    },
  }),
};

/** The rule named `name` with hyperparameters `hp` (learning rate excluded). */
export function makeRule(name, hp) {
  const maker = RULES[name];
  if (!maker) throw new Error(`optbook figures: unknown update rule ${JSON.stringify(name)}`);
  return maker(hp);
}
