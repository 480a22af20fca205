// Live updates of the operator console: every two seconds the panels are fetched again (the
// same server-rendered HTML the page starts with) and the charts redrawn from the history of
// readings with uPlot. Without JavaScript the page refreshes itself instead (<noscript>).
(function () {
  "use strict";
  var panels = document.getElementById("panels");
  var chartsSection = document.getElementById("charts");
  var EVERY_MS = 2000;
  var COLOURS = ["#0b4a8b", "#c0392b", "#1e7b34", "#8e44ad", "#d35400", "#555555"];
  var charts = {};

  function chart(id, names, unit) {
    var element = document.getElementById(id);
    var series = [{}].concat(names.map(function (name, i) {
      return { label: name, stroke: COLOURS[i % COLOURS.length], width: 2, spanGaps: true };
    }));
    var width = Math.max(Math.min(element.parentElement.clientWidth || 420, 560), 300);
    return new uPlot({ width: width, height: 220, series: series, axes: [{}, { label: unit }],
                       scales: { x: { time: true } } }, [[]].concat(names.map(function () { return []; })), element);
  }

  function drawCharts(data) {
    if (!window.uPlot || !data.time) return;
    chartsSection.hidden = false;
    if (!charts.throughput) {
      charts.throughput = chart("chart-throughput", data.services, "/s");
      charts.ingest = chart("chart-ingest", ["signals"], "/s");
      charts.lag = chart("chart-lag", data.services, "records");
    }
    charts.throughput.setData([data.time].concat(data.services.map(function (s) { return data.throughput[s]; })));
    charts.ingest.setData([data.time, data.ingest]);
    charts.lag.setData([data.time].concat(data.services.map(function (s) { return data.lag[s]; })));
  }

  function focusInside() {
    return panels.contains(document.activeElement) && document.activeElement !== panels;
  }

  function refresh() {
    fetch(panels.dataset.src, { credentials: "same-origin" }).then(function (response) {
      if (!response.ok) throw new Error(response.status);
      return response.text();
    }).then(function (html) {
      // Keep a keyboard user's place: do not swap the panels under their focus.
      if (html !== panels.innerHTML && !focusInside()) panels.innerHTML = html;
    }).catch(function () { /* the next round tries again */ });
    fetch(panels.dataset.series, { credentials: "same-origin" }).then(function (response) {
      return response.ok ? response.json() : null;
    }).then(function (data) { if (data) drawCharts(data); }).catch(function () {});
  }

  refresh();
  setInterval(refresh, EVERY_MS);
})();
