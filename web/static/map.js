// The map page: Anxin's own layers (outlines, grids, buildings, facilities, drawn features) on the
// configured base layer, and drawing.
//
// Base "offline" (the default) loads no tiles at all: a plain background, a graticule, a scale
// and the vector layers from /api/v1/map/layers, so the map works with no network. An online
// base adds its tile layer. Layers arrive already in the base layer's coordinate system (the
// server shifts WGS84 to GCJ-02 for AMap); drawings are sent in that system with its name and the
// server converts them back to WGS84. This script never converts coordinates.
//
// Drawing is a small script rather than leaflet-draw or leaflet-geoman: the page needs a polygon
// by clicks, a point and moving a building, which is ~150 lines here against 150-400 kB of
// plugin with its own icons and translations to vendor.
(function () {
  "use strict";
  var el = document.getElementById("map");
  if (!el || typeof L === "undefined") return;
  function parse(s) { try { return JSON.parse(s || "{}"); } catch (e) { return {}; } }
  var texts = parse(el.dataset.texts);
  var base = parse(el.dataset.base);
  var csrf = el.dataset.csrf || "";
  var crs = base.crs || "wgs84";
  var online = base.base && base.base !== "offline" && base.tiles;

  var map = L.map(el, { attributionControl: !!online, doubleClickZoom: false })
    .setView(base.center || [30.65, 104.08], base.zoom || 13);
  L.control.scale({ imperial: false }).addTo(map);

  if (online) {
    var opts = { subdomains: base.subdomains || "abc", maxZoom: 18, attribution: base.attribution || "" };
    L.tileLayer(base.tiles, opts).addTo(map);
    if (base.base === "tianditu") {
      // 天地图's vector layer has no labels; its annotation layer (cva) carries them.
      L.tileLayer(base.tiles.replace("vec_w", "cva_w").replace("LAYER=vec", "LAYER=cva"), opts).addTo(map);
    }
  } else {
    var graticule = L.layerGroup().addTo(map);
    var drawGraticule = function () {
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
    map.on("moveend", drawGraticule);
    drawGraticule();
  }

  var STYLE = {
    outline: { color: "#5a3e8a", weight: 3, dashArray: "6 4", fill: false, className: "anxin-outline" },
    grid: { color: "#1d6b3a", weight: 2, fillColor: "#6fbf73", fillOpacity: 0.2, className: "anxin-grid" },
    feature: { color: "#b35c00", weight: 2, fillColor: "#ffb74d", fillOpacity: 0.25, className: "anxin-feature" }
  };
  var POINT = {
    building: { radius: 6, color: "#0b4f9c", weight: 2, fillColor: "#5b9bd5", fillOpacity: 0.9, className: "anxin-building" },
    facility: { radius: 8, color: "#a4000f", weight: 2, fillColor: "#ff5a5f", fillOpacity: 0.9, className: "anxin-facility" },
    feature: { radius: 7, color: "#b35c00", weight: 2, fillColor: "#ffb74d", fillOpacity: 0.9, className: "anxin-feature" }
  };
  var LABEL = { outline: texts.outlines, grid: texts.grids, building: texts.buildings, facility: texts.facilities, feature: texts.features };

  var list = document.getElementById("map-list");
  var hint = document.getElementById("map-hint");
  var status = document.getElementById("map-count");
  function say(msg) { if (hint) hint.textContent = msg || ""; }

  function api(method, url, body) {
    var init = { method: method, credentials: "same-origin", headers: { Accept: "application/json" } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.headers["X-CSRF-Token"] = csrf;
      init.body = JSON.stringify(body);
    }
    return fetch(url, init).then(function (r) {
      return r.text().then(function (t) {
        var j = null;
        try { j = t ? JSON.parse(t) : null; } catch (e) { j = null; }
        return { ok: r.ok, status: r.status, json: j };
      });
    }).catch(function () { return { ok: false, status: 0, json: null }; });
  }

  var layers = L.featureGroup().addTo(map);
  var fitted = false;
  var mode = null;
  var picked = null; // the building being moved

  function load() {
    return api("GET", "/api/v1/map/layers?crs=" + encodeURIComponent(crs)).then(function (r) {
      layers.clearLayers();
      if (list) list.textContent = "";
      var counts = { outline: 0, grid: 0, building: 0, facility: 0, feature: 0 };
      if (!r.ok || !r.json || !r.json.features) return;
      L.geoJSON(r.json, {
        filter: function (f) { return !!f.geometry; },
        // Points get their style from pointToLayer; a style here would replace their class.
        style: function (f) {
          var l = f.properties.layer;
          return f.geometry.type === "Point" ? (POINT[l] || POINT.feature) : (STYLE[l] || STYLE.feature);
        },
        pointToLayer: function (f, ll) { return L.circleMarker(ll, POINT[f.properties.layer] || POINT.feature); },
        onEachFeature: function (f, layer) {
          var p = f.properties || {};
          counts[p.layer] = (counts[p.layer] || 0) + 1;
          layer.bindTooltip(p.name || "");
          if (list) {
            var li = document.createElement("li");
            li.dataset.layer = p.layer;
            li.textContent = (LABEL[p.layer] || "") + "：" + (p.name || "");
            list.appendChild(li);
          }
          if (p.layer === "building") {
            layer.on("click", function (e) {
              if (mode !== "move" || picked) return;
              if (e.originalEvent) e.originalEvent.anxinPicked = true;
              picked = { id: p.id, name: p.name, layer: layer };
              say((texts.move_pick || "{name}").replace("{name}", p.name || ""));
            });
          }
        }
      }).addTo(layers);
      // Buildings stay clickable above the areas and outlines drawn over them.
      layers.eachLayer(function (g) {
        if (g.eachLayer) g.eachLayer(function (l) { if (l.feature && l.feature.properties.layer === "building" && l.bringToFront) l.bringToFront(); });
      });
      if (status) {
        status.textContent = (texts.count || "")
          .replace("{o}", counts.outline).replace("{g}", counts.grid).replace("{b}", counts.building)
          .replace("{f}", counts.facility).replace("{d}", counts.feature);
      }
      if (!fitted && layers.getLayers().length) {
        fitted = true;
        map.fitBounds(layers.getBounds().pad(0.2), { maxZoom: 17 });
      }
    });
  }

  // ---- drawing ----------------------------------------------------------------------------
  var form = document.getElementById("map-save");
  var gridRow = document.getElementById("map-grid-row");
  var gridSel = document.getElementById("map-grid");
  var kindSel = document.getElementById("map-kind");
  var sketch = L.layerGroup().addTo(map);
  var points = [];

  function redraw() {
    sketch.clearLayers();
    if (!points.length) return;
    var style = { color: "#d9480f", weight: 2, dashArray: "4 3", fillOpacity: 0.15, className: "anxin-sketch", interactive: false };
    if (mode === "point" || points.length === 1) {
      L.circleMarker(points[points.length - 1], { radius: 7, color: "#d9480f", className: "anxin-sketch", interactive: false }).addTo(sketch);
    } else if (points.length === 2) {
      L.polyline(points, style).addTo(sketch);
    } else {
      L.polygon(points, style).addTo(sketch);
    }
  }

  function setMode(m) {
    mode = m;
    points = [];
    picked = null;
    redraw();
    var drawing = m === "area" || m === "point" || m === "grid";
    if (form) form.hidden = !drawing;
    if (gridRow) gridRow.hidden = m !== "grid";
    ["map-name", "map-kind", "map-node"].forEach(function (id) {
      var f = document.getElementById(id);
      if (f && f.parentNode) f.parentNode.hidden = m === "grid";
    });
    if (kindSel) kindSel.value = m === "point" ? "point" : "area";
    el.style.cursor = m ? "crosshair" : "";
    say(m ? texts["draw_hint_" + m] : "");
  }

  document.querySelectorAll("[data-mode]").forEach(function (b) {
    b.addEventListener("click", function () { setMode(b.dataset.mode); });
  });
  var cancel = document.getElementById("map-cancel");
  if (cancel) cancel.addEventListener("click", function () { setMode(null); });
  var undo = document.getElementById("map-undo");
  if (undo) undo.addEventListener("click", function () { points.pop(); redraw(); });

  // A click on a grid, outline or building lands on that layer, not on the map (Leaflet gives a
  // click to the topmost layer that listens): while drawing, those count as map clicks too.
  function onClick(e) {
    if (mode === "area" || mode === "grid") {
      points.push(e.latlng);
      redraw();
    } else if (mode === "point") {
      points = [e.latlng];
      redraw();
    } else if (mode === "move" && picked) {
      var b = picked;
      api("PATCH", "/api/v1/buildings/" + b.id, { location: { lon: e.latlng.lng, lat: e.latlng.lat, crs: crs } })
        .then(function (r) { if (r.ok) setMode("move"); done(r); });
    }
  }
  map.on("click", onClick);
  layers.on("click", function (e) {
    if (e.originalEvent && e.originalEvent.anxinPicked) return;
    onClick(e);
  });

  function fail(r) {
    var err = (r.json && r.json.error) || {};
    var field = err.details && err.details.field ? " " + err.details.field : "";
    say((texts.save_failed || "") + (err.code ? "（" + err.code + field + "）" : ""));
  }
  function done(r) {
    if (!r.ok) { fail(r); return; }
    // "Saved" only once the layers are drawn again, so what the user (or a test) clicks next is
    // what the server now holds, not a layer about to be cleared.
    load().then(function () { say(texts.saved); });
  }
  function ring() {
    var c = points.map(function (p) { return [p.lng, p.lat]; });
    c.push(c[0]);
    return { type: "Polygon", coordinates: [c] };
  }

  if (form) form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    if (mode === "grid") {
      if (points.length < 3) { say(texts.need_points); return; }
      if (!gridSel || !gridSel.value) { say(texts.need_grid); return; }
      api("POST", "/api/v1/map/grids/" + gridSel.value + "/outline", { geometry: ring(), crs: crs })
        .then(function (r) { if (r.ok) setMode(null); done(r); });
      return;
    }
    var name = document.getElementById("map-name").value.trim();
    if (!name) { say(texts.need_name); return; }
    var geometry;
    if (mode === "point") {
      if (points.length !== 1) { say(texts.need_points); return; }
      geometry = { type: "Point", coordinates: [points[0].lng, points[0].lat] };
    } else {
      if (points.length < 3) { say(texts.need_points); return; }
      geometry = ring();
    }
    api("POST", "/api/v1/map/features", {
      node_id: document.getElementById("map-node").value,
      kind: kindSel ? kindSel.value : "area",
      name: name,
      geometry: geometry,
      crs: crs
    }).then(function (r) {
      if (r.ok) { document.getElementById("map-name").value = ""; setMode(null); }
      done(r);
    });
  });

  api("GET", "/api/v1/map/grids").then(function (r) {
    if (!gridSel || !r.ok || !r.json) return;
    r.json.forEach(function (g) {
      var o = document.createElement("option");
      o.value = g.id;
      o.textContent = g.name;
      gridSel.appendChild(o);
    });
  });
  load();
})();
