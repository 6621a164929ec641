// optbook.schedules in JavaScript: step t (from 0) -> learning rate eta_t.
// Same formulas, same operation order as the NumPy versions.

export const SCHEDULES = {
  constant: ({ value }) => () => value,
  // eta_t = eta_max min(t, T_w) / T_w
  linear_warmup: ({ peak, warmup_steps: W }) =>
    W === 0 ? () => peak : (t) => peak * (Math.min(t, W) / W),
  // eta_t = eta_0 gamma^floor(t / T)
  step_decay: ({ init, gamma, step_size: T }) => (t) => init * gamma ** Math.floor(t / T),
  // eta_t = eta_min + (eta_max - eta_min)(1 + cos(pi min(t, T) / T)) / 2
  cosine_annealing: ({ peak, total_steps: T, eta_min = 0 }) => (t) =>
    eta_min + 0.5 * (peak - eta_min) * (1.0 + Math.cos(Math.PI * Math.min(t, T) / T)),
  // eta_t = end + (eta_max - end)(1 - min(t, T) / T)
  linear_decay: ({ peak, total_steps: T, end = 0 }) => (t) =>
    end + (peak - end) * (1.0 - Math.min(t, T) / T),
  // eta_t = eta_max min(t / T_w, sqrt(T_w / t))
  inverse_sqrt: ({ peak, warmup_steps: W }) => (t) =>
    peak * Math.min(t / W, Math.sqrt(W / Math.max(t, 1.0))),
  // linear warmup to eta_max, then cosine down to eta_min at T, held after
  warmup_cosine: ({ peak, warmup_steps: W, total_steps: T, eta_min = null }) => {
    const floor = eta_min === null ? 0.1 * peak : eta_min;
    const D = T - W;
    return (t) => {
      if (t <= W) return W ? peak * (t / W) : peak;
      const s = Math.min(Math.max(t - W, 0), D);
      return floor + 0.5 * (peak - floor) * (1.0 + Math.cos(Math.PI * s / D));
    };
  },
  // warmup to eta_max, constant, then a cooldown f(s) over the last T_c steps to `end`
  warmup_stable_decay: ({ peak, warmup_steps: W, total_steps: T, cooldown_steps: C, end = 0,
                          cooldown = "linear" }) => {
    const start = T - C;
    return (t) => {
      if (t <= W) return W ? peak * (t / W) : peak;
      if (t <= start) return peak;
      const s = Math.min(Math.max((t - start) / C, 0.0), 1.0);
      const f = cooldown === "linear" ? 1.0 - s
        : cooldown === "1-sqrt" ? 1.0 - Math.sqrt(s) : 0.5 * (1.0 + Math.cos(Math.PI * s));
      return end + (peak - end) * f;
    };
  },
  // torch's OneCycleLR: peak/div -> peak -> peak/div/final_div, half-cosine or linear phases
  one_cycle: ({ peak, total_steps: T, pct_start = 0.3, div_factor = 25.0, final_div_factor = 1e4,
                anneal = "cos", three_phase = false }) => {
    const initial = peak / div_factor;
    const minimum = initial / final_div_factor;
    const riseEnd = pct_start * T - 1;
    const phases = three_phase
      ? [[riseEnd, initial, peak], [2 * pct_start * T - 2, peak, initial], [T - 1, initial, minimum]]
      : [[riseEnd, initial, peak], [T - 1, peak, minimum]];
    const interpolate = (a, b, pct) => (anneal === "cos"
      ? b + ((a - b) / 2.0) * (Math.cos(Math.PI * pct) + 1) : (b - a) * pct + a);
    return (t) => {
      t = Math.min(t, T - 1);
      let start = 0.0;
      for (let i = 0; i < phases.length; i++) {
        const [stop, a, b] = phases[i];
        if (t <= stop || i === phases.length - 1) return interpolate(a, b, (t - start) / (stop - start));
        start = stop;
      }
      return NaN;
    };
  },
  // SGDR: cosine from eta_max to eta_min over periods T_0, T_0 m, T_0 m^2, ...
  cosine_restarts: ({ peak, first_period: T0, period_mult: m = 1, eta_min = 0 }) => (t) => {
    let tCur, tI;
    if (m === 1) {
      tCur = t % T0; tI = T0;
    } else {
      let i = Math.floor(Math.log((t * (m - 1)) / T0 + 1) / Math.log(m));
      let begin = (T0 * (m ** i - 1)) / (m - 1);
      if (t >= begin + T0 * m ** i) i += 1;                    // guard the float log
      if (t < (T0 * (m ** i - 1)) / (m - 1)) i -= 1;
      begin = (T0 * (m ** i - 1)) / (m - 1);
      tCur = t - begin; tI = T0 * m ** i;
    }
    return eta_min + 0.5 * (peak - eta_min) * (1.0 + Math.cos(Math.PI * tCur / tI));
  },
};

/** A learning rate: a number, or {schedule: name, args: {...}} -> a function of t. */
export function makeRate(rate) {
  if (typeof rate === "number") return () => rate;
  const maker = SCHEDULES[rate.schedule];
  if (!maker) throw new Error(`optbook figures: unknown schedule ${JSON.stringify(rate.schedule)}`);
  return maker(rate.args);
}
