/* Fixes for the theme: pydata-sphinx-theme 0.17.1 under sphinx-book-theme
   1.3.0 (added to every page by scripts/book_site.py). Each names the
   upstream issue it works around; remove it when the pinned theme fixes it.
   tests/browser/test_navigation.py and test_accessibility.py guard them. */
(function () {
  "use strict";

  function ready(callback) {
    if (document.readyState !== "loading") callback();
    else document.addEventListener("DOMContentLoaded", callback);
  }

  /* The sidebar buttons. Upstream: pydata-sphinx-theme#2451 ("Mobile
     primary-sidebar toggle silently does nothing with some themes") and
     sphinx-book-theme#917 (the desktop collapse button gets no handler).
     Both themes render a `.primary-toggle` (and a `.secondary-toggle`); both
     scripts bind `document.querySelector(...)`, the first in the page, which
     is the navbar button that sphinx-book-theme hides at every width. The
     visible buttons (hamburger, "On this page", the sidebar collapse at
     1280 px) got no listener. Here each other toggle hands its click to the
     bound one, so the themes' own code opens the drawer (narrow screens) or
     collapses the sidebar (wide screens). */
  function forwardSidebarToggles() {
    ["primary", "secondary"].forEach(function (kind) {
      var toggles = document.querySelectorAll("." + kind + "-toggle");
      var bound = toggles[0];
      Array.prototype.slice.call(toggles, 1).forEach(function (button) {
        button.addEventListener("click", function (event) {
          event.preventDefault();
          event.stopPropagation();
          bound.click();
        });
      });
    });
  }

  /* A link in a drawer that leads to a place on this same page ("On this
     page", or the current chapter's sections) closes the drawer: the page
     moves behind it, and the reader should see where it went (the theme
     leaves the modal open; no upstream issue found). */
  function closeDrawersOnInPageLinks() {
    ["pst-primary-sidebar-modal", "pst-secondary-sidebar-modal"].forEach(function (id) {
      var dialog = document.getElementById(id);
      if (!dialog) return;
      dialog.addEventListener("click", function (event) {
        var link = event.target.closest && event.target.closest("a[href]");
        if (!link || !dialog.open) return;
        var url = new URL(link.href, document.baseURI);
        var here = new URL(document.baseURI);
        if (!(url.hash && url.origin === here.origin && url.pathname === here.pathname)) return;
        var target = document.getElementById(decodeURIComponent(url.hash.slice(1)));
        // the theme gives focus back to the drawer's button when the drawer
        // closes, which scrolls the header into view: go back to the target
        dialog.addEventListener("close", function () {
          setTimeout(function () { if (target) target.scrollIntoView(); }, 0);
        }, {once: true});
        dialog.close();
      });
    });
  }

  /* Accessible names the theme's controls lack or contradict (axe-core,
     WCAG 2.1 A: label-content-name-mismatch, summary-name).
     - The search button shows "Search Ctrl+K" but is named "Search" by its
       aria-label (pydata-sphinx-theme components/search-button-field.html;
       the visible shortcut was discussed in pydata-sphinx-theme#1499). The
       aria-label goes, so its name is the text it shows.
     - The colour-mode button is named "Color mode" while its icons carry
       titles ("Light", "Dark", "System Settings"; pydata-sphinx-theme#1924
       added them) that Font Awesome turns into <svg role="img"><title>, so
       the visible label and the name disagree. The icons become decorative
       and the button's name says the current mode: "Color mode: Light".
     - The sidebar's expand/collapse <summary> holds only a chevron icon
       (markup of pydata-sphinx-theme#1582): it gets the name of the chapter
       whose sections it shows. */
  function nameSearchButtons() {
    document.querySelectorAll(".search-button__button[aria-label]").forEach(function (button) {
      if (button.textContent.trim()) button.removeAttribute("aria-label");
    });
  }

  var MODE_NAMES = {light: "Light", dark: "Dark", auto: "System Settings"};

  function nameThemeSwitch(button) {
    button.querySelectorAll("[title]").forEach(function (icon) { icon.removeAttribute("title"); });
    button.querySelectorAll("svg").forEach(function (icon) {
      icon.querySelectorAll("title").forEach(function (title) { title.remove(); });
      icon.removeAttribute("role");
      icon.removeAttribute("aria-labelledby");
      icon.setAttribute("aria-hidden", "true");
    });
    var mode = document.documentElement.dataset.mode || "auto";
    var label = "Color mode: " + (MODE_NAMES[mode] || mode);
    if (button.getAttribute("aria-label") !== label) button.setAttribute("aria-label", label);
  }

  function nameThemeSwitches() {
    document.querySelectorAll(".theme-switch-button").forEach(function (button) {
      nameThemeSwitch(button);
      // Font Awesome swaps the <i> icons for <svg> when it gets to them
      new MutationObserver(function () { nameThemeSwitch(button); })
        .observe(button, {childList: true, subtree: true});
    });
    new MutationObserver(function () {
      document.querySelectorAll(".theme-switch-button").forEach(nameThemeSwitch);
    }).observe(document.documentElement, {attributes: true, attributeFilter: ["data-mode"]});
  }

  function nameSidebarSummaries() {
    document.querySelectorAll(".bd-sidenav details > summary").forEach(function (summary) {
      if (summary.textContent.trim() || summary.hasAttribute("aria-label")) return;
      var item = summary.closest("li");
      var link = item && item.querySelector(":scope > a");
      var title = link ? link.textContent.trim() : "";
      summary.setAttribute("aria-label", title ? "Sections of " + title : "Sections");
    });
  }

  ready(forwardSidebarToggles);
  ready(closeDrawersOnInPageLinks);
  ready(nameSearchButtons);
  ready(nameThemeSwitches);
  ready(nameSidebarSummaries);
})();
