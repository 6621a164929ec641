"""Every figure spec against the schema written once (code/optbook/figures/spec.schema.json).

Python side: the schema is a valid JSON Schema (draft 2020-12); every spec
stored in the book's notebooks (what the notebooks emit: nbval checks that a
re-execution writes the same HTML) and every figure the chapters' modules build
validates; broken specs fail with the key named.  Runtime side:
``js/test/spec.test.mjs`` (run here with node when node is installed) checks
that every key the runtime reads is declared in the same schema and that the
runtime's validator agrees on the notebooks' specs.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

jsonschema = pytest.importorskip("jsonschema")

import optbook  # noqa: E402
from optbook import figures, landscapes  # noqa: E402
from optbook.figures import spec as F  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SPEC = re.compile(r'<script type="application/json" class="optbook-figure-spec">(.*?)</script>', re.S)


def notebook_specs():
    found = []
    for path in sorted((ROOT / "book").glob("*.ipynb")):
        nb = json.loads(path.read_text(encoding="utf-8"))
        for k, cell in enumerate(nb["cells"]):
            for out in cell.get("outputs", []):
                html = out.get("data", {}).get("text/html")
                if html:
                    html = "".join(html) if isinstance(html, list) else html
                    found += [pytest.param(json.loads(m), id=f"{path.stem}-cell{k}")
                              for m in SPEC.findall(html)]
    return found


NOTEBOOK_SPECS = notebook_specs()


def test_the_schema_is_a_schema():
    jsonschema.Draft202012Validator.check_schema(F.schema())
    assert F.schema()["properties"]["kind"]["enum"] == ["paths", "phase", "schedule", "runs", "heatmap",
                                                          "scalar_map"]


def test_each_kind_names_its_two_modules():
    for kind in F.schema()["properties"]["kind"]["enum"]:
        d = F.schema()["$defs"][kind]
        assert (ROOT / "code" / d["x-python"]).is_file(), d["x-python"]
        assert (ROOT / d["x-runtime"]).is_file(), d["x-runtime"]


def test_the_notebooks_emit_every_kind():
    assert {p.values[0]["kind"] for p in NOTEBOOK_SPECS} == set(F.schema()["properties"]["kind"]["enum"])


@pytest.mark.parametrize("spec", NOTEBOOK_SPECS)
def test_every_notebook_spec_validates(spec):
    F.validate(spec)
    jsonschema.validate(spec, F.schema())        # the whole schema too (its oneOf over kinds)


def _chapter_figures():
    from optbook.experiments import adam, foundations, matrix, momentum, schedules, sgd
    return {
        "newton_schulz_explorer": matrix.newton_schulz_explorer,
        "gd_learning_rate_explorer": lambda: foundations.gd_learning_rate_explorer(steps=20),
        "sgd_noise_figure": lambda: sgd.sgd_noise_figure(steps=20),
        "momentum_figure": momentum.momentum_figure,
        "heavy_ball_phase_figure": lambda: momentum.heavy_ball_phase_figure(steps=20),
        "adam_betas_figure": lambda: adam.adam_betas_figure(steps=20),
        "schedule_figure": lambda: schedules.schedule_figure(steps=40),
        "curves_figure": lambda: figures.curves_figure(
            lambda lr: {"sgd": np.array([[1.0, 0.5, np.nan]]) * lr},
            axes=[figures.Axis("lr", "η", [0.1, 0.2])], panels=[figures.Panel(x=[0, 1, 2])],
            title="t"),
        "heatmap_figure": lambda: figures.heatmap_figure(
            {"a": np.arange(6.0).reshape(1, 2, 3)}, x=("lr", "η", [1, 2, 3]), y=("wd", "λ", [1, 2]),
            title="t", curves={"a": np.ones((1, 2, 3, 4))}, curves_x=[0, 1, 2, 3]),
    }


@pytest.mark.parametrize("name", sorted(_chapter_figures()))
def test_every_figure_builder_writes_a_valid_spec(name):
    e = _chapter_figures()[name]()
    assert e.spec is not None, f"{name} fell back to frames"
    F.validate(e.spec)


@pytest.fixture
def paths_spec():
    e = figures.optimizer_explorer(lambda lr: {"sgd": optbook.sgd(lr)}, {"lr": [0.1, 0.2]},
                                   landscape=landscapes.quadratic(4.0), steps=5)
    assert e.spec is not None
    return json.loads(json.dumps(e.spec))


@pytest.mark.parametrize("change, message", [
    (lambda s: s.pop("steps"), r"at \(top level\): 'steps' is a required property"),
    (lambda s: s.update(stepz=3), r"Additional properties .*'stepz'"),
    (lambda s: s["optimizers"][0].update(rule="adamax"), r"at optimizers/0/rule: 'adamax' is not one of"),
    (lambda s: s["params"][0].update(scale="cubic"), r"at params/0/scale: 'cubic' is not one of"),
    (lambda s: s.update(steps="5"), r"at steps: '5' is not of type 'integer'"),
])
def test_broken_specs_are_refused_with_the_key_named(paths_spec, change, message):
    F.validate(paths_spec)
    change(paths_spec)
    with pytest.raises(ValueError, match=message):
        F.validate(paths_spec)


@pytest.mark.parametrize("change, message", [
    (lambda s: s["choices"][0].update(coefficients=[1.0, 2.0]),
     r"at choices/0/coefficients: \[1.0, 2.0\] is too short"),
    (lambda s: s["params"].pop(), r"at params: .* is too short"),
    (lambda s: s.update(domain=[0.0, 1.0]), r"at domain/0: 0.0 is less than or equal to"),
    (lambda s: s.update(reference={"label": "r", "coefficients": [1, 0, 0]}),
     r"at reference: .* is not valid under any of the given schemas"),
    (lambda s: s.update(samples=1), r"at samples: 1 is less than the minimum of 2"),
])
def test_broken_scalar_map_specs_are_refused_with_the_key_named(change, message):
    from optbook.experiments import matrix
    spec = json.loads(json.dumps(matrix.newton_schulz_explorer().spec))
    F.validate(spec)
    change(spec)
    with pytest.raises(ValueError, match=message):
        F.validate(spec)


def test_an_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="Invalid spec kind: 'pie'"):
        F.validate({"kind": "pie"})


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_runtime_reads_only_what_the_schema_declares():
    """js/test/spec.test.mjs: the runtime's side of the same schema."""
    if not (ROOT / "node_modules" / "d3").is_dir():
        pytest.skip("node_modules not installed (npm ci)")
    done = subprocess.run(["node", "--test", "js/test/"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
