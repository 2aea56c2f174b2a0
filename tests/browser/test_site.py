"""The built site as a reader sees it, in a real browser (Debian's Chromium, headless).

Both editions: the English at the site's root, the Chinese under `zh/`. For every page: HTTP
200; no console error at all (none is allow-listed); every image loaded; every formula rendered
by MathJax (served by the site itself) with no error node and no stray `$`; no request leaves
localhost; axe-core finds no WCAG 2 A/AA violation, in light and in dark mode; at phone width
nothing but code and tables scrolls sideways; a language switch to the same page in the other
edition. Screenshots of every page at desktop width (light and dark) and phone width are
written to `screenshots/`.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sitecheck import AXE, SITE, site_pages

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}

# Console messages allowed, each with the reason. Empty: a page that logs any error fails. (The
# two that every page used to log are fixed at their source: the theme's colour mode is set in
# _config.yml, and _ext/inline_scripts_once.py writes sphinx-thebe's script once.)
ALLOWED_CONSOLE: dict[str, str] = {}

# axe-core rules switched off, each with the reason. Empty: every rule of WCAG 2 A/AA runs.
AXE_DISABLED: dict[str, str] = {}
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]

PAGES = site_pages()


def _name(page: str) -> str:
    return page.removesuffix(".html").replace("/", "_")


def _open(browser, site_url, page, viewport, scheme="light"):
    """Open `page` in a fresh context; return (tab, response, console errors, foreign requests)."""
    context = browser.new_context(viewport=viewport, color_scheme=scheme)
    tab = context.new_page()
    errors, foreign = [], []
    tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    tab.on("pageerror", lambda e: errors.append(str(e)))
    host = urlsplit(site_url).netloc

    def check_request(request):
        url = urlsplit(request.url)
        if url.scheme in ("http", "https") and url.netloc != host:
            foreign.append(request.url)

    tab.on("request", check_request)
    tab.on(
        "response",
        lambda r: errors.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None,
    )
    response = tab.goto(site_url + page, wait_until="networkidle")
    tab.evaluate("() => document.fonts.ready")
    _wait_for_mathjax(tab)
    return tab, response, errors, foreign


def _wait_for_mathjax(tab) -> None:
    """MathJax 3 typesets asynchronously: wait for its startup promise, if the page loads it."""
    tab.evaluate(
        """async () => {
            if (!document.querySelector('script[src*="mathjax"]')) return;
            const ready = () => window.MathJax && MathJax.startup && MathJax.startup.promise;
            for (let i = 0; i < 200 && !ready(); i++) await new Promise(r => setTimeout(r, 50));
            await MathJax.startup.promise;
        }"""
    )


def _unexpected(errors: list[str]) -> list[str]:
    """Errors not allowed above. The browser's "Failed to load resource" line carries no URL: the
    failed response itself is listed as "HTTP <status>: <url>" instead."""
    allowed = [*ALLOWED_CONSOLE, r"^Failed to load resource: the server responded with a status"]
    return [e for e in errors if not any(re.search(p, e) for p in allowed)]


def _axe(tab) -> list[str]:
    tab.add_script_tag(path=str(AXE))
    result = tab.evaluate(
        """async ([tags, disabled]) => {
            const rules = Object.fromEntries(disabled.map(id => [id, {enabled: false}]));
            const r = await axe.run(document, {runOnly: {type: 'tag', values: tags}, rules});
            return r.violations.map(v => `${v.id} (${v.impact}): ${v.help} -- ` +
                v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(' | ') +
                (v.nodes.length > 3 ? ` (+${v.nodes.length - 3} more)` : ''));
        }""",
        [AXE_TAGS, list(AXE_DISABLED)],
    )
    return result


def _broken_images(tab) -> list[str]:
    return tab.evaluate(
        """() => [...document.images]
            .filter(img => !(img.complete && img.naturalWidth > 0))
            .map(img => img.getAttribute('src'))"""
    )


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_page_desktop_light(browser, site_url, screenshots, page):
    tab, response, errors, foreign = _open(browser, site_url, page, DESKTOP)
    try:
        assert response is not None and response.status == 200, f"{page}: status {response}"
        assert not _unexpected(errors), f"{page}: console errors {_unexpected(errors)}"
        assert not _broken_images(tab), f"{page}: images not loaded {_broken_images(tab)}"
        unnamed = tab.evaluate(
            """() => [...document.querySelectorAll('main img')]
                .filter(img => !img.alt || /\\.(png|svg|jpe?g)$/.test(img.alt))
                .map(img => img.getAttribute('src'))"""
        )
        assert not unnamed, f"{page}: images whose alt text is empty or a file name: {unnamed}"

        math = tab.evaluate(
            """() => ({
                source: document.querySelectorAll('.math').length,
                rendered: document.querySelectorAll('.math mjx-container').length,
                errors: [...document.querySelectorAll('mjx-merror')].map(e => e.textContent),
                mathjax: [...document.scripts].map(s => s.src).filter(s => /mathjax/i.test(s)),
            })"""
        )
        assert not math["errors"], f"{page}: MathJax errors {math['errors']}"
        assert math["rendered"] == math["source"], f"{page}: {math} formulas rendered"
        if math["source"]:
            assert all(s.startswith(site_url) for s in math["mathjax"]), math["mathjax"]
        prose = tab.evaluate(
            """() => {
                const body = document.querySelector('main') || document.body;
                const copy = body.cloneNode(true);
                copy.querySelectorAll('pre, code, mjx-container, script, style, .output')
                    .forEach(e => e.remove());
                return copy.innerText;
            }"""
        )
        stray = [m.group(0) for m in re.finditer(r".{0,30}\$.{0,30}", prose)]
        assert not stray, f"{page}: unrendered `$` in the text: {stray}"

        assert not foreign, f"{page}: requests that leave localhost: {foreign}"
        violations = _axe(tab)
        assert not violations, f"{page}: WCAG A/AA violations (light):\n" + "\n".join(violations)
        tab.screenshot(path=screenshots / f"{_name(page)}-desktop.png", full_page=True)
    finally:
        tab.context.close()


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_page_desktop_dark(browser, site_url, screenshots, page):
    tab, response, errors, foreign = _open(browser, site_url, page, DESKTOP, scheme="dark")
    try:
        assert response.status == 200
        theme = tab.evaluate("() => document.documentElement.dataset.theme")
        assert theme == "dark", f"{page}: the theme did not follow the dark colour scheme: {theme}"
        assert not _unexpected(errors), f"{page}: console errors {_unexpected(errors)}"
        violations = _axe(tab)
        assert not violations, f"{page}: WCAG A/AA violations (dark):\n" + "\n".join(violations)
        assert not foreign, f"{page}: requests that leave localhost: {foreign}"
        tab.screenshot(path=screenshots / f"{_name(page)}-dark.png", full_page=True)
    finally:
        tab.context.close()


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_page_phone(browser, site_url, screenshots, page):
    tab, response, errors, foreign = _open(browser, site_url, page, PHONE)
    try:
        assert response.status == 200
        assert not _unexpected(errors), f"{page}: console errors {_unexpected(errors)}"
        assert not _broken_images(tab), f"{page}: images not loaded {_broken_images(tab)}"
        # Only code, outputs, tables and display maths may scroll sideways, inside their own box.
        overflow = tab.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{page}: the page is {overflow}px wider than a 390px phone"
        tab.screenshot(path=screenshots / f"{_name(page)}-phone.png", full_page=True)
    finally:
        tab.context.close()


def test_every_chapter_is_a_page():
    assert len([p for p in PAGES if re.match(r"book/0\d_", p)]) == 9, PAGES
    assert len([p for p in PAGES if re.match(r"zh/book/0\d_", p)]) == 9, PAGES


def test_both_editions_have_the_same_pages():
    english = {p for p in PAGES if not p.startswith("zh/")}
    assert {p.removeprefix("zh/") for p in PAGES if p.startswith("zh/")} == english


@pytest.mark.parametrize("page", [p for p in PAGES if Path(p).name != "index.html"], ids=_name)
def test_language_switch_leads_to_the_same_page_and_back(page):
    """Every page links to itself in the other edition, and that page links back (index.html
    only redirects to the introduction)."""
    here = SITE / page
    switch = re.findall(r'<a href="([^"]+)" class="btn btn-sm language-switch"', here.read_text())
    assert len(switch) == 1, f"{page}: {len(switch)} language switches"
    there = (here.parent / switch[0]).resolve()
    expected = SITE / (page.removeprefix("zh/") if page.startswith("zh/") else "zh/" + page)
    assert there == expected.resolve(), f"{page}: the switch leads to {there}"
    back = re.findall(r'<a href="([^"]+)" class="btn btn-sm language-switch"', there.read_text())
    assert (there.parent / back[0]).resolve() == here.resolve()


# Pages of the Chinese edition whose prose is wholly Chinese (the API reference keeps the
# package's English docstrings; the bibliography lists works under their own titles)
ZH_PROSE = [
    p
    for p in PAGES
    if p.startswith("zh/") and not re.search(r"(api|bibliography|genindex|py-modindex|search)", p)
]


@pytest.mark.parametrize("page", ZH_PROSE, ids=_name)
def test_chinese_pages_are_chinese(browser, site_url, page):
    """No run of six English words in the prose of a Chinese page (code, outputs, maths,
    citations, the article's quotations and quoted examples aside): a sentence the translation
    missed shows up here; and no Markdown that a translation broke (asterisks or backticks
    shown as text)."""
    context = browser.new_context(viewport=DESKTOP)
    tab = context.new_page()
    try:
        tab.goto(site_url + page, wait_until="networkidle")
        prose = tab.evaluate(
            """() => {
                const copy = document.querySelector('main').cloneNode(true);
                copy.querySelectorAll('pre, code, .math, mjx-container, script, style, ' +
                    '.output, .cell_output, .bibtex-citation, .citation, .language-switch, ' +
                    'blockquote, em')
                    .forEach(e => e.remove());
                return copy.innerText;
            }"""
        )
        prose = re.sub(r"“[^”]*”|\"[^\"]*\"", " ", prose)  # quoted examples and titles
        english = re.findall(r"(?:\b[A-Za-z][a-z'-]*\b[ ,;:]+){5}\b[A-Za-z][a-z'-]*\b", prose)
        assert not english, f"{page}: English left in the Chinese edition: {english[:5]}"
        # CommonMark leaves "**证据：**原文" unparsed: the bold must close before the colon
        stray = [m.group(0) for m in re.finditer(r".{0,20}(\*\*|`).{0,20}", prose)]
        assert not stray, f"{page}: Markdown left unrendered: {stray[:5]}"
        assert len(re.findall(r"[\u4e00-\u9fff]", prose)) > 50
    finally:
        context.close()


def _search(browser, site_url, path: str) -> list[str]:
    """The titles of the pages that the site's search page lists for the query in `path`."""
    context = browser.new_context(viewport=DESKTOP)
    tab = context.new_page()
    try:
        tab.goto(site_url + path, wait_until="networkidle")
        tab.wait_for_selector("#search-results ul.search li", timeout=20_000)
        return tab.eval_on_selector_all(
            "#search-results ul.search li a", "links => links.map(a => a.textContent)"
        )
    finally:
        context.close()


def test_chinese_search_finds_attention(browser, site_url):
    """Sphinx's Chinese search (words split by jieba) finds the pages about 注意力."""
    hits = _search(browser, site_url, "zh/search.html?q=注意力")
    assert len(hits) >= 3, hits


def test_search_finds_softmax(browser, site_url):
    hits = _search(browser, site_url, "search.html?q=softmax")
    assert any("Algorithm steps" in h for h in hits), hits
    assert len(hits) >= 3, hits


# Every page made from a notebook (chapters and their sub-pages), in both editions: it has the
# launch buttons (the Chinese edition's lead to the same notebook).
CHAPTERS = [
    p
    for p in PAGES
    if (SITE / "_sources" / p.removeprefix("zh/").replace(".html", ".ipynb")).exists()
]


@pytest.mark.parametrize("page", CHAPTERS, ids=_name)
def test_chapters_have_launch_buttons(browser, site_url, page):
    """Binder, Colab, live code (Thebe), the repository and the notebook download."""
    context = browser.new_context(viewport=DESKTOP)
    tab = context.new_page()
    try:
        tab.goto(site_url + page, wait_until="networkidle")
        links = tab.eval_on_selector_all("a", "links => links.map(a => a.href)")
        path = page.removeprefix("zh/").removesuffix(".html") + ".ipynb"
        assert any("mybinder.org/v2/gh/" in h and path in h for h in links), links
        assert any("colab.research.google.com/github/" in h and path in h for h in links), links
        download = [h for h in links if h.endswith("_sources/" + path)]
        assert download, "no notebook download"
        notebook = tab.request.get(download[0])
        assert notebook.ok and '"cells"' in notebook.text(), "the download is not the notebook"
        assert tab.locator("button.btn-launch-thebe").count() == 1, "no live-code (Thebe) button"
        assert tab.locator('a[href^="https://github.com/"]').count() >= 1
    finally:
        context.close()


@pytest.mark.parametrize("page", CHAPTERS, ids=_name)
def test_live_code_button_loads_thebe(browser, site_url, page):
    """sphinx-thebe's configuration script is on the page once, the functions the Live code
    button calls are defined, and pressing it asks for Thebe's script (the request is stopped
    here, so no kernel is started and nothing leaves localhost)."""
    html = (SITE / page).read_text()
    assert html.count("const THEBE_JS_URL") == 1, f"{page}: Thebe's script is not there once"
    context = browser.new_context(viewport=DESKTOP)
    tab = context.new_page()
    wanted, errors = [], []
    tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    tab.on("pageerror", lambda e: errors.append(str(e)))

    def stop(route):
        wanted.append(route.request.url)
        route.abort()

    try:
        tab.route(re.compile(r"^https?://(?!127\.0\.0\.1)"), stop)
        tab.goto(site_url + page, wait_until="networkidle")
        button = tab.locator("button.btn-launch-thebe")
        assert "initThebeSBT()" in (button.get_attribute("onclick") or ""), "button calls what?"
        defined = tab.evaluate(
            """() => [typeof initThebeSBT, typeof initThebe, typeof THEBE_JS_URL]"""
        )
        assert defined == ["function", "function", "string"], defined
        assert not errors, f"{page}: console errors before the button is pressed: {errors}"
        thebe_url = tab.evaluate("() => THEBE_JS_URL")
        button.dispatch_event("click")
        tab.wait_for_function(
            "url => [...document.scripts].some(s => s.src === url)", arg=thebe_url, timeout=10_000
        )
        tab.wait_for_timeout(200)
        assert thebe_url in wanted, f"pressing Live code did not ask for {thebe_url}: {wanted}"
    finally:
        context.close()
