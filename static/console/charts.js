/* The dashboard's charts (unfold draws them with Chart.js from data-value; loyalty_site/dashboard.py):
   axis titles from the first dataset's xAxisTitle / yAxisTitle, and the value axis's ticks and the
   tooltips in the page's language (3.497,94 in German, 3,497.94 in English). Loaded before
   unfold's app.js creates the charts; a Chart.js plugin adjusts each chart before its first layout. */
(function () {
  "use strict";
  if (typeof Chart === "undefined") return;

  const locale = document.documentElement.lang || navigator.language || "de";
  const numbers = new Intl.NumberFormat(locale, { maximumFractionDigits: 2 });

  function titled(text) {
    return { display: Boolean(text), text: text || "", color: "#9ca3af" };
  }

  Chart.register({
    id: "treuepunktAxes",
    beforeInit(chart) {
      const first = (chart.data.datasets || []).find((dataset) => dataset.yAxisTitle || dataset.xAxisTitle);
      if (!first || !chart.options.scales) return;
      chart.options.locale = locale;
      const { x, y } = chart.options.scales;
      if (x) x.title = titled(first.xAxisTitle);
      if (y) {
        y.title = titled(first.yAxisTitle);
        y.ticks.display = true;
        y.ticks.callback = (value) => numbers.format(value);
        if (first.wholeNumbers) y.ticks.precision = 0;
      }
    },
  });
})();
