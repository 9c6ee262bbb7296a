"""mkdocs hooks (mkdocs.yml, hooks:): what mkdocs-jupyter leaves for the site to fix.

- The notebook's links to other pages are written ``api.md``, which works on GitHub; on the site
  they must point at the page's URL, as mkdocs makes it for Markdown pages.
- mkdocs-jupyter adds a MathJax loader (empty without ``custom_mathjax_url``) and a loader of
  mermaid from a CDN (used only when a notebook holds a diagram, which ours do not): the site loads
  nothing from another host (tests/test_site.py).
"""

from __future__ import annotations

import re

_MD_LINK = re.compile(r'href="(?!https?:|/|#)([^"#]+)\.md(#[^"]*)?"')
_MATHJAX = re.compile(r'<!-- Load mathjax -->\s*<script src=""> </script>')
_MERMAID = re.compile(r'<script type="module">\s*document\.addEventListener\("DOMContentLoaded", async \(\) => \{\s*'
                      r'const diagrams = document\.querySelectorAll\("\.jp-Mermaid > pre\.mermaid"\);.*?</script>',
                      re.DOTALL)


def on_post_page(output: str, page, config) -> str:
    if not page.file.src_uri.endswith(".ipynb"):
        return output
    output = _MERMAID.sub("", _MATHJAX.sub("", output))
    return _MD_LINK.sub(lambda m: f'href="../{m.group(1)}/{m.group(2) or ""}"', output)
