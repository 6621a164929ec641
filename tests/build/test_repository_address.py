"""The repository's address is one setting, and with none set no page points anywhere.

Issue 21, item 11: the GitHub, Binder, Colab and "open issue" buttons of
every chapter, the introduction's Colab install line and the PDF's title page
pointed at ``REPLACE-WITH-OWNER``. The address is now given at build time
(``make book REPOSITORY=https://github.com/OWNER/NAME``, the environment
variable ``OPTBOOK_REPOSITORY`` read by ``scripts/book_site.py`` and
``scripts/build_pdf.py``). Checked here:

* no built file a reader can reach (pages, their sources, the search index)
  holds a placeholder address;
* the built pages match the setting the build had (``OPTBOOK_REPOSITORY`` in
  this environment, as ``make`` exports it to both): with no address, no
  repository, issue, Binder or Colab button and no Binder/Colab paragraph in
  the introduction; with one, the buttons point at it and nowhere else;
* ``book_site``'s pieces on their own: the address is read and checked, the
  theme's buttons follow it, and a small Sphinx build renders an
  ``{optbook-if-repository}`` block only when an address is set.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from built_site import ROOT, SITE, require_site
sys.path.insert(0, str(ROOT / "scripts"))

import book_site  # noqa: E402

PLACEHOLDER = re.compile(r"REPLACE-WITH-OWNER|&lt;repository URL&gt;|<repository URL>")
BUTTON_HOSTS = re.compile(r'href="(https://(?:mybinder\.org|colab\.research\.google\.com|github\.com|gitlab\.com)[^"]*)"')


def _site_files() -> list[Path]:
    return sorted(p for p in require_site().rglob("*")
                  if p.is_file() and p.suffix in (".html", ".js", ".txt", ".md", ".ipynb", ".json")
                  and "mathjax" not in p.parts)


def _pages() -> list[Path]:
    return [p for p in _site_files() if p.suffix == ".html" and "_static" not in p.parts]


def test_no_built_file_holds_a_placeholder_address():
    found = [f"{p.relative_to(SITE)}: {m.group(0)}" for p in _site_files()
             for m in [PLACEHOLDER.search(p.read_text(encoding="utf-8", errors="replace"))] if m]
    assert not found, "placeholder addresses in the site:\n" + "\n".join(found)


def _header_buttons(html: str) -> list[str]:
    """The links of the article header's buttons (repository, issues, launch)."""
    start = html.find('class="article-header-buttons"')
    if start < 0:
        return []
    end = html.find("</div>\n</div>", start)
    return BUTTON_HOSTS.findall(html[start:end if end > 0 else start + 20_000])


def test_the_pages_follow_the_repository_setting():
    url = book_site.repository_address()
    pages = _pages()
    intro = (SITE / "book" / "intro.html").read_text(encoding="utf-8")
    chapter = (SITE / "book" / "03-momentum.html").read_text(encoding="utf-8")
    if not url:
        offenders = {p.relative_to(SITE).as_posix(): _header_buttons(p.read_text(encoding="utf-8"))
                     for p in pages}
        offenders = {k: v for k, v in offenders.items() if v}
        assert not offenders, f"buttons to a repository with no address set: {offenders}"
        for name, html in (("intro", intro), ("chapter 3", chapter)):
            assert "mybinder.org" not in html and "colab.research.google.com" not in html, name
            assert "fa-github" not in html and "Open an issue" not in html, name
        assert "On Binder." not in intro and "%pip install" not in intro
    else:
        buttons = _header_buttons(chapter)
        assert any(b.startswith(url) for b in buttons), buttons
        assert any("mybinder.org" in b for b in buttons) and any("colab" in b for b in buttons), buttons
        owner_repo = url.split("/", 3)[3]
        assert all(owner_repo in b for b in buttons), buttons
        assert f"git+{url}" in intro and "On Binder." in intro


def test_the_address_is_read_checked_and_optional():
    assert book_site.repository_address({}) == ""
    assert book_site.repository_address({"OPTBOOK_REPOSITORY": "  "}) == ""
    assert (book_site.repository_address({"OPTBOOK_REPOSITORY": "https://github.com/a/b.git"})
            == "https://github.com/a/b")
    for bad in ("https://github.com/REPLACE-WITH-OWNER/optimization-for-deep-learning",
                "github.com/a/b", "https://example.org/a/b", "https://github.com/a"):
        with pytest.raises(Exception, match="not a repository address"):
            book_site.repository_address({"OPTBOOK_REPOSITORY": bad})


def test_the_theme_buttons_follow_the_address():
    yaml_options = {"launch_buttons": {"notebook_interface": "jupyterlab",
                                       "binderhub_url": "https://mybinder.org",
                                       "colab_url": "https://colab.research.google.com"},
                    "use_repository_button": False, "use_issues_button": False}
    off = book_site.repository_theme_options(yaml_options, "")
    assert "repository_url" not in off
    assert not off["use_repository_button"] and not off["use_issues_button"]
    assert "binderhub_url" not in off["launch_buttons"] and "colab_url" not in off["launch_buttons"]
    on = book_site.repository_theme_options(yaml_options, "https://github.com/a/b")
    assert on["repository_url"] == "https://github.com/a/b"
    assert on["use_repository_button"] and on["use_issues_button"]
    assert on["launch_buttons"]["binderhub_url"] == "https://mybinder.org"
    assert on["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    assert "path_to_docs" not in on
    # the Japanese edition: Binder opens ja/book/<page>.ipynb (binder/postBuild
    # writes the Japanese notebooks there); no Colab, which reads the repository
    ja = book_site.repository_theme_options(yaml_options, "https://github.com/a/b", "ja")
    assert ja["path_to_docs"] == "ja"
    assert ja["launch_buttons"]["binderhub_url"] == "https://mybinder.org"
    assert "colab_url" not in ja["launch_buttons"]


SMALL_BOOK = '''# Small

Always here.

::::{optbook-if-repository}
Only with an address: {repository}.

```python
%pip install "optbook @ git+{repository}"
```
::::
'''


@pytest.mark.parametrize("address", ["", "https://github.com/someone/somebook"])
def test_a_repository_block_appears_only_with_an_address(tmp_path, address):
    (tmp_path / "index.md").write_text(SMALL_BOOK)
    (tmp_path / "conf.py").write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(ROOT / 'scripts')!r})\n"
        "extensions = ['myst_parser', 'book_site_directive_only']\n"
        "myst_enable_extensions = ['colon_fence']\n")
    # only the repository part of book_site: the rest wants the book's own folders
    (tmp_path / "book_site_directive_only.py").write_text(
        "import book_site\n"
        "def setup(app):\n"
        "    app.add_config_value('optbook_repository', '', 'env')\n"
        "    app.connect('config-inited', lambda app, config: setattr(\n"
        "        config, 'optbook_repository', book_site.repository_address()))\n"
        "    app.add_directive('optbook-if-repository', book_site.IfRepository)\n"
        "    return {'parallel_read_safe': True}\n")
    env = {**os.environ, "OPTBOOK_REPOSITORY": address, "PYTHONPATH": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "sphinx", "-b", "html", "-q", "-W",
                           str(tmp_path), str(tmp_path / "out")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    html = (tmp_path / "out" / "index.html").read_text(encoding="utf-8")
    assert "Always here." in html
    if address:
        assert "Only with an address" in html and f"git+{address}" in html
    else:
        assert "Only with an address" not in html and "git+" not in html
