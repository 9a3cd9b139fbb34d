// Small enhancements; every page works without JavaScript.
(function () {
  "use strict";
  // Keep the language and large-text links pointing at the page shown after an htmx swap.
  document.addEventListener("htmx:pushedIntoHistory", function () {
    var next = encodeURIComponent(location.pathname + location.search);
    document.querySelectorAll('.prefs a[href^="/prefs?"]').forEach(function (a) {
      a.href = a.getAttribute("href").replace(/next=[^&]*/, "next=" + next);
    });
  });
})();
