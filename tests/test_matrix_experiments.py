"""Tests of optbook.experiments.matrix (chapter 5.3): closed forms and code nobody here wrote."""
from __future__ import annotations

import math

import numpy as np
import pytest

import optbook
from optbook.experiments import matrix as M


def test_quadratic_optimum_gradient_and_start():
    p = M.matrix_quadratic(m=6, n=4, kappa=100.0, rotated=True, seed=1)
    assert p.loss(p.target) == 0.0
    assert np.abs(p.grad(p.target)).max() == 0.0
    # f(0) = 1/2 ||A W* B||_F^2 with A = left^{1/2}, B = right^{1/2} (Cholesky: A = C^T)
    A, B = np.linalg.cholesky(p.left).T, np.linalg.cholesky(p.right)
    assert p.loss(np.zeros((6, 4))) == pytest.approx(0.5 * np.sum((A @ p.target @ B) ** 2),
                                                      rel=1e-10)
    # the gradient is the derivative of the loss (central differences)
    rng = np.random.default_rng(0)
    W, D = rng.standard_normal((6, 4)), rng.standard_normal((6, 4))
    h = 1e-6
    fd = (p.loss(W + h * D) - p.loss(W - h * D)) / (2 * h)
    assert fd == pytest.approx(np.sum(p.grad(W) * D), rel=1e-7)


def test_quadratic_spectra_and_condition_number():
    p = M.matrix_quadratic(m=8, n=5, kappa=1e3, rotated=True, seed=0)
    for H, k in ((p.left, 8), (p.right, 5)):
        w = np.linalg.eigvalsh(H)
        np.testing.assert_allclose(np.sort(w)[::-1], np.geomspace(1, 1e-3, k), rtol=1e-9)
    aligned = M.matrix_quadratic(m=8, n=5, kappa=1e3, rotated=False, seed=0)
    assert np.count_nonzero(aligned.left - np.diag(np.diag(aligned.left))) == 0


def test_rotated_problem_is_the_aligned_one_in_another_basis():
    a = M.matrix_quadratic(m=7, n=5, rotated=False, seed=3)
    r = M.matrix_quadratic(m=7, n=5, rotated=True, seed=3)
    QA = np.linalg.eigh(r.left)[1][:, ::-1]   # eigenvectors, largest eigenvalue first
    QB = np.linalg.eigh(r.right)[1][:, ::-1]
    W = np.random.default_rng(1).standard_normal((7, 5))
    # an error E from the aligned target costs what Q_A E Q_B^T costs from the rotated one
    # (the eigenvalues are distinct, so each eigenvector is fixed up to a sign, and
    # the loss of E is unchanged by flipping the sign of a row or column of E)
    assert r.loss(QA @ W @ QB.T + r.target) == pytest.approx(a.loss(W + a.target), rel=1e-10)


def test_gd_closed_form_on_the_aligned_quadratic():
    p = M.matrix_quadratic(m=5, n=3, kappa=10.0, rotated=False, seed=2)
    lr, steps = 0.7, 9
    h = np.outer(np.diag(p.left), np.diag(p.right))          # diagonal Hessian entries
    E0 = -p.target
    expected = np.sum(h * ((1 - lr * h) ** steps * E0) ** 2) / np.sum(h * E0 ** 2)
    curve = M.quadratic_run(p, optbook.sgd(lr), steps)
    assert curve[0] == 1.0
    assert curve[-1] == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("method", ["gd", "shampoo"])
def test_gd_and_shampoo_do_not_see_the_rotation(method):
    """Both commute with W -> Q_A W Q_B^T (Shampoo: L -> Q_A L Q_A^T, and eps I is invariant)."""
    a = M.matrix_quadratic(m=6, n=4, rotated=False, seed=0)
    r = M.matrix_quadratic(m=6, n=4, rotated=True, seed=0)
    lr = 0.5 if method == "gd" else 3.0
    ca = M.quadratic_run(a, M.METHODS[method].make(lr), 30)
    cr = M.quadratic_run(r, M.METHODS[method].make(lr), 30)
    np.testing.assert_allclose(cr, ca, rtol=1e-6)


def test_adam_does_see_the_rotation():
    a = M.matrix_quadratic(m=6, n=4, rotated=False, seed=0)
    r = M.matrix_quadratic(m=6, n=4, rotated=True, seed=0)
    ca = M.quadratic_run(a, M.METHODS["adam"].make(0.1), 50)
    cr = M.quadratic_run(r, M.METHODS["adam"].make(0.1), 50)
    assert cr[-1] > 2 * ca[-1]          # the rotation costs Adam (seed 0: about 2.8x)


def test_run_marks_divergence_as_inf():
    p = M.matrix_quadratic(m=4, n=3, rotated=False, seed=0)
    curve = M.quadratic_run(p, optbook.sgd(5.0), 100)      # 5 > 2 / lambda_max = 2
    assert np.isinf(curve[-1]) and np.isfinite(curve[1])


def test_tune_picks_the_lowest_mean_log_loss():
    r = M.tune("gd", 20, (0, 1), True, lrs=(0.1, 1.0, 1.9, 2.5), problem=dict(m=5, n=4))
    scores = [np.mean(np.log10(f)) if np.all(np.isfinite(f)) else np.inf for f in r["final"]]
    assert r["best_lr"] == r["lrs"][int(np.argmin(scores))] == 1.9
    assert r["interior"] is True
    assert r["final"][-1][0] > 1                            # 2.5 > 2 / lambda_max: it grows
    rows = M.tuned_table([r])
    assert rows[0]["min"] <= rows[0]["mean"] <= rows[0]["max"]


def test_tuned_curves_end_at_the_tuned_final_losses():
    r = M.tune("adam", 15, (0, 1), True, lrs=(0.01, 0.1, 0.3))
    curves = M.tuned_curves(r)
    assert curves.shape == (2, 16)
    np.testing.assert_array_equal(curves[:, -1], r["final"][r["lrs"].index(r["best_lr"])])
    assert np.all(curves[:, 0] == 1.0)


def test_print_tuned_marks_a_rate_at_the_end(capsys):
    r = M.tune("gd", 10, (0,), False, lrs=(0.1, 0.2), problem=dict(m=4, n=3))
    M.print_tuned([r])
    out = capsys.readouterr().out
    assert "0.2!" in out and "best rate at an end" in out


def test_print_pilot_puts_the_pilot_beside_the_geometric_mean(capsys):
    """Hand-built records: seeds 1e-2 and 1e-4 have geometric mean 1e-3; the
    axis-aligned record and a method the pilot did not run are left out."""
    def rec(method, rotated):
        return {"method": method, "rotated": rotated, "lrs": [0.1], "best_lr": 0.1,
                "interior": True, "final": [[1e-2, 1e-4]]}
    M.print_pilot([rec("shampoo_f10", True), rec("adam", False), rec("soap", True)])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert lines[1].startswith(M.METHODS["shampoo_f10"].label)
    assert lines[1].split()[-3:] == ["1.2", "0.001", "(0.0001–0.01)"]


def test_quadratic_rerun_covers_both_bases():
    out = M.quadratic_rerun(steps=2, seeds=(0,), methods=("gd", "adam"))
    assert [(r["method"], r["rotated"]) for r in out["records"]] == [
        ("gd", False), ("gd", True), ("adam", False), ("adam", True)]


def test_bad_input():
    with pytest.raises(ValueError, match="Invalid method: 'lion'"):
        M.tune("lion", 10, (0,), True)
    with pytest.raises(ValueError, match="Invalid seeds"):
        M.tune("gd", 10, (), True)
    with pytest.raises(ValueError, match="Invalid lrs"):
        M.tune("gd", 10, (0,), True, lrs=(0.1, -1.0))
    with pytest.raises(ValueError, match="Invalid kappa: 0.5"):
        M.matrix_quadratic(kappa=0.5)
    with pytest.raises(TypeError, match="Invalid rotated"):
        M.matrix_quadratic(rotated="yes")
    with pytest.raises(ValueError, match="Invalid steps: 0"):
        M.quadratic_run(M.matrix_quadratic(m=2, n=2), optbook.sgd(0.1), 0)
    with pytest.raises(ValueError, match="Invalid s"):
        M.singular_value_map([1.5])
    with pytest.raises(ValueError, match="Invalid name: 'lion'"):
        M.state_floats("lion", 3, 2)
    with pytest.raises(ValueError, match="needs a matrix"):
        M.polar_factor(np.ones(3))


@pytest.mark.parametrize("shape", [(7, 4), (4, 7), (5, 5)])
def test_polar_factor_by_its_definition(shape):
    """The definition of the polar factor: G = Q P with Q's rows or columns orthonormal and
    P symmetric positive semi-definite (a unique Q for a full-rank G)."""
    G = np.random.default_rng(0).standard_normal(shape)
    Q = M.polar_factor(G)
    k = min(shape)
    gram = Q.T @ Q if shape[0] >= shape[1] else Q @ Q.T
    np.testing.assert_allclose(gram, np.eye(k), atol=1e-12)
    P = Q.T @ G if shape[0] >= shape[1] else G @ Q.T   # G = Q P  or  G = P Q
    np.testing.assert_allclose(P, P.T, atol=1e-12)
    assert np.linalg.eigvalsh(P).min() > 0
    np.testing.assert_allclose(Q @ P if shape[0] >= shape[1] else P @ Q, G, atol=1e-12)


@pytest.mark.parametrize("shape", [(7, 4), (4, 7)])
def test_shampoo_without_accumulation_is_the_polar_factor(shape):
    G = np.random.default_rng(1).standard_normal(shape)
    np.testing.assert_allclose(M.shampoo_one_step(G, eps=1e-12), M.polar_factor(G), atol=1e-6)
    # and optbook's scale_by_shampoo makes the same first step (statistics = G G^T, G^T G)
    t = optbook.scale_by_shampoo(eps=1e-12)
    step, _ = t.update(G, t.init(G), G)
    np.testing.assert_allclose(step, M.shampoo_one_step(G, eps=1e-12), atol=1e-9)


@pytest.mark.parametrize("coefficients", [M.NS_COEFFICIENTS, M.CUBIC_COEFFICIENTS])
def test_scalar_map_is_newton_schulz_on_singular_values(coefficients):
    rng = np.random.default_rng(2)
    s = np.array([1.0, 0.5, 0.1, 0.01, 0.002])
    U = np.linalg.qr(rng.standard_normal((8, 5)))[0]
    V = np.linalg.qr(rng.standard_normal((5, 5)))[0]
    G = (U * s) @ V.T
    X = optbook.newton_schulz(G, 5, coefficients, eps=0.0, dtype="float64")
    expected = M.singular_value_map(s / np.linalg.norm(s), 5, coefficients)
    np.testing.assert_allclose(X, (U * expected) @ V.T, atol=1e-12)
    # on a diagonal matrix the map acts entry by entry
    D = np.diag(s / np.linalg.norm(s))
    np.testing.assert_allclose(np.diag(optbook.newton_schulz(D, 5, coefficients, eps=0.0,
                                                             dtype="float64")),
                               expected, atol=1e-13)


def test_cubic_converges_to_one_and_quintic_does_not():
    s = np.array([0.3, 0.7])
    np.testing.assert_allclose(M.singular_value_map(s, 60, M.CUBIC_COEFFICIENTS), 1.0, atol=1e-12)
    q = M.singular_value_map(np.linspace(0.002, 1, 500), 5)
    assert 0.6 < q.min() and q.max() < 1.25 and np.ptp(q) > 0.3


@pytest.mark.parametrize("name", ["adam", "shampoo", "soap", "muon"])
def test_state_formula_matches_the_stored_state(name):
    assert M.measured_state_floats(name, 6, 4) == M.state_floats(name, 6, 4)


def test_log_mean_floors_round_off():
    assert M._log_mean([1e-33, 1e-30]) == math.log10(M.FLOOR)
    assert M._log_mean([1.0, math.inf]) == math.inf


def test_print_tuned_shows_round_off_as_the_floor(capsys):
    record = {"method": "shampoo", "rotated": True, "steps": 5, "seeds": [0, 1], "lrs": [1.0, 2.0],
              "final": [[1e-33, 3e-33], [1e-3, 1e-3]], "best_lr": 1.0, "interior": False}
    M.print_tuned([record])
    out = capsys.readouterr().out
    assert "≤1e-24 (1.0e-33–3.0e-33)" in out and "round-off" in out


def test_classical_quintic_converges_to_one():
    """(15 s - 10 s^3 + 3 s^5) / 8 has p(1) = 1, p'(1) = p''(1) = 0: a fixed point of order 3."""
    a, b, c = M.QUINTIC_NEWTON_SCHULZ
    assert a + b + c == pytest.approx(1.0)
    assert a + 3 * b + 5 * c == pytest.approx(0.0)
    np.testing.assert_allclose(M.singular_value_map(np.array([0.05, 0.5]), 30,
                                                    M.QUINTIC_NEWTON_SCHULZ), 1.0, atol=1e-12)


def test_newton_schulz_explorer_is_an_in_page_figure():
    """Its presets are the chapter's coefficient sets; the rest is tests/test_scalar_map_figure.py."""
    ex = M.newton_schulz_explorer()
    assert ex.spec["kind"] == "scalar_map"
    assert [tuple(c["coefficients"]) for c in ex.spec["choices"]] == list(M.NS_CHOICES.values())
    with pytest.raises(ValueError, match="Invalid steps"):
        M.newton_schulz_explorer(steps=11)
