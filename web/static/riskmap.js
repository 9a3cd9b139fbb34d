// The risk map (/manage/risk-map): two layers on Leaflet — the caller's risks from
// /api/v1/risks.geojson (coloured by level: 蓝 low, 黄 medium, 橙 high, 红 extreme) and hazards from
// /api/v1/hazards.geojson (coloured by grade: major purple, minor teal; overdue ones ringed red).
// The filters (type, level, grade, state, overdue, which layers) redraw from what was loaded, with
// no reload and no new request. A layer whose endpoint is missing or refuses draws nothing.
//
// The base is offline (a plain background and a graticule) unless the page gives WGS-84 tiles;
// both layers are WGS-84, so nothing is converted here.
(function () {
  "use strict";
  var el = document.getElementById("riskmap");
  if (!el || typeof L === "undefined") return;
  function parse(s) { try { return JSON.parse(s || "{}"); } catch (e) { return {}; } }
  var texts = parse(el.dataset.texts);
  var base = parse(el.dataset.base);
  var colours = base.colours || {};
  function tx(k) { return texts[k] || k; }

  var map = L.map(el, { attributionControl: !!base.tiles })
    .setView(base.center || [30.65, 104.08], base.zoom || 13);
  L.control.scale({ imperial: false }).addTo(map);
  if (base.tiles && base.tiles.url) {
    L.tileLayer(base.tiles.url, { subdomains: base.tiles.subdomains || "abc", maxZoom: 18, attribution: base.attribution || "" }).addTo(map);
  } else {
    var graticule = L.layerGroup().addTo(map);
    var draw = function () {
      graticule.clearLayers();
      var b = map.getBounds();
      var span = Math.max(b.getEast() - b.getWest(), b.getNorth() - b.getSouth());
      var step = span > 2 ? 0.5 : span > 0.5 ? 0.1 : span > 0.1 ? 0.02 : 0.005;
      var style = { color: "#9a8f7a", weight: 1, opacity: 0.5, interactive: false };
      for (var x = Math.floor(b.getWest() / step) * step; x <= b.getEast(); x += step) {
        graticule.addLayer(L.polyline([[b.getSouth(), x], [b.getNorth(), x]], style));
      }
      for (var y = Math.floor(b.getSouth() / step) * step; y <= b.getNorth(); y += step) {
        graticule.addLayer(L.polyline([[y, b.getWest()], [y, b.getEast()]], style));
      }
    };
    map.on("moveend", draw);
    draw();
  }

  var GRADE = { major: "#7b1fa2", minor: "#00695c" };
  var risksLayer = L.layerGroup().addTo(map);
  var hazardsLayer = L.layerGroup().addTo(map);
  var data = { risks: [], hazards: [] };
  var form = document.getElementById("riskmap-filters");
  var status = document.getElementById("riskmap-count");

  function load(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/geo+json, application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (j) { return j && Array.isArray(j.features) ? j.features : []; })
      .catch(function () { return []; });
  }

  function point(f) {
    var g = f && f.geometry;
    if (!g || g.type !== "Point" || !Array.isArray(g.coordinates)) return null;
    var lon = Number(g.coordinates[0]), lat = Number(g.coordinates[1]);
    if (!isFinite(lon) || !isFinite(lat)) return null;
    return [lat, lon];
  }

  function text(s) { var d = document.createElement("div"); d.textContent = s == null ? "" : String(s); return d.innerHTML; }

  function filters() {
    var f = new FormData(form);
    var layers = f.getAll("layer");
    return {
      risks: layers.indexOf("risks") >= 0,
      hazards: layers.indexOf("hazards") >= 0,
      type: f.get("risk_type") || "",
      level: f.get("level") || "",
      grade: f.get("grade") || "",
      state: f.get("state") || "",
      overdue: f.get("overdue") === "1"
    };
  }

  function redraw() {
    var w = filters();
    risksLayer.clearLayers();
    hazardsLayer.clearLayers();
    var nr = 0, nh = 0;
    if (w.risks) {
      data.risks.forEach(function (f) {
        var p = f.properties || {}, at = point(f);
        if (!at) return;
        if (w.type && p.risk_type !== w.type) return;
        if (w.level && p.level !== w.level) return;
        if (w.overdue && !p.review_overdue) return;
        var c = colours[p.level] || "#555";
        L.circleMarker(at, { radius: 9, color: "#222", weight: 1, fillColor: c, fillOpacity: 0.9, className: "risk risk-" + p.level })
          .bindPopup('<a href="/manage/risks/' + encodeURIComponent(p.id) + '">' + text(p.title) + "</a><br>" +
            text(tx("type." + p.risk_type)) + " · " + text(tx("level." + p.level)) + "（" + text(tx("risk.score")) + " " + text(p.score) + "）<br>" +
            text(tx("risk.next_review")) + " " + text(p.next_review_on) + (p.review_overdue ? " · " + text(tx("risk.review_overdue")) : ""))
          .addTo(risksLayer);
        nr += 1;
      });
    }
    if (w.hazards) {
      data.hazards.forEach(function (f) {
        var p = f.properties || {}, at = point(f);
        if (!at) return;
        if (w.grade && p.grade !== w.grade) return;
        if (w.state && p.state !== w.state) return;
        if (w.overdue && !p.overdue) return;
        L.circleMarker(at, { radius: 7, color: p.overdue ? "#c0161b" : "#222", weight: p.overdue ? 3 : 1, fillColor: GRADE[p.grade] || "#555", fillOpacity: 0.9, className: "hazard hazard-" + p.grade })
          .bindPopup(text(p.finding) + "<br>" + text(p.place_label) + "<br>" +
            text(tx("riskmap.grade." + p.grade)) + " · " + text(tx("riskmap.state." + p.state)) +
            (p.fix_due_at ? "<br>" + text(tx("riskmap.fix_due")) + " " + text(p.fix_due_at) : "") +
            (p.overdue ? " · " + text(tx("riskmap.overdue")) : ""))
          .addTo(hazardsLayer);
        nh += 1;
      });
    }
    if (status) {
      status.textContent = tx("riskmap.shown").replace("{risks}", nr).replace("{hazards}", nh);
      status.dataset.risks = nr;
      status.dataset.hazards = nh;
    }
  }

  if (form) {
    form.addEventListener("change", redraw);
    form.addEventListener("submit", function (e) { e.preventDefault(); redraw(); });
  }
  Promise.all([load("/api/v1/risks.geojson"), load("/api/v1/hazards.geojson")]).then(function (r) {
    data.risks = r[0];
    data.hazards = r[1];
    redraw();
    var pts = data.risks.concat(data.hazards).map(point).filter(Boolean);
    if (pts.length) map.fitBounds(L.latLngBounds(pts).pad(0.2), { maxZoom: 16 });
    el.dataset.loaded = "1";
  });
})();
