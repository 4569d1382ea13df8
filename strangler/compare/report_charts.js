/* The load comparison page's interactive charts, drawn with uPlot (inlined above this script)
 * from the JSON in #chart-data (strangler/compare/report_charts.py). Drag across a chart to
 * zoom in, double-click to zoom out; the legend under each chart reads the hovered point's
 * figures and request count. The static pictures stay in the page for readers without scripts.
 * This script must never fetch anything nor compute a figure the JSON does not hold. */
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("chart-data").textContent);
  const colour = {};
  const title = {};
  data.architectures.forEach(function (found) {
    colour[found.key] = found.colour;
    title[found.key] = found.title;
  });
  const charts = {};
  window.reportCharts = charts;
  const HEIGHT = 300;

  function number(value, digits) {
    if (value == null) return "-";
    return value.toLocaleString("en", {
      minimumFractionDigits: digits, maximumFractionDigits: digits,
    });
  }

  function count(value) {
    return "n=" + number(value || 0, 0);
  }

  function width(element) {
    return Math.max(360, element.clientWidth || 900);
  }

  function panel(key, heading) {
    const holder = document.querySelector('[data-chart="' + key + '"]');
    const element = document.createElement("div");
    element.className = "chart";
    element.setAttribute("data-chart-name", heading);
    holder.appendChild(element);
    return element;
  }

  function note(key, text) {
    const holder = document.querySelector('[data-chart="' + key + '"]');
    const paragraph = document.createElement("p");
    paragraph.className = "chart-note";
    paragraph.textContent = text;
    holder.appendChild(paragraph);
  }

  /* ---- the limit search: one line per architecture, every step a point ---- */

  function stepText(found, index) {
    const parts = [
      number(found.rate[index], 0) + " req/s",
      "p95 " + number(found.p95[index], 0) + " ms",
      count(found.requests[index]),
    ];
    if (found.errors[index]) parts.push("errors " + number(100 * found.errors[index], 1) + "%");
    const users = data.search.users[index];
    if (users === found.limit) parts.push(found.reached ? "the limit" : "limit not reached");
    if (users === found.broken) parts.push("broke a bound");
    return parts.join(", ");
  }

  function star(context, x, y, radius) {
    context.beginPath();
    for (let point = 0; point < 10; point++) {
      const reach = point % 2 ? radius / 2.2 : radius;
      const angle = Math.PI / 2 + (point * Math.PI) / 5;
      context.lineTo(x + reach * Math.cos(angle), y - reach * Math.sin(angle));
    }
    context.closePath();
  }

  function marks(which) {
    return function (u) {
      const context = u.ctx;
      const ratio = window.devicePixelRatio || 1;
      context.save();
      if (which === "p95") {
        const y = u.valToPos(data.search.bound, "y", true);
        context.strokeStyle = "#888";
        context.setLineDash([4 * ratio, 4 * ratio]);
        context.beginPath();
        context.moveTo(u.bbox.left, y);
        context.lineTo(u.bbox.left + u.bbox.width, y);
        context.stroke();
        context.setLineDash([]);
      }
      data.search.series.forEach(function (found, index) {
        if (!u.series[index + 1].show) return;
        [[found.limit, found.reached ? "star" : "triangle"], [found.broken, "cross"]].forEach(
          function (pair) {
            const at = data.search.users.indexOf(pair[0]);
            const value = at < 0 ? null : found[which][at];
            if (value == null) return;
            const x = u.valToPos(pair[0], "x", true);
            const y = u.valToPos(value, "y", true);
            context.fillStyle = colour[found.key];
            context.strokeStyle = "#000";
            context.lineWidth = ratio;
            const radius = 8 * ratio;
            if (pair[1] === "star") star(context, x, y, radius);
            else if (pair[1] === "triangle") {
              context.beginPath();
              context.moveTo(x, y - radius);
              context.lineTo(x + radius, y + radius * 0.7);
              context.lineTo(x - radius, y + radius * 0.7);
              context.closePath();
            } else {
              context.beginPath();
              context.moveTo(x - radius * 0.7, y - radius * 0.7);
              context.lineTo(x + radius * 0.7, y + radius * 0.7);
              context.moveTo(x + radius * 0.7, y - radius * 0.7);
              context.lineTo(x - radius * 0.7, y + radius * 0.7);
              context.lineWidth = 3 * ratio;
              context.strokeStyle = colour[found.key];
              context.stroke();
              return;
            }
            context.fill();
            context.stroke();
          }
        );
      });
      context.restore();
    };
  }

  function searchChart(which, heading, unit, logarithmic) {
    const search = data.search;
    if (!search.series.length) return;
    const element = panel("load", heading);
    const series = [{ label: "users", value: function (u, v) { return v == null ? "-" : v + " users"; } }];
    search.series.forEach(function (found) {
      series.push({
        label: title[found.key],
        stroke: colour[found.key],
        width: 2,
        spanGaps: true,
        points: { show: true, size: 7, fill: colour[found.key] },
        value: function (u, v, seriesIndex, index) {
          return v == null || index == null ? "-" : stepText(found, index);
        },
      });
    });
    const scales = { x: { time: false, distr: 3, log: 2 } };
    if (logarithmic) scales.y = { distr: 3, log: 10 };
    const options = {
      title: heading,
      width: width(element),
      height: HEIGHT,
      scales: scales,
      series: series,
      axes: [
        { label: "users, no think time (each point a step of the search)" },
        { label: unit, size: 60 },
      ],
      cursor: { drag: { x: true, y: false } },
      hooks: { draw: [marks(which)] },
    };
    const values = [search.users].concat(search.series.map(function (found) { return found[which]; }));
    charts[which === "rate" ? "throughput" : "p95"] = new uPlot(options, values, element);
  }

  /* ---- bars: one group per category, one bar per series, each bar its own colour ---- */

  function barChart(key, name, heading, labels, groups, unit, stacked, category) {
    const element = panel(key, heading);
    const xs = labels.map(function (label, index) { return index; });
    const slot = 0.8 / (stacked ? 1 : Math.max(groups.length, 1));
    let top = 0;
    const bottoms = xs.map(function () { return 0; });
    const series = [{
      label: category,
      value: function (u, v) { return v == null ? "-" : labels[Math.round(v)] || "-"; },
    }];
    const values = [xs];
    groups.forEach(function (group, index) {
      const low = bottoms.slice();
      const high = group.values.map(function (v, at) { return (stacked ? low[at] : 0) + (v || 0); });
      if (stacked) high.forEach(function (v, at) { bottoms[at] = v; });
      high.forEach(function (v) { top = Math.max(top, v); });
      const left = xs.map(function (x) { return x - 0.4 + (stacked ? 0 : index * slot); });
      series.push({
        label: group.label,
        stroke: group.legend,
        fill: group.legend,
        width: group.strokes ? 1.5 : 0,
        points: { show: false },
        value: function (u, v, seriesIndex, at) {
          return v == null || at == null ? "-" : group.text(at);
        },
        paths: uPlot.paths.bars({
          disp: {
            x0: { unit: 1, values: function () { return left; } },
            size: { unit: 1, values: function () { return [slot * 0.92]; } },
            y0: { unit: 1, values: function () { return stacked ? low : xs.map(function () { return 0; }); } },
            y1: { unit: 1, values: function () { return high; } },
            fill: { unit: 3, values: function () { return group.fills; } },
            stroke: group.strokes ? { unit: 3, values: function () { return group.strokes; } } : undefined,
          },
        }),
      });
      values.push(group.values);
    });
    const options = {
      title: heading,
      width: width(element),
      height: HEIGHT + 60,
      padding: [12, 56, 0, 0],  // room for the last category's turned label
      series: series,
      scales: {
        x: {
          time: false,
          range: function (u, min, max) {  // room for the outer bars, unless zoomed in
            const whole = min === xs[0] && max === xs[xs.length - 1];
            return whole ? [min - 0.5, max + 0.5] : [min, max];
          },
        },
        y: { range: function () { return [0, (top || 1) * 1.12]; } },
      },
      axes: [
        {
          splits: function (u) {
            return xs.filter(function (x) { return x >= u.scales.x.min && x <= u.scales.x.max; });
          },
          values: function (u, splits) { return splits.map(function (x) { return labels[x]; }); },
          rotate: -20,
          size: 90,
          gap: 4,
        },
        { label: unit, size: 60 },
      ],
      legend: { live: true },
      cursor: { drag: { x: true, y: false }, points: { show: false } },
    };
    charts[name] = new uPlot(options, values, element);
  }

  function cpuCharts() {
    data.cpu.forEach(function (panelData, index) {
      if (!panelData.keys.length) return;
      const labels = panelData.keys;
      const groups = panelData.roles.map(function (role) {
        return {
          label: role.role,
          legend: role.colour,
          values: role.values,
          fills: role.values.map(function () { return role.colour; }),
          text: function (at) {
            const total = data.cpu[index].roles.reduce(function (sum, r) { return sum + r.values[at]; }, 0);
            const digits = panelData.unit === "cores" ? 3 : 2;
            let text = number(role.values[at], digits) + " of " + number(total, digits) + " " + panelData.unit;
            if (panelData.unit !== "cores") text += " (" + count(panelData.requests[at]) + ")";
            return text + " - " + title[labels[at]];
          },
        };
      });
      barChart("cpu", "cpu-" + index, panelData.title, labels, groups, panelData.unit, true,
        "architecture");
    });
  }

  function endpointChart() {
    const endpoints = data.endpoints;
    if (!endpoints.series.length) return;
    let few = false;
    const groups = endpoints.series.map(function (found) {
      const fills = found.requests.map(function (n) {
        const thin = n > 0 && n < data.minSamples;
        few = few || thin;
        return thin ? data.few : colour[found.key];
      });
      return {
        label: title[found.key],
        legend: colour[found.key],
        values: found.p95,
        fills: fills,
        strokes: found.requests.map(function () { return colour[found.key]; }),  // grey or not
        text: function (at) {
          const n = found.requests[at];
          let text = number(found.p95[at], 0) + " ms, " + count(n);
          if (n > 0 && n < data.minSamples) {
            text += " (grey: fewer than " + data.minSamples + " requests, a p95 too thin to judge)";
          }
          return text;
        },
      };
    });
    barChart("endpoints", "endpoints", "p95 per endpoint at " + endpoints.rate + " req/s (reference)",
      endpoints.names, groups, "p95 (ms)", false, "endpoint");
    if (few) {
      note("endpoints", "Grey bars: fewer than " + data.minSamples +
        " requests, so their p95 is one of a few slowest requests, too thin to judge.");
    }
  }

  function isolationChart() {
    const isolation = data.isolation;
    if (!isolation.rows.length) return;
    const labels = isolation.rows.map(function (row) { return row.key; });
    const light = isolation.rows.map(function (row) { return colour[row.key] + "73"; });
    const solid = isolation.rows.map(function (row) { return colour[row.key]; });
    const groups = [
      {
        label: isolation.rate + " req/s (light)",
        legend: "#bbbbbb",
        values: isolation.rows.map(function (row) { return row.before; }),
        fills: light,
        text: function (at) {
          const row = isolation.rows[at];
          return number(row.before, 0) + " ms, " + count(row.beforeRequests) + " - " + title[row.key];
        },
      },
      {
        label: "+ " + isolation.hotUsers + " " + isolation.hotName + " (solid)",
        legend: "#555555",
        values: isolation.rows.map(function (row) { return row.after; }),
        fills: solid,
        text: function (at) {
          const row = isolation.rows[at];
          const ratio = row.ratio == null ? "" : " (x" + number(row.ratio, 2) + ")";
          return number(row.after, 0) + " ms" + ratio + ", " + count(row.afterRequests);
        },
      },
    ];
    barChart("isolation", "isolation", "Other endpoints' p95 without and with the hot load",
      labels, groups, "p95 of the other endpoints (ms)", false, "architecture");
  }

  searchChart("rate", "Throughput of every step (star: the limit, triangle: not reached, cross: broke a bound)", "requests/s", false);
  searchChart("p95", "p95 of every step (dashed: the bound)", "p95 (ms)", true);
  cpuCharts();
  endpointChart();
  isolationChart();
  document.body.classList.add("interactive");
})();
