"""Static (matplotlib) figures stay legible on a phone (issue 21, item 3).

Before: 51 notebook figures were one PNG each, drawn for a desktop column and
shrunk to ~20 % of their pixels at 390 px, leaving 3-5 CSS-px text. Now each
is a ``<picture>`` (optbook.figures.responsive): the figure as drawn, and
under ``(max-width: 600px)`` its panels stacked in one column. Each rendering
carries the smallest text it holds in CSS px at its natural size
(``data-optbook-text-px``, from the figure's font sizes) and its natural
size (``width``); the browser gives the rendered width and the image's real
pixel size. At 390 px, on every chapter page:

* every notebook image is such a picture (a bare PNG output means a notebook
  was not re-executed with ``plotting.use_style()``'s formatter);
* a figure with a phone rendering shows that one (``currentSrc``), and the
  wide one at 1280 px;
* each image's smallest text, ``text_px * rendered_width / natural_width``,
  is >= 9 CSS px, and agrees with the ``data-optbook-min-text-px-at-390``
  that Python computed for a 358-px column;
* the ``width`` attribute is the image's real size: the stacked PNG (``2x``
  srcset) has ``naturalWidth == width``, the wide one (``src``, drawn at twice
  the figure's dpi) ``naturalWidth == 2 * width``.
"""
from __future__ import annotations

import pytest

from site_audit import SITE, open_page, page_id, site_pages

MIN_TEXT_PX = 9.0
PHONE, DESKTOP = 390, 1280

CHAPTERS = [p for p in site_pages()
            if p.relative_to(SITE).parts[0] == "book"
            and ('class="cell_output' in (text := p.read_text(encoding="utf-8"))
                 or "optbook-static-figure" in text)]

MEASURE = r"""async () => {
  const imgs = [...document.querySelectorAll('.cell_output img, picture.optbook-static-figure img')]
    .filter(i => !i.classList.contains('optbook-figure-static'));   // in-page figures' stills
  for (const i of imgs) i.loading = 'eager';
  await Promise.all(imgs.map(i => i.complete ? 0 : new Promise(r => { i.onload = i.onerror = r; })));
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  return imgs.map((img, k) => {
    const picture = img.closest('picture.optbook-static-figure');
    const source = picture && picture.querySelector('source');
    const sourceUrl = source ? new URL(source.getAttribute('srcset').trim().split(/\s+/)[0], document.baseURI).href : null;
    const chosen = source && img.currentSrc === sourceUrl ? source : img;
    return {
      index: k, alt: (img.alt || '').slice(0, 60), picture: !!picture, hasSource: !!source,
      usesSource: chosen === source, currentSrc: img.currentSrc.split('/').pop(),
      rendered: img.getBoundingClientRect().width, naturalWidth: img.naturalWidth,
      width: Number(chosen.getAttribute('width')),
      textPx: Number(chosen.dataset.optbookTextPx),
      at390: Number(img.getAttribute('data-optbook-min-text-px-at-390') ?? NaN),
    };
  });
}"""


def _figures(browser, path, width):
    page = open_page(browser, path, width)
    try:
        return page.evaluate(MEASURE)
    finally:
        page.close()


@pytest.mark.parametrize("path", CHAPTERS, ids=page_id)
def test_static_figure_text_is_at_least_9_px_on_a_phone(browser, path):
    figures = _figures(browser, path, PHONE)
    bare = [f"#{f['index']} {f['currentSrc'][:40]}" for f in figures if not f["picture"]]
    assert not bare, (f"{len(bare)} notebook images are bare PNGs (re-execute the notebook "
                      f"so plotting.use_style() gives them a phone rendering): {bare}")
    problems = []
    for f in figures:
        where = f"#{f['index']} ({f['alt']})"
        if f["hasSource"] and not f["usesSource"]:
            problems.append(f"{where}: the phone rendering is not the one shown ({f['currentSrc']})")
            continue
        expected_natural = f["width"] if f["usesSource"] else 2 * f["width"]
        if abs(f["naturalWidth"] - expected_natural) > 1:
            problems.append(f"{where}: image is {f['naturalWidth']} px, its width says {f['width']}")
        if not (f["textPx"] > 0 and f["at390"] > 0 and f["width"] > 0):   # NaN too
            problems.append(f"{where}: text sizes or width missing: {f}")
            continue
        text = f["textPx"] * f["rendered"] / f["width"]
        if text < MIN_TEXT_PX:
            problems.append(f"{where}: smallest text {text:.2f} CSS px at {f['rendered']:.0f} px wide")
        if abs(text - f["at390"]) > 0.03 * f["at390"]:
            problems.append(f"{where}: measured {text:.2f} px, data attribute says {f['at390']}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", CHAPTERS, ids=page_id)
def test_desktop_shows_the_figure_as_drawn(browser, path):
    figures = [f for f in _figures(browser, path, DESKTOP) if f["picture"]]
    assert not [f["index"] for f in figures if f["usesSource"]]
    # no wider than drawn, and no narrower than needed to fill the column
    for f in figures:
        assert f["rendered"] <= f["width"] + 1
