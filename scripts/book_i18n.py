"""Sphinx extension: what the translation catalogs hold, and what they leave out.

Loaded by ``_config.yml`` (``sphinx.local_extensions: {book_i18n: scripts}``).

The Japanese edition is the English sources plus message catalogs
(``locales/ja/LC_MESSAGES/book/<page>.po``, made by ``make catalogs``).
Sphinx's gettext builder extracts every paragraph, heading, caption, list
item and admonition of a page, and a few things that no translator should
touch. This extension marks those untranslatable before Sphinx extracts or
translates anything (a transform that runs before Sphinx's own ``Locale``
transform, priority 20):

* display math (``$$ ... $$``, ``{math}`` blocks, ``amsmath`` environments):
  formulas are the same in both editions, and a formula in a catalog could
  only drift from the English one;
* everything a notebook's code cell printed (MyST-NB's cell outputs):
  numbers are produced by the code and checked by nbval, so a translated
  copy could silently keep an old number. (Stream and HTML outputs are not
  extracted by Sphinx anyway; a ``text/markdown`` output would be.)

* a paragraph, heading, table cell or glossary term with nothing to translate: only inline math, inline code,
  references to another page by its own title (``{doc}``), citations
  (``{cite:t}``) and text without a Latin letter (numbers, version
  numbers, and the Japanese terms the glossary already gives), e.g. the
  cells of the notation table. ``{term}`` references stay translatable: a
  term's Japanese form is the translator's choice.

Code cells themselves are literal blocks, which Sphinx does not extract
(``gettext_additional_targets`` is empty).
"""

from __future__ import annotations

import re

from docutils import nodes
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.transforms import SphinxTransform


def in_cell_output(node: nodes.Node) -> bool:
    """True if ``node`` sits inside the output area of a notebook code cell."""
    parent = node.parent
    while parent is not None:
        if isinstance(parent, nodes.Element) and (
                parent.get("nb_element") in ("cell_code_output", "mime_bundle")
                or "cell_output" in parent.get("classes", ())):
            return True
        parent = parent.parent
    return False


LATIN = re.compile(r"[A-Za-z]")


def nothing_to_translate(node: nodes.Node) -> bool:
    """True if ``node`` holds no prose: math, code, own-title links, letterless text."""
    if isinstance(node, (nodes.math, nodes.literal, addnodes.index)):
        return True
    if isinstance(node, nodes.Text):
        return not LATIN.search(node.astext())
    if isinstance(node, addnodes.pending_xref):
        by_own_title = node.get("reftype") == "doc" and not node.get("refexplicit")
        citation = node.get("refdomain") == "cite"
        return by_own_title or citation
    if isinstance(node, nodes.Element) and node.children:
        return all(nothing_to_translate(child) for child in node.children)
    return False


class MarkUntranslatable(SphinxTransform):
    """Mark display math and code-cell outputs ``translatable = False``."""

    default_priority = 10  # before sphinx.transforms.i18n.Locale (20)

    def apply(self, **kwargs) -> None:
        for node in self.document.findall(nodes.math_block):
            node["translatable"] = False
        for node in self.document.findall(nodes.TextElement):
            if in_cell_output(node) or nothing_to_translate(node):
                node["translatable"] = False


def setup(app: Sphinx) -> dict:
    app.add_transform(MarkUntranslatable)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
