"""Sphinx extension: the single-page build (``make pdf``) renders every node the HTML build does.

Sphinx looks a node's HTML visitors up under the builder's name ("html",
"singlehtml") and falls back to the format ("html") only when no extension
registered anything for that builder name at all. Some of the book's
extensions register "singlehtml" visitors, and sphinx-proof registers its
nodes (definitions, theorems, proofs) for "html" only, so the single-page
build stops on "unknown node type: definition_node". This copies every
missing "html" visitor to "singlehtml" once all extensions are loaded.
"""

from __future__ import annotations

from sphinx.application import Sphinx


def copy_html_visitors(app: Sphinx) -> None:
    handlers = app.registry.translation_handlers
    single = handlers.setdefault("singlehtml", {})
    for node, visitors in handlers.get("html", {}).items():
        single.setdefault(node, visitors)


def setup(app: Sphinx) -> dict:
    app.connect("builder-inited", copy_html_visitors)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
