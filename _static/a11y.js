// Accessibility repairs of markup that the theme (sphinx-book-theme 1.3 / pydata-sphinx-theme),
// myst-nb and docutils generate, found by axe-core in tests/browser/test_site.py.
(function () {
  function repair() {
    // WCAG 2.5.3 (label in name): a control's accessible name must contain its visible text.
    // The search field shows "Search Ctrl+K" but is named "Search"; the cell toggles show
    // "Show code cell source" but are named "Toggle hidden content": name them by their text.
    document
      .querySelectorAll(".search-button-field[aria-label], details > summary[aria-label]")
      .forEach(function (el) {
        if (el.textContent.trim()) el.removeAttribute("aria-label");
      });
    // The colour-mode button is named "Color mode"; Font Awesome turns the titles of its icons
    // ("Light", "Dark", "System Settings") into SVG <title> text inside the button, which does
    // not match that name. The icons are decorative (the button has its own tooltip): drop the
    // titles, before and after Font Awesome replaces the <i> elements with SVGs.
    document
      .querySelectorAll(".theme-switch-button i[title], .theme-switch-button svg title")
      .forEach(function (el) {
        if (el.tagName.toLowerCase() === "title") el.remove();
        else el.removeAttribute("title");
      });
    document.querySelectorAll(".theme-switch-button svg").forEach(function (svg) {
      svg.removeAttribute("aria-labelledby");
      svg.removeAttribute("role");
      svg.setAttribute("aria-hidden", "true");
    });
    // The sidebar's toggle that opens a chapter's sub-pages is a <summary> holding only a
    // chevron icon (WCAG 4.1.2, axe summary-name): name it after the chapter it opens.
    document.querySelectorAll("li.has-children > details > summary").forEach(function (el) {
      if (el.textContent.trim() || el.hasAttribute("aria-label")) return;
      var link = el.parentElement.parentElement.querySelector(":scope > a");
      el.setAttribute("aria-label", "Sub-pages of " + (link ? link.textContent.trim() : "this page"));
    });
    // docutils marks citations with the deprecated ARIA role doc-biblioentry inside a
    // role="list": make them the list items that the list requires.
    document.querySelectorAll('[role="list"] > [role="doc-biblioentry"]').forEach(function (el) {
      el.setAttribute("role", "listitem");
    });
  }
  function start() {
    repair();
    // Font Awesome and the theme rewrite parts of the page after loading: repair again then.
    new MutationObserver(function (changes) {
      if (changes.some(function (c) { return c.addedNodes.length; })) repair();
    }).observe(document.body, { childList: true, subtree: true });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
