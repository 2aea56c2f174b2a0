"""Write each inline script into a page once (Sphinx < 8.2 writes some twice).

sphinx-thebe adds its configuration as an inline script, `app.add_js_file(None, body=...)`,
while the environment is read, that is after the HTML builder has been set up. Sphinx 7.4 then
holds the script twice: `Sphinx.add_js_file` hands it to the builder with the filename `None`,
and the builder, re-reading the registry before it writes the pages, adds it again as `''`; the
two copies compare unequal, so both are written. On every page the second copy fails with
"Identifier 'THEBE_JS_URL' has already been declared" (and sphinx-togglebutton's selector is
written twice too). Fixed in Sphinx by https://github.com/sphinx-doc/sphinx/pull/13402
(Sphinx 8.2), which passes `''` instead of `None`; Jupyter Book 1.0.4 pins Sphinx 7, so this
extension does the same here: the scripts added through this app reach the builder as `''`.
"""

from __future__ import annotations

from typing import Any

from sphinx.application import Sphinx


def setup(app: Sphinx) -> dict[str, Any]:
    add_js_file = app.add_js_file

    def add_js_file_once(filename: str | None, priority: int = 500, **kwargs: Any) -> None:
        add_js_file(filename or "", priority=priority, **kwargs)

    app.add_js_file = add_js_file_once  # type: ignore[method-assign]
    return {"parallel_read_safe": True, "parallel_write_safe": True}
