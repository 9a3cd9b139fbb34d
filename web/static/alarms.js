// The alarm board: refresh the list when the change stream announces an alarm, and show the
// alarms with a location on a map (no base tiles: the board must work with no network).
(function () {
  "use strict";
  var results = document.getElementById("results");
  var live = document.getElementById("alarm-live");
  var el = document.getElementById("alarm-map");
  if (!results) return;

  var map = null, markers = null, fitted = false;
  var COLOR = { critical: "#b00020", major: "#d9480f", minor: "#b58100" };
  function draw() {
    if (!el || typeof L === "undefined") return;
    if (!map) {
      map = L.map(el, { zoomControl: true, attributionControl: false }).setView([30.66, 104.07], 12);
      L.control.scale({ imperial: false }).addTo(map);
      markers = L.featureGroup().addTo(map);
    }
    markers.clearLayers();
    results.querySelectorAll("tr.alarm").forEach(function (tr) {
      var lon = parseFloat(tr.dataset.lon), lat = parseFloat(tr.dataset.lat);
      if (isNaN(lon) || isNaN(lat)) return;
      L.circleMarker([lat, lon], {
        radius: 9, weight: 2, color: COLOR[tr.dataset.severity] || "#555",
        fillOpacity: tr.classList.contains("active") ? 0.8 : 0.2, className: "anxin-alarm"
      }).bindTooltip(tr.dataset.name || "").addTo(markers);
    });
    if (!fitted && markers.getLayers().length) {
      fitted = true;
      map.fitBounds(markers.getBounds().pad(0.3), { maxZoom: 16 });
    }
  }

  var pending = false;
  function refresh() {
    if (pending) return;
    pending = true;
    fetch(results.dataset.src, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        pending = false;
        if (html === null) return;
        results.innerHTML = html;
        results.dataset.refreshed = String(Date.now());
        draw();
      })
      .catch(function () { pending = false; });
  }

  if (window.EventSource) {
    var es = new EventSource("/api/v1/live");
    es.addEventListener("open", function () { if (live) live.textContent = live.dataset.live || ""; });
    es.addEventListener("error", function () { if (live) live.textContent = live.dataset.lost || ""; });
    es.addEventListener("change", function (ev) {
      var d = null;
      try { d = JSON.parse(ev.data); } catch (e) { return; }
      if (d && (d.kind === "alarms" || d.kind === "devices")) refresh();
    });
  }
  window.addEventListener("load", draw);
})();
