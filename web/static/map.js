// The map page: facilities (GeoJSON) and buildings from Anxin's own API on a base layer.
// Base "offline" (the default) loads no tiles at all: a graticule and the vector layers only,
// so the map is useful with no network. Coordinates from the API are WGS84.
(function () {
  "use strict";
  var el = document.getElementById("map");
  if (!el || typeof L === "undefined") return;
  var texts = {};
  try { texts = JSON.parse(el.dataset.texts || "{}"); } catch (e) { texts = {}; }
  var map = L.map(el, { preferCanvas: true, attributionControl: false }).setView([30.65, 104.08], 13);
  var graticule = L.layerGroup().addTo(map);
  function drawGraticule() {
    graticule.clearLayers();
    var b = map.getBounds();
    var span = Math.max(b.getEast() - b.getWest(), b.getNorth() - b.getSouth());
    var step = span > 2 ? 0.5 : span > 0.5 ? 0.1 : span > 0.1 ? 0.02 : 0.005;
    var style = { color: "#9a8f7a", weight: 1, opacity: 0.6, interactive: false };
    for (var x = Math.floor(b.getWest() / step) * step; x <= b.getEast(); x += step) {
      graticule.addLayer(L.polyline([[b.getSouth(), x], [b.getNorth(), x]], style));
    }
    for (var y = Math.floor(b.getSouth() / step) * step; y <= b.getNorth(); y += step) {
      graticule.addLayer(L.polyline([[y, b.getWest()], [y, b.getEast()]], style));
    }
  }
  map.on("moveend", drawGraticule);
  drawGraticule();
  var list = document.getElementById("map-list");
  function listItem(kind, name) {
    var li = document.createElement("li");
    li.textContent = kind + "：" + name;
    list.appendChild(li);
  }
  var all = L.featureGroup().addTo(map);
  var counts = { f: 0, b: 0 };
  function showCount() {
    var c = document.getElementById("map-count");
    if (c) c.textContent = (texts.count || "{f} / {b}").replace("{f}", counts.f).replace("{b}", counts.b);
    if (all.getLayers().length) map.fitBounds(all.getBounds().pad(0.2), { maxZoom: 17 });
  }
  function get(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .catch(function () { return null; });
  }
  var facilities = get("/api/v1/facilities.geojson").then(function (g) {
    if (!g || !g.features) return;
    L.geoJSON(g, {
      pointToLayer: function (f, ll) {
        return L.circleMarker(ll, { radius: 8, color: "#a4000f", weight: 2, fillColor: "#ff5a5f", fillOpacity: 0.8 });
      },
      onEachFeature: function (f, layer) {
        var name = (f.properties && (f.properties.name || f.properties.kind)) || "";
        layer.bindTooltip(name);
        listItem(texts.facilities || "", name);
        counts.f += 1;
      }
    }).addTo(all);
  });
  var buildings = get("/api/v1/buildings?limit=200").then(function (page) {
    if (!page || !page.items) return;
    page.items.forEach(function (b) {
      if (!b.location) return;
      L.circleMarker([b.location.lat, b.location.lon], { radius: 6, color: "#0b4f9c", weight: 2, fillColor: "#5b9bd5", fillOpacity: 0.8 })
        .bindTooltip(b.name).addTo(all);
      listItem(texts.buildings || "", b.name);
      counts.b += 1;
    });
  });
  Promise.all([facilities, buildings]).then(showCount);
})();
