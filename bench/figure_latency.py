"""How long one slider move takes in the page: recompute + redraw, 300 steps x 3 optimizers.

Usage: ``.venv/bin/python bench/figure_latency.py [--moves 200]`` (``make bench``).

Builds an in-page figure (SGD, momentum and Nesterov on Rosenbrock, 300
steps each) with ``optbook.figures.optimizer_explorer``, opens it in headless
chromium (``$OPTBOOK_CHROMIUM``, default /usr/bin/chromium) with the bundled
runtime (``book/_static/optbook-figures.js``; ``npm run build``), and moves the
η slider ``--moves`` times, alternating with β.  For each move it times, with
``performance.now()`` in the page, the input handler (every run recomputed, the
SVG paths and readout rewritten) plus a forced style and layout
(``getBoundingClientRect``), which is what must fit in a 16 ms frame.  Prints
the median and 90th percentile.  A measurement, not a test: the machine's load
changes it.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = Path(os.environ.get("OPTBOOK_FIGURES_JS") or ROOT / "book" / "_static" / "optbook-figures.js")
CHROMIUM = os.environ.get("OPTBOOK_CHROMIUM", "/usr/bin/chromium")

TIMED_MOVES = """([moves]) => {
  const root = document.querySelector(".optbook-figure");
  const inputs = root.querySelectorAll("input[type=range]");
  const times = [];
  for (let k = 0; k < moves; k++) {
    const input = inputs[k % inputs.length];
    const max = +input.max;
    input.value = String(Math.round(((k * 37) % 101) / 100 * max));
    const start = performance.now();
    input.dispatchEvent(new Event("input", {bubbles: true}));
    root.getBoundingClientRect();          // flush style and layout
    times.push(performance.now() - start);
  }
  return times;
}"""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--moves", type=int, default=200)
    args = parser.parse_args(argv)
    if not BUNDLE.is_file():
        print(f"no runtime at {BUNDLE}: run `npm ci && npm run build`", file=sys.stderr)
        return 1

    import optbook
    from optbook import figures, landscapes
    from playwright.sync_api import sync_playwright

    figure = figures.optimizer_explorer(
        lambda lr, beta: {"sgd": optbook.sgd(lr), "momentum": optbook.momentum(lr, beta),
                          "nesterov": optbook.nesterov(lr, beta)},
        grid={"lr": [2e-4, 1e-3], "beta": [0.5, 0.9, 0.95]}, defaults={"lr": 1e-3, "beta": 0.9},
        landscape=landscapes.rosenbrock(), steps=300, labels={"lr": "η", "beta": "β"})
    assert figure.spec is not None, "the benchmark figure must be computed in the page"
    page_html = (f"<!doctype html><html><head><meta charset='utf-8'></head><body>"
                 f"{figure.static_html()}</body></html>")

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM,
                                    args=["--headless", "--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_content(page_html)
        page.add_script_tag(content=BUNDLE.read_text(encoding="utf-8"))
        page.wait_for_selector(".optbook-figure[data-optbook-ready]")
        page.evaluate(TIMED_MOVES, [20])                      # warm up the JIT
        times = page.evaluate(TIMED_MOVES, [args.moves])
        version = browser.version
        browser.close()
    times.sort()
    p90 = times[min(len(times) - 1, int(0.9 * len(times)))]
    print(f"figure redraw latency, 300 steps x 3 optimizers (Rosenbrock), {len(times)} slider "
          f"moves, headless chromium {version}, {os.cpu_count()} cores, load "
          f"{os.getloadavg()[0]:.2f}:")
    print(f"  median {statistics.median(times):.2f} ms, p90 {p90:.2f} ms, "
          f"max {times[-1]:.2f} ms (budget: 16 ms per frame)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
