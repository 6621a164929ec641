"""Write docs/measurements.md from the outputs of the benchmarks (`make bench` runs this last).

Usage: python bench/measurements.py <folder of bench outputs> <docs/measurements.md>

The folder holds one ``<benchmark>.txt`` per benchmark (what it printed; the
Makefile tees it there).  The page gets a dated header naming the machine
(CPU model, cores, load, OS, Python, torch, NumPy), then each benchmark's
output verbatim.  The part of an existing page between the markers
``<!-- recorded: begin -->`` and ``<!-- recorded: end -->`` (measurements no
command regenerates, such as a fresh clone's setup time) is kept as it is.
"""
from __future__ import annotations

import datetime
import os
import platform
import re
import sys
from pathlib import Path

BEGIN, END = "<!-- recorded: begin -->", "<!-- recorded: end -->"
ORDER = ["optimizer_step", "clip_grad_norm", "figure_latency"]
TITLES = {"optimizer_step": "optbook.torch step time against torch.optim and the authors' packages "
                            "(`bench/optimizer_step.py`)",
          "clip_grad_norm": "Global-norm clipping against `torch.nn.utils.clip_grad_norm_` "
                            "(`bench/clip_grad_norm.py`)",
          "figure_latency": "In-page figure redraw latency in headless chromium "
                            "(`bench/figure_latency.py`)"}


def cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    m = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
    return m.group(1).strip() if m else platform.machine()


def versions() -> dict[str, str]:
    found = {"Python": platform.python_version()}
    for name in ("torch", "numpy"):
        try:
            found[name] = __import__(name).__version__
        except ImportError:
            found[name] = "not installed"
    return found


def machine() -> list[tuple[str, str]]:
    load = " / ".join(f"{v:.1f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    return [("CPU", cpu_model()),
            ("cores (logical) / usable", f"{os.cpu_count()} / {len(os.sched_getaffinity(0))}"
             if hasattr(os, "sched_getaffinity") else str(os.cpu_count())),
            ("load average (1/5/15 min) when written", load),
            ("OS", platform.platform()),
            *versions().items()]


def recorded(previous: str) -> str:
    if BEGIN in previous and END in previous:
        return previous[previous.index(BEGIN):previous.index(END) + len(END)]
    return f"{BEGIN}\n{END}"


def page(outputs: Path, previous: str = "", now: datetime.datetime | None = None) -> str:
    now = now or datetime.datetime.now(datetime.timezone.utc)
    files = sorted(outputs.glob("*.txt"), key=lambda p: (ORDER.index(p.stem) if p.stem in ORDER
                                                         else len(ORDER), p.stem))
    if not files:
        raise ValueError(f"Invalid outputs: no <benchmark>.txt in {outputs}")
    lines = ["# Measurements", "",
             f"Written by `make bench` on {now:%Y-%m-%d %H:%M} UTC. Benchmarks run on the machine's "
             "own CPU kernels (outside the numeric envelope) and measure this machine at this "
             "load: compare ratios within one run, not across machines.", "",
             "| machine | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in machine()]
    for f in files:
        lines += ["", f"## {TITLES.get(f.stem, f.stem)}", "", "```",
                  f.read_text(encoding="utf-8").rstrip(), "```"]
    lines += ["", "## Recorded by hand", "",
              "Measurements no command regenerates (kept as they are when `make bench` rewrites "
              "this page):", "", recorded(previous), ""]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    outputs, target = Path(argv[1]), Path(argv[2])
    previous = target.read_text(encoding="utf-8") if target.exists() else ""
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(page(outputs, previous), encoding="utf-8")
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
