"""The loop a student can read: each of chapters 1-5 writes one training loop out
in full (model, batch, loss, gradient, ``optimizer.update``, ``optbook.apply_updates``)
before it hands the larger runs to a helper of ``optbook.experiments``, and says
that the helper is that loop with seeds and bookkeeping. These tests hold the
book to that sentence.

The loop is read from the notebook itself: the one code cell whose first line
starts with ``# inline loop``, from that line to ``# end of inline loop``. It is
run after the notebook's first code cell (the chapter's imports; run inside a
matplotlib ``rc_context`` and with torch's thread count restored afterwards, so
that nothing leaks into other tests) and, where the loop uses data defined
earlier in the chapter, after the cell that defines it. Then the helper is run on
the same case and the two must give the same numbers: bit for bit where both
compute in the same order, and to 1e-5 in chapter 5, where the helper's
``optbook.torch.AdamW`` runs the chain through torch's fused kernel, whose
float32 rounding differs in the last digits.
"""
from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import torch

BOOK = Path(__file__).resolve().parents[1] / "book"
START, END = "# inline loop", "# end of inline loop"

# stem -> markers of earlier code cells the loop needs (run in order, after the imports)
CHAPTERS = {
    "01-foundations": ("data = F.make_regression_data(",),
    "02-sgd": (),
    "03-momentum": (),
    "04-adaptive": (),
    "05-adam": (),
}


def _notebook(stem: str) -> dict:
    return json.loads((BOOK / f"{stem}.ipynb").read_text())


def _source(cell: dict) -> str:
    source = cell["source"]
    return "".join(source) if isinstance(source, list) else source


def _inline_cell(stem: str) -> tuple[list[dict], int]:
    cells = _notebook(stem)["cells"]
    hits = [i for i, c in enumerate(cells)
            if c["cell_type"] == "code" and _source(c).lstrip().startswith(START)]
    assert len(hits) == 1, f"{stem}: {len(hits)} cells start with {START!r} (need exactly one)"
    return cells, hits[0]


def loop_source(stem: str) -> str:
    cells, i = _inline_cell(stem)
    source = _source(cells[i])
    assert END in source, f"{stem}: the inline loop has no {END!r} line"
    return source[:source.index(END)]


def run_inline_loop(stem: str) -> dict:
    """Run the chapter's imports, the cells the loop needs, then the loop; return its names."""
    cells, i = _inline_cell(stem)
    code = [c for c in cells[:i] if c["cell_type"] == "code"]
    steps = [(f"{stem}: first code cell", _source(code[0]))]
    for marker in CHAPTERS[stem]:
        found = [_source(c) for c in code if marker in _source(c)]
        assert len(found) == 1, f"{stem}: {len(found)} cells before the loop contain {marker!r}"
        steps.append((f"{stem}: the cell with {marker!r}", found[0]))
    steps.append((f"{stem}: inline loop", loop_source(stem)))
    namespace: dict = {}
    threads = torch.get_num_threads()
    try:
        with matplotlib.rc_context():
            for name, source in steps:
                exec(compile(source, name, "exec"), namespace)
    finally:
        torch.set_num_threads(threads)
    return namespace


@pytest.mark.parametrize("stem", list(CHAPTERS))
def test_the_loop_is_complete_and_short(stem):
    code = [line for line in loop_source(stem).splitlines()
            if line.strip() and not line.strip().startswith("#")]
    text = "\n".join(code)
    for piece in (".update(", "apply_updates(", "for "):
        assert piece in text, f"{stem}: the inline loop has no {piece!r}"
    assert 8 <= len(code) <= 16, f"{stem}: the inline loop has {len(code)} lines of code"


@pytest.mark.parametrize("stem", list(CHAPTERS))
def test_the_text_says_which_helper_is_this_loop(stem):
    cells, i = _inline_cell(stem)
    following = next(_source(c) for c in cells[i + 1:] if c["cell_type"] == "markdown")
    assert "is this loop" in following, (
        f"{stem}: the markdown after the inline loop must name the helper that "
        "'is this loop' with seeds and bookkeeping")


def test_chapter_1_gradient_descent():
    from optbook.experiments import foundations as F

    ns = run_inline_loop("01-foundations")
    data = ns["data"]
    path = F.gradient_descent(lambda th: F.risk_gradient(th, data), np.array([0.5, 0.5]),
                              0.1, steps=40)
    assert np.array_equal(ns["theta"], path[-1])


def test_chapter_2_minibatch_sgd():
    from optbook.experiments import sgd as S
    from optbook.experiments.training import evaluate

    ns = run_inline_loop("02-sgd")
    data = ns["data"]
    loop_loss = evaluate(ns["model"], data.x_train, data.y_train)[0]
    helper = S.batch_size_run(data, 32, 0.1, 128, hidden=16, eval_every=128, seed=0)
    assert loop_loss == helper.train_loss


def test_chapter_3_momentum_on_the_noisy_quadratic():
    from optbook.experiments import momentum as M

    ns = run_inline_loop("03-momentum")
    helper = M.nqm_losses([0.03], 0.9, 16, [0], 400, ns["lam"])[:, 0, 0]
    assert len(ns["losses"]) == 401
    assert np.array_equal(np.array(ns["losses"]), helper)


def test_chapter_4_adagrad_on_sparse_features():
    from optbook.experiments import adaptive as A

    ns = run_inline_loop("04-adaptive")
    helper = A.train_sparse(ns["sparse"], "adagrad", 0.3)
    assert np.array_equal(ns["w"], helper.weights[0])


def test_chapter_5_one_cell_of_the_adamw_grid():
    from optbook.experiments import adam as A
    from optbook.experiments.training import evaluate

    ns = run_inline_loop("05-adam")
    data = ns["data"]
    loop_loss = evaluate(ns["model"], data.x_val, data.y_val)[0]
    cell = A.train_cell("adamw", 1e-2, 1.0, data, steps=200, batch_size=32, hidden=32, seed=0)
    assert abs(loop_loss - cell.final_val_loss) < 1e-5
    # the grid runs the same cell with batched matrix products (seed 0 of seeds 0, 1, 2)
    grid = A.lr_wd_grid_seeds([1e-2], [1.0], seeds=(0,), kinds=("adamw",), steps=200)
    assert abs(loop_loss - grid.val_loss["adamw"][0, 0, 0]) < 1e-5
