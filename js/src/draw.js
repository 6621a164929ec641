// Drawing with d3: contours of a landscape with optimizer paths on them, and
// f - f* against steps on a log axis.  Built once per figure; a slider move
// only rewrites the `d` of a few <path>s (that is what keeps it in a frame).

import { contours, extent, geoPath, geoTransform, line, max, min, range, scaleLinear, scaleLog,
         axisBottom, axisLeft, select, pointer } from "d3";
import { fmt } from "./controls.js";
import { t, t as t_ } from "./i18n.js";

const SVG = "http://www.w3.org/2000/svg";
const GRID = 96;                      // contour grid (GRID x GRID values)

let clips = 0;

/** A clip path the size of a panel's plot area (curves and paths stay inside it). */
export function plotClip(svg, inner) {
  const id = `optbook-plot-clip-${++clips}`;
  svg.append("clipPath").attr("id", id).append("rect")
    .attr("x", inner.x0).attr("y", inner.y1).attr("width", inner.x1 - inner.x0).attr("height", inner.y0 - inner.y1);
  return `url(#${id})`;
}

/** An X (with a white halo, so it reads over contours and curves) centred at (x, y). */
function crossPath(x, y, r = 5) {
  return `M${x - r},${y - r}L${x + r},${y + r}M${x - r},${y + r}L${x + r},${y - r}`;
}

/**
 * Where a path last leaves the plot area, in pixels: the last point inside
 * it, moved along the next segment to the edge (the last point if that one
 * is inside, or if none is).  As optbook.figures.plotting's ``_exit_point``, so the
 * page and JupyterLab put a diverged run's X at the same place.
 */
export function exitPoint(n, px, py, inner) {
  const lo = [Math.min(inner.x0, inner.x1), Math.min(inner.y0, inner.y1)];
  const hi = [Math.max(inner.x0, inner.x1), Math.max(inner.y0, inner.y1)];
  const inside = (p) => p[0] >= lo[0] && p[0] <= hi[0] && p[1] >= lo[1] && p[1] <= hi[1];
  const at = (t) => [px(t), py(t)];
  let last = -1;
  for (let t = 0; t < n; t++) if (inside(at(t))) last = t;
  if (last < 0 || last === n - 1) return at(n - 1);
  const a = at(last), b = at(last + 1);
  let s = 1;
  for (let k = 0; k < 2; k++) {
    const d = b[k] - a[k];
    if (d > 0) s = Math.min(s, (hi[k] - a[k]) / d);
    else if (d < 0) s = Math.min(s, (lo[k] - a[k]) / d);
  }
  return [a[0] + s * (b[0] - a[0]), a[1] + s * (b[1] - a[1])];
}

export function svgPanel(parent, width, height, margin) {
  const svg = select(parent).append("svg")
    .attr("viewBox", `0 0 ${width} ${height}`).attr("class", "optbook-fig-svg")
    .attr("role", "img");
  const inner = { x0: margin.left, x1: width - margin.right, y0: height - margin.bottom, y1: margin.top };
  return { svg, inner, width, height };
}

/** Contour levels as optbook's Landscape.contour_levels: log-spaced (6 decades) or linear. */
function levels(land, values, count = 20) {
  const span = max(values) - land.min;
  if (land.log) return range(count).map((k) => land.min + span * 1e-6 * (1e6 ** (k / (count - 1))));
  return range(1, count + 1).map((k) => land.min + (span * k) / count);
}

/** SVG path data through n points (pixel coordinates rounded to 0.1 px). */
function polyline(n, px, py) {
  const parts = new Array(n);
  for (let t = 0; t < n; t++) parts[t] = `${Math.round(px(t) * 10) / 10},${Math.round(py(t) * 10) / 10}`;
  return n ? `M${parts.join("L")}` : "";
}

/** The path panel: contours, minima, and one <path> per optimizer (updated by `update`). */
export function pathPanel(parent, names, colors) {
  const W = 360, H = 330;
  const { svg, inner } = svgPanel(parent, W, H, { left: 40, right: 10, top: 24, bottom: 34 });
  const back = svg.append("g"), axes = svg.append("g");
  // paths and their dots are clipped to the plot area (a diverging run leaves
  // it instead of crossing the title and the axes); a diverged run's X and
  // note are drawn on top, unclipped, where its path leaves the area
  const front = svg.append("g").attr("class", "optbook-fig-plot").attr("clip-path", plotClip(svg, inner));
  const marks = svg.append("g");
  const title = svg.append("text").attr("x", (inner.x0 + inner.x1) / 2).attr("y", 16)
    .attr("text-anchor", "middle").attr("class", "optbook-fig-title");
  const lines = names.map((n, k) => front.append("path").attr("fill", "none")
    .attr("stroke", colors[k]).attr("stroke-width", 1.6).attr("stroke-linejoin", "round"));
  // one start dot, and per optimizer an end dot or (diverged) an X and a note, reused on every move
  const start = front.append("circle").attr("r", 3.5).attr("fill", "#333");
  const ends = names.map((n, k) => ({
    dot: front.append("circle").attr("r", 3).attr("fill", "white").attr("stroke", colors[k]),
    halo: marks.append("path").attr("stroke", "white").attr("stroke-width", 4.2).attr("display", "none"),
    cross: marks.append("path").attr("class", "optbook-fig-diverged").attr("stroke", colors[k])
      .attr("stroke-width", 2.2).attr("display", "none"),
    note: marks.append("text").attr("class", "optbook-fig-diverged-note").attr("fill", colors[k])
      .attr("font-size", 11).attr("stroke", "white").attr("stroke-width", 3).attr("paint-order", "stroke")
      .attr("display", "none"),
  }));
  let x, y, shown = null;

  function setLandscape(land) {
    if (shown === land) return;
    shown = land;
    x = scaleLinear(land.xlim, [inner.x0, inner.x1]);
    y = scaleLinear(land.ylim, [inner.y0, inner.y1]);
    const values = new Float64Array(GRID * GRID);
    for (let j = 0; j < GRID; j++) {
      for (let i = 0; i < GRID; i++) {
        values[j * GRID + i] = land.value(x.invert(inner.x0 + ((inner.x1 - inner.x0) * i) / (GRID - 1)),
                                          y.invert(inner.y0 + ((inner.y1 - inner.y0) * j) / (GRID - 1)));
      }
    }
    const lv = levels(land, values);
    const toPixels = geoTransform({ point(i, j) {
      this.stream.point(inner.x0 + ((inner.x1 - inner.x0) * i) / (GRID - 1),
                        inner.y0 + ((inner.y1 - inner.y0) * j) / (GRID - 1));
    } });
    back.selectAll("*").remove();
    back.selectAll("path").data(contours().size([GRID, GRID]).thresholds(lv)(values)).join("path")
      .attr("d", geoPath(toPixels)).attr("fill", "none").attr("stroke", "#9a9a9a")
      .attr("stroke-width", 0.7).attr("stroke-opacity", 0.8);
    back.selectAll("text.min").data(land.minima || []).join("text").attr("class", "min")
      .attr("x", (m) => x(m[0])).attr("y", (m) => y(m[1])).attr("text-anchor", "middle")
      .attr("dominant-baseline", "central").attr("font-size", 13).attr("fill", "#333").text("★");
    axes.selectAll("*").remove();
    axes.append("g").attr("transform", `translate(0,${inner.y0})`).call(axisBottom(x).ticks(5));
    axes.append("g").attr("transform", `translate(${inner.x0},0)`).call(axisLeft(y).ticks(5));
    axes.append("text").attr("x", (inner.x0 + inner.x1) / 2).attr("y", inner.y0 + 30)
      .attr("text-anchor", "middle").attr("class", "optbook-fig-axis").text("θ₁");
    axes.append("text").attr("transform", `translate(${inner.x0 - 30},${(inner.y0 + inner.y1) / 2}) rotate(-90)`)
      .attr("text-anchor", "middle").attr("class", "optbook-fig-axis").text("θ₂");
    title.text(land.title || "");
    svg.attr("aria-label", t("optimizer paths on {title}", { title: land.title || land.name }));
  }

  // Pixel coordinates are kept within a box a little larger than the window:
  // the clip path hides what lies outside, and no kilometre-long SVG line is drawn.
  const clamp = (v) => Math.max(-1e4, Math.min(1e4, v));

  function update(land, runs) {
    setLandscape(land);
    const cx = (inner.x0 + inner.x1) / 2, cy = (inner.y0 + inner.y1) / 2;
    runs.forEach(({ run }, k) => {
      const n = run.divergedAt === null ? run.values.length : run.divergedAt;
      const px = (t) => clamp(x(run.path[2 * t])), py = (t) => clamp(y(run.path[2 * t + 1]));
      lines[k].attr("d", polyline(n, px, py));
      const diverged = run.divergedAt !== null;
      const end = ends[k];
      end.dot.attr("cx", px(n - 1)).attr("cy", py(n - 1)).attr("display", diverged ? "none" : null);
      for (const part of [end.halo, end.cross, end.note]) part.attr("display", diverged ? null : "none");
      if (!diverged) return;
      // an X where the path leaves the plot area, and "diverged (step t)" beside it, towards the centre
      const [mx, my] = exitPoint(n, px, py, inner);
      end.halo.attr("d", crossPath(mx, my));
      end.cross.attr("d", crossPath(mx, my));
      const sx = Math.sign(cx - mx) || 1, sy = Math.sign(cy - my) || 1;
      end.note.attr("x", mx + 9 * sx).attr("y", my + 9 * sy)
        .attr("text-anchor", sx > 0 ? "start" : "end").attr("dominant-baseline", sy > 0 ? "hanging" : "auto")
        .text(t("diverged (step {step})", { step: run.divergedAt }));
    });
    if (runs.length) start.attr("cx", x(runs[0].run.path[0])).attr("cy", y(runs[0].run.path[1]));
  }
  return { update, svg };
}

/** The loss panel: f(theta_t) - f* against t, log y; a readout follows the pointer. */
export function lossPanel(parent, names, colors) {
  const W = 430, H = 330;
  const { svg, inner } = svgPanel(parent, W, H, { left: 52, right: 12, top: 24, bottom: 34 });
  svg.attr("aria-label", t("loss against steps"));
  const axes = svg.append("g");
  const plot = svg.append("g").attr("class", "optbook-fig-plot").attr("clip-path", plotClip(svg, inner));
  const lines = names.map((n, k) => plot.append("path").attr("fill", "none")
    .attr("stroke", colors[k]).attr("stroke-width", 1.6));
  // a diverged run's curve ends in an X, as optbook.figures.plotting.loss_curve draws it
  const crosses = names.map((n, k) => ({
    halo: svg.append("path").attr("stroke", "white").attr("stroke-width", 4.2).attr("display", "none"),
    cross: svg.append("path").attr("class", "optbook-fig-diverged").attr("stroke", colors[k])
      .attr("stroke-width", 2.2).attr("display", "none"),
  }));
  svg.append("text").attr("x", (inner.x0 + inner.x1) / 2).attr("y", 16).attr("text-anchor", "middle")
    .attr("class", "optbook-fig-title").text("f(θₜ) − f*");
  const cursor = svg.append("line").attr("stroke", "#888").attr("stroke-dasharray", "3,3")
    .attr("y1", inner.y1).attr("y2", inner.y0).style("display", "none");
  const tip = svg.append("text").attr("class", "optbook-fig-tip").attr("y", inner.y1 + 12);
  let x, y, last = null, domain = null;

  function update(runs, minimum) {
    last = { runs, minimum };
    const steps = runs[0].run.values.length - 1;
    let top = -Infinity, bottom = Infinity;
    for (const { run } of runs) {
      const n = run.divergedAt === null ? run.values.length : run.divergedAt;
      for (let t = 0; t < n; t++) {
        const gap = run.values[t] - minimum;
        if (gap > 0 && gap < Infinity) { if (gap > top) top = gap; if (gap < bottom) bottom = gap; }
      }
    }
    // whole decades, so the axis only moves when a curve crosses a decade
    let hi = top > 0 ? 10 ** Math.ceil(Math.log10(top)) : 1;
    let lo = top > 0 ? 10 ** Math.floor(Math.log10(bottom)) : 1e-3;
    lo = Math.max(lo, hi * 1e-14);
    if (lo === hi) lo = hi / 10;
    const key = `${steps},${lo},${hi}`;
    x = scaleLinear([0, Math.max(steps, 1)], [inner.x0, inner.x1]);
    y = scaleLog([lo, hi], [inner.y0, inner.y1]).clamp(true);
    if (key !== domain) {
      domain = key;
      axes.selectAll("*").remove();
      axes.append("g").attr("transform", `translate(0,${inner.y0})`).call(axisBottom(x).ticks(5));
      // ticks at whole decades only, at most 7 of them
      const d0 = Math.round(Math.log10(lo)), d1 = Math.round(Math.log10(hi));
      const every = Math.ceil((d1 - d0 + 1) / 7);
      const decades = range(d0, d1 + 1).filter((d) => (d1 - d) % every === 0).map((d) => 10 ** d);
      axes.append("g").attr("transform", `translate(${inner.x0},0)`)
        .call(axisLeft(y).tickValues(decades).tickFormat((v) => `1e${Math.round(Math.log10(v))}`));
      axes.append("text").attr("x", (inner.x0 + inner.x1) / 2).attr("y", inner.y0 + 30)
        .attr("text-anchor", "middle").attr("class", "optbook-fig-axis").text(t("step t"));
    }
    runs.forEach(({ run }, k) => {
      const n = run.divergedAt === null ? run.values.length : run.divergedAt;
      const parts = [];
      let pen = "M", last = null;
      for (let t = 0; t < n; t++) {
        const gap = run.values[t] - minimum;
        if (!(gap > 0)) { pen = "M"; continue; }
        last = [Math.round(x(t) * 10) / 10, Math.round(y(gap) * 10) / 10];
        parts.push(`${pen}${last[0]},${last[1]}`);
        pen = "L";
      }
      lines[k].attr("d", parts.join(""));
      const shown = run.divergedAt !== null && last !== null;
      for (const part of [crosses[k].halo, crosses[k].cross]) {
        part.attr("display", shown ? null : "none").attr("d", shown ? crossPath(last[0], last[1], 4.5) : null);
      }
    });
  }

  svg.on("pointermove", (event) => {
    if (!last) return;
    const [px] = pointer(event);
    const steps = last.runs[0].run.values.length - 1;
    const t = Math.max(0, Math.min(steps, Math.round(x.invert(px))));
    cursor.attr("x1", x(t)).attr("x2", x(t)).style("display", null);
    const parts = last.runs.map(({ label, run }) =>
      `${label}: ${run.divergedAt !== null && t >= run.divergedAt ? t_("diverged") : fmt(run.values[t] - last.minimum)}`);
    tip.attr("x", inner.x0 + 4).text(`t = ${t}  ${parts.join("  ")}`);
  }).on("pointerleave", () => { cursor.style("display", "none"); tip.text(""); });
  return { update, svg };
}
