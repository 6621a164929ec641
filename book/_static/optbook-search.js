/* Search results show readable math, not raw TeX (added to every page by
   scripts/book_site.py; only the search page uses it).

   Sphinx's search page (searchtools.js, Sphinx 7.4) fetches each result's
   page and shows a snippet of its text. The pages hold their math as TeX
   for MathJax to typeset (`\( g_t = \nabla_\theta\mathcal{L}(\theta_t) \)`),
   so the snippets showed that TeX. Here every math element of the fetched
   page becomes plain text first (g_t = ∇_θ L(θ_t)). No upstream issue found
   (Sphinx marks math `nohighlight` for the highlighting, sphinx-doc/sphinx
   #4844, but the snippets take the raw text). Guarded by
   tests/browser/test_site_served.py. */
(function () {
  "use strict";

  var NAMES = {
    alpha: "α", beta: "β", gamma: "γ", delta: "δ", epsilon: "ε", varepsilon: "ε", zeta: "ζ",
    eta: "η", theta: "θ", vartheta: "ϑ", iota: "ι", kappa: "κ", lambda: "λ", mu: "μ", nu: "ν",
    xi: "ξ", pi: "π", rho: "ρ", sigma: "σ", tau: "τ", upsilon: "υ", phi: "φ", varphi: "φ",
    chi: "χ", psi: "ψ", omega: "ω", Gamma: "Γ", Delta: "Δ", Theta: "Θ", Lambda: "Λ", Xi: "Ξ",
    Pi: "Π", Sigma: "Σ", Phi: "Φ", Psi: "Ψ", Omega: "Ω",
    nabla: "∇", partial: "∂", infty: "∞", cdot: "·", cdots: "⋯", ldots: "…", dots: "…",
    times: "×", le: "≤", leq: "≤", ge: "≥", geq: "≥", ne: "≠", neq: "≠", approx: "≈",
    sim: "∼", propto: "∝", in: "∈", notin: "∉", subset: "⊂", subseteq: "⊆", sum: "Σ", prod: "∏",
    int: "∫", to: "→", rightarrow: "→", leftarrow: "←", Rightarrow: "⇒", mapsto: "↦",
    ll: "≪", gg: "≫", pm: "±", mp: "∓", odot: "⊙", otimes: "⊗", circ: "∘", top: "ᵀ",
    prime: "′", langle: "⟨", rangle: "⟩", lVert: "‖", rVert: "‖", Vert: "‖", lvert: "|",
    rvert: "|", vert: "|", mid: "|", lfloor: "⌊", rfloor: "⌋", lceil: "⌈", rceil: "⌉",
    forall: "∀", exists: "∃", emptyset: "∅", star: "⋆", ast: "∗", ell: "ℓ", quad: " ",
    qquad: " ", colon: ":", lbrace: "{", rbrace: "}", sqrt: "√"
  };
  var KEEP_ARGUMENT = /\\(?:mathcal|mathbb|mathbf|mathrm|mathit|mathsf|mathtt|boldsymbol|bm|text|textrm|textit|textbf|texttt|operatorname\*?|mbox|hat|widehat|bar|overline|tilde|widetilde|vec|dot|ddot|underbrace|overbrace)\s*\{([^{}]*)\}/g;
  var SIZING = /\\(?:left|right|middle|big|Big|bigg|Bigg|bigl|bigr|Bigl|Bigr|biggl|biggr|displaystyle|textstyle|scriptstyle|limits|nolimits|nonumber|notag)(?![A-Za-z])/g;

  /** TeX as a reader would say it in plain text: g_t = ∇_θ L(θ_t). */
  function texToText(tex) {
    var s = tex.trim()
      .replace(/^(\\\(|\\\[|\$\$?)/, "").replace(/(\\\)|\\\]|\$\$?)$/, "")
      .replace(/\\(?:begin|end)\{[^}]*\}/g, " ")
      .replace(/\\label\{[^}]*\}|\\tag\*?\{[^}]*\}/g, " ");
    for (var round = 0; round < 4; round++) {
      s = s.replace(KEEP_ARGUMENT, "$1")
           .replace(/\\[dt]?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}/g, "($1)/($2)")
           .replace(/\\sqrt\s*\{([^{}]*)\}/g, "√($1)")
           .replace(/([_^])\{([^{}]*)\}/g, function (m, op, x) {
             return x.length > 1 ? op + "(" + x + ")" : op + x;
           });
    }
    return s.replace(SIZING, "")
      .replace(/\\([A-Za-z]+)/g, function (m, name) { return NAMES.hasOwnProperty(name) ? NAMES[name] : name; })
      .replace(/\\\\/g, "; ")
      .replace(/\\[,;:!> ]/g, " ")
      .replace(/\\([{}%$&#_|])/g, "$1")
      .replace(/&/g, " ")
      .replace(/[{}]/g, "")
      .replace(/\s+/g, " ")
      .trim();
  }

  function install() {
    /* global Search */
    if (typeof Search === "undefined" || !Search.htmlToText || Search.optbookPlainMath) return;
    var original = Search.htmlToText;
    Search.htmlToText = function (htmlString, anchor) {
      var doc = new DOMParser().parseFromString(htmlString, "text/html");
      doc.querySelectorAll(".math").forEach(function (math) {
        math.querySelectorAll(".eqno").forEach(function (number) { number.remove(); });
        math.textContent = " " + texToText(math.textContent) + " ";
      });
      return original(doc.documentElement.outerHTML, anchor);
    };
    Search.optbookPlainMath = true;
  }

  window.optbookTexToText = texToText;
  if (document.readyState !== "loading") install();
  else document.addEventListener("DOMContentLoaded", install);
})();
