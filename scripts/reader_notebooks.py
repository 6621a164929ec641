"""The reader's notebooks: each chapter notebook as JupyterLab shows it without the site.

The book's notebooks are written for the site (Jupyter Book 1: Sphinx,
sphinxcontrib-bibtex, sphinx-proof, sphinx-exercise), which resolves every
role against the whole book: ``{cite:t}`` becomes "Polyak (1964)", ``{term}``
a link into the glossary, ``{eq}`` "(3.1)", ``{doc}`` and ``{ref}`` links to
other pages.  JupyterLab renders one notebook at a time (jupyterlab-myst
2.7.0, pinned in requirements.txt): it has no bibliography, so a citation
shows as "⚠ polyak1964some"; it knows no glossary and no other page, so a
``{term}``, ``{doc}`` or ``{ref}`` to another page is a dead link ("Cross
reference target was not found"); and it numbers equations, definitions and
exercises from 1 in each notebook, where the site numbers them by chapter
(3.1, 3.2, ...) and numbers only labelled equations.

:func:`reader_notebook` writes the same notebook with those resolved here,
from the book's own sources (``_toc.yml``, every page's labels,
``book/references.bib``), into MyST that jupyterlab-myst renders as the site
does:

* citations: the author-year text of the site ("Polyak (1964)",
  "(Kingma and Ba, 2015, Loshchilov and Hutter, 2019)"), each name linked to
  the paper (its ``url``, else its ``doi``) when the entry gives one;
* ``{term}``: the term in italics;
* ``{doc}``, and ``{ref}``/``{eq}``/``{prf:ref}``/``{numref}`` to another page:
  a link to that notebook (or page) with the site's text (its title, "(5.7)",
  "Definition 1.3"); to a target in the same notebook the role is kept, so
  JupyterLab links it;
* numbers: every labelled equation is a ``{math}`` block with the site's
  number as ``:enumerator:``, every unlabelled display equation a
  ``{math}`` block with ``:enumerated: false`` (the site numbers only
  labelled ones); every numbered ``prf:`` directive and exercise gets its
  site number (per chapter and per kind, as sphinx-proof and
  sphinx-exercise count) as ``:enumerator:``.

Code cells and their outputs are unchanged. The reader's notebooks are what
the site's download button serves (``scripts/book_site.py`` writes them over
``_sources/book/*.ipynb`` after the build), what Binder opens
(``binder/postBuild`` writes them over ``book/*.ipynb`` in the Binder image)
and what ``make lab`` opens (``_build/lab/book``).

Usage: ``python scripts/reader_notebooks.py OUT_DIR [book/03-momentum.ipynb ...]``
(default: every chapter notebook); OUT_DIR may be ``book`` itself (Binder).
"""
from __future__ import annotations

import copy
import dataclasses
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

ROLE = re.compile(r"\{(cite:t|cite:p|cite|term|eq|ref|numref|doc|prf:ref)\}`([^`]+)`")
EXPLICIT = re.compile(r"^(.*?)\s*<([^<>]+)>$", re.S)
FENCE = re.compile(r"^(`{3,}|:{3,})\s*(\{([A-Za-z:-]+)\})?\s*(.*)$")
LABEL_LINE = re.compile(r"^\(([^()\s]+)\)=\s*$")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
AMSMATH = re.compile(r"^\\begin\{(align\*?|equation\*?|gather\*?|multline\*?|alignat\*?|flalign\*?)\}")
DOLLAR_CLOSE = re.compile(r"^\$\$\s*(?:\(([^()\s]+)\))?\s*$")
# sphinx-proof's directives and their names as the site prints them
PROOF_KINDS = {"definition": "Definition", "theorem": "Theorem", "lemma": "Lemma",
               "proposition": "Proposition", "algorithm": "Algorithm",
               "corollary": "Corollary", "example": "Example", "remark": "Remark",
               "conjecture": "Conjecture", "axiom": "Axiom", "criterion": "Criterion",
               "property": "Property", "observation": "Observation"}


@dataclasses.dataclass(frozen=True)
class Target:
    """What a label points at: the page (``book/03-momentum``), and the text the site shows."""
    page: str
    kind: str          # "section", "equation", a prf kind, "exercise"
    text: str          # section title, "(3.1)", "Definition 3.1", "Exercise 3.2"


@dataclasses.dataclass
class Book:
    pages: list            # [(page, chapter number or None)] in the book's order
    titles: dict           # page -> title
    targets: dict          # label -> Target
    numbers: dict          # (page, index of the numbered item on the page) -> "3.1"
    bibliography: dict     # key -> pybtex Entry


# ---------------------------------------------------------------- the book

def toc_pages(root: Path = ROOT) -> list[tuple[str, int | None]]:
    """Every page of ``_toc.yml`` in order, with its chapter number (None outside numbered parts)."""
    import yaml

    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    pages = [(toc["root"], None)]
    for part in toc.get("parts", []):
        number = 0
        for chapter in part.get("chapters", []):
            n = None
            if part.get("numbered"):
                number += 1
                n = number
            pages.append((chapter["file"], n))
            for section in chapter.get("sections", []):
                pages.append((section["file"], n))
    return pages


def page_path(page: str, root: Path = ROOT) -> Path:
    for suffix in (".ipynb", ".md"):
        if (root / (page + suffix)).exists():
            return root / (page + suffix)
    raise ValueError(f"Invalid page: {page!r} (no {page}.ipynb or {page}.md under {root})")


def page_markdown(path: Path) -> list[str]:
    """The markdown of a page: one string per markdown cell of a notebook, the file of a .md page."""
    if path.suffix == ".ipynb":
        nb = json.loads(path.read_text(encoding="utf-8"))
        return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown"]
    text = path.read_text(encoding="utf-8")
    if text.startswith("---\n"):                      # front matter
        text = text[text.index("\n---", 4) + 4:]
    return [text]


def _directive_options(lines: list[str], start: int) -> dict:
    options = {}
    for line in lines[start:]:
        m = re.match(r"^:([A-Za-z_-]+):\s*(.*)$", line)
        if not m:
            break
        options[m.group(1)] = m.group(2).strip()
    return options


def _scan(markdown: list[str], page: str, chapter, counters: dict, book: Book) -> None:
    """Record a page's labels and numbered items (in the site's counting) into ``book``."""
    pending = None          # a (label)= line waiting for what it labels
    index = 0               # numbered items on the page, in order
    for text in markdown:
        lines = text.split("\n")
        code = None         # the fence of a literal code block we are in
        in_math = False
        for i, line in enumerate(lines):
            if code is not None:
                if line.strip() == code:
                    code = None
                continue
            if in_math:
                m = DOLLAR_CLOSE.match(line.strip())
                if m:
                    in_math = False
                    if m.group(1):
                        counters["equation"] = counters.get("equation", 0) + 1
                        number = f"{chapter}.{counters['equation']}" if chapter else str(counters["equation"])
                        book.targets[m.group(1)] = Target(page, "equation", f"({number})")
                        book.numbers[(page, index)] = number
                        index += 1
                continue
            if line.strip() == "$$":
                in_math = True
                continue
            fence = FENCE.match(line.strip())
            if fence and line.strip() != fence.group(1):
                name = fence.group(3)
                if name is None:                       # ```python: literal
                    code = fence.group(1)
                    continue
                options = _directive_options(lines, i + 1)
                kind = None
                if name.startswith("prf:") and name[4:] in PROOF_KINDS:
                    kind = name[4:]
                elif name == "exercise":
                    kind = "exercise"
                elif name == "math" and "label" in options:
                    kind = "equation"
                if kind and "nonumber" not in options:
                    counters[kind] = counters.get(kind, 0) + 1
                    number = f"{chapter}.{counters[kind]}" if chapter else str(counters[kind])
                    shown = (f"({number})" if kind == "equation" else
                             f"{PROOF_KINDS.get(kind, 'Exercise')} {number}")
                    if "label" in options:
                        book.targets[options["label"]] = Target(page, kind, shown)
                    book.numbers[(page, index)] = number
                    index += 1
                continue
            label = LABEL_LINE.match(line.strip())
            if label:
                pending = label.group(1)
                continue
            heading = HEADING.match(line)
            if heading:
                title = _plain(heading.group(2))
                if page not in book.titles:
                    book.titles[page] = title
                if pending:
                    book.targets[pending] = Target(page, "section", title)
                pending = None
                continue
            if line.strip() and pending:
                # a label on a paragraph or figure: the site links to the page
                book.targets[pending] = Target(page, "section", book.titles.get(page, page))
                pending = None


def _plain(markdown: str) -> str:
    """A heading's text as the site prints it in a reference: roles and emphasis stripped."""
    text = ROLE.sub(lambda m: (EXPLICIT.match(m.group(2)) or [None, m.group(2)])[1], markdown)
    text = re.sub(r"[*_]{1,2}([^*_]+)[*_]{1,2}", r"\1", text)
    return text.replace("`", "").replace("'", "\u2019")


def load_book(root: Path = ROOT) -> Book:
    from pybtex.database import parse_file

    book = Book(pages=toc_pages(root), titles={}, targets={}, numbers={},
                bibliography=dict(parse_file(str(root / "book" / "references.bib")).entries))
    counters_by_chapter: dict = {}
    for page, chapter in book.pages:
        counters = counters_by_chapter.setdefault(chapter, {}) if chapter else {}
        _scan(page_markdown(page_path(page, root)), page, chapter, counters, book)
    return book


# ---------------------------------------------------------------- citations

def _latex_text(latex: str) -> str:
    """``H{\\"a}gele`` as the reader sees it: Hägele (pybtex's LaTeX parser)."""
    from pybtex.richtext import Text

    return Text.from_latex(latex).render_as("text")


def _last_names(person) -> str:
    return _latex_text(" ".join(person.prelast_names + person.last_names))


def cite_parts(entry) -> tuple[str, str]:
    """("Kingma and Ba", "2015") for an entry: one author, two joined by "and",
    three or more the first "et al." (sphinxcontrib-bibtex's author_year)."""
    people = entry.persons.get("author") or entry.persons.get("editor") or []
    names = [_last_names(p) for p in people]
    if not names:
        authors = _latex_text(entry.fields.get("title", "?"))
    elif len(names) == 1:
        authors = names[0]
    elif len(names) == 2:
        authors = f"{names[0]} and {names[1]}"
    else:
        authors = f"{names[0]} et al."
    return authors, entry.fields.get("year", "n.d.")


def _entry_url(entry) -> str | None:
    if entry.fields.get("url"):
        return entry.fields["url"]
    if entry.fields.get("doi"):
        return "https://doi.org/" + entry.fields["doi"]
    return None


def citation(role: str, keys: list[str], bibliography: dict, *, links: bool = True) -> str:
    """A citation as the site prints it, in Markdown: ``{cite:t}`` "Polyak (1964)",
    ``{cite:p}``/``{cite}`` "(Polyak, 1964, Nesterov, 1983)"."""
    from pybtex.plugin import find_plugin

    for key in keys:
        if key not in bibliography:
            raise ValueError(f"Invalid citation key: {key!r} is not in book/references.bib")
    # the site lists a group's works in the bibliography's order (the plain
    # style's author-year-title sort), whatever the order of the keys
    ordered = find_plugin("pybtex.style.sorting", "author_year_title")().sort(
        [bibliography[key] for key in dict.fromkeys(keys)])
    parts = []
    for entry in ordered:
        authors, year = cite_parts(entry)
        url = _entry_url(entry) if links else None
        parts.append((authors, year, url))

    def link(text, url):
        return f"[{text}]({url})" if url else text

    if role == "cite:t":
        return ", ".join(link(f"{a} ({y})", u) for a, y, u in parts)
    return "(" + ", ".join(link(f"{a}, {y}", u) for a, y, u in parts) + ")"


# ---------------------------------------------------------------- rewriting

def _page_link(page: str, here: str) -> str:
    """The relative address of ``page`` from the page ``here`` (both under book/)."""
    target = page_path(page)
    return Path(target).name if Path(page).parent == Path(here).parent else target.name


def _rewrite_role(m: re.Match, page: str, book: Book) -> str:
    role, body = m.group(1), m.group(2)
    explicit = EXPLICIT.match(body)
    text, target = (explicit.group(1), explicit.group(2)) if explicit else (None, body.strip())
    if role.startswith("cite"):
        keys = [k.strip() for k in target.split(",") if k.strip()]
        return citation(role, keys, book.bibliography)
    if role == "term":
        return f"*{text or target}*"
    if role == "doc":
        name = str(Path(page).parent / target) if "/" not in target else target.lstrip("/")
        if name not in book.titles:
            raise ValueError(f"Invalid {{doc}} target {target!r} in {page}: no such page in _toc.yml")
        return f"[{text or book.titles[name]}]({_page_link(name, page)})"
    label = target
    if label not in book.targets:
        raise ValueError(f"Invalid {{{role}}} target {label!r} in {page}: no page defines that label")
    found = book.targets[label]
    if found.page == page:
        return m.group(0)        # JupyterLab resolves it within the notebook
    shown = text or found.text
    return f"[{shown}]({_page_link(found.page, page)}#{label})"


def _rewrite_markdown(text: str, page: str, book: Book, index: list) -> str:
    """One markdown cell rewritten; ``index`` counts the page's numbered items across cells."""
    out = []
    lines = text.split("\n")
    code = None
    math: list | None = None
    fences: list[str] = []           # open directive fences, innermost last
    literal: set[int] = set()        # lines of out inside a literal code block
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if code is not None:
            literal.add(len(out))
            out.append(line)
            if stripped == code:
                code = None
            i += 1
            continue
        if math is not None:
            m = DOLLAR_CLOSE.match(stripped)
            if m:
                indent = line[:len(line) - len(line.lstrip())]
                # a colon fence: inside a ``` directive it cannot close it
                # (the book's directives are all ``` fences; checked below)
                colon = ":::"
                if m.group(1):
                    number = book.numbers[(page, index[0])]
                    index[0] += 1
                    head = [f"{indent}{colon}{{math}}", f"{indent}:label: {m.group(1)}",
                            f"{indent}:enumerator: {number}"]
                else:
                    head = [f"{indent}{colon}{{math}}", f"{indent}:enumerated: false"]
                out.extend(head + math + [f"{indent}{colon}"])
                math = None
            else:
                math.append(line)
            i += 1
            continue
        if stripped == "$$":
            math = []
            i += 1
            continue
        ams = AMSMATH.match(stripped)
        if ams:
            # an amsmath environment: the site does not number it (no label),
            # JupyterLab would
            end = next((j for j in range(i, len(lines))
                        if lines[j].strip().startswith(f"\\end{{{ams.group(1)}}}")), None)
            if end is None:
                raise ValueError(f"Invalid markdown in {page}: {stripped!r} is not closed")
            indent = line[:len(line) - len(line.lstrip())]
            out.extend([f"{indent}:::{{math}}", f"{indent}:enumerated: false",
                        *lines[i:end + 1], f"{indent}:::"])
            i = end + 1
            continue
        fence = FENCE.match(stripped)
        if fence and stripped != fence.group(1):
            name = fence.group(3)
            if name is None:
                code = fence.group(1)
                literal.add(len(out))
                out.append(line)
                i += 1
                continue
            if fence.group(1).startswith(":"):
                raise ValueError(f"Invalid directive fence in {page}: {stripped!r} (the reader's "
                                 "notebooks nest :::{math} in directives, so use ``` fences)")
            fences.append(fence.group(1))
            out.append(line)
            options = _directive_options(lines, i + 1)
            numbered = ((name.startswith("prf:") and name[4:] in PROOF_KINDS)
                        or name == "exercise"
                        or (name == "math" and "label" in options)) and "nonumber" not in options
            if numbered:
                number = book.numbers[(page, index[0])]
                index[0] += 1
                indent = line[:len(line) - len(line.lstrip())]
                out.append(f"{indent}:enumerator: {number}")
            i += 1
            continue
        if fence and fences and stripped == fences[-1]:
            fences.pop()
        out.append(line)
        i += 1
    if math is not None:
        raise ValueError(f"Invalid markdown in {page}: a $$ block is not closed")
    # roles may span lines: rewrite each run of lines outside literal code
    segments: list[tuple[bool, list[str]]] = []
    for n, line in enumerate(out):
        if segments and segments[-1][0] == (n in literal):
            segments[-1][1].append(line)
        else:
            segments.append((n in literal, [line]))
    return "\n".join("\n".join(part) if is_code else
                     ROLE.sub(lambda r: _rewrite_role(r, page, book), "\n".join(part))
                     for is_code, part in segments)


def reader_notebook(path: Path, book: Book | None = None, root: Path = ROOT,
                    notebook: dict | None = None) -> dict:
    """The reader's version of the chapter notebook at ``path`` (a notebook dict).

    ``notebook``, if given, is used instead of the file's content (the Japanese
    edition passes the notebook translated from the catalogs; ``path`` still
    says which page it is)."""
    path = Path(path)
    book = book or load_book(root)
    try:
        page = str(path.resolve().relative_to(Path(root).resolve()).with_suffix(""))
    except ValueError:
        page = None
    if page not in book.titles:
        raise ValueError(f"Invalid notebook: {path} is not a page of _toc.yml")
    nb = notebook if notebook is not None else json.loads(path.read_text(encoding="utf-8"))
    out = copy.deepcopy(nb)
    index = [0]
    for cell in out["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        text = _rewrite_markdown("".join(cell["source"]), page, book, index)
        cell["source"] = text.splitlines(keepends=True)
    out.setdefault("metadata", {}).setdefault("optbook", {})["reader"] = (
        "citations, terms, cross-references and numbers resolved for JupyterLab "
        "by scripts/reader_notebooks.py; the source is " + path.name)
    return out


def translated_book(book: Book, translations: dict) -> Book:
    """``book`` with its page and section titles in another language.

    ``translations`` maps a page (``book/03-momentum``) to its catalog
    ({English: translation}); a title without a translation stays English."""
    def tr(page: str, text: str) -> str:
        return translations.get(page, {}).get(text, text)

    targets = {label: dataclasses.replace(t, text=tr(t.page, t.text)) if t.kind == "section" else t
               for label, t in book.targets.items()}
    return dataclasses.replace(book, titles={p: tr(p, t) for p, t in book.titles.items()},
                               targets=targets)


def chapter_notebooks(root: Path = ROOT) -> list[Path]:
    return sorted((root / "book").glob("0*.ipynb"))


def write_reader_notebooks(out_dir: Path, notebooks=None, root: Path = ROOT) -> list[Path]:
    book = load_book(root)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in notebooks or chapter_notebooks(root):
        nb = reader_notebook(Path(path), book, root)
        target = out_dir / Path(path).name
        target.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(target)
    return written


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__.split("Usage: ")[1].strip())
    for p in write_reader_notebooks(Path(sys.argv[1]), [Path(a) for a in sys.argv[2:]] or None):
        print(p)
