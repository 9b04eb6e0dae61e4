// The admin page's earnings chart, drawn with the vendored Chart.js from the JSON in
// #earnings-data; #earnings-days is the same data as a table for those without it.
(function () {
  "use strict";
  function draw() {
    var data = document.getElementById("earnings-data");
    var canvas = document.getElementById("earnings-chart");
    if (!data || !canvas || !window.Chart) {
      return;
    }
    var d = JSON.parse(data.textContent);
    var old = window.Chart.getChart(canvas);
    if (old) {
      old.destroy();
    }
    new window.Chart(canvas, {
      type: "bar",
      data: {
        labels: d.labels,
        datasets: [{ label: "Earnings", data: d.values, backgroundColor: "#1d4f91" }]
      },
      options: { animation: false, responsive: true, maintainAspectRatio: false }
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
