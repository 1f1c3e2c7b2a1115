
// clio-engine explorer: Economic Index views (job explorer, geography table and AUI scatter, collaboration,
// changes between runs).
// Reads D.economic from the page's one JSON blob; data only ever reaches the page as text (textContent,
// SVG attributes set to numbers) — never as markup.
;(function () {
  "use strict";
  const D = JSON.parse(document.getElementById("clio-data").textContent);
  const E = D.economic;
  if (!E) return;
  const SVG = "http://www.w3.org/2000/svg";
  const $ = (id) => document.getElementById(id);
  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  };
  const svgEl = (tag, attrs, cls) => {
    const e = document.createElementNS(SVG, tag);
    for (const k of Object.keys(attrs || {})) e.setAttribute(k, String(attrs[k]));
    if (cls) e.setAttribute("class", cls);
    return e;
  };
  const nil = (x) => x === null || x === undefined;
  const fmtPct = (x, d) => (nil(x) ? "—" : x.toFixed(d === undefined ? (x < 0.1 && x > 0 ? 3 : 1) : d) + "%");
  const fmtInt = (x) => (nil(x) ? "—" : Math.round(x).toLocaleString("en-US"));
  const fmtNum = (x, d) => (nil(x) ? "—" : x.toFixed(d === undefined ? 2 : d));
  const fmtSig = (x) => (nil(x) ? "—" : x >= 100 ? Math.round(x).toLocaleString("en-US") : x.toPrecision(3));
  const state = { view: "clusters", expandedMajors: new Set(), expandedOccs: new Set(), sortKey: "count", sortDir: -1, geo: 0 };

  // ------------------------------------------------------------------ tabs: the cluster explorer or these views
  const main = document.querySelector("main");
  const view = el("div"); view.id = "economic-view"; view.hidden = true;
  view.setAttribute("aria-label", "Economic Index views");
  main.after(view);
  const tabs = el("nav"); tabs.id = "view-tabs";
  const tabC = el("button", "on", "Clusters"), tabE = el("button", null, "Economic Index");
  tabC.id = "tab-clusters"; tabE.id = "tab-economic";
  tabs.append(tabC, tabE);
  document.querySelector("header h1").after(tabs);
  function show(which) {
    state.view = which;
    main.hidden = which !== "clusters"; view.hidden = which === "clusters";
    tabC.classList.toggle("on", which === "clusters"); tabE.classList.toggle("on", which !== "clusters");
    for (const id of ["search-box", "filter-box"]) { const b = $(id); if (b) b.style.visibility = which === "clusters" ? "" : "hidden"; }
    if (which === "clusters") window.dispatchEvent(new Event("resize"));
  }
  tabC.onclick = () => show("clusters");
  tabE.onclick = () => show("economic");
  const card = (id, title, col) => { const c = el("section", "card"); c.id = id; c.appendChild(el("h2", null, title)); col.appendChild(c); return c; };

  // ------------------------------------------------------------------ changes between runs (a compare table)
  const CH = E.changes;
  const fmtPp = (x) => (nil(x) ? "—" : (x > 0 ? "+" : x < 0 ? "−" : "") + Math.abs(x).toFixed(2));
  if (CH) {
    // Full width above the other views: one table per dimension, significant moves first, then by |change|.
    view.classList.add("with-changes");
    const box = card("econ-changes", "Changes between runs", view);
    const level = nil(CH.alpha) ? "" : " at " + Math.round(100 * (1 - CH.alpha)) + "%";
    const names = CH.run_a && CH.run_b ? " (A: " + CH.run_a + ", B: " + CH.run_b + ")" : " (B: this run)";
    box.appendChild(el("p", "note", "Share of each run's records in percent" + names + "; change in percentage points with its bootstrap interval" +
      level + "; significant after the correction for testing many values. Only values published in both runs are compared."));
    const dims = [];
    const byDim = new Map();
    CH.rows.forEach((r, i) => { if (!byDim.has(r.dimension)) { byDim.set(r.dimension, []); dims.push(r.dimension); } byDim.get(r.dimension).push(i); });
    const absChange = (i) => (nil(CH.rows[i].change) ? -1 : Math.abs(CH.rows[i].change));
    for (const d of dims) {
      const idx = byDim.get(d).slice().sort((a, b) => (CH.rows[b].significant - CH.rows[a].significant) || (absChange(b) - absChange(a)) || (a - b));
      const nSig = idx.filter((i) => CH.rows[i].significant).length, heldBack = (CH.left_out || {})[d];
      const first = CH.rows[idx[0]];
      box.appendChild(el("h3", null, d));
      box.appendChild(el("p", "note", nSig + " of " + idx.length + " significant" + (heldBack ? "; " + heldBack + " left out under the privacy floors" : "") +
        "; records A " + fmtInt(first.records_a) + ", B " + fmtInt(first.records_b) + "."));
      const wrapC = el("div", "econ-changes-wrap"), t = el("table", "econ-changes-table"); t.dataset.dimension = d;
      const head = el("tr");
      for (const h of ["value", "share A", "share B", "change (pp)", "interval (pp)", "significant"]) head.appendChild(el("th", null, h));
      const body = el("tbody");
      for (const i of idx) {
        const r = CH.rows[i], tr = el("tr", r.significant ? "sig" : null);
        const cells = [r.value, fmtPct(r.share_a, 2), fmtPct(r.share_b, 2), fmtPp(r.change), "[" + fmtPp(r.ci_low) + ", " + fmtPp(r.ci_high) + "]", r.significant ? "yes" : ""];
        for (const c of cells) tr.appendChild(el("td", null, c));
        tr.title = "p = " + fmtSig(r.p_value);
        body.appendChild(tr);
      }
      const th = el("thead"); th.appendChild(head); t.append(th, body); wrapC.appendChild(t); box.appendChild(wrapC);
    }
    if (!dims.length) box.appendChild(el("p", "note", "No value was published in both runs."));
  }
  if (!E.jobs) {  // a comparison without the run's own Economic Index rows: the changes view alone
    window.clioEconomic = { state, show, tasks: 0, occupations: 0, majors: 0, changes: CH ? CH.rows.length : 0 };
    return;
  }

  // Two columns: the job explorer (long) on the left, geography and collaboration stacked on the right.
  const left = el("div", "econ-col"), right = el("div", "econ-col");
  view.append(left, right);

  // ------------------------------------------------------------------ job explorer
  const J = E.jobs, T = J.tasks, O = J.occupations, M = J.majors;
  const jobs = card("econ-jobs", "Jobs: SOC major group → occupation → tasks", left);
  jobs.appendChild(el("p", "note", "Share of all records per task; per occupation, how many of its O*NET tasks have published usage. " +
    "Group and occupation shares are of records in published tasks (a task listed by k occupations gives each 1/k)."));
  const tree = el("div"); tree.id = "econ-tree"; tree.setAttribute("role", "tree"); jobs.appendChild(tree);
  function twisty(open) { return open ? "▾" : "▸"; }
  function taskRow(t) {
    const r = el("div", "econ-row task"); r.dataset.task = String(t);
    const auto = nil(T.automation[t]) ? "" : "automation " + fmtPct(T.automation[t], 0);
    r.append(el("span", "tw"), el("span", "nm", T.name[t]), el("span", "cov", auto), el("span", "num", fmtPct(T.pct[t])));
    r.title = T.name[t];
    return r;
  }
  function occRow(o) {
    const open = state.expandedOccs.has(o);
    const r = el("div", "econ-row occ"); r.dataset.occ = String(o); r.tabIndex = 0;
    r.setAttribute("aria-expanded", String(open));
    const cov = O.n_tasks[o] ? O.n_used[o] + " of " + O.n_tasks[o] + " tasks (" + fmtPct(100 * O.n_used[o] / O.n_tasks[o], 0) + ")" : "";
    r.append(el("span", "tw", O.tasks[o].length ? twisty(open) : ""), el("span", "nm", O.name[o]), el("span", "cov", cov), el("span", "num", fmtPct(O.pct[o])));
    r.title = O.code[o];
    const toggle = () => { if (state.expandedOccs.has(o)) state.expandedOccs.delete(o); else state.expandedOccs.add(o); renderTree(); };
    r.onclick = toggle;
    r.onkeydown = (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); toggle(); } };
    return r;
  }
  function majorRow(m) {
    const open = state.expandedMajors.has(m);
    const r = el("div", "econ-row major"); r.dataset.major = String(m); r.tabIndex = 0;
    r.setAttribute("aria-expanded", String(open));
    r.append(el("span", "tw", M.occ[m].length ? twisty(open) : ""), el("span", "nm", M.name[m]),
      el("span", "cov", M.occ[m].length + " occupations"), el("span", "num", fmtPct(M.pct[m])));
    const toggle = () => { if (state.expandedMajors.has(m)) state.expandedMajors.delete(m); else state.expandedMajors.add(m); renderTree(); };
    r.onclick = toggle;
    r.onkeydown = (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); toggle(); } };
    return r;
  }
  function renderTree() {
    tree.replaceChildren();
    for (let m = 0; m < M.name.length; m++) {
      tree.appendChild(majorRow(m));
      if (!state.expandedMajors.has(m)) continue;
      for (const o of M.occ[m]) {
        tree.appendChild(occRow(o));
        if (state.expandedOccs.has(o)) for (const t of O.tasks[o]) tree.appendChild(taskRow(t));
      }
    }
    if (!M.name.length) tree.appendChild(el("p", "note", "No occupational usage was published."));
  }
  // Top tasks, whether or not the taxonomy places them (the flat view of the same rows).
  jobs.appendChild(el("h3", null, "Top tasks"));
  const top = el("div"); top.id = "econ-top-tasks"; jobs.appendChild(top);
  for (let t = 0; t < Math.min(25, T.name.length); t++) top.appendChild(taskRow(t));
  const rem = J.remainder || {};
  if (!nil(rem.none) || !nil(rem.not_classified)) {
    jobs.appendChild(el("p", "note", "No occupational task: " + fmtPct(rem.none) + " of records; tasks below the privacy floor together: " + fmtPct(rem.not_classified) + "."));
  }

  // ------------------------------------------------------------------ geography
  const G = E.geography || [];
  const geo = card("econ-geo", "Geography and the AI Usage Index", right);
  const COLS = [["code", "code"], ["name", "name"], ["count", "records"], ["share", "share"], ["per_capita", "per 1M people"], ["aui", "AUI"], ["tier", "tier"]];
  if (!G.length) geo.appendChild(el("p", "note", "No geography was published for this run."));
  let pick = null;
  if (G.length > 1) {
    pick = el("select"); pick.id = "econ-geo-column";
    G.forEach((g, k) => { const o = el("option", null, g.column); o.value = String(k); pick.appendChild(o); });
    pick.onchange = () => { state.geo = Number(pick.value); renderGeo(); };
    geo.appendChild(pick);
  }
  const wrap = el("div"); wrap.id = "econ-geo-wrap";
  const table = el("table"); table.id = "econ-geo-table";
  const thead = el("thead"), tbody = el("tbody"), hrow = el("tr");
  for (const [key, label] of COLS) {
    const th = el("th", null, label); th.dataset.key = key; th.tabIndex = 0;
    const sortBy = () => { if (state.sortKey === key) state.sortDir = -state.sortDir; else { state.sortKey = key; state.sortDir = key === "code" || key === "name" ? 1 : -1; } renderGeo(); };
    th.onclick = sortBy;
    th.onkeydown = (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sortBy(); } };
    hrow.appendChild(th);
  }
  thead.appendChild(hrow); table.append(thead, tbody); wrap.appendChild(table);
  const fitNote = el("p", "note"); fitNote.id = "econ-fit";
  const scatter = svgEl("svg", { viewBox: "0 0 560 380", width: 560, height: 380, role: "img" }); scatter.id = "econ-scatter";
  if (G.length) geo.append(wrap, el("h3", null, "AI Usage Index vs GDP per capita (log–log)"), scatter, fitNote);
  function order(g) {
    // the suppressed remainder stays last; missing numbers sort after present ones
    const idx = g.code.map((_, i) => i), key = state.sortKey, dir = state.sortDir;
    const val = (i) => g[key][i];
    idx.sort((a, b) => {
      if (g.suppressed[a] !== g.suppressed[b]) return g.suppressed[a] ? 1 : -1;
      const x = val(a), y = val(b);
      if (nil(x) !== nil(y)) return nil(x) ? 1 : -1;
      if (!nil(x) && x !== y) return (typeof x === "string" ? x.localeCompare(y) : x - y) * dir;
      return g.code[a] < g.code[b] ? -1 : g.code[a] > g.code[b] ? 1 : 0;
    });
    return idx;
  }
  function renderGeo() {
    if (!G.length) return;
    const g = G[state.geo];
    tbody.replaceChildren();
    for (const th of hrow.children) {
      th.classList.toggle("sorted", th.dataset.key === state.sortKey);
      th.setAttribute("aria-sort", th.dataset.key === state.sortKey ? (state.sortDir > 0 ? "ascending" : "descending") : "none");
    }
    for (const i of order(g)) {
      const tr = el("tr", g.suppressed[i] ? "sup" : null); tr.dataset.code = g.code[i];
      const cells = g.suppressed[i]
        ? ["—", "geographies below the privacy floor", fmtInt(g.count[i]), fmtPct(g.share[i]), "—", "—", "—"]
        : [g.code[i], g.name[i], fmtInt(g.count[i]), fmtPct(g.share[i]), nil(g.per_capita[i]) ? "—" : fmtSig(1e6 * g.per_capita[i]),
          fmtNum(g.aui[i]), nil(g.tier[i]) ? "—" : String(g.tier[i])];
      for (const c of cells) tr.appendChild(el("td", null, c));
      tbody.appendChild(tr);
    }
    drawScatter(g);
  }
  function ticks(lo, hi) {
    const out = [];
    for (let p = Math.floor(Math.log10(lo)); p <= Math.ceil(Math.log10(hi)); p++) {
      for (const m of [1, 2, 5]) { const v = m * Math.pow(10, p); if (v >= lo && v <= hi) out.push([v, m === 1]); }
    }
    return out.filter((t) => t[1] || out.length <= 8);
  }
  function drawScatter(g) {
    scatter.replaceChildren();
    const W = 560, H = 380, L = 52, R = 14, TOP = 12, B = 40;
    const pts = g.code.map((_, i) => i).filter((i) => g.plot[i] && g.gdp[i] > 0 && g.aui[i] > 0);
    state.scatterPoints = pts.length;
    if (!pts.length) { scatter.appendChild(svgEl("text", { x: W / 2, y: H / 2, "text-anchor": "middle" })).textContent = "no geography with both GDP and AUI"; return; }
    let x0 = Math.min(...pts.map((i) => g.gdp[i])), x1 = Math.max(...pts.map((i) => g.gdp[i]));
    let y0 = Math.min(1, ...pts.map((i) => g.aui[i])), y1 = Math.max(1, ...pts.map((i) => g.aui[i]));
    x0 /= 1.3; x1 *= 1.3; y0 /= 1.3; y1 *= 1.3;
    const sx = (v) => L + (Math.log(v) - Math.log(x0)) / (Math.log(x1) - Math.log(x0)) * (W - L - R);
    const sy = (v) => H - B - (Math.log(v) - Math.log(y0)) / (Math.log(y1) - Math.log(y0)) * (H - TOP - B);
    for (const [v, major] of ticks(x0, x1)) {
      scatter.appendChild(svgEl("line", { x1: sx(v), x2: sx(v), y1: TOP, y2: H - B }, "grid"));
      if (major || ticks(x0, x1).length <= 8) scatter.appendChild(svgEl("text", { x: sx(v), y: H - B + 14, "text-anchor": "middle" })).textContent = fmtSig(v);
    }
    for (const [v, major] of ticks(y0, y1)) {
      scatter.appendChild(svgEl("line", { x1: L, x2: W - R, y1: sy(v), y2: sy(v) }, "grid"));
      if (major || ticks(y0, y1).length <= 8) scatter.appendChild(svgEl("text", { x: L - 4, y: sy(v) + 3, "text-anchor": "end" })).textContent = fmtSig(v);
    }
    scatter.appendChild(svgEl("line", { x1: L, x2: W - R, y1: H - B, y2: H - B }, "axis"));
    scatter.appendChild(svgEl("line", { x1: L, x2: L, y1: TOP, y2: H - B }, "axis"));
    scatter.appendChild(svgEl("text", { x: (L + W - R) / 2, y: H - 6, "text-anchor": "middle" })).textContent = "GDP per capita (USD)";
    scatter.appendChild(svgEl("text", { x: 12, y: (TOP + H - B) / 2, "text-anchor": "middle", transform: "rotate(-90 12 " + (TOP + H - B) / 2 + ")" })).textContent = "AI Usage Index";
    const f = g.fit;
    if (f && !nil(f.slope) && !nil(f.intercept)) {
      // the fit line, clipped to the plot box by sampling it inside the y range
      const xs = [], n = 60;
      for (let k = 0; k <= n; k++) xs.push(Math.exp(Math.log(x0) + k / n * (Math.log(x1) - Math.log(x0))));
      const inside = xs.map((x) => [x, Math.exp(f.intercept) * Math.pow(x, f.slope)]).filter((p) => p[1] >= y0 && p[1] <= y1);
      if (inside.length > 1) scatter.appendChild(svgEl("polyline", { points: inside.map((p) => sx(p[0]).toFixed(1) + "," + sy(p[1]).toFixed(1)).join(" ") }, "fit"));
    }
    for (const i of pts) {
      const c = svgEl("circle", { cx: sx(g.gdp[i]).toFixed(1), cy: sy(g.aui[i]).toFixed(1), r: 4.5 }, "pt" + (nil(g.tier[i]) ? " out" : ""));
      c.dataset.code = g.code[i];
      const tip = svgEl("title"); tip.textContent = g.name[i] + " (" + g.code[i] + "): AUI " + fmtNum(g.aui[i]) + ", GDP per capita " + fmtInt(g.gdp[i]) + " USD";
      c.appendChild(tip); scatter.appendChild(c);
      const lbl = svgEl("text", { x: (sx(g.gdp[i]) + 6).toFixed(1), y: (sy(g.aui[i]) - 4).toFixed(1) }, "lbl"); lbl.textContent = g.code[i];
      scatter.appendChild(lbl);
    }
    fitNote.textContent = f ? "Fit of ln AUI on ln GDP per capita: slope " + fmtNum(f.slope) + ", R² " + fmtNum(f.r2) + ", n = " + fmtInt(f.n) +
      " (published index: slope " + E.reference.aui_gdp_slope + ", R² " + E.reference.aui_gdp_r2 + "). Hollow: too few records for the fit and the tiers."
      : "No fit was published (too few geographies with population and GDP).";
  }

  // ------------------------------------------------------------------ collaboration and key numbers
  const C = E.collaboration;
  const collab = card("econ-collab", "Collaboration", right);
  function bars(box, names, pcts) {
    names.forEach((n, k) => {
      const row = el("div", "bar-row" + (n === "not_classified" ? " sup" : "")); row.dataset.name = n;
      const lbl = el("span", "lbl", n === "not_classified" ? "small cells (suppressed)" : n); lbl.title = lbl.textContent;
      const track = el("div", "track"), fill = el("div", "fill");
      fill.style.width = Math.min(100, pcts[k] || 0).toFixed(1) + "%";
      track.appendChild(fill); row.append(lbl, track, el("span", "val", fmtPct(pcts[k])));
      box.appendChild(row);
    });
  }
  if (C.split.name.length) { collab.appendChild(el("h3", null, "Automation vs augmentation")); const b = el("div"); b.id = "econ-split"; bars(b, C.split.name, C.split.pct); collab.appendChild(b); }
  if (C.modes.name.length) { collab.appendChild(el("h3", null, "Modes")); const b = el("div"); b.id = "econ-modes"; bars(b, C.modes.name, C.modes.pct); collab.appendChild(b); }
  if (!C.split.name.length && !C.modes.name.length) collab.appendChild(el("p", "note", "No collaboration mode was published."));
  const K = E.concentration || {}, P = E.penetration || {}, REF = E.reference;
  const key = el("table"); key.id = "econ-key";
  const keyRow = (a, b, c) => { const tr = el("tr"); tr.append(el("td", null, a), el("td", null, b), el("td", null, c)); key.appendChild(tr); };
  if (Object.keys(K).length || Object.keys(P).length) {
    collab.appendChild(el("h3", null, "Concentration and penetration"));
    const head = el("tr"); head.append(el("th"), el("th", null, "this run"), el("th", null, "published index")); key.appendChild(head);
    if (Object.keys(K).length) {
      keyRow("rank–share slope", fmtNum(K.rank_share_slope), String(REF.rank_share_slope));
      keyRow("Gini of task usage", fmtNum(K.gini), String(REF.gini));
      keyRow("bottom 80% of tasks: usage", fmtPct(K.bottom_80_pct), REF.bottom_80_pct + "%");
    }
    for (const p of ["10", "25", "50", "75"]) if (!nil(P[p])) keyRow("occupations with ≥ " + p + "% of tasks used", fmtPct(P[p]), REF.penetration[p] + "%");
    collab.appendChild(key);
  }

  renderTree(); renderGeo();
  window.clioEconomic = { state, show, tasks: T.name.length, occupations: O.name.length, majors: M.name.length, changes: CH ? CH.rows.length : 0 };
})();
