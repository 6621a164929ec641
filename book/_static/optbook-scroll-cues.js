/* Boxes that scroll sideways say so: display equations, tables, and code
   cells' input and output blocks wider than the column (added to every page
   by scripts/book_site.py).

   MathJax 3 does not break long display equations into lines, and a table
   of identifiers cannot shrink below its longest cell, so on a phone some
   are wider than the column. Each already scrolls inside its own box
   (pydata-sphinx-theme: `div.math mjx-container` and
   `.pst-scrollable-table-container` have `overflow: auto`), but nothing
   shows that it does: a phone draws no scrollbar until the box is scrolled,
   so the reader sees an equation or a column that simply stops. This script
   marks the boxes that overflow (class `optbook-scrolls`, redone whenever a
   box changes size); optbook-site.css then shades each edge that has more
   behind it (`optbook-more-left`, `optbook-more-right`, updated on scroll)
   and draws a thin scrollbar. An overflowing equation also takes keyboard
   focus (tabindex 0) so arrow keys scroll it; equations that fit stay out of
   the tab order (MathJax's `inTabOrder: false`, _config.yml). The theme
   gives scrolling tables and `pre` blocks their tab stop itself.

   Code cells' `pre` blocks (input and output, issue 21 item 6): the
   notebooks' code lines fit the column at 1280 px
   (tests/test_code_line_length.py), but a printed table can be wider, and on
   a phone every block is; such a block already scrolls in its own box
   (the theme's `pre { overflow: auto }`) and now shows the same cue.
   Guarded by tests/browser/test_reader_layout.py. */
(function () {
  "use strict";

  var SELECTOR = 'mjx-container[display="true"], .pst-scrollable-table-container, '
                 + '.cell_input pre, .cell_output pre';

  function edges(box) {
    var more = box.scrollWidth - box.clientWidth;
    box.classList.toggle("optbook-more-left", box.scrollLeft > 1);
    box.classList.toggle("optbook-more-right", box.scrollLeft < more - 1);
  }

  function onScroll(event) { edges(event.currentTarget); }

  function update(box) {
    var overflows = box.scrollWidth > box.clientWidth + 1;
    var isMath = box.tagName === "MJX-CONTAINER";
    if (overflows && !box.classList.contains("optbook-scrolls")) {
      box.classList.add("optbook-scrolls");
      if (isMath) box.setAttribute("tabindex", "0");
      box.addEventListener("scroll", onScroll, {passive: true});
    } else if (!overflows && box.classList.contains("optbook-scrolls")) {
      box.classList.remove("optbook-scrolls", "optbook-more-left", "optbook-more-right");
      if (isMath) box.setAttribute("tabindex", "-1");
      box.removeEventListener("scroll", onScroll);
    }
    if (overflows) edges(box);
  }

  var observer = null;

  function watch() {
    if (!observer) {
      observer = new ResizeObserver(function (entries) {
        entries.forEach(function (entry) { update(entry.target); });
      });
    }
    document.querySelectorAll(SELECTOR).forEach(function (box) {
      if (box.dataset.optbookWatched) return;
      box.dataset.optbookWatched = "1";
      update(box);
      observer.observe(box);
    });
  }

  function start() {
    watch();   // tables now; equations once MathJax has typeset them
    var mj = window.MathJax;
    if (mj && mj.startup && mj.startup.promise) mj.startup.promise.then(watch);
  }

  if (document.readyState !== "loading") start();
  else document.addEventListener("DOMContentLoaded", start);
})();
