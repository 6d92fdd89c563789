// Draws the dashboard's charts from the page's JSON block (#dashboard-data): a static file
// rather than an inline script, so the console's Content-Security-Policy allows no inline code.
// Rates arrive as fractions (null where a month had nothing to count) with the reader's
// Babel-formatted percentages, which the tooltips show as they are.
(function () {
  "use strict";
  var COLOURS = ["#0f4c5c", "#e36414", "#5f0f40", "#2a9d8f", "#9a031e", "#6c757d"];

  function draw(data, chart) {
    var canvas = document.getElementById("chart-" + chart.id);
    if (!canvas) {
      return;
    }
    var percent = new Intl.NumberFormat(data.locale, { style: "percent", maximumFractionDigits: 1 });
    new window.Chart(canvas, {
      type: "line",
      data: {
        labels: data.labels,
        datasets: chart.series.map(function (series, index) {
          var colour = COLOURS[index % COLOURS.length];
          return {
            label: series.label,
            data: series.values,
            texts: series.texts,
            borderColor: colour,
            backgroundColor: colour,
            tension: 0.2
          };
        })
      },
      options: {
        locale: data.locale,
        animation: false,
        scales: {
          y: { beginAtZero: true, ticks: { callback: function (value) { return percent.format(value); } } }
        },
        plugins: {
          tooltip: {
            callbacks: {
              label: function (item) {
                return item.dataset.label + ": " + item.dataset.texts[item.dataIndex];
              }
            }
          }
        }
      }
    });
  }

  function start() {
    var block = document.getElementById("dashboard-data");
    if (!block || !window.Chart) {
      return;
    }
    var data = JSON.parse(block.textContent);
    data.charts.forEach(function (chart) { draw(data, chart); });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
