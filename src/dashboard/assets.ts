/**
 * The dashboard page: one HTML document, one script, one stylesheet, all served by the Worker
 * (no CDN: nothing is fetched from elsewhere at run time). Charts are plain SVG drawn by the script
 * with presentation attributes only, so the Content-Security-Policy needs no `unsafe-inline`. The
 * script polls the read-only `/dashboard/api/…` routes every `REFRESH_MS`; the session cookie goes
 * along by itself (same origin, `Path=/dashboard`).
 */

/** How often the page polls its data routes. */
export const REFRESH_MS = 5000;

/**
 * The page's CSP: only its own script, stylesheet and same-origin fetches; `img-src data:` for the
 * empty favicon (so the browser does not ask for /favicon.ico).
 */
export const DASHBOARD_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>edge-inference dashboard</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/dashboard/app.css">
<script src="/dashboard/app.js" defer></script>
</head>
<body>
<header>
  <h1>edge-inference</h1>
  <span id="status" class="status">loading…</span>
</header>
<main>
  <section class="card wide">
    <h2>Calls per second <small>(last 60 s, per API)</small></h2>
    <div id="chart-per-second" class="chart"></div>
  </section>
  <section class="card wide">
    <h2>Calls per minute <small>(last 60 min, per API)</small></h2>
    <div id="chart-per-minute" class="chart"></div>
  </section>
  <section class="card wide">
    <h2>Error rate <small>(share of all calls per minute, last 60 min)</small></h2>
    <div id="chart-errors" class="chart"></div>
  </section>
  <section class="card">
    <h2>Status mix <small>(24 h, every API with traffic)</small></h2>
    <div id="chart-status" class="chart scroll"></div>
  </section>
  <section class="card">
    <h2>Latency <small>(ms, last hour: p50 · p95 · p99)</small></h2>
    <div id="chart-latency" class="chart scroll"></div>
  </section>
  <section class="card wide">
    <h2>APIs <small>(every API with traffic in 24 h; latency percentiles of the last hour)</small></h2>
    <div class="scroll"><table id="table-apis"><thead><tr><th>API</th><th class="num">this minute</th><th class="num">last 10 s</th><th class="num">24 h</th><th class="num">errors 24 h</th><th class="num">2xx</th><th class="num">4xx</th><th class="num">5xx</th><th class="num">p50 ms</th><th class="num">p95 ms</th><th class="num">p99 ms</th></tr></thead><tbody></tbody></table></div>
  </section>
  <section class="card wide">
    <h2>Models</h2>
    <table id="table-models"><thead><tr><th>model</th><th>active version</th><th class="num">versions</th><th>kind</th><th>task</th><th>headline</th><th>other metrics</th></tr></thead><tbody></tbody></table>
  </section>
  <section class="card">
    <h2>Failed work <small>(24 h; dead-lettered = failed after the queue's retries)</small></h2>
    <table id="table-failed"><thead><tr><th>queue</th><th class="num">invalid</th><th class="num">dead-lettered</th><th class="num">stuck</th></tr></thead><tbody></tbody></table>
    <table id="table-failures"><thead><tr><th>when</th><th>what</th><th>model</th><th>why</th></tr></thead><tbody></tbody></table>
  </section>
  <section class="card">
    <h2>Callers <small>(this minute, all APIs)</small></h2>
    <table id="table-callers"><thead><tr><th>caller</th><th class="num">calls</th><th>busiest APIs</th></tr></thead><tbody></tbody></table>
  </section>
  <section class="card">
    <h2>Online learners <small>(accuracy by samples seen)</small></h2>
    <div id="chart-online" class="chart"></div>
    <table id="table-online"><thead><tr><th>model</th><th class="num">samples</th><th class="num">classes</th><th class="num">accuracy (window)</th><th>snapshot</th></tr></thead><tbody></tbody></table>
  </section>
  <section class="card">
    <h2>Async backlog</h2>
    <div id="chart-backlog" class="chart"></div>
    <table id="table-backlog"><thead><tr><th>queue</th><th class="num">queued</th><th class="num">running</th><th class="num">oldest queued</th></tr></thead><tbody></tbody></table>
  </section>
  <!-- ==== Per-model view (issue 30: rollout, feedback, live quality) ==== -->
  <section class="card wide" id="model-view">
    <h2>Model rollout <small>(versions, traffic share, shadow comparisons, live quality from feedback)</small></h2>
    <label>model <select id="model-pick"></select></label>
    <div id="chart-model-share" class="chart"></div>
    <table id="table-model-versions"><thead><tr><th>version</th><th>role</th><th class="num">traffic share</th><th class="num">feedback</th><th class="num">accuracy</th><th class="num">requests</th><th class="num">error rate</th><th class="num">p50 ms</th><th class="num">p99 ms</th></tr></thead><tbody></tbody></table>
    <div id="model-quality">
      <h3>Live quality <small>(from feedback, at each version's shipped thresholds)</small></h3>
      <div id="chart-model-quality" class="chart"></div>
      <table id="table-model-quality"><thead><tr><th>version</th><th>label</th><th>rule</th><th class="num">positives</th><th class="num">negatives</th><th class="num">precision</th><th class="num">recall</th><th class="num">ROC-AUC</th></tr></thead><tbody></tbody></table>
    </div>
    <div id="model-shadow" hidden>
      <h3>Shadow comparisons <small>(shadow version against the version that answered)</small></h3>
      <table id="table-model-shadow"><thead><tr><th>shadow</th><th>vs serving</th><th class="num">sample</th><th class="num">requests</th><th class="num">top-1 agreement</th><th class="num">flagged-rate diff</th><th class="num">mean latency ms</th><th class="num">errors</th></tr></thead><tbody></tbody></table>
    </div>
  </section>
  <!-- ==== end of the per-model view ==== -->
  <!-- Explain a text (docs/explanations.md): its own section, script block and styles (xp-*). -->
  <section class="card wide" id="explain">
    <h2>Explain a text <small>(why a text model scored it so; POST /dashboard/api/explain)</small></h2>
    <form id="xp-form" class="xp-form">
      <textarea id="xp-text" rows="3" maxlength="4000" placeholder="Type a text…"></textarea>
      <select id="xp-model"></select>
      <button type="submit" id="xp-go">Explain</button>
    </form>
    <div id="xp-result" class="xp-result"></div>
  </section>
  <!-- Drift (issue #31, docs/drift.md): drawn by the drift block at the end of APP_JS. -->
  <section class="card wide">
    <h2>Drift <small>(largest PSI per hour of each model's active version against its reference profile — its training inputs, or a baseline of its own live traffic when it has no training data — last 24 h; dashed: warning threshold)</small></h2>
    <div id="chart-drift" class="chart"></div>
    <table id="table-drift"><thead><tr><th>model</th><th>version</th><th>drift</th><th class="num">inputs this hour</th><th>signals over the threshold (last hour with PSI)</th><th>reference</th></tr></thead><tbody></tbody></table>
  </section>
</main>
</body>
</html>
`;

export const APP_CSS = `
:root { color-scheme: light; --fg: #1d232b; --muted: #66707c; --line: #dde2e8; --bg: #f4f6f8; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; align-items: baseline; gap: 16px; padding: 12px 20px; background: #1d232b; color: #fff; }
header h1 { margin: 0; font-size: 18px; }
.status { color: #b8c2cc; }
.status.error { color: #ff9b8f; }
main { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 16px; padding: 16px 20px; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 12px 16px; }
.card.wide { grid-column: 1 / -1; }
h2 { margin: 0 0 8px; font-size: 15px; }
h2 small { color: var(--muted); font-weight: normal; }
table { width: 100%; border-collapse: collapse; margin-top: 8px; }
th, td { text-align: left; padding: 3px 12px 3px 0; border-bottom: 1px solid var(--line); white-space: nowrap; }
td.wrap { white-space: normal; color: var(--muted); font-size: 12px; }
.scroll { max-height: 420px; overflow-y: auto; }
td.num, th.num { text-align: right; }
.chart svg { width: 100%; height: auto; display: block; }
.chart text { font-size: 11px; fill: var(--muted); }
.legend { display: flex; flex-wrap: wrap; gap: 4px 12px; margin-top: 4px; color: var(--muted); font-size: 12px; }
.swatch { display: inline-block; width: 10px; height: 10px; margin-right: 4px; border-radius: 2px; vertical-align: -1px; }
.empty { color: var(--muted); padding: 24px 0; text-align: center; }
/* Per-model view (issue 30) */
h3 { margin: 12px 0 4px; font-size: 14px; }
h3 small { color: var(--muted); font-weight: normal; }
#model-pick { margin-left: 6px; font: inherit; }
#model-view .chart { max-width: 640px; }
/* Explain a text */
.xp-form { display: flex; gap: 8px; align-items: flex-start; }
.xp-form textarea { flex: 1; font: inherit; padding: 6px; }
.xp-text { margin: 6px 0; padding: 6px; border: 1px solid var(--line); border-radius: 4px; white-space: pre-wrap; line-height: 1.8; }
.xp-pos { background: #f8c9c4; }
.xp-neg { background: #c8ecd0; }
.xp-strong.xp-pos { background: #e8786b; }
.xp-strong.xp-neg { background: #6cc784; }
.xp-label { margin-top: 10px; font-weight: 600; }
.xp-error { color: #b3261e; }
`;

// Plain ES2020 in a string; no template literals inside it (it lives in one).
export const APP_JS = `"use strict";
(function () {
  var REFRESH_MS = ${REFRESH_MS};
  var SVG = "http://www.w3.org/2000/svg";
  // API colours avoid the status colours' hues (green, grey, amber, red): a colour means one thing.
  var COLORS = ["#2f6fdf", "#b5359c", "#3aa6b9", "#8d6e63", "#5b5fc7", "#1f4e79", "#c51b7d", "#607d8b", "#7b3294"];
  var OTHERS_COLOR = "#c7ccd1";
  var STATUS_COLORS = { "2xx": "#1a9850", "3xx": "#9e9e9e", "4xx": "#f39c12", "5xx": "#d73027" };
  var LATENCY_COLORS = { p50: "#9ecae1", p95: "#4292c6", p99: "#08519c" };
  var HEADLINE = ["test_roc_auc_mean", "test_roc_auc", "test_accuracy", "test_f1_macro", "accuracy"];
  var backlogHistory = [];

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    if (attrs) for (var k in attrs) node.setAttribute(k, attrs[k]);
    if (text !== undefined) node.textContent = String(text);
    return node;
  }
  function svgEl(tag, attrs, text) {
    var node = document.createElementNS(SVG, tag);
    for (var k in attrs) node.setAttribute(k, String(attrs[k]));
    if (text !== undefined) node.textContent = String(text);
    return node;
  }
  function colorOf(i) { return COLORS[i % COLORS.length]; }
  function fmt(n) {
    if (n === null || n === undefined || Number.isNaN(n)) return "–";
    if (Math.abs(n) >= 1000) return Math.round(n).toLocaleString("en");
    return String(Math.round(n * 100) / 100);
  }
  function sum(a) { var s = 0; for (var i = 0; i < a.length; i++) s += a[i]; return s; }

  function legend(names, colors) {
    var box = el("div", { class: "legend" });
    names.forEach(function (name, i) {
      var item = el("span");
      var sw = el("span", { class: "swatch" });
      sw.style.background = colors ? colors[i] : colorOf(i);
      item.appendChild(sw);
      item.appendChild(document.createTextNode(name));
      box.appendChild(item);
    });
    return box;
  }

  function frame(width, height, yMax, yLabel) {
    var svg = svgEl("svg", { viewBox: "0 0 " + width + " " + height, role: "img" });
    svg.appendChild(svgEl("line", { x1: 40, y1: height - 20, x2: width - 4, y2: height - 20, stroke: "#dde2e8" }));
    svg.appendChild(svgEl("line", { x1: 40, y1: 6, x2: 40, y2: height - 20, stroke: "#dde2e8" }));
    svg.appendChild(svgEl("text", { x: 36, y: 14, "text-anchor": "end" }, fmt(yMax)));
    svg.appendChild(svgEl("text", { x: 36, y: height - 20, "text-anchor": "end" }, "0"));
    if (yLabel) svg.appendChild(svgEl("text", { x: 44, y: 14 }, yLabel));
    return svg;
  }

  // Line chart: series = [{ name, points: [[x, y], ...] }]; empty series are left out.
  function lineChart(target, series, opts) {
    var shown = series.filter(function (s) { return s.points.length > 0; });
    target.textContent = "";
    var count = 0;
    shown.forEach(function (s) { count += s.points.length; });
    target.setAttribute("data-points", String(count));
    target.setAttribute("data-series", String(shown.length));
    if (count === 0) { target.appendChild(el("div", { class: "empty" }, opts.empty || "no data yet")); return; }
    var W = opts.width || 560, H = 200, left = 44, right = W - 8, top = 18, bottom = H - 22;
    var xs = [], ys = [];
    shown.forEach(function (s) { s.points.forEach(function (p) { xs.push(p[0]); ys.push(p[1]); }); });
    var xMin = Math.min.apply(null, xs), xMax = Math.max.apply(null, xs);
    if (xMax === xMin) xMax = xMin + 1;
    var yMax = opts.yMax !== undefined ? opts.yMax : Math.max(1, Math.max.apply(null, ys));
    var svg = frame(W, H, yMax, opts.yLabel);
    svg.appendChild(svgEl("text", { x: left, y: H - 6 }, opts.xFrom || fmt(xMin)));
    svg.appendChild(svgEl("text", { x: right, y: H - 6, "text-anchor": "end" }, opts.xTo || fmt(xMax)));
    shown.forEach(function (s, i) {
      var coords = s.points.map(function (p) {
        var x = left + ((p[0] - xMin) / (xMax - xMin)) * (right - left);
        var y = bottom - (Math.min(p[1], yMax) / yMax) * (bottom - top);
        return x.toFixed(1) + "," + y.toFixed(1);
      });
      var color = s.color || colorOf(series.indexOf(s));
      svg.appendChild(svgEl("polyline", { points: coords.join(" "), fill: "none", stroke: color, "stroke-width": 1.6, "data-name": s.name }));
      if (s.points.length === 1) {
        var only = coords[0].split(",");
        svg.appendChild(svgEl("circle", { cx: only[0], cy: only[1], r: 3, fill: color }));
      }
    });
    target.appendChild(svg);
    target.appendChild(legend(series.map(function (s) { return s.name; }), series.map(function (s, i) { return s.color || colorOf(i); })));
  }

  // Horizontal bars: rows = [{ name, parts: [{ label, value, color }] }] (stacked).
  function barChart(target, rows, opts) {
    var shown = rows.filter(function (r) { return sum(r.parts.map(function (p) { return p.value; })) > 0; });
    target.textContent = "";
    target.setAttribute("data-points", String(shown.length));
    if (shown.length === 0) { target.appendChild(el("div", { class: "empty" }, opts.empty || "no calls yet")); return; }
    var W = 420, rowH = 18, left = 120, right = W - 80;
    var H = shown.length * rowH + 8;
    var max = Math.max.apply(null, shown.map(function (r) { return sum(r.parts.map(function (p) { return p.value; })); }));
    var svg = svgEl("svg", { viewBox: "0 0 " + W + " " + H, role: "img" });
    shown.forEach(function (r, i) {
      var y = 4 + i * rowH;
      var total = sum(r.parts.map(function (p) { return p.value; }));
      svg.appendChild(svgEl("text", { x: left - 6, y: y + 12, "text-anchor": "end" }, r.name));
      var x = left;
      r.parts.forEach(function (p) {
        if (p.value <= 0) return;
        var w = opts.normalise ? (p.value / total) * (right - left) : (p.value / max) * (right - left);
        svg.appendChild(svgEl("rect", { x: x.toFixed(1), y: y + 2, width: Math.max(1, w).toFixed(1), height: rowH - 6, fill: p.color, "data-label": p.label }));
        x += w;
      });
      svg.appendChild(svgEl("text", { x: x + 4, y: y + 12 }, opts.total ? opts.total(r) : fmt(total)));
    });
    target.appendChild(svg);
    if (opts.legend) {
      var box = el("div", { class: "legend" });
      opts.legend.forEach(function (l) {
        var item = el("span"); var sw = el("span", { class: "swatch" }); sw.style.background = l.color;
        item.appendChild(sw); item.appendChild(document.createTextNode(l.label)); box.appendChild(item);
      });
      target.appendChild(box);
    }
  }

  function fillTable(id, rows) {
    var body = document.querySelector("#" + id + " tbody");
    body.textContent = "";
    rows.forEach(function (cells) {
      var tr = el("tr");
      cells.forEach(function (c) {
        if (c !== null && typeof c === "object") { tr.appendChild(el("td", { class: "wrap" }, c.wrap)); return; }
        var numeric = typeof c === "number" || /^[\\d.,]+( %| s)?$/.test(c);
        tr.appendChild(el("td", numeric ? { class: "num" } : null, typeof c === "number" ? fmt(c) : c));
      });
      body.appendChild(tr);
    });
  }

  // Every API with traffic in 24 h, busiest first.
  function withTraffic(apis) {
    return apis.filter(function (a) { return sum(a.per_hour) > 0; })
      .sort(function (a, b) { return sum(b.per_hour) - sum(a.per_hour); });
  }
  // The busiest APIs as their own series, the rest summed as "others (n)".
  function topAndOthers(apis, pick) {
    var top = apis.slice(0, COLORS.length - 1).map(function (a, i) { return { name: a.api, values: pick(a), color: colorOf(i) }; });
    var rest = apis.slice(COLORS.length - 1);
    if (rest.length > 0) {
      var values = pick(rest[0]).map(function (_, i) { return sum(rest.map(function (a) { return pick(a)[i] || 0; })); });
      top.push({ name: "others (" + rest.length + ")", values: values, color: OTHERS_COLOR });
    }
    return top.map(function (s) { return { name: s.name, color: s.color, points: s.values.map(function (v, i) { return [i - s.values.length + 1, v]; }) }; });
  }
  function pct(part, whole) { return whole > 0 ? (Math.round((1000 * part) / whole) / 10).toFixed(1) + " %" : "–"; }
  function lat(a, k) { return a.latency_ms && a.latency_ms.last_hour ? a.latency_ms.last_hour[k] : null; }

  function showStatistics(data) {
    var apis = withTraffic(data.apis);
    document.getElementById("table-apis").setAttribute("data-apis", String(apis.length));
    lineChart(document.getElementById("chart-per-second"), topAndOthers(apis, function (a) { return a.per_second; }), { width: 1200, xFrom: "-60 s", xTo: "now", yLabel: "calls/s", empty: "no calls yet" });
    lineChart(document.getElementById("chart-per-minute"), topAndOthers(apis, function (a) { return a.per_minute; }), { width: 1200, xFrom: "-60 min", xTo: "now", yLabel: "calls/min", empty: "no calls yet" });
    var minutes = apis.length > 0 ? apis[0].per_minute.length : 0;
    var calls = [], e4 = [], e5 = [];
    for (var i = 0; i < minutes; i++) {
      var c = 0, f = 0, v = 0;
      apis.forEach(function (a) {
        c += a.per_minute[i] || 0;
        if (a.per_minute_errors) { f += a.per_minute_errors["4xx"][i] || 0; v += a.per_minute_errors["5xx"][i] || 0; }
      });
      calls.push(c); e4.push(c > 0 ? (100 * f) / c : 0); e5.push(c > 0 ? (100 * v) / c : 0);
    }
    var active = calls.some(function (c) { return c > 0; });
    lineChart(document.getElementById("chart-errors"), active ? [
      { name: "4xx % of calls", color: STATUS_COLORS["4xx"], points: e4.map(function (v, i) { return [i - minutes + 1, v]; }) },
      { name: "5xx % of calls", color: STATUS_COLORS["5xx"], points: e5.map(function (v, i) { return [i - minutes + 1, v]; }) },
    ] : [], { width: 1200, xFrom: "-60 min", xTo: "now", yLabel: "% of calls", yMax: 100, empty: "no calls yet" });
    barChart(document.getElementById("chart-status"), apis.map(function (a) {
      return { name: a.api, parts: ["2xx", "3xx", "4xx", "5xx"].map(function (k) { return { label: k, value: a.status[k], color: STATUS_COLORS[k] }; }) };
    }), { normalise: true, legend: ["2xx", "3xx", "4xx", "5xx"].map(function (k) { return { label: k, color: STATUS_COLORS[k] }; }) });
    barChart(document.getElementById("chart-latency"), apis.filter(function (a) { return lat(a, "p99") !== null; }).map(function (a) {
      var p50 = lat(a, "p50"), p95 = lat(a, "p95"), p99 = lat(a, "p99");
      return { name: a.api, p: [p50, p95, p99], parts: [
        { label: "p50", value: p50, color: LATENCY_COLORS.p50 },
        { label: "p95", value: Math.max(0, p95 - p50), color: LATENCY_COLORS.p95 },
        { label: "p99", value: Math.max(0, p99 - p95), color: LATENCY_COLORS.p99 },
      ] };
    }), { total: function (r) { return fmt(r.p[0]) + " · " + fmt(r.p[1]) + " · " + fmt(r.p[2]) + " ms"; },
          legend: ["p50", "p95", "p99"].map(function (k) { return { label: k, color: LATENCY_COLORS[k] }; }) });
    fillTable("table-apis", apis.map(function (a) {
      var total = sum(a.per_hour);
      return [a.api, a["number of calls in current minute"], sum(a.per_second.slice(-10)), total, pct(a.status["4xx"] + a.status["5xx"], total), a.status["2xx"], a.status["4xx"], a.status["5xx"], lat(a, "p50"), lat(a, "p95"), lat(a, "p99")];
    }));
    var byCaller = {};
    data.apis.forEach(function (a) {
      (a.callers_current_minute || []).forEach(function (c) {
        var entry = byCaller[c.caller] || (byCaller[c.caller] = { calls: 0, apis: [] });
        entry.calls += c.calls; entry.apis.push([a.api, c.calls]);
      });
    });
    fillTable("table-callers", Object.keys(byCaller).sort(function (x, y) { return byCaller[y].calls - byCaller[x].calls; }).slice(0, 50).map(function (k) {
      var e = byCaller[k];
      e.apis.sort(function (x, y) { return y[1] - x[1]; });
      return [k, e.calls, { wrap: e.apis.slice(0, 4).map(function (p) { return p[0] + " " + p[1]; }).join(", ") }];
    }));
  }

  function showModels(data) {
    fillTable("table-models", data.models.map(function (m) {
      var metrics = m.metrics || {};
      var head = HEADLINE.filter(function (k) { return typeof metrics[k] === "number"; })[0];
      var others = Object.keys(metrics).filter(function (k) { return k !== head && /^test_/.test(k); }).slice(0, 6)
        .map(function (k) { return k.replace(/^test_/, "") + " " + fmt(metrics[k]); }).join(", ");
      return [m.id + (m.default ? " (default)" : ""), m.active_version || "–", m.versions, m.kind || "–", m.task || "–",
        head ? head.replace(/^test_/, "") + " " + (Math.round(metrics[head] * 10000) / 10000).toFixed(4) : "–", { wrap: others || "–" }];
    }));
  }

  function showOnline(data) {
    var series = data.models.map(function (m) {
      var points = m.series.map(function (p) { return [p.samples, p.accuracy]; });
      if (m.window.rows > 0 && (points.length === 0 || points[points.length - 1][0] !== m.samples_total)) points.push([m.samples_total, m.window.accuracy]);
      return { name: m.model, points: points };
    });
    lineChart(document.getElementById("chart-online"), series, { yMax: 1, yLabel: "accuracy", empty: "no samples learned yet" });
    fillTable("table-online", data.models.map(function (m) {
      return [m.model, m.samples_total, m.classes_seen, m.window.rows > 0 ? (Math.round(m.window.accuracy * 1000) / 10).toFixed(1) + " %" : "–", m.snapshot ? m.snapshot.version : "–"];
    }));
  }

  function showBacklog(data) {
    backlogHistory.push({ at: Date.parse(data.as_of), jobs: data.jobs.queued + data.jobs.running, predictions: data.predictions.queued + data.predictions.running });
    if (backlogHistory.length > 200) backlogHistory.shift();
    var t0 = backlogHistory[0].at;
    lineChart(document.getElementById("chart-backlog"), [
      { name: "jobs", points: backlogHistory.map(function (b) { return [(b.at - t0) / 1000, b.jobs]; }) },
      { name: "async predictions", points: backlogHistory.map(function (b) { return [(b.at - t0) / 1000, b.predictions]; }) },
    ], { xFrom: "page opened", xTo: "now", yLabel: "unfinished" });
    function age(s) { return s === null ? "–" : s + " s"; }
    fillTable("table-backlog", [
      ["training jobs", data.jobs.queued, data.jobs.running, age(data.jobs.oldest_queued_s)],
      ["async predictions", data.predictions.queued, data.predictions.running, age(data.predictions.oldest_queued_s)],
    ]);
    var failed = data.failed_24h || { jobs: {}, predictions: {} };
    function n(x) { return x || 0; }
    fillTable("table-failed", [
      ["training jobs", n(failed.jobs.invalid), n(failed.jobs.retries_exhausted), n(failed.jobs.stuck)],
      ["async predictions", n(failed.predictions.invalid), n(failed.predictions.retries_exhausted), n(failed.predictions.stuck)],
    ]);
    fillTable("table-failures", (data.recent_failures || []).map(function (f) {
      var code = f.error_code === "retries_exhausted" ? "dead-lettered" : (f.error_code || "failed");
      return [f.finished_at ? f.finished_at.slice(11, 19) : "–", f.kind + " " + f.id.slice(0, 8), f.model, { wrap: code + ": " + (f.error || "") }];
    }));
  }

  // ==== Per-model view (issue 30): rollout, shadow comparisons, live quality, latency and errors per version ====
  // Reads /dashboard/api/models/:id: the registry detail (with split and shadows once the rollout
  // routes exist) and the model's quality, shadow and traffic views; a view that is null (this
  // deployment has no such route, or the policy does not grant it) hides its panel.
  var modelPick = { id: null, ids: [] };
  var VERSION_COLORS = ["#1f4e79", "#c51b7d", "#3aa6b9", "#8d6e63", "#5b5fc7", "#7b3294"];

  function percent(x) { return x === null || x === undefined ? "–" : (Math.round(x * 1000) / 10).toFixed(1) + " %"; }
  function byVersion(list) {
    var out = {};
    if (Array.isArray(list)) list.forEach(function (v) { if (v && v.version !== undefined) out[String(v.version)] = v; });
    else if (list && typeof list === "object") Object.keys(list).forEach(function (k) { out[k] = Object.assign({ version: k }, list[k]); });
    return out;
  }
  function shareOf(detail, version) {
    if (detail.split) return detail.split[version] || 0;
    return version === detail.active_version ? 100 : 0;
  }
  function pickModel(models) {
    var select = document.getElementById("model-pick");
    var ids = models.map(function (m) { return m.id; });
    if (ids.join(",") !== modelPick.ids.join(",")) {
      modelPick.ids = ids;
      select.textContent = "";
      ids.forEach(function (id) { select.appendChild(el("option", { value: id }, id)); });
    }
    var hash = decodeURIComponent((location.hash.match(/model=([^&]+)/) || [])[1] || "");
    if (modelPick.id === null || ids.indexOf(modelPick.id) < 0) {
      var several = models.filter(function (m) { return m.versions > 1; })[0];
      modelPick.id = ids.indexOf(hash) >= 0 ? hash : several ? several.id : ids[0] || null;
    }
    if (modelPick.id !== null) select.value = modelPick.id;
    return modelPick.id;
  }
  function showModelView(models) {
    var id = pickModel(models.models);
    var view = document.getElementById("model-view");
    if (id === null) { view.setAttribute("data-model", ""); return null; }
    return get("/dashboard/api/models/" + encodeURIComponent(id)).then(function (r) {
      if (id === modelPick.id) drawModelView(id, r.model, r.quality, r.shadow, r.traffic);
    });
  }
  function drawModelView(id, detail, quality, shadow, traffic) {
    var view = document.getElementById("model-view");
    view.setAttribute("data-model", id);
    var versions = detail.versions.map(function (v) { return String(v.version); });
    var q = byVersion(quality ? quality.versions : null);
    var t = byVersion(traffic ? (traffic.versions || traffic) : null);
    var shadows = {};
    (detail.shadows || []).forEach(function (s) { shadows[String(s.version)] = s.sample_rate; });
    barChart(document.getElementById("chart-model-share"), [{ name: "traffic share", parts: versions.map(function (v, i) {
      return { label: v, value: shareOf(detail, v), color: VERSION_COLORS[i % VERSION_COLORS.length] };
    }) }], { normalise: true, total: function () { return detail.split ? "split" : "active " + (detail.active_version || "–"); },
      legend: versions.map(function (v, i) { return { label: "version " + v, color: VERSION_COLORS[i % VERSION_COLORS.length] }; }), empty: "no active version" });
    fillTable("table-model-versions", versions.slice().reverse().map(function (v) {
      var role = [];
      if (v === detail.active_version) role.push("active");
      if (detail.split && detail.split[v] !== undefined && v !== detail.active_version) role.push("canary");
      if (shadows[v] !== undefined) role.push("shadow " + percent(shadows[v]));
      var qv = q[v] || {};
      var tv = t[v] || null;
      var lat = tv && tv.latency_ms ? tv.latency_ms : {};
      var requests = tv ? tv.requests : null;
      return [v, role.join(", ") || "–", shareOf(detail, v) + " %", qv.feedback || 0, percent(qv.accuracy),
        requests === null || requests === undefined ? "–" : requests,
        tv && requests ? percent((tv.errors || 0) / requests) : "–", fmt(lat.p50), fmt(lat.p99)];
    }));
    var qualityBox = document.getElementById("model-quality");
    qualityBox.hidden = quality === null;
    if (quality) {
      var rated = quality.versions.filter(function (v) { return v.feedback > 0; });
      barChart(document.getElementById("chart-model-quality"), rated.map(function (v) {
        return { name: "version " + v.version, parts: [
          { label: "correct", value: v.correct, color: STATUS_COLORS["2xx"] },
          { label: "wrong", value: v.feedback - v.correct, color: STATUS_COLORS["5xx"] }] };
      }), { normalise: true, total: function (r) { return percent(r.parts[0].value / (r.parts[0].value + r.parts[1].value)) + " of " + (r.parts[0].value + r.parts[1].value); },
        legend: [{ label: "correct", color: STATUS_COLORS["2xx"] }, { label: "wrong", color: STATUS_COLORS["5xx"] }], empty: "no feedback yet" });
      var rows = [];
      rated.forEach(function (v) {
        v.labels.forEach(function (l) {
          rows.push([v.version, l.label, l.rule === "argmax" ? "argmax" : (l.rule === "complement" ? "positive < " : "≥ ") + fmt(l.threshold), l.positives, l.negatives, percent(l.precision), percent(l.recall), l.roc_auc === null ? "–" : fmt(l.roc_auc)]);
        });
      });
      fillTable("table-model-quality", rows);
    }
    var shadowBox = document.getElementById("model-shadow");
    shadowBox.hidden = shadow === null;
    if (shadow) {
      var srows = [];
      (shadow.shadows || []).forEach(function (s) {
        (s.comparisons || []).forEach(function (c) {
          srows.push([String(s.version), String(c.serving_version), percent(s.sample_rate), c.requests, percent(c.top1_agreement),
            c.flagged_rate_diff === undefined || c.flagged_rate_diff === null ? "–" : fmt(c.flagged_rate_diff), fmt(c.latency_ms ? c.latency_ms.mean : null), c.errors === undefined ? "–" : c.errors]);
        });
      });
      fillTable("table-model-shadow", srows);
    }
  }
  document.addEventListener("change", function (event) {
    if (event.target && event.target.id === "model-pick") {
      modelPick.id = event.target.value;
      location.hash = "model=" + encodeURIComponent(modelPick.id);
      refresh();
    }
  });
  // ==== end of the per-model view ====

  function get(path) {
    return fetch(path, { credentials: "same-origin", cache: "no-store" }).then(function (res) {
      if (res.status === 401) { var e = new Error("session expired: run edge-inference dashboard to log in again"); e.stop = true; throw e; }
      if (!res.ok) throw new Error(path + ": HTTP " + res.status);
      return res.json();
    });
  }

  var timer;
  var busy = false;
  function refresh() {
    // A slow round is not overlapped by the next tick.
    if (busy) return;
    busy = true;
    var status = document.getElementById("status");
    Promise.all([
      get("/dashboard/api/statistics").then(showStatistics),
      get("/dashboard/api/models").then(function (d) { showModels(d); return showModelView(d); }),
      get("/dashboard/api/online").then(showOnline),
      get("/dashboard/api/backlog").then(showBacklog),
    ]).then(function () {
      status.className = "status";
      status.textContent = "updated " + new Date().toLocaleTimeString("en-GB") + " · every " + REFRESH_MS / 1000 + " s";
      document.body.setAttribute("data-refreshed", String(Number(document.body.getAttribute("data-refreshed") || 0) + 1));
    }, function (err) {
      status.className = "status error";
      status.textContent = err.message;
      if (err.stop) clearInterval(timer);
    }).then(function () { busy = false; });
  }
  refresh();
  timer = setInterval(refresh, REFRESH_MS);
})();

// Explain a text (docs/explanations.md): self-contained; only the #explain section is touched.
(function () {
  var form = document.getElementById("xp-form");
  if (!form) return;
  var select = document.getElementById("xp-model");
  var result = document.getElementById("xp-result");
  function xpEl(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  // The text models of the registry (kind text: hashed n-grams), the default first.
  fetch("/dashboard/api/models", { credentials: "same-origin", cache: "no-store" }).then(function (res) {
    return res.ok ? res.json() : { models: [] };
  }).then(function (data) {
    data.models.filter(function (m) { return m.kind === "text" && m.active_version; })
      .sort(function (a, b) { return (b.default ? 1 : 0) - (a.default ? 1 : 0); })
      .forEach(function (m) {
        var o = xpEl("option", "", m.id);
        o.value = m.id;
        select.appendChild(o);
      });
  });
  // The text with each character shaded by the sum of the shown n-grams covering it.
  function highlighted(text, top) {
    var w = new Array(text.length).fill(0);
    top.forEach(function (g) {
      g.spans.forEach(function (s) { for (var i = s[0]; i < s[1] && i < text.length; i++) w[i] += g.contribution; });
    });
    var max = 0;
    w.forEach(function (v) { max = Math.max(max, Math.abs(v)); });
    var box = xpEl("div", "xp-text");
    var i = 0;
    while (i < text.length) {
      var sign = Math.sign(w[i]);
      var j = i + 1;
      while (j < text.length && Math.sign(w[j]) === sign) j++;
      var run = text.slice(i, j);
      if (sign === 0) box.appendChild(document.createTextNode(run));
      else {
        var peak = 0;
        for (var k = i; k < j; k++) peak = Math.max(peak, Math.abs(w[k]));
        var span = xpEl("span", (sign > 0 ? "xp-pos" : "xp-neg") + (peak >= max / 2 ? " xp-strong" : ""), run);
        span.title = (sign > 0 ? "+" : "") + (Math.round(w[i] * 1000) / 1000);
        box.appendChild(span);
      }
      i = j;
    }
    return box;
  }
  function show(text, answer) {
    result.textContent = "";
    var e = answer.explanation;
    result.appendChild(xpEl("div", "", answer.model.id + "@" + answer.model.version + " · " + e.method + (e.approximate ? " (approximate)" : " (exact)") +
      (answer.flagged ? " · flagged: " + (answer.flagged.join(", ") || "none") : "")));
    var best = answer.predictions[0] ? answer.predictions[0].label : "";
    var shown = answer.flagged && answer.flagged.length > 0 ? answer.flagged : [best];
    e.labels.filter(function (l) { return shown.indexOf(l.label) >= 0; }).forEach(function (l) {
      var score = answer.predictions.filter(function (p) { return p.label === l.label; })[0];
      result.appendChild(xpEl("div", "xp-label", l.label + " · score " + (score ? score.score.toFixed(4) : "?") + " · logit " + l.logit.toFixed(3)));
      result.appendChild(highlighted(text, l.top));
      var table = xpEl("table", "xp-top");
      l.top.forEach(function (g) {
        var tr = xpEl("tr");
        tr.appendChild(xpEl("td", "num", (g.contribution >= 0 ? "+" : "") + g.contribution.toFixed(3)));
        tr.appendChild(xpEl("td", "", g.kind));
        tr.appendChild(xpEl("td", "", JSON.stringify(g.ngram)));
        table.appendChild(tr);
      });
      result.appendChild(table);
    });
    result.setAttribute("data-explained", String(Number(result.getAttribute("data-explained") || 0) + 1));
  }
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = document.getElementById("xp-text").value;
    if (text.trim() === "") return;
    fetch("/dashboard/api/explain", {
      method: "POST", credentials: "same-origin", cache: "no-store",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ text: text, model: select.value || undefined }),
    }).then(function (res) {
      return res.json().then(function (body) {
        if (!res.ok) throw new Error(body.detail || "HTTP " + res.status);
        show(text, body);
      });
    }).catch(function (err) {
      result.textContent = "";
      result.appendChild(xpEl("div", "xp-error", err.message));
    });
  });
})();
// ---- Drift (issue #31, docs/drift.md): PSI per hour per model, self-contained. ----
(function () {
  var NS = "http://www.w3.org/2000/svg";
  var COLORS = ["#2f6fdf", "#b5359c", "#3aa6b9", "#8d6e63", "#5b5fc7", "#1f4e79", "#c51b7d", "#607d8b", "#7b3294"];
  var DRIFT_REFRESH_MS = 6 * ${REFRESH_MS};
  function node(tag, attrs, text) {
    var n = document.createElementNS(NS, tag);
    for (var k in attrs) n.setAttribute(k, String(attrs[k]));
    if (text !== undefined) n.textContent = String(text);
    return n;
  }
  function driftChart(target, models) {
    target.textContent = "";
    var withPsi = models.filter(function (m) { return m.hours.some(function (h) { return h.max_psi !== null; }); });
    if (withPsi.length === 0) {
      var empty = document.createElement("div");
      empty.className = "empty";
      empty.textContent = "no hour with enough inputs yet (PSI needs " + (models[0] ? models[0].min_count : 100) + " per hour and a reference profile)";
      target.appendChild(empty);
      return;
    }
    var threshold = withPsi[0].threshold;
    var W = 1200, H = 220, L = 48, R = 12, T = 10, B = 26;
    var n = withPsi[0].hours.length;
    var yMax = threshold * 2;
    withPsi.forEach(function (m) { m.hours.forEach(function (h) { if (h.max_psi !== null && h.max_psi > yMax) yMax = h.max_psi; }); });
    var x = function (i) { return L + (n > 1 ? (i * (W - L - R)) / (n - 1) : 0); };
    var y = function (v) { return T + (H - T - B) * (1 - Math.min(v, yMax) / yMax); };
    var svg = node("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": "PSI per hour" });
    svg.appendChild(node("line", { x1: L, y1: y(0), x2: W - R, y2: y(0), stroke: "#dde2e8" }));
    svg.appendChild(node("line", { x1: L, y1: T, x2: L, y2: y(0), stroke: "#dde2e8" }));
    svg.appendChild(node("text", { x: L - 6, y: y(yMax) + 10, "text-anchor": "end" }, Math.round(yMax * 100) / 100));
    svg.appendChild(node("text", { x: L - 6, y: y(0), "text-anchor": "end" }, "0"));
    svg.appendChild(node("line", { x1: L, y1: y(threshold), x2: W - R, y2: y(threshold), stroke: "#d73027", "stroke-dasharray": "6 4", "data-threshold": threshold }));
    svg.appendChild(node("text", { x: W - R, y: y(threshold) - 4, "text-anchor": "end" }, "warning " + threshold));
    svg.appendChild(node("text", { x: L, y: H - 6 }, withPsi[0].hours[0].start.slice(5, 13).replace("T", " ") + "h"));
    svg.appendChild(node("text", { x: W - R, y: H - 6, "text-anchor": "end" }, "this hour"));
    var legend = document.createElement("div");
    legend.className = "legend";
    withPsi.forEach(function (m, k) {
      var color = COLORS[k % COLORS.length];
      var points = [];
      m.hours.forEach(function (h, i) { if (h.max_psi !== null) points.push([x(i), y(h.max_psi), h]); });
      if (points.length > 1) {
        svg.appendChild(node("polyline", { points: points.map(function (p) { return p[0] + "," + p[1]; }).join(" "), fill: "none", stroke: color, "stroke-width": 2 }));
      }
      points.forEach(function (p) {
        var dot = node("circle", { cx: p[0], cy: p[1], r: 3.5, fill: color, "data-model": m.model.id, "data-psi": p[2].max_psi });
        dot.appendChild(node("title", {}, m.model.id + " " + p[2].start.slice(0, 13) + "h: PSI " + p[2].max_psi + " (" + p[2].count + " inputs)"));
        svg.appendChild(dot);
      });
      var item = document.createElement("span");
      var sw = document.createElement("span");
      sw.className = "swatch";
      sw.style.background = color;
      item.appendChild(sw);
      item.appendChild(document.createTextNode(m.model.id + (m.reference && m.reference.origin === "baseline" ? " (vs live baseline)" : "") + (m.drift === "warning" ? " (warning)" : "")));
      if (m.reference && m.reference.origin === "baseline") item.setAttribute("data-reference", "baseline");
      legend.appendChild(item);
    });
    target.appendChild(svg);
    target.appendChild(legend);
  }
  function driftTable(models) {
    var body = document.querySelector("#table-drift tbody");
    body.textContent = "";
    models.forEach(function (m) {
      var last = m.hours.filter(function (h) { return h.psi !== null; }).pop();
      var over = last ? Object.keys(last.psi).filter(function (k) { return last.psi[k] >= m.threshold; }).map(function (k) { return k + " " + last.psi[k]; }).join(", ") : "";
      var row = document.createElement("tr");
      // The reference (docs/drift.md): training inputs, a baseline of live hours, or pending.
      var ref = m.reference ? (m.reference.origin === "baseline" ? "live baseline " + m.reference.window.start.slice(0, 13) + "h (" + m.reference.count + " inputs)" : "training (" + m.reference.count + " inputs)")
        : "pending (" + (m.reference_pending && m.reference_pending.best_hour ? m.reference_pending.best_hour.count : 0) + " of " + (m.reference_pending ? m.reference_pending.min_count : "?") + " inputs in an hour)";
      [m.model.id, m.model.version, m.drift, m.hours[m.hours.length - 1].count, over || "–", ref].forEach(function (v, i) {
        var td = document.createElement("td");
        if (i === 3) td.className = "num";
        td.textContent = String(v);
        row.appendChild(td);
      });
      body.appendChild(row);
    });
  }
  function refreshDrift() {
    fetch("/dashboard/api/drift", { credentials: "same-origin", cache: "no-store" }).then(function (res) {
      if (!res.ok) throw new Error("drift: HTTP " + res.status);
      return res.json();
    }).then(function (data) {
      driftChart(document.getElementById("chart-drift"), data.models);
      driftTable(data.models);
      document.getElementById("chart-drift").setAttribute("data-refreshed", "1");
    }, function () { /* the main block reports the session state */ });
  }
  refreshDrift();
  setInterval(refreshDrift, DRIFT_REFRESH_MS);
})();
`;
