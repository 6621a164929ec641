"""One visit per page and width that measures what a reader on a phone or a keyboard meets.

``audit(browser, path, width)`` opens a built page from ``file://`` (every
request to another host aborted), waits for MathJax and the figures, and
returns plain numbers and lists that ``test_reader_layout.py`` and
``test_accessibility.py`` assert on:

* ``page_overflow``: how many CSS pixels the page is wider than the viewport
  (the reader can pan the whole page sideways by that much);
* ``scrollers``: every display equation and every table, with how much of it
  is hidden (outside every box that clips it and out of reach of any
  scrolling: lost to the reader), how much of it scrolls, and, for one that
  scrolls, whether it shows a cue at the edge that has more behind it and
  takes keyboard focus;
* ``eqno_overlaps``: equation numbers drawn over the visible equation;
* ``cut_code``: inline code in the article that the reader cannot see whole;
* ``figure_text`` / ``figure_panels``: the smallest rendered text size of each
  interactive figure's SVG panels, and the rendered widths of panels that
  share a figure and a viewBox (a grid squeezed beside its colour bar);
* ``tab_stops``: the sequential focus order: how many stops, how many are
  equations, how many come before the first figure's first control;
* ``axe``: axe-core's violations of the WCAG 2.0/2.1 A and AA rules, run
  offline from ``node_modules/axe-core`` (pinned in package.json).

A page is opened once per width, however many tests read its numbers.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SITE = Path(os.environ.get("OPTBOOK_HTML_DIR") or os.environ.get("OPTBOOK_SITE_DIR")
            or ROOT / "_build" / "html" / "en").resolve()
REQUIRE_SITE = os.environ.get("OPTBOOK_REQUIRE_SITE") == "1"
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
WIDTHS = (390, 1280)
PHONE, DESKTOP = WIDTHS


def site_pages() -> list[Path]:
    """Every page a reader can open: the book's pages, the index, search, proofs.

    ``index.html`` only redirects to the landing page, and ``_static`` holds
    template fragments, not pages.
    """
    if not (SITE / "index.html").is_file():
        if REQUIRE_SITE:
            pytest.fail(f"no built site at {SITE}: run `make book`", pytrace=False)
        pytest.skip(f"no built site at {SITE}: run `make book`", allow_module_level=True)
    return sorted(p for p in SITE.rglob("*.html")
                  if p.relative_to(SITE).parts[0] not in ("_static", "_sources")
                  and p.relative_to(SITE).as_posix() != "index.html")


def page_id(path: Path) -> str:
    return path.relative_to(SITE).as_posix()


def open_page(browser, path: Path, width: int, height: int = 844, **context):
    """A fresh page of ``path`` at ``width`` px, offline, MathJax typeset and figures drawn."""
    page = browser.new_page(viewport={"width": width, "height": height}, **context)
    page.set_default_timeout(120_000)             # a loaded 2-core machine is slow
    page.route(re.compile(r"^(https?|wss?)://"), lambda r: r.abort())
    page.goto(path.as_uri(), wait_until="load")
    settle(page)
    return page


def settle(page) -> None:
    """Wait for MathJax's typesetting, the figures, and two frames (ResizeObservers run)."""
    page.evaluate("""async () => {
        const sleep = ms => new Promise(r => setTimeout(r, ms));
        if (document.querySelector('script[src*="mathjax"]')) {
            for (let i = 0; i < 1200 && !(window.MathJax && MathJax.startup && MathJax.startup.promise); i++)
                await sleep(50);
            await MathJax.startup.promise;
        }
        const n = document.querySelectorAll('.optbook-figure').length;
        for (let i = 0; i < 1200 && document.querySelectorAll('.optbook-figure[data-optbook-ready]').length < n; i++)
            await sleep(50);
        await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
        await sleep(50);
    }""")


MEASURE = r"""() => {
  const vw = document.documentElement.clientWidth;
  const pageOverflow = Math.max(document.documentElement.scrollWidth, document.body.scrollWidth) - vw;
  const scrolls = s => s === 'auto' || s === 'scroll';
  const shown = e => e.getClientRects().length > 0 && getComputedStyle(e).visibility !== 'hidden';

  // How much of `rect` (the box of `el`) the reader can neither see nor scroll
  // to. Walking up: a clipping ancestor cuts off what lies outside it; a
  // scrolling ancestor shows everything within its scroll extent, and from
  // there up only its own box matters. The page's own sideways scrolling is
  // page_overflow, counted apart.
  function hidden(el, rect) {
    let left = rect.left, right = rect.right, lost = 0;
    for (let a = el.parentElement; a && a !== document.body; a = a.parentElement) {
      const s = getComputedStyle(a);
      if (s.overflowX === 'visible') continue;
      const r = a.getBoundingClientRect();
      if (scrolls(s.overflowX)) {
        const reachLeft = r.left - a.scrollLeft, reachRight = reachLeft + a.scrollWidth;
        lost += Math.max(0, right - reachRight - 1) + Math.max(0, reachLeft - left - 1);
        left = r.left; right = r.right;
      } else {
        lost += Math.max(0, right - r.right - 1) + Math.max(0, r.left - left - 1);
        left = Math.max(left, r.left); right = Math.min(right, r.right);
      }
      if (right <= left) break;
    }
    return lost;
  }

  // Display equations (MathJax's box scrolls) and tables (the theme's
  // scrollable container): each fits, or scrolls with a cue and a tab stop.
  const scrollers = [];
  const cued = (box) => {
    const s = getComputedStyle(box);
    const edge = box.scrollLeft > 1 ? 'optbook-more-left' : 'optbook-more-right';
    const drawn = [s.backgroundImage, s.maskImage, s.webkitMaskImage].some(v => v && v.includes('gradient'));
    return box.classList.contains('optbook-scrolls') && box.classList.contains(edge) && drawn;
  };
  const boxes = [...document.querySelectorAll('mjx-container[display="true"]')].map(c => ['equation', c, c.querySelector(':scope > svg')])
    .concat([...document.querySelectorAll('article table')].map(t => ['table', t.closest('.pst-scrollable-table-container') || t, t]));
  for (const [kind, box, content] of boxes) {
    if (!content || !shown(box)) continue;
    const holder = kind === 'equation' ? (box.closest('div.math') || box) : box;
    const label = holder.id || (holder.querySelector('.eqno, caption') || {}).textContent || (content.textContent || '').trim().slice(0, 30);
    const overflowing = box.scrollWidth > box.clientWidth + 1;
    const scrolling = overflowing && scrolls(getComputedStyle(box).overflowX);
    const r = content.getBoundingClientRect();
    scrollers.push({
      kind, label: String(label).trim().slice(0, 60),
      hidden: Math.round(hidden(content, r) + (overflowing && !scrolling ? box.scrollWidth - box.clientWidth : 0)),
      scroll: scrolling ? box.scrollWidth - box.clientWidth : 0,
      cue: scrolling ? cued(box) : null,
      focusable: scrolling ? box.tabIndex >= 0 : null,
    });
  }

  // equation numbers: never cut, never on top of the visible equation
  const eqnoOverlaps = [];
  document.querySelectorAll('div.math > .eqno').forEach(eqno => {
    const c = eqno.parentElement.querySelector('mjx-container');
    const svg = c && c.querySelector(':scope > svg');
    if (!svg || !shown(eqno)) return;
    const e = eqno.getBoundingClientRect(), r = svg.getBoundingClientRect(), cr = c.getBoundingClientRect();
    const left = Math.max(r.left, cr.left), right = Math.min(r.right, cr.right);
    const vertical = Math.min(e.bottom, r.bottom) - Math.max(e.top, r.top);
    const across = Math.min(e.right, right) - Math.max(e.left, left);
    if ((vertical > 2 && across > 1) || hidden(eqno, e) > 1) eqnoOverlaps.push(eqno.textContent.trim());
  });

  // inline code the reader cannot see whole (cut by a clipping box)
  const cutCode = [];
  document.querySelectorAll('article code.literal').forEach(code => {
    if (!shown(code)) return;
    for (const r of code.getClientRects())
      if (hidden(code, r) > 1) { cutCode.push(code.textContent.trim().slice(0, 40)); break; }
  });

  // the figures' text, at the size it is drawn; panels of one figure sharing a viewBox
  const figureText = [], figurePanels = [];
  document.querySelectorAll('.optbook-figure').forEach((fig, i) => {
    let smallest = Infinity, where = '';
    const widths = {};
    fig.querySelectorAll('svg[viewBox]').forEach(svg => {
      const vb = svg.viewBox.baseVal, r = svg.getBoundingClientRect();
      if (!vb || !vb.width || !r.width || !shown(svg)) return;
      const scale = r.width / vb.width;
      if (!svg.classList.contains('optbook-fig-legend')) (widths[vb.width + 'x' + vb.height] ||= []).push(Math.round(r.width));
      svg.querySelectorAll('text').forEach(t => {
        if (!t.textContent.trim() || !t.getClientRects().length) return;
        const px = parseFloat(getComputedStyle(t).fontSize) * scale;
        if (px < smallest) { smallest = px; where = (svg.getAttribute('aria-label') || svg.getAttribute('class') || '').slice(0, 50) + ': ' + t.textContent.trim().slice(0, 20); }
      });
    });
    if (smallest < Infinity) figureText.push({figure: i, px: +smallest.toFixed(1), where});
    for (const [vb, ws] of Object.entries(widths))
      if (ws.length > 1) figurePanels.push({figure: i, viewBox: vb, widths: ws});
  });
  return {pageOverflow, scrollers, eqnoOverlaps, cutCode: [...new Set(cutCode)], figureText, figurePanels};
}"""

TAB_STOPS = r"""() => {
  const sel = 'a[href], button, input, select, textarea, summary, [tabindex], area[href], iframe, [contenteditable=""], [contenteditable="true"]';
  const all = [...document.querySelectorAll(sel)];
  const stops = all.filter(e => {
    if (e.tabIndex < 0 || e.disabled) return false;
    if (e.closest('[inert], dialog:not([open])')) return false;
    const s = getComputedStyle(e);
    if (s.visibility === 'hidden' || s.display === 'none' || !e.getClientRects().length) return false;
    return true;
  });
  const firstControl = stops.findIndex(e => e.closest('.optbook-figure'));
  return {total: stops.length,
          math: stops.filter(e => e.closest('mjx-container')).length,
          scrolling_math: stops.filter(e => e.matches('mjx-container.optbook-scrolls')).length,
          positive: all.filter(e => e.tabIndex > 0).length,
          before_first_figure: firstControl};
}"""


def run_axe(page) -> list[dict]:
    page.add_script_tag(path=str(AXE))
    return page.evaluate("""async tags => {
        const r = await axe.run(document, {runOnly: {type: 'tag', values: tags},
                                           resultTypes: ['violations']});
        return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.map(n => ({target: n.target.join(' '), summary: n.failureSummary}))}));
    }""", AXE_TAGS)


# What a figure's live regions say before and after its first control moves
# (the keyboard: End, or Home if already at the end, on a slider; the next
# option of a menu; ArrowRight on a heatmap grid).
LIVE = r"""async () => {
  const regions = root => [...root.querySelectorAll('[aria-live], [role=status], [role=log], output')]
    .filter(e => (e.getAttribute('aria-live') || 'polite') !== 'off');
  const key = (el, k) => { el.dispatchEvent(new KeyboardEvent('keydown', {key: k, bubbles: true})); };
  const out = [];
  for (const root of document.querySelectorAll('.optbook-figure')) {
    const live = regions(root);
    const before = live.map(e => e.textContent).join('\n');
    const slider = root.querySelector('input[type=range]');
    const menu = root.querySelector('select');
    const grid = root.querySelector('svg[tabindex="0"]');
    let control = 'none';
    if (slider) {
      control = 'slider';
      slider.focus();
      const to = Number(slider.value) >= Number(slider.max) ? slider.min : slider.max;
      slider.value = to;
      slider.dispatchEvent(new Event('input', {bubbles: true}));
      slider.dispatchEvent(new Event('change', {bubbles: true}));
    } else if (menu) {
      control = 'menu';
      menu.focus();
      menu.selectedIndex = (menu.selectedIndex + 1) % menu.options.length;
      menu.dispatchEvent(new Event('input', {bubbles: true}));
      menu.dispatchEvent(new Event('change', {bubbles: true}));
    } else if (grid) {
      control = 'grid';
      grid.focus();
      key(grid, 'ArrowRight');
    }
    await new Promise(r => requestAnimationFrame(() => setTimeout(r, 30)));
    const after = regions(root).map(e => e.textContent).join('\n');
    out.push({control, regions: live.length, changed: after !== before});
  }
  return out;
}"""

MOTION = r"""() => {
  const seconds = v => v.split(',').map(d => parseFloat(d) * (d.trim().endsWith('ms') ? 0.001 : 1));
  const moving = [];
  for (const e of document.querySelectorAll('*')) {
    const s = getComputedStyle(e);
    const transition = Math.max(...seconds(s.transitionDuration)) + Math.max(...seconds(s.transitionDelay));
    const animation = s.animationName !== 'none' ? Math.max(...seconds(s.animationDuration)) : 0;
    if (transition > 0.001 || animation > 0.001)
      moving.push(`${e.tagName.toLowerCase()}.${String(e.className.baseVal ?? e.className).split(' ')[0]}`);
  }
  return {moving: [...new Set(moving)], scroll: getComputedStyle(document.documentElement).scrollBehavior};
}"""


def _measure(page) -> dict:
    data = page.evaluate(MEASURE)
    data["tab_stops"] = page.evaluate(TAB_STOPS)
    data["axe"] = run_axe(page)
    page.emulate_media(reduced_motion="reduce")
    data["reduced_motion"] = page.evaluate(MOTION)
    page.emulate_media(reduced_motion="no-preference")
    return data


_CACHE: dict[tuple[str, int], dict] = {}


def audit(browser, path: Path, width: int) -> dict:
    """Everything above for one page at one width (measured once, then cached).

    A page is loaded once, at the laptop width, measured, then narrowed to
    the phone width (as a reader turns a tablet or narrows a window: the
    layout, the theme's tab stops and the scroll cues follow the resize) and
    measured again; MathJax typesets it only once. Last, each figure's first
    control is moved (``live``, kept with the laptop's numbers).
    """
    key = (str(path), width)
    if key not in _CACHE:
        if not AXE.is_file():
            pytest.fail(f"{AXE} is missing: `npm ci` (axe-core is pinned in package.json)")
        page = open_page(browser, path, DESKTOP)
        try:
            desktop = _measure(page)
            page.set_viewport_size({"width": PHONE, "height": 844})
            # the theme recounts its scrollable tab stops 300 ms after a resize
            page.wait_for_timeout(450)
            settle(page)
            phone = _measure(page)
            desktop["live"] = page.evaluate(LIVE)
        finally:
            page.close()
        _CACHE[(str(path), DESKTOP)] = desktop
        _CACHE[(str(path), PHONE)] = phone
    return _CACHE[key]
