// The (eta lambda, beta) phase diagram of heavy-ball momentum on a quadratic.
// Along an eigenvector with eigenvalue lambda, heavy ball is the recursion
//   x_{t+1} = (1 + beta - a) x_t - beta x_{t-1},   a = eta lambda,
// with characteristic roots z^2 - (1 + beta - a) z + beta = 0:
//   complex (under-damped, |z| = sqrt(beta))  iff (1 - sqrt b)^2 < a < (1 + sqrt b)^2,
//   real (over-damped) otherwise, and stable iff a < 2 (1 + beta).
// Nesterov (optbook's form) is stable iff a < 2 (1 + beta) / (1 + 2 beta).
// Clicking or dragging in the diagram sets eta L and beta; the path beside it
// is the same optimizers on the 2-D quadratic (lambda = L and lambda = mu).

import { range, scaleLinear, axisBottom, axisLeft, line, pointer, select } from "d3";
import { pathFigure } from "./paths.js";
import { svgPanel } from "./draw.js";
import { t } from "./i18n.js";

export const heavyBall = {
  lower: (b) => (1 - Math.sqrt(b)) ** 2,     // critical damping, smaller root
  upper: (b) => (1 + Math.sqrt(b)) ** 2,     // critical damping, larger root
  limit: (b) => 2 * (1 + b),                 // stability boundary
};
export const nesterovLimit = (b) => (2 * (1 + b)) / (1 + 2 * b);

/** Which region (a, beta) is in, for heavy ball. */
export function regionOf(a, b) {
  if (a <= 0 || a >= heavyBall.limit(b)) return "diverges";
  if (Math.abs(a - heavyBall.lower(b)) < 1e-12 || Math.abs(a - heavyBall.upper(b)) < 1e-12) return "critically damped";
  if (a > heavyBall.lower(b) && a < heavyBall.upper(b)) return "under-damped (oscillates)";
  return "over-damped";
}

export function phaseFigure(root, spec) {
  const [pa, pb] = spec.params;             // eta L, beta
  const aMax = pa.max, bMax = pb.max;
  let marker, markerMu, status;
  const figure = pathFigure(root, spec, (panels, fig) => {
    const { svg, inner } = svgPanel(panels, 330, 330, { left: 44, right: 10, top: 24, bottom: 34 });
    svg.attr("aria-label", t("phase diagram of heavy-ball momentum: eta times lambda against beta; click or drag to choose"));
    const x = scaleLinear([0, aMax], [inner.x0, inner.x1]);
    const y = scaleLinear([0, bMax], [inner.y0, inner.y1]);
    const bs = range(0, 241).map((k) => (bMax * k) / 240);
    const area = (left, right) => `M${bs.map((b) => `${x(Math.min(left(b), aMax))},${y(b)}`).join("L")}`
      + `L${bs.slice().reverse().map((b) => `${x(Math.min(right(b), aMax))},${y(b)}`).join("L")}Z`;
    svg.append("rect").attr("x", inner.x0).attr("y", inner.y1).attr("width", inner.x1 - inner.x0)
      .attr("height", inner.y0 - inner.y1).attr("fill", "#e8f1fa");                 // over-damped
    svg.append("path").attr("d", area(heavyBall.lower, heavyBall.upper)).attr("fill", "#fbe3c8"); // under-damped
    svg.append("path").attr("d", area(heavyBall.limit, () => aMax)).attr("fill", "#d9d9d9");      // diverges
    const curve = (f) => line()(bs.filter((b) => f(b) <= aMax).map((b) => [x(f(b)), y(b)]));
    svg.append("path").attr("d", curve(heavyBall.lower)).attr("stroke", "#b35806").attr("fill", "none");
    svg.append("path").attr("d", curve(heavyBall.upper)).attr("stroke", "#b35806").attr("fill", "none");
    svg.append("path").attr("d", curve(nesterovLimit)).attr("stroke", "#D55E00").attr("fill", "none")
      .attr("stroke-dasharray", "5,3").attr("stroke-width", 1.5);
    const label = (a, b, text) => svg.append("text").attr("x", x(a)).attr("y", y(b))
      .attr("class", "optbook-fig-axis").attr("text-anchor", "middle").text(text);
    label(aMax * 0.18, bMax * 0.08, t("over-damped"));
    label(Math.min(1.15, aMax * 0.3), bMax * 0.75, t("under-damped"));
    label(Math.min(3.55, aMax * 0.84), bMax * 0.15, t("diverges"));
    label(Math.min(1.45, aMax * 0.5), bMax * 0.3, t("NAG limit")).attr("fill", "#D55E00");
    svg.append("g").attr("transform", `translate(0,${inner.y0})`).call(axisBottom(x).ticks(5));
    svg.append("g").attr("transform", `translate(${inner.x0},0)`).call(axisLeft(y).ticks(5));
    svg.append("text").attr("x", (inner.x0 + inner.x1) / 2).attr("y", inner.y0 + 30)
      .attr("text-anchor", "middle").attr("class", "optbook-fig-axis").text("η λ");
    svg.append("text").attr("transform", `translate(${inner.x0 - 32},${(inner.y0 + inner.y1) / 2}) rotate(-90)`)
      .attr("text-anchor", "middle").attr("class", "optbook-fig-axis").text("β");
    svg.append("text").attr("x", (inner.x0 + inner.x1) / 2).attr("y", 16).attr("text-anchor", "middle")
      .attr("class", "optbook-fig-title").text(t("heavy ball on a quadratic: η λ and β"));
    markerMu = svg.append("circle").attr("r", 4).attr("fill", "white").attr("stroke", "#009E73").attr("stroke-width", 2);
    marker = svg.append("circle").attr("r", 5.5).attr("fill", "#009E73").attr("stroke", "white");
    status = select(root).append("p").attr("class", "optbook-fig-headline").attr("aria-live", "polite");

    const pick = (event) => {
      const [px, py] = pointer(event, svg.node());
      const a = Math.min(aMax, Math.max(pa.min, x.invert(px)));
      const b = Math.min(bMax, Math.max(pb.min, y.invert(py)));
      fig.sliders[pa.name].set(a); fig.values[pa.name] = a;
      fig.sliders[pb.name].set(b); fig.values[pb.name] = b;
      fig.redraw();
    };
    let dragging = false;
    svg.style("cursor", "crosshair").style("touch-action", "none")
      .on("pointerdown", (e) => { dragging = true; svg.node().setPointerCapture?.(e.pointerId); pick(e); })
      .on("pointermove", (e) => { if (dragging) pick(e); })
      .on("pointerup pointercancel", () => { dragging = false; });

    fig.onRedraw((values) => {
      const a = values[pa.name], b = values[pb.name];
      marker.attr("cx", x(a)).attr("cy", y(b));
      markerMu.attr("cx", x(a / spec.kappa)).attr("cy", y(b));
      const nag = t(a < nesterovLimit(b) ? "Nesterov stable" : "Nesterov diverges");
      status.text(t("steep direction (η L = {a}): {region}; flat direction (η μ = {b}): {flat}; {nag}.", {
        a: a.toFixed(3), region: t(regionOf(a, b)), b: (a / spec.kappa).toFixed(3),
        flat: t(regionOf(a / spec.kappa, b)), nag }));
    });
  });
  return figure;
}
