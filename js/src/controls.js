// Sliders that move continuously: a native <input type=range> with 1000
// positions mapped to the value on a linear, log, or log(1 - beta) scale,
// the value shown beside it with its symbol (and read by screen readers).

import { format } from "d3";

const POSITIONS = 1000;
export const fmt = format(".3~g");

/** position in [0, POSITIONS] <-> value, for one parameter spec. */
export function scaleOf(p) {
  const lin = (a, b) => [(u) => a + (b - a) * u, (v) => (v - a) / (b - a)];
  let to, from;
  if (p.scale === "log") {
    const [f, g] = lin(Math.log(p.min), Math.log(p.max));
    to = (u) => Math.exp(f(u)); from = (v) => g(Math.log(v));
  } else if (p.scale === "log1m") {          // 1 - beta on a log scale: 0.9, 0.99, 0.999 evenly spaced
    const [f, g] = lin(Math.log(1 - p.min), Math.log(1 - p.max));
    to = (u) => 1 - Math.exp(f(u)); from = (v) => g(Math.log(1 - v));
  } else {
    [to, from] = lin(p.min, p.max);
  }
  const positions = p.scale === "int" ? p.max - p.min : POSITIONS;
  return {
    positions,
    value: (k) => (p.scale === "int" ? p.min + k : to(k / positions)),
    position: (v) => Math.round(Math.min(1, Math.max(0, from(v))) * positions),
  };
}

/** A labelled slider for parameter spec p; onInput(value) on every move. */
export function slider(p, onInput) {
  const s = scaleOf(p);
  const label = document.createElement("label");
  label.className = "optbook-fig-control";
  const name = document.createElement("span");
  name.className = "optbook-fig-name";
  name.textContent = p.label;
  const input = document.createElement("input");
  Object.assign(input, { type: "range", min: 0, max: s.positions, step: 1 });
  input.setAttribute("data-optbook-param", p.name);
  input.setAttribute("aria-label", p.title || p.label);
  const output = document.createElement("output");
  output.className = "optbook-fig-value";
  let value = p.value;
  const show = () => {
    const text = `${p.label} = ${fmt(value)}`;
    output.textContent = fmt(value);
    input.setAttribute("aria-valuetext", text);
  };
  input.value = s.position(p.value);
  input.addEventListener("input", () => {
    value = s.value(+input.value);
    show();
    onInput(value);
  });
  show();
  label.append(name, input, output);
  return { element: label, input, get value() { return value; },
           set(v) { value = v; input.value = s.position(v); show(); } };
}

/** A drop-down of choices (e.g. landscapes); onChange(index). */
export function menu(label, choices, index, onChange) {
  const wrap = document.createElement("label");
  wrap.className = "optbook-fig-control";
  const name = document.createElement("span");
  name.className = "optbook-fig-name";
  name.textContent = label;
  const select = document.createElement("select");
  select.setAttribute("data-optbook-param", "choice");
  choices.forEach((c, k) => select.append(new Option(c.label, String(k), k === index, k === index)));
  select.addEventListener("change", () => onChange(select.selectedIndex));
  wrap.append(name, select);
  return { element: wrap, select };
}
