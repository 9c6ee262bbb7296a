"""The documentation site as built (mkdocs build): every internal link and anchor resolves, and
no page loads anything from another host, so the site works offline (issue 37).

mkdocs --strict checks the Markdown's links; this checks the HTML that reaches the reader, the
notebook's page included (mkdocs-jupyter's links and loaders are not seen by --strict).
"""

from __future__ import annotations

import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlsplit

import pytest

pytest.importorskip("mkdocs", reason="the docs extra builds the site: pip install -e '.[docs]'")

ROOT = Path(__file__).resolve().parents[1]
LOADS = {("script", "src"), ("img", "src"), ("link", "href"), ("iframe", "src"), ("source", "src"),
         ("video", "src"), ("audio", "src"), ("embed", "src"), ("object", "data")}
EXTERNAL_IN_CODE = re.compile(r"""(?:import\s*\(|@import|url\()\s*["']?(https?:)?//""")


class Page(HTMLParser):
    """The ids, links and loaded resources of one HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.links: list[str] = []
        self.loads: list[str] = []
        self.code: list[str] = []  # inline scripts and styles
        self._in: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("name"):
            self.ids.add(attrs["name"])
        if tag == "a" and attrs.get("href") is not None:
            self.links.append(attrs["href"])
        rel = attrs.get("rel") or ""
        for t, attr in LOADS:
            if tag == t and attrs.get(attr) and not (tag == "link" and rel in ("canonical", "alternate")):
                self.loads.append(attrs[attr])
        if attrs.get("style"):
            self.code.append(attrs["style"])
        self._in = tag if tag in ("script", "style") else None

    def handle_endtag(self, tag):
        self._in = None

    def handle_data(self, data):
        if self._in:
            self.code.append(data)


def parse(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    built = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
                           cwd=ROOT, capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    return out


def _target(site: Path, page: Path, href: str) -> tuple[Path, str] | None:
    """The file and anchor an internal link points at; None for another host or a mail address."""
    url, anchor = urldefrag(href)
    parts = urlsplit(url)
    if parts.scheme or parts.netloc:
        return None
    if not parts.path:
        path = page
    elif parts.path.startswith("/"):  # from the site's root (the 404 page's links)
        path = site / unquote(parts.path).lstrip("/")
    else:
        path = page.parent / unquote(parts.path)
    if path.is_dir() or parts.path.endswith("/"):
        path = path / "index.html"
    return path.resolve(), unquote(anchor)


def test_every_internal_link_and_anchor_resolves(site):
    pages = {p.resolve(): parse(p) for p in site.rglob("*.html")}
    broken = []
    for path, page in pages.items():
        for href in page.links:
            target = _target(site, path, href)
            if target is None:
                continue
            file, anchor = target
            if not file.exists():
                broken.append(f"{path.relative_to(site)}: {href} (no such file)")
            elif anchor and file in pages and anchor not in pages[file].ids:
                broken.append(f"{path.relative_to(site)}: {href} (no such anchor)")
    assert not broken, "\n".join(broken)


def test_no_page_loads_anything_from_another_host(site):
    found = []
    for path in sorted(site.rglob("*.html")):
        page = parse(path)
        found += [f"{path.relative_to(site)}: {src}" for src in page.loads if urlsplit(src).netloc]
        found += [f"{path.relative_to(site)}: {m.group(0)}" for code in page.code for m in EXTERNAL_IN_CODE.finditer(code)]
    for css in site.rglob("*.css"):
        found += [f"{css.relative_to(site)}: {m.group(0)}" for m in EXTERNAL_IN_CODE.finditer(css.read_text())]
    assert not found, "\n".join(found)


def test_the_check_sees_what_it_looks_for(tmp_path):
    """The parser finds a CDN script, an external import in an inline script, and an anchor."""
    (tmp_path / "p.html").write_text('<h2 id="a">x</h2><script src="https://cdn.example/x.js"></script>'
                                     '<script>import("https://cdn.example/m.mjs")</script><a href="#b">b</a>')
    page = parse(tmp_path / "p.html")
    assert page.ids == {"a"} and page.links == ["#b"] and page.loads == ["https://cdn.example/x.js"]
    assert [m.group(0) for code in page.code for m in EXTERNAL_IN_CODE.finditer(code)] == ['import("https://']
