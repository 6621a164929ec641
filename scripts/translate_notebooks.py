"""Japanese notebooks: the book's notebooks with their markdown translated from the catalogs.

A reader of the Japanese edition who downloads a chapter's notebook should
get it in Japanese. This script writes, for each notebook of the book, a copy
whose markdown cells carry the translations of
``locales/<lang>/LC_MESSAGES/book/<page>.po``; code cells, their outputs and
the notebook's metadata are the English notebook's, unchanged (they are what
nbval checks), plus ``metadata.optbook.text_language``. ``make book`` (``scripts/build_book.py``) puts them where the
Japanese pages' download button points, ``_build/html/ja/_sources/book/``.

How a markdown cell is translated. Sphinx's gettext builder made one message
per block (paragraph, heading, list item, table cell, admonition title): the
block's MyST source with its line breaks turned into spaces. The cell is
parsed with MyST's own markdown parser; each block's text is looked up in the
catalog and, when a translation exists (not fuzzy), replaced in the lines the
block spans. Directive bodies (admonitions, exercises, proofs) are parsed the
same way; a directive's title is translated on its first line. A block with
no translation, or fuzzy, stays English, as on the Japanese page. Messages
that Sphinx builds rather than reads (sphinx-proof's "(Title)") are not
found in the source as such: their translations are put back without
sphinx-proof's additions (``lookup``).

Usage::

    .venv/bin/python scripts/translate_notebooks.py --lang ja --out DIR [book/02-sgd.ipynb ...]
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCALES = ROOT / "locales"
DIRECTIVE = re.compile(r"^\{[\w:-]+\}\s*")
OPTION = re.compile(r"^:[\w-]+:")


@dataclass
class Report:
    """What one notebook's translation did."""
    blocks: int = 0          # markdown blocks with a message
    translated: int = 0      # of them replaced by their translation
    missing: list[str] = field(default_factory=list)  # translated messages not found in the source
    used: set[str] = field(default_factory=set)        # catalog messages put into the notebook


def load_translations(page: str, lang: str = "ja", locales: Path = LOCALES) -> dict[str, str]:
    """{msgid: msgstr} of a page's catalog, translated and not fuzzy only."""
    path = locales / lang / "LC_MESSAGES" / f"{page}.po"
    if not path.is_file():
        raise FileNotFoundError(f"no catalog {path}: run make catalogs")
    from babel.messages import pofile
    with open(path, "rb") as f:
        catalog = pofile.read_po(f)
    return {m.id: m.string for m in catalog if m.id and m.string and not m.fuzzy}


def _parser():
    from markdown_it.renderer import RendererHTML
    from myst_parser.config.main import MdParserConfig
    from myst_parser.parsers.mdit import create_md_parser
    config = MdParserConfig(enable_extensions={"amsmath", "colon_fence", "deflist",
                                               "dollarmath", "substitution"})
    return create_md_parser(config, RendererHTML)


def _pattern(message: str) -> re.Pattern:
    """The message as it may stand in the source: any run of whitespace may
    be a line break followed by indentation."""
    return re.compile(r"\s+".join(re.escape(word) for word in message.split()))


def _blocks(md, text: str, first_line: int = 0):
    """(message, first line, last line + 1, is a directive title) of every
    translatable block of a markdown text, directive bodies and titles
    included; lines absolute."""
    span = None
    for token in md.parse(text):
        if token.map:
            span = (first_line + token.map[0], first_line + token.map[1])
        if token.type == "inline" and token.content.strip() and span:
            yield " ".join(token.content.split()), span[0], span[1], False
        elif token.type == "fence" and token.info.startswith("{") and token.map:
            start = first_line + token.map[0]
            title = DIRECTIVE.sub("", token.info).strip()
            if title:
                yield " ".join(title.split()), start, start + 1, True
            body = token.content.split("\n")
            skip = 0
            while skip < len(body) and OPTION.match(body[skip]):
                skip += 1
            yield from _blocks(md, "\n".join(body[skip:]), start + 1 + skip)


PROOF_LEAD = re.compile(r"^\s*(Proof\.|証明\s*[。．.:：]?)\s*")
PARENS = re.compile(r"^\s*[（(](.*)[）)]\s*$", re.S)


def lookup(message: str, translations: dict[str, str],
           title: bool = False) -> tuple[str, str] | None:
    """A block's translation. sphinx-proof changes two kinds of text before
    Sphinx extracts them: a directive's title becomes "(Title)", and a
    proof's first paragraph starts with "Proof. "; their translations are
    found under those messages and put back without the additions (a
    directive's title looks for "(Title)" first: a heading may have the same
    words)."""
    if title and f"({message})" in translations:
        found = PARENS.match(translations[f"({message})"])
        return f"({message})", found.group(1) if found else translations[f"({message})"]
    if message in translations:
        return message, translations[message]
    if f"({message})" in translations:
        found = PARENS.match(translations[f"({message})"])
        return f"({message})", found.group(1) if found else translations[f"({message})"]
    if f"Proof. {message}" in translations:
        return f"Proof. {message}", PROOF_LEAD.sub("", translations[f"Proof. {message}"], count=1)
    return None


def translate_markdown(text: str, translations: dict[str, str], report: Report, md=None) -> str:
    """One markdown cell's source with every translated block replaced."""
    md = md or _parser()
    lines = text.split("\n")
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line) + 1)
    edits = []
    for message, first, last, title in _blocks(md, text):
        report.blocks += 1
        found = lookup(message, translations, title)
        if found is None:
            continue
        key, target = found
        start, end = offsets[first], offsets[min(last, len(lines))]
        place = _pattern(message).search(text, start, end)
        if not place:
            report.missing.append(message)
            continue
        edits.append((place.start(), place.end(), target))
        report.translated += 1
        report.used.add(key)
    for start, end, target in sorted(edits, reverse=True):
        text = text[:start] + target + text[end:]
    return text


def translate_notebook(path: Path, lang: str = "ja", locales: Path = LOCALES) -> tuple[dict, Report]:
    """The notebook at ``path`` (in book/) with its markdown cells translated."""
    page = path.resolve().relative_to(ROOT).with_suffix("").as_posix()
    translations = load_translations(page, lang, locales)
    notebook = json.loads(path.read_text(encoding="utf-8"))
    out = copy.deepcopy(notebook)
    report, md = Report(), _parser()
    for cell in out["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        translated = translate_markdown(source, translations, report, md)
        cell["source"] = translated.splitlines(keepends=True)
    # which edition's text the markdown cells carry (the English notebook has none)
    out.setdefault("metadata", {})["optbook"] = {"text_language": lang}
    return out, report


def write_notebooks(out_dir: Path, notebooks: list[Path], lang: str = "ja",
                    locales: Path = LOCALES, quiet: bool = False) -> dict[str, Report]:
    reports = {}
    out_dir.mkdir(parents=True, exist_ok=True)
    for path in notebooks:
        notebook, report = translate_notebook(path, lang, locales)
        (out_dir / path.name).write_text(json.dumps(notebook, ensure_ascii=False, indent=1) + "\n",
                                         encoding="utf-8")
        reports[path.name] = report
        if not quiet:
            print(f"{path.name}: {report.translated} of {report.blocks} blocks translated"
                  + (f", {len(report.missing)} translated messages not found in the source"
                     if report.missing else ""))
    return reports


def book_notebooks() -> list[Path]:
    """The notebooks of _toc.yml."""
    import yaml
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    files = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                files.append(entry["file"])
            walk(entry.get("sections"))
            walk(entry.get("chapters"))
    walk(toc.get("parts"))
    return [ROOT / f"{f}.ipynb" for f in files if (ROOT / f"{f}.ipynb").is_file()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="default: every notebook of _toc.yml")
    parser.add_argument("--lang", default="ja")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("-q", "--quiet", action="store_true")
    args = parser.parse_args(argv)
    write_notebooks(args.out, args.notebooks or book_notebooks(), args.lang, quiet=args.quiet)
    return 0


if __name__ == "__main__":
    sys.exit(main())
