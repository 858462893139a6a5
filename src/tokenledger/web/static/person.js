// The person view: tokens per day (or hour) with the team's median per person beside it.
// The series comes in the canvas's data-series attribute (no inline script: CSP).
(function () {
  "use strict";

  function cssVar(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  function draw() {
    var canvas = document.getElementById("person-chart");
    if (!canvas || typeof Chart === "undefined") return;
    var series = JSON.parse(canvas.dataset.series);
    var locale = navigator.language || "en";
    var numberFormat = new Intl.NumberFormat(locale);
    var labelFormat = new Intl.DateTimeFormat(locale, series.interval === "hour"
      ? { hour: "2-digit", minute: "2-digit", timeZone: series.tz }
      : { month: "short", day: "numeric", timeZone: series.tz });
    var datasets = [
      { type: "bar", label: "Tokens", data: series.tokens, backgroundColor: cssVar("--heat-4"), borderRadius: 3 },
    ];
    if (series.team && series.median.some(function (value) { return value !== null; })) {
      datasets.push({
        type: "line", label: "Median per person of " + series.team, data: series.median,
        borderColor: cssVar("--text-muted"), borderDash: [6, 4], pointRadius: 0, fill: false,
      });
    }
    new Chart(canvas, {
      data: { labels: series.labels.map(function (start) { return labelFormat.format(new Date(start)); }), datasets: datasets },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        interaction: { mode: "index", intersect: false },
        plugins: {
          legend: { position: "bottom", labels: { color: cssVar("--text-muted"), boxWidth: 12 } },
          tooltip: { callbacks: { label: function (item) { return item.dataset.label + ": " + numberFormat.format(item.raw); } } },
        },
        scales: {
          x: { grid: { display: false }, ticks: { color: cssVar("--text-muted"), maxRotation: 0, autoSkipPadding: 12 } },
          y: { beginAtZero: true, grid: { color: cssVar("--border") }, ticks: { color: cssVar("--text-muted") } },
        },
      },
    });
    canvas.dataset.drawn = String(datasets.length);
  }

  draw();
})();
