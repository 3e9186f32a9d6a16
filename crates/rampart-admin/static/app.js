// Live updates over Server-Sent Events: the header's counters, and a "new events" link on
// the events page. Served from 'self' (the CSP allows no inline script). Nothing else here
// needs JavaScript: every page works without it.
(function () {
  "use strict";
  if (!window.EventSource) { return; }
  var source = new EventSource("/ui/live");
  // Leaving the page closes the stream at once: a browser holds few connections per host,
  // and a page kept for "back" must not keep one open.
  window.addEventListener("pagehide", function () { source.close(); });
  var firstStored = null;
  source.addEventListener("stats", function (msg) {
    var s;
    try { s = JSON.parse(msg.data); } catch (e) { return; }
    var set = function (name, value) {
      var nodes = document.querySelectorAll("[data-live='" + name + "']");
      for (var i = 0; i < nodes.length; i++) { nodes[i].textContent = String(value); }
    };
    set("requests", s.requests);
    set("blocked", s.blocked);
    set("dropped", s.dropped);
    if (firstStored === null) { firstStored = s.stored; }
    var badge = document.querySelector("[data-live-new]");
    if (badge && s.stored > firstStored) { badge.hidden = false; }
    document.body.setAttribute("data-live-seen", String(s.requests));
  });
})();
