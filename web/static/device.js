// A device's readings as a chart (ECharts, served by Anxin). The page carries the series as
// JSON in data-series ({"metrics": {"level": [[t_ms, avg, min, max], …]}}) and the address to
// poll for fresh ones in data-src; the table under the chart holds the same numbers for screen
// readers and for browsers without script.
(function () {
  "use strict";
  var el = document.getElementById("device-chart");
  if (!el || typeof echarts === "undefined") return;
  var chart = echarts.init(el, null, { renderer: "svg" });
  var texts = {};
  try { texts = JSON.parse(el.dataset.texts || "{}"); } catch (e) { texts = {}; }

  function option(series) {
    var metrics = Object.keys((series && series.metrics) || {});
    return {
      animation: false,
      tooltip: { trigger: "axis" },
      legend: { data: metrics, top: 0 },
      grid: { left: 56, right: 24, top: 36, bottom: 56 },
      xAxis: { type: "time" },
      yAxis: { type: "value", scale: true },
      dataZoom: [{ type: "inside" }, { type: "slider", height: 18, bottom: 8 }],
      series: metrics.map(function (m) {
        return {
          name: m, type: "line", showSymbol: false,
          data: series.metrics[m].map(function (p) { return [p[0], p[1]]; })
        };
      })
    };
  }

  function show(series) {
    var empty = !series || !series.metrics || !Object.keys(series.metrics).length;
    el.setAttribute("data-empty", empty ? "1" : "0");
    if (empty) { chart.clear(); el.setAttribute("aria-label", texts.empty || ""); return; }
    chart.setOption(option(series), true);
    el.dataset.drawn = String(Object.keys(series.metrics).length);
  }

  var initial = null;
  try { initial = JSON.parse(el.dataset.series || "null"); } catch (e) { initial = null; }
  show(initial);
  window.addEventListener("resize", function () { chart.resize(); });
  if (el.dataset.src) {
    setInterval(function () {
      fetch(el.dataset.src, { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (s) { if (s) show(s); })
        .catch(function () {});
    }, 30000);
  }
})();
