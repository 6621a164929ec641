"""The display strings of a figure spec, and a spec with them translated.

The schema (``spec.schema.json``) marks every string a reader sees —
slider labels, titles, headlines, legends, menu entries, notes — with
``"x-translate": true``; names, colours, rules and parameter references are
not marked. ``scripts/catalogs.py`` collects the marked strings of every
figure the notebooks store into one catalog
(``locales/ja/LC_MESSAGES/figures.po``), and the Japanese build
(``scripts/book_i18n.py``) swaps them for their translations inside each
figure's JSON before the page is written.

A string with no Latin letter (``"0.1"``, ``"η"``, ``"β₁"``) has nothing to
translate and is left out, as the page catalogs leave out such text.

Around the spec, the figure's HTML holds two more strings a reader without
scripts sees: the still image's ``alt`` text and the one-line note under it
(``static.figure_html``); :func:`static_strings` finds them and
:func:`translate_html` swaps them too.

A headline is a template the page fills in (``"Adam: η = {lr}"``, see
``js/src/paths.js``): its ``{…}`` fields must survive translation, which
:func:`placeholders` lets a test check.
"""

from __future__ import annotations

import html as _html
import json
import re
from typing import Iterator, Mapping

from .spec import schema

LATIN = re.compile(r"[A-Za-z]")
PLACEHOLDER = re.compile(r"\{[^{}]*\}")
SPEC_SCRIPT = re.compile(
    r'(<script type="application/json" class="optbook-figure-spec">)(.*?)(</script>)', re.S)

STATIC_TEXT = (
    re.compile(r'(<img class="optbook-figure-static" [^>]*?alt=")([^"]*)(")'),
    re.compile(r'(<p class="optbook-figure-static optbook-figure-note"><em>)(.*?)(</em></p>)', re.S),
)


def _resolve(node: Mapping) -> Mapping:
    while "$ref" in node:
        ref = node["$ref"]
        if not ref.startswith("#/"):
            raise ValueError(f"unsupported $ref {ref!r} in spec.schema.json")
        target = schema()
        for key in ref[2:].split("/"):
            target = target[key]
        node = target
    return node


def _walk(value, node: Mapping, path: tuple) -> Iterator[tuple[tuple, str]]:
    node = _resolve(node)
    if isinstance(value, str) and node.get("x-translate"):
        yield path, value
    for sub in (*node.get("allOf", ()), *node.get("anyOf", ()), *node.get("oneOf", ())):
        yield from _walk(value, sub, path)
    if isinstance(value, Mapping):
        props = node.get("properties", {})
        extra = node.get("additionalProperties")
        for key, item in value.items():
            if key in props:
                yield from _walk(item, props[key], path + (key,))
            elif isinstance(extra, Mapping):
                yield from _walk(item, extra, path + (key,))
    elif isinstance(value, list) and isinstance(node.get("items"), Mapping):
        for k, item in enumerate(value):
            yield from _walk(item, node["items"], path + (k,))


def _kind_schema(spec: Mapping) -> Mapping:
    kinds = schema()["properties"]["kind"]["enum"]
    kind = spec.get("kind") if isinstance(spec, Mapping) else None
    if kind not in kinds:
        raise ValueError(f"Invalid spec kind: {kind!r} (one of {', '.join(kinds)})")
    return schema()["$defs"][kind]


def display_strings(spec: Mapping) -> dict[tuple, str]:
    """{path: string} of every string of ``spec`` a reader sees (Latin letters only)."""
    found = {}
    for path, text in _walk(spec, _kind_schema(spec), ()):
        if LATIN.search(text):
            found[path] = text
    return found


def translate_spec(spec: Mapping, table: Mapping[str, str]) -> dict:
    """A copy of ``spec`` with each display string found in ``table`` replaced."""
    out = json.loads(json.dumps(spec))
    for path, text in display_strings(spec).items():
        if table.get(text):
            target = out
            for key in path[:-1]:
                target = target[key]
            target[path[-1]] = table[text]
    return out


def specs_in_html(html: str) -> list[dict]:
    """The figure specs inside an HTML fragment (a notebook cell's text/html)."""
    return [json.loads(m.group(2)) for m in SPEC_SCRIPT.finditer(html)]


def dump_spec(spec: Mapping) -> str:
    """The JSON of a spec as ``static.figure_html`` writes it into a page."""
    return json.dumps(spec, ensure_ascii=False, sort_keys=True,
                      separators=(",", ":")).replace("<", "\\u003c")


def static_strings(html: str) -> list[str]:
    """The still image's alt text and the note under it, unescaped, in page order."""
    found = []
    for pattern in STATIC_TEXT:
        found += [_html.unescape(m.group(2)) for m in pattern.finditer(html)]
    return [text for text in found if LATIN.search(text)]


def translate_html(html: str, table: Mapping[str, str]) -> str:
    """``html`` with every figure's display strings translated (spec, alt text, note)."""
    def swap(m):
        spec = translate_spec(json.loads(m.group(2)), table)
        return m.group(1) + dump_spec(spec) + m.group(3)

    def swap_static(m):
        text = table.get(_html.unescape(m.group(2)))
        return m.group(1) + _html.escape(text) + m.group(3) if text else m.group(0)
    if not SPEC_SCRIPT.search(html):
        return html
    for pattern in STATIC_TEXT:
        html = pattern.sub(swap_static, html)
    return SPEC_SCRIPT.sub(swap, html)


def placeholders(text: str) -> list[str]:
    """The ``{…}`` fields of a string, sorted (a headline's slider values)."""
    return sorted(PLACEHOLDER.findall(text))
