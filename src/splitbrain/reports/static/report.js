/* splitbrain report: the timeline (canvas, zoom and pan) and the charts (uPlot).
 *
 * Rules: every value from the history is shown with textContent or canvas fillText, never as
 * HTML. Each part runs on its own: an error in one is shown in its section and recorded in
 * window.__reportErrors, and the rest of the page (rendered server-side) still stands.
 * When everything is drawn, window.__reportReady turns true and <html data-ready="true"> is set
 * (tests and the bench wait on the attribute: the page's CSP forbids their evaluated polling).
 */
(function () {
  "use strict";
  performance.mark("report:start");
  window.__reportErrors = [];
  const D = JSON.parse(document.getElementById("report-data").textContent);
  performance.mark("report:parsed");
  const O = D.ops;
  const n = O.s.length;
  const S = D.strings;
  const css = getComputedStyle(document.documentElement);
  const color = (name) => css.getPropertyValue("--" + name).trim() || "#888";
  const TYPE_COLORS = D.types.map(color);
  const FAULT_COLORS = { partition: color("partition"), kill: color("kill"),
                         pause: color("pause"), net: color("net"), churn: color("churn"),
                         crash: color("crash") };
  const faultColor = (kind) => FAULT_COLORS[kind] || color("other");

  // Decode the columns: absolute start/end in µs, invoke indexes.
  const start = new Float64Array(n), end = new Float64Array(n), invoke = new Int32Array(n);
  const open = new Uint8Array(n);
  let t = 0, ii = 0;
  for (let i = 0; i < n; i++) {
    t += O.s[i]; ii += O.i[i];
    start[i] = t; invoke[i] = ii;
    if (O.d[i] < 0) { open[i] = 1; end[i] = Math.max(D.end, t); } else end[i] = t + O.d[i];
  }
  const runEnd = Math.max(D.end, n ? end[n - 1] : 0, 1);
  performance.mark("report:data");
  const failedOp = D.failure ? invoke.indexOf(D.failure.invoke_index) : -1;

  function part(sectionId, fn) {
    try { fn(); } catch (err) {
      window.__reportErrors.push(String(err && err.stack || err));
      const note = document.createElement("p");
      note.className = "warning";
      note.textContent = "This part of the report could not be drawn: " + err;
      document.getElementById(sectionId).appendChild(note);
    }
  }

  const fmtS = (us) => (us / 1e6).toFixed(us < 1e7 ? 6 : 3) + " s";
  const fmtDur = (us) => us >= 1e6 ? (us / 1e6).toFixed(3) + " s" : (us / 1e3).toFixed(2) + " ms";
  const str = (i) => i < 0 ? null : S[i];

  function label(i) {  // "read k1 → 3", short enough to sit on a bar
    const key = str(O.k[i]), v = str(O.v[i]), o = str(O.o[i]);
    return D.fs[O.f[i]] + (key === null ? "" : " " + key) + (v === null ? "" : " " + v) +
      (o === null || o === v ? "" : " → " + o);
  }

  function describe(i) {
    const lines = [];
    const key = str(O.k[i]);
    lines.push("p" + O.p[i] + " · " + D.fs[O.f[i]] + (key === null ? "" : " " + key) + " · " + D.types[O.t[i]]);
    lines.push("invoked " + fmtS(start[i]) + (open[i] ? ", never completed"
      : ", completed " + fmtS(end[i]) + " (" + fmtDur(end[i] - start[i]) + ")"));
    if (O.v[i] >= 0) lines.push("value: " + S[O.v[i]]);
    if (O.o[i] >= 0) lines.push("returned: " + S[O.o[i]]);
    if (O.e[i] >= 0) lines.push("error: " + S[O.e[i]]);
    if (O.n[i] >= 0) lines.push("node: " + S[O.n[i]]);
    lines.push("history index " + invoke[i] + (i === failedOp ? "  ← could not be linearized" : ""));
    return lines.join("\n");
  }

  // ---- timeline -------------------------------------------------------------------------
  const timeline = {};
  part("timeline-section", function () {
    const box = document.getElementById("timeline");
    const canvas = document.getElementById("timeline-canvas");
    const tip = document.getElementById("tooltip");
    const details = document.getElementById("op-details");
    const ctx = canvas.getContext("2d");
    const lanes = D.lanes.length;
    const GUTTER = 96, BAND = 34, AXIS = 22;
    const laneH = Math.max(4, Math.min(22, Math.floor(560 / Math.max(1, lanes))));
    const height = BAND + lanes * laneH + AXIS;
    // Per lane: op indexes in start order, and the longest op (to find what reaches into view).
    const byLane = Array.from({ length: lanes }, () => []);
    for (let i = 0; i < n; i++) byLane[O.l[i]].push(i);
    const laneOps = byLane.map((a) => Int32Array.from(a));
    const laneMax = laneOps.map((a) => { let m = 0; for (const i of a) m = Math.max(m, end[i] - start[i]); return m; });
    let view = { t0: 0, t1: runEnd };
    let keyShown = -1;  // a key's string index: other keys' ops are dimmed
    const keySelect = document.getElementById("key-filter");
    const keys = Array.from(new Set(O.k.filter((k) => k >= 0)));
    keys.sort((a, b) => S[a].localeCompare(S[b], undefined, { numeric: true }));
    for (const k of keys) {
      const option = document.createElement("option");
      option.value = String(k); option.textContent = S[k];
      keySelect.appendChild(option);
    }
    keySelect.addEventListener("change", function () { keyShown = Number(keySelect.value); redraw(); });
    let width = 0, selected = -1, pending = false;

    function resize() {
      width = box.clientWidth;
      const dpr = window.devicePixelRatio || 1;
      canvas.width = Math.round(width * dpr); canvas.height = Math.round(height * dpr);
      canvas.style.height = height + "px";
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      redraw();
    }
    const X = (us) => GUTTER + (us - view.t0) / (view.t1 - view.t0) * (width - GUTTER - 8);
    const T = (x) => view.t0 + (x - GUTTER) / (width - GUTTER - 8) * (view.t1 - view.t0);

    function firstVisible(ops, from) {  // first op whose start >= from
      let lo = 0, hi = ops.length;
      while (lo < hi) { const mid = (lo + hi) >> 1; if (start[ops[mid]] < from) lo = mid + 1; else hi = mid; }
      return lo;
    }

    function niceStep(span) {
      const raw = span / 8, p = Math.pow(10, Math.floor(Math.log10(raw)));
      for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p;
      return 10 * p;
    }

    function draw() {
      pending = false;
      ctx.clearRect(0, 0, width, height);
      ctx.font = "11px system-ui, sans-serif";
      ctx.textBaseline = "middle";
      for (let l = 0; l < lanes; l++) {  // lanes
        const y = BAND + l * laneH;
        if (l % 2) { ctx.fillStyle = "#f6f7f9"; ctx.fillRect(GUTTER, y, width - GUTTER, laneH); }
        if (laneH >= 9) { ctx.fillStyle = "#6b7585"; ctx.fillText(D.lanes[l], 4, y + laneH / 2, GUTTER - 8); }
      }
      ctx.save();
      ctx.beginPath(); ctx.rect(GUTTER, 0, width - GUTTER, height); ctx.clip();
      const drawn = { faults: [], ops: 0, failed: null };  // what is on screen, for tests
      const bands = [];  // fault bands across every lane, labels stacked in two rows on top
      D.faults.forEach(function (f, k) {
        const x0 = Math.max(GUTTER, X(f.start)), x1 = Math.min(width, X(f.end));
        if (x1 < GUTTER || x0 > width) return;
        ctx.globalAlpha = 0.13; ctx.fillStyle = faultColor(f.kind);
        ctx.fillRect(x0, BAND, Math.max(2, x1 - x0), lanes * laneH);
        ctx.globalAlpha = 1; ctx.fillRect(x0, 2 + (k % 2) * 15, Math.max(2, x1 - x0), 13);
        bands.push([f, x0, x1, k]);
        drawn.faults.push({ label: f.label, kind: f.kind, x0: x0, x1: x1, y: 2 + (k % 2) * 15 });
      });
      ctx.fillStyle = "#fff";
      for (const [f, x0, x1, k] of bands) {
        if (x1 - x0 > 24) ctx.fillText(f.label + (f.closed ? "" : " (never healed)"), x0 + 3, 9 + (k % 2) * 15, x1 - x0 - 6);
      }
      const barH = Math.max(2, laneH - (laneH > 8 ? 4 : 1));
      // Zoomed out, thousands of ops share a pixel: consecutive ops of one kind within a pixel
      // of each other are merged into one rectangle, and rectangles are batched into one path
      // per kind (type, open, dimmed), so a frame costs a dozen fills however many ops there are.
      const paths = new Map(), labels = [];
      for (let l = 0; l < lanes; l++) {
        const ops = laneOps[l], y = BAND + l * laneH + (laneH - barH) / 2;
        let runX0 = 0, runX1 = -Infinity, runKind = -1, runOp = -1, runCount = 0;
        const flush = function () {
          if (runKind < 0) return;
          if (!paths.has(runKind)) paths.set(runKind, new Path2D());
          paths.get(runKind).rect(runX0, y, runX1 - runX0, barH);
          const left = Math.max(runX0, GUTTER), room = runX1 - left - 6;
          if (runCount === 1 && barH >= 12 && room > 30 && !(runKind & 1)) labels.push([runOp, left, y, room]);
        };
        for (let j = firstVisible(ops, view.t0 - laneMax[l]); j < ops.length; j++) {
          const i = ops[j];
          if (start[i] > view.t1) break;
          if (end[i] < view.t0) continue;
          const x0 = X(start[i]), x1 = Math.max(X(end[i]), x0 + 1);
          const kind = O.t[i] * 4 + open[i] * 2 + (keyShown >= 0 && O.k[i] !== keyShown ? 1 : 0);
          drawn.ops++;
          if (kind === runKind && x0 <= runX1 + 1) { runX1 = Math.max(runX1, x1); runCount++; continue; }
          flush();
          runX0 = x0; runX1 = x1; runKind = kind; runOp = i; runCount = 1;
        }
        flush();
      }
      for (const [kind, path] of paths) {
        ctx.fillStyle = TYPE_COLORS[kind >> 2];
        ctx.globalAlpha = kind & 1 ? 0.12 : kind & 2 ? 0.45 : 1;
        ctx.fill(path);
      }
      ctx.globalAlpha = 1; ctx.fillStyle = "#fff";
      for (const [i, left, y, room] of labels) {  // name an op where its text fits on its bar
        const text = label(i);
        if (ctx.measureText(text).width <= room) ctx.fillText(text, left + 3, y + barH / 2);
      }
      ctx.globalAlpha = 1;
      // The selection first, so the failing op keeps its red outline when it is selected.
      for (const [i, style] of [[selected, "#1d2430"], [failedOp, "#d64545"]]) {
        if (i < 0) continue;
        const x0 = X(start[i]), x1 = Math.max(X(end[i]), x0 + 2), y = BAND + O.l[i] * laneH;
        if (i === failedOp) { ctx.globalAlpha = 0.5; ctx.fillStyle = style; ctx.fillRect(x0, y, x1 - x0, laneH); ctx.globalAlpha = 1; }
        ctx.strokeStyle = style; ctx.lineWidth = 3;
        ctx.strokeRect(x0 - 2, y, x1 - x0 + 4, laneH);
        if (i === failedOp) {  // a marker that stays visible however far out we zoom
          drawn.failed = { x: x0, y: y, w: x1 - x0, h: laneH };
          ctx.fillStyle = style; ctx.beginPath();
          ctx.moveTo(x0, y - 1); ctx.lineTo(x0 - 6, y - 10); ctx.lineTo(x0 + 6, y - 10); ctx.fill();
        }
      }
      ctx.restore();
      const step = niceStep(view.t1 - view.t0);  // the time axis
      ctx.fillStyle = "#6b7585"; ctx.strokeStyle = "#d9dee6"; ctx.lineWidth = 1;
      const yAxis = BAND + lanes * laneH;
      ctx.beginPath(); ctx.moveTo(GUTTER, yAxis + 0.5); ctx.lineTo(width, yAxis + 0.5); ctx.stroke();
      for (let v = Math.ceil(view.t0 / step) * step; v <= view.t1; v += step) {
        const x = X(v);
        ctx.fillRect(x, yAxis, 1, 4);
        ctx.fillText((v / 1e6).toFixed(Math.max(0, -Math.floor(Math.log10(step / 1e6)))) + " s", x + 2, yAxis + 12);
      }
      timeline.drawn = drawn;
      document.getElementById("view-range").textContent =
        "showing " + fmtS(view.t0) + " – " + fmtS(view.t1) + " of " + fmtS(runEnd);
    }
    function redraw() { if (!pending) { pending = true; requestAnimationFrame(draw); } }

    function setView(t0, t1) {
      const span = Math.min(runEnd, Math.max(50, t1 - t0));
      t0 = Math.max(0, Math.min(t0, runEnd - span));
      view = { t0: t0, t1: t0 + span };
      redraw();
    }
    function zoom(factor, atX) {
      const at = atX === undefined ? (view.t0 + view.t1) / 2 : T(atX);
      setView(at - (at - view.t0) * factor, at + (view.t1 - at) * factor);
    }
    function opAt(x, y) {
      const l = Math.floor((y - BAND) / laneH);
      if (l < 0 || l >= lanes || x < GUTTER) return -1;
      const t = T(x), slack = 3 * (view.t1 - view.t0) / (width - GUTTER);
      const ops = laneOps[l];
      let best = -1, bestD = Infinity;
      for (let j = Math.max(0, firstVisible(ops, t - laneMax[l] - slack)); j < ops.length; j++) {
        const i = ops[j];
        if (start[i] > t + slack) break;
        const d = t < start[i] ? start[i] - t : t > end[i] ? t - end[i] : 0;
        if (d <= slack && d < bestD) { best = i; bestD = d; }
      }
      return best;
    }
    function select(i) {
      selected = i;
      details.textContent = i < 0 ? "" : describe(i);
      redraw();
    }

    canvas.addEventListener("wheel", function (ev) {
      ev.preventDefault();
      zoom(ev.deltaY > 0 ? 1.25 : 0.8, ev.offsetX);
    }, { passive: false });
    let drag = null;
    canvas.addEventListener("mousedown", function (ev) {
      drag = { x: ev.clientX, t0: view.t0, t1: view.t1, moved: false };
      canvas.classList.add("dragging");
    });
    window.addEventListener("mouseup", function (ev) {
      if (drag && !drag.moved && ev.target === canvas) select(opAt(ev.offsetX, ev.offsetY));
      drag = null; canvas.classList.remove("dragging");
    });
    window.addEventListener("mousemove", function (ev) {
      if (!drag) return;
      const dx = ev.clientX - drag.x;
      if (Math.abs(dx) > 3) drag.moved = true;
      const dt = dx / (width - GUTTER - 8) * (drag.t1 - drag.t0);
      setView(drag.t0 - dt, drag.t1 - dt);
    });
    canvas.addEventListener("mousemove", function (ev) {
      if (drag && drag.moved) { tip.hidden = true; return; }
      const i = opAt(ev.offsetX, ev.offsetY);
      if (i < 0) { tip.hidden = true; return; }
      tip.textContent = describe(i);
      tip.hidden = false;
      const left = Math.min(ev.offsetX + 14, width - tip.offsetWidth - 4);
      tip.style.left = Math.max(0, left) + "px";
      tip.style.top = (ev.offsetY + 16) + "px";
    });
    canvas.addEventListener("mouseleave", function () { tip.hidden = true; });
    document.getElementById("zoom-in").addEventListener("click", () => zoom(0.5));
    document.getElementById("zoom-out").addEventListener("click", () => zoom(2));
    document.getElementById("zoom-reset").addEventListener("click", () => setView(0, runEnd));
    window.addEventListener("resize", resize);

    timeline.showFailure = function () {
      if (!D.failure) return;
      const k = S.indexOf(D.failure.key);
      if (k >= 0) { keySelect.value = String(k); keyShown = k; }
      const [lo, hi] = D.failure.window;
      setView(lo, hi);
      if (failedOp >= 0) select(failedOp);
    };
    timeline.view = () => view;
    timeline.position = (i) => ({ x: (X(start[i]) + Math.max(X(end[i]), X(start[i]) + 1)) / 2,
                                  y: BAND + O.l[i] * laneH + laneH / 2 });
    timeline.select = select;
    timeline.draw = draw;
    const zf = document.getElementById("zoom-failure");
    if (zf) zf.addEventListener("click", timeline.showFailure);
    const jump = document.getElementById("jump-failure");
    if (jump) jump.addEventListener("click", timeline.showFailure);
    resize();
  });
  window.__timeline = timeline;
  performance.mark("report:timeline");

  // ---- charts -----------------------------------------------------------------------------
  function faultShading(u) {
    const ctx = u.ctx, top = u.bbox.top, h = u.bbox.height;
    for (const f of D.faults) {
      const x0 = u.valToPos(f.start / 1e6, "x", true), x1 = u.valToPos(f.end / 1e6, "x", true);
      const a = Math.max(x0, u.bbox.left), b = Math.min(x1, u.bbox.left + u.bbox.width);
      if (b <= a) continue;
      ctx.save(); ctx.globalAlpha = 0.12; ctx.fillStyle = faultColor(f.kind);
      ctx.fillRect(a, top, b - a, h); ctx.restore();
    }
  }
  // Both charts span the whole run, so their time axes line up with each other.
  const xScale = { time: false, range: () => [0, runEnd / 1e6] };
  const chartWidth = () => Math.max(300, document.getElementById("charts").clientWidth);

  part("charts", function () {
    // Latency: one point per completed operation at its completion time, a series per
    // function for ok operations, one each for fail and info.
    const order = [];
    for (let i = 0; i < n; i++) if (!open[i]) order.push(i);
    order.sort((a, b) => end[a] - end[b]);
    const xs = new Float64Array(order.length);
    const names = D.fs.map((f) => f + " ok").concat(["fail", "info"]);
    const ys = names.map(() => new Array(order.length).fill(null));
    order.forEach(function (i, j) {
      xs[j] = end[i] / 1e6;
      const lat = Math.max((end[i] - start[i]) / 1e3, 0.001);
      const s = O.t[i] === 0 ? O.f[i] : D.fs.length + O.t[i] - 1;
      ys[s][j] = lat;
    });
    const palette = ["#2563eb", "#16a34a", "#9333ea", "#0891b2", "#db2777", "#65a30d"];
    const series = [{ label: "time (s)" }].concat(names.map(function (name, k) {
      const c = k < D.fs.length ? palette[k % palette.length] : TYPE_COLORS[k - D.fs.length + 1];
      return { label: name, stroke: c, paths: () => null,
               points: { show: true, size: 3, width: 0, fill: c, stroke: c } };
    }));
    new uPlot({
      title: "latency (ms, log scale) by completion time",
      width: chartWidth(), height: 260, series: series,
      scales: { x: xScale, y: { distr: 3 } },
      axes: [{ label: "seconds since start" }, { label: "ms" }],
      cursor: { points: { show: false } },
      hooks: { drawClear: [faultShading] },
    }, [xs].concat(ys), document.getElementById("latency-chart"));

    // Throughput: completions per second by outcome, in 10 to 200 buckets of ~25 calls.
    const buckets = Math.max(10, Math.min(200, Math.ceil(n / 25)));
    const w = runEnd / buckets;
    const bx = new Float64Array(buckets), counts = D.types.map(() => new Float64Array(buckets));
    for (let b = 0; b < buckets; b++) bx[b] = (b + 0.5) * w / 1e6;
    for (let i = 0; i < n; i++) if (!open[i]) counts[O.t[i]][Math.min(buckets - 1, Math.floor(end[i] / w))] += 1e6 / w;
    new uPlot({
      title: "throughput (completions per second)",
      width: chartWidth(), height: 200,
      series: [{ label: "time (s)" }].concat(D.types.map((ty, k) => ({ label: ty, stroke: TYPE_COLORS[k], width: 1.5 }))),
      scales: { x: xScale },
      axes: [{ label: "seconds since start" }, { label: "ops/s" }],
      hooks: { drawClear: [faultShading] },
    }, [bx].concat(counts), document.getElementById("throughput-chart"));
  });

  performance.mark("report:charts");
  requestAnimationFrame(function () {
    window.__reportReadyAt = performance.now();
    window.__reportReady = true;
    document.documentElement.dataset.ready = "true";  // waitable without script evaluation
  });
})();
