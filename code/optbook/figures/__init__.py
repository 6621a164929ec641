"""The book's figures: computed in the page on the website, live in Jupyter, static without scripts.

One idea per module:

=================  ==========================================================  ======================
module             what it holds                                               page runtime (js/src)
=================  ==========================================================  ======================
``spec``           the spec a page reads: tracing, sliders, landscapes,        ``index.js`` (+ rules,
                   validation against ``spec.schema.json`` (the schema,         landscapes, schedules)
                   written once, that the runtime is tested against too)
``paths``          kind ``paths``: optimizer paths on a 2-D landscape          ``paths.js``
``phase``          kind ``phase``: a momentum phase diagram beside paths       ``phase.js``
``nqm``            kind ``schedule``: a schedule and its noisy-quadratic loss  ``nqm.js``
``runs``           kind ``runs``: stored curves over a grid of settings        ``runs.js``
``heatmap``        kind ``heatmap``: a stored 2-D grid of results              ``heatmap.js``
``scalar_map``     kind ``scalar_map``: an odd quintic iterated k times on a   ``scalar_map.js``
                   log axis (Newton--Schulz on singular values)
``explorer``       :class:`Explorer`, the object every kind returns
``kernel``         the Jupyter side: the live ipywidgets box
``static``         the fallback without scripts: image + note (+ spec JSON)
``plotting``       the book's matplotlib style: colours, sizes, contours, paths
=================  ==========================================================  ======================

Nothing here imports :mod:`optbook.experiments`: a chapter's own figures
(Chapter 3's phase diagram, Chapter 6's schedule figure, ...) live beside its
experiments and build on these kinds, so imports run chapter → figures →
core (``tests/test_import_structure.py`` checks it).

Adding a figure to a chapter
----------------------------
An optimizer figure is one call in the notebook (or one function in the
chapter's experiments module); every numeric parameter becomes a continuous
slider the page recomputes::

    from optbook.figures import optimizer_explorer

    optimizer_explorer(
        lambda lr, beta: {"momentum": optbook.momentum(lr, beta)},
        grid={"lr": [0.01, 0.02, 0.04], "beta": [0.5, 0.9, 0.99]},   # slider ends, defaults
        defaults={"lr": 0.02, "beta": 0.9}, landscape=landscapes.quadratic(25),
        labels={"lr": "η", "beta": "β"}, title="η = {lr:g}, β = {beta:g}", steps=100)

Results of training runs are stored as numbers and drawn by the page:
:func:`curves_figure` (curves over a grid of settings) and
:func:`heatmap_figure` (a 2-D grid).  A figure no kind covers is a new kind:
a module here that writes its spec, its entry in ``spec.schema.json``, and a
module in ``js/src`` registered in ``js/src/index.js``.

In a notebook, make the figure the last expression of its cell (no trailing
``;``: under nbval a ``;`` does not silence output, see nbval issue 194).
Notebooks are executed with ``store_widget_state=False``
(``scripts/execute_notebooks.py``): stored widget state would make MyST-NB
load the ipywidgets JavaScript from a CDN, and the live widget needs a kernel
anyway.  The HTML is the same bytes for the same figure (PNG bytes differ
across machines; the nbval sanitizer replaces them).  The page's numbers are
optbook's: ``tests/browser/test_figure_parity.py`` runs every update rule,
landscape and schedule in chromium against optbook in float64, and
``tests/browser/test_figures.py`` walks every control of every figure of the
built book.
"""
from . import plotting, spec
from .explorer import Explorer
from .heatmap import heatmap_figure
from .nqm import nqm_figure
from .paths import optimizer_entry, optimizer_explorer, optimizer_runs, spec_figure
from .phase import phase_figure
from .runs import Axis, Curve, Mark, Panel, Series, curves_figure
from .scalar_map import scalar_map_figure

__all__ = ["Explorer", "plotting", "spec", "optimizer_explorer", "optimizer_runs", "spec_figure",
           "optimizer_entry", "phase_figure", "nqm_figure", "curves_figure", "heatmap_figure",
           "scalar_map_figure",
           "Axis", "Curve", "Mark", "Panel", "Series"]
