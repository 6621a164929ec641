"""Run the book's stored reruns and write book/data/reruns/<name>.json (make reruns).

Usage::

    .venv/bin/python scripts/reruns.py              # every rerun
    .venv/bin/python scripts/reruns.py NAME [NAME]  # some
    .venv/bin/python scripts/reruns.py --list       # names, chapters, rough cost

The reruns are declared in the chapters' experiment modules (``RERUNS``) and collected by
``optbook.experiments.reruns``. They run under
the numeric envelope (numerics.env), set here before torch is imported, so
that the stored numbers come out the same on any x86-64 CPU. One process per
rerun keeps a failure from losing the others' results; the exit status is 1
if any failed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import numerics

os.environ.update(numerics.envelope())

from optbook.experiments import reruns  # noqa: E402  (after the envelope)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help="reruns to run (default: all)")
    parser.add_argument("--list", action="store_true", help="list the reruns and exit")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # the child process's job
    args = parser.parse_args(argv)

    if args.one:
        path = reruns.write(reruns.run(args.one))
        print(f"wrote {path}", flush=True)
        return 0
    if args.list:
        for rerun in reruns.registry():
            print(f"{rerun.name:<40} {rerun.chapter:<22} ~{rerun.minutes:g} min  {rerun.claim}")
        return 0

    try:
        chosen = [reruns.by_name(name) for name in args.names] or list(reruns.registry())
    except KeyError as error:
        print(error.args[0], file=sys.stderr)
        return 2
    failed = []
    total = time.perf_counter()
    for rerun in chosen:
        print(f"{rerun.name} (~{rerun.minutes:g} min): {rerun.claim}", flush=True)
        start = time.perf_counter()
        status = subprocess.call([sys.executable, __file__, "--one", rerun.name])
        print(f"  {'done' if status == 0 else 'FAILED'} in {time.perf_counter() - start:.0f} s",
              flush=True)
        if status:
            failed.append(rerun.name)
    print(f"{len(chosen) - len(failed)} of {len(chosen)} reruns written in "
          f"{time.perf_counter() - total:.0f} s" + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
