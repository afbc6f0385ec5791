// Draws every div.timeseries of a page with uPlot. Its data is the
// data-series attribute the server wrote (escaped like any attribute):
// {"x": [unix seconds], "series": [{"label": "...", "values": [...]}]}.
(function () {
  var colors = ["#0969da", "#cf222e", "#1a7f37", "#9a6700", "#8250df", "#bf3989", "#1b7c83", "#57606a"];
  document.querySelectorAll("div.timeseries").forEach(function (el) {
    var d = JSON.parse(el.getAttribute("data-series"));
    var series = [{}].concat(d.series.map(function (s, i) {
      return { label: s.label, stroke: colors[i % colors.length], width: 1.5 };
    }));
    var opts = { width: Math.max(320, el.clientWidth || 900), height: 220, series: series,
      scales: { x: { time: true } }, axes: [{}, { size: 60 }] };
    new uPlot(opts, [d.x].concat(d.series.map(function (s) { return s.values; })), el);
  });
})();
