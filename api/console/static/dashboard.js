// Draws the dashboard's charts from the page's JSON block (#dashboard-data): a static file
// rather than an inline script, so the console's Content-Security-Policy allows no inline code.
// Rates arrive as fractions (null where a month had nothing to count) with the reader's
// Babel-formatted percentages, which the tooltips show as they are.
// "charts" are month-by-month lines; "bars" are the as-of month's bar charts, each with its
// own category labels. A series marked "interval" holds [low, high] pairs, drawn as thin
// floating bars: the 95 % interval around the rate beside it.
(function () {
  "use strict";
  var COLOURS = ["#0f4c5c", "#e36414", "#5f0f40", "#2a9d8f", "#9a031e", "#6c757d"];

  function tooltip() {
    return {
      callbacks: {
        label: function (item) {
          return item.dataset.label + ": " + item.dataset.texts[item.dataIndex];
        }
      }
    };
  }

  function yAxis(data, axis) {
    if (axis === "count") {
      return { beginAtZero: true, ticks: { precision: 0 } };
    }
    var percent = new Intl.NumberFormat(data.locale, { style: "percent", maximumFractionDigits: 1 });
    return { beginAtZero: true, ticks: { callback: function (value) { return percent.format(value); } } };
  }

  function dataset(series, index, type) {
    var colour = COLOURS[index % COLOURS.length];
    var set = {
      label: series.label,
      data: series.values,
      texts: series.texts,
      borderColor: colour,
      backgroundColor: colour
    };
    if (type === "line") {
      set.tension = 0.2;
    } else {
      set.order = 1;
    }
    if (series.interval) {
      // Over the rate's bar rather than beside it (grouped: false), and drawn last (order 0).
      set.grouped = false;
      set.order = 0;
      set.barPercentage = 0.25;
      set.backgroundColor = "rgba(108, 117, 125, 0.6)";
      set.borderColor = "#343a40";
      set.borderWidth = 1;
    }
    return set;
  }

  function draw(data, chart, type, labels) {
    var canvas = document.getElementById("chart-" + chart.id);
    if (!canvas) {
      return;
    }
    new window.Chart(canvas, {
      type: type,
      data: {
        labels: labels,
        datasets: chart.series.map(function (series, index) { return dataset(series, index, type); })
      },
      options: {
        locale: data.locale,
        animation: false,
        scales: { y: yAxis(data, chart.axis) },
        plugins: { tooltip: tooltip() }
      }
    });
  }

  function start() {
    var block = document.getElementById("dashboard-data");
    if (!block || !window.Chart) {
      return;
    }
    var data = JSON.parse(block.textContent);
    data.charts.forEach(function (chart) { draw(data, chart, "line", data.labels); });
    (data.bars || []).forEach(function (chart) { draw(data, chart, "bar", chart.labels); });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
