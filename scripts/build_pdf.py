"""Build one PDF of the whole book: ``make pdf`` -> _build/pdf/optimization-for-deep-learning.pdf.

Why this route. Jupyter Book 1 offers LaTeX (a TeX Live install of several
GB, and MyST-NB outputs, widget twins and Japanese glossary terms each need
LaTeX work of their own) and ``pdfhtml`` (pyppeteer, which downloads its own
browser: impossible offline). The single-page HTML build printed by the
headless Chromium that the tests already use gives the site's own rendering:
MathJax equations, the notebooks' figures, the bibliography, and the
glossary's Japanese terms in the Noto CJK fonts (Debian's fonts-noto-cjk).

Steps:

1. ``jupyter-book build --builder singlehtml .`` -> ``_build/singlehtml``;
2. the page gets a title page and a table of contents, and every chapter of
   ``_toc.yml`` starts a new printed page (book/_static/optbook-print.css
   holds the print layout: A4, page numbers, no navigation);
3. Chromium prints it (``--print-to-pdf``), after letting MathJax typeset.

``--lang ja`` prints the Japanese edition the same way
(``scripts/build_book.py --lang ja --builder singlehtml`` ->
``_build/singlehtml-ja``; ``_build/pdf/optimization-for-deep-learning-ja.pdf``;
``make pdf-ja``), its title page and contents in Japanese, its text in the
same Noto CJK fonts.

Interactive figures print their default frame, with a line saying where the
live version is (the print rules of the figure runtime's CSS).
"""

from __future__ import annotations

import argparse
import html
import shutil
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

import yaml
from bs4 import BeautifulSoup

ROOT = Path(__file__).resolve().parent.parent
SINGLE = ROOT / "_build" / "singlehtml"
OUTPUT = ROOT / "_build" / "pdf" / "optimization-for-deep-learning.pdf"
SINGLES = {"en": SINGLE, "ja": ROOT / "_build" / "singlehtml-ja"}
OUTPUTS = {"en": OUTPUT, "ja": OUTPUT.with_name("optimization-for-deep-learning-ja.pdf")}
FRONT = {
    "en": {"title": None, "subtitle": "An interactive textbook, with a tested optimizer library",
           "contents": "Contents", "licence": "Text and figures: CC BY 4.0 &middot; code: MIT",
           "live": "The live book, with interactive figures and runnable notebooks:",
           "date": lambda day: f"{day:%B %Y}"},
    "ja": {"title": "深層学習のための最適化",
           "subtitle": "テスト済みの最適化ライブラリを備えた対話的な教科書",
           "contents": "目次", "licence": "本文と図: CC BY 4.0 &middot; コード: MIT",
           "live": "対話的な図と実行できるノートブックを備えたウェブ版:",
           "date": lambda day: f"{day.year}年{day.month}月"},
}
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync",
                  "--run-all-compositor-stages-before-draw", "--no-pdf-header-footer"]
# Virtual time Chromium grants the page before printing: MathJax typesets
# every equation of the book in this single page.
VIRTUAL_TIME_MS = 180_000


def toc_documents() -> list[tuple[str, list[str]]]:
    """(chapter document, its section documents) in _toc.yml order, root first."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    chapters: list[tuple[str, list[str]]] = [(toc["root"], [])]
    for part in toc.get("parts", []):
        for chapter in part.get("chapters", []):
            chapters.append((chapter["file"], [s["file"] for s in chapter.get("sections", [])]))
    return chapters


def document_section(soup: BeautifulSoup, document: str, root: str):
    """The <section> that holds ``document`` in the single page (None if absent).

    The root document is the page itself; the others follow it, each after an
    anchor ``document-<name>``.
    """
    if document == root:
        return (soup.select_one("article.bd-article") or soup).find("section")
    anchor = soup.find(id=f"document-{document}")
    if anchor is None:
        return None
    return anchor if anchor.name == "section" else anchor.find_next("section")


def heading_text(section) -> str:
    heading = section.find(["h1", "h2", "h3"]) if section is not None else None
    if heading is None:
        return ""
    for link in heading.select("a.headerlink"):
        link.decompose()
    return " ".join(heading.get_text(" ", strip=True).split())


def repository_address() -> str:
    """The repository's address (OPTBOOK_REPOSITORY, as for the site), "" when none is set."""
    sys.path.insert(0, str(ROOT / "scripts"))
    from book_site import repository_address as address

    return address()


def prepare_page(page: Path, title: str, author: str, repository: str, lang: str = "en") -> int:
    """Add the title page and contents, mark chapter starts; returns the chapter count."""
    soup = BeautifulSoup(page.read_text(encoding="utf-8"), "html.parser")
    article = soup.select_one("article.bd-article") or soup.body
    contents = []
    chapters = 0
    documents = toc_documents()
    root = documents[0][0]
    for number, (document, sections) in enumerate(documents):
        section = document_section(soup, document, root)
        if section is None:
            raise SystemExit(f"build_pdf: {document} is missing from the single-page build")
        section["class"] = section.get("class", []) + ["optbook-pdf-chapter"]
        chapters += number > 0  # the first is the book's landing page
        if not section.get("id"):
            section["id"] = f"pdf-{number}"
        contents.append(f'<li class="chapter"><a href="#{section["id"]}">'
                        f"{html.escape(heading_text(section))}</a></li>")
        for sub in sections:
            sub_section = document_section(soup, sub, root)
            if sub_section is None:
                raise SystemExit(f"build_pdf: {sub} is missing from the single-page build")
            if not sub_section.get("id"):
                sub_section["id"] = f"pdf-{sub.replace('/', '-')}"
            contents.append(f'<li class="section"><a href="#{sub_section["id"]}">'
                            f"{html.escape(heading_text(sub_section))}</a></li>")
    # the address only when the book has one (make pdf REPOSITORY=...)
    text = FRONT[lang]
    title = text["title"] or title
    live = (f"<br>\n  {text['live']}"
            f"<br>{html.escape(repository)}") if repository else ""
    front = BeautifulSoup(
        f"""<div class="optbook-pdf-title">
  <p class="title">{html.escape(title)}</p>
  <p class="subtitle">{text['subtitle']}</p>
  <p class="meta">{html.escape(author)}<br>{text['date'](date.today())}<br>
  {text['licence']}{live}</p>
</div>
<nav class="optbook-pdf-contents"><h2>{text['contents']}</h2><ol>{''.join(contents)}</ol></nav>""",
        "html.parser")
    article.insert(0, front)
    page.write_text(str(soup), encoding="utf-8")
    return chapters


def print_pdf(page: Path, output: Path) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        command = [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                   f"--virtual-time-budget={VIRTUAL_TIME_MS}",
                   f"--print-to-pdf={output}", page.as_uri()]
        done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    if done.returncode != 0 or not output.is_file():
        raise SystemExit(f"build_pdf: chromium failed ({done.returncode}):\n{done.stderr[-2000:]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip-build", action="store_true",
                        help="reuse _build/singlehtml as it is")
    parser.add_argument("--lang", choices=sorted(SINGLES), default="en")
    parser.add_argument("--output", type=Path, default=None,
                        help=f"default: {OUTPUT.name}, or the -ja name for --lang ja")
    args = parser.parse_args(argv)
    args.output = args.output or OUTPUTS[args.lang]
    single = SINGLES[args.lang]
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"build_pdf: {CHROMIUM} is missing (apt-get install -y chromium)")
    if not args.skip_build:
        shutil.rmtree(single, ignore_errors=True)
        if args.lang == "en":
            subprocess.run([str(Path(sys.executable).parent / "jupyter-book"), "build",
                            "--builder", "singlehtml", str(ROOT)], check=True, cwd=ROOT)
        else:
            subprocess.run([sys.executable, str(ROOT / "scripts" / "build_book.py"),
                            "--lang", args.lang, "--builder", "singlehtml", "--all"],
                           check=True, cwd=ROOT)
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    # The single page is the root document's (index.html only redirects to
    # it). Sphinx writes its links to _static/ and _images/ relative to the
    # output folder, even though the root document lives in book/, so the
    # prepared copy goes to the output folder.
    page = single / "print.html"
    shutil.copy(single / f"{toc_documents()[0][0]}.html", page)
    chapters = prepare_page(page, config["title"], config["author"], repository_address(),
                            args.lang)
    print_pdf(page, args.output)
    size = args.output.stat().st_size
    shown = args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output
    print(f"build_pdf: {shown} ({size / 1e6:.1f} MB, {chapters} chapters and appendices)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
