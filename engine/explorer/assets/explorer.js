// clio-engine explorer: map (canvas), tree, cluster panel, search and facet filter over one inline
// JSON blob. No network, no libraries. Text from the data is only ever set as textContent.
(function () {
  "use strict";
  const D = JSON.parse(document.getElementById("clio-data").textContent);
  const N = D.nodes, P = D.points, C = D.centroids, F = D.facets;
  // The public explorer (release/) draws marks instead of points: one disc per published base cluster,
  // area proportional to its published size.
  const MK = D.marks || { node: [], x: [], y: [], r: [], size: [] };
  const nNodes = N.id.length, nPoints = P.x.length, nMarks = MK.node.length, GRID = 10000;
  const $ = (id) => document.getElementById(id);
  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) { e.textContent = String(text); e.dir = "auto"; }  // Arabic reads right to left
    return e;
  };
  // Search folds as the namers do: NFKC ("ｶｰﾄﾞ" and "ＣＡＲＤ" are "カード" and "card"), then lower case.
  const fold = (s) => s.normalize("NFKC").toLowerCase();
  const fmtInt = (x) => (x === null || x === undefined ? "—" : Math.round(x).toLocaleString("en-US"));
  const fmtPct = (x) => (x === null || x === undefined ? "—" : (100 * x).toFixed(x < 0.001 && x > 0 ? 2 : 1) + "%");

  // ------------------------------------------------------------------ structure: children, top, colours
  const kids = Array.from({ length: nNodes }, () => []);
  const roots = [];
  for (let i = 0; i < nNodes; i++) (N.parent[i] >= 0 ? kids[N.parent[i]] : roots).push(i);
  const top = new Int32Array(nNodes);
  const depthOf = new Int32Array(nNodes);
  for (let i = 0; i < nNodes; i++) {
    let j = i, d = 0;
    while (N.parent[j] >= 0) { j = N.parent[j]; d++; }
    top[i] = j; depthOf[i] = d;
  }
  const bySize = (a, b) => (N.other[a] - N.other[b]) || ((N.size[b] || 0) - (N.size[a] || 0)) || (a - b);
  roots.sort(bySize);
  kids.forEach((k) => k.sort(bySize));
  const PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#2f4b7c", "#a05195", "#d45087", "#008b8b", "#7a9a01", "#c47c00", "#5d69b1", "#cc503e",
    "#0f8554", "#994e95", "#38a6a5"];
  const GREY = "#b3b8c2", DIM = "rgba(170,176,188,0.22)";
  const colourOfRoot = new Map();
  let ci = 0;
  for (const r of roots) colourOfRoot.set(r, N.other[r] ? GREY : PALETTE[ci++ % PALETTE.length]);
  const colourOf = (i) => (N.other[i] ? GREY : colourOfRoot.get(top[i]));

  // ------------------------------------------------------------------ points
  const px = new Float32Array(nPoints), py = new Float32Array(nPoints);
  for (let i = 0; i < nPoints; i++) { px[i] = P.x[i] / GRID; py[i] = 1 - P.y[i] / GRID; }
  const pNode = Int32Array.from(P.node);
  // Style buckets: one per colour in COLOURS (palette, grey, dim, then the facet-share ramp).
  const RAMP = ["#c6dbef", "#9ecae1", "#6baed6", "#4292c6", "#2171b5", "#08519c", "#08306b"];
  const COLOURS = PALETTE.concat([GREY, DIM], RAMP);
  const B_GREY = PALETTE.length, B_DIM = PALETTE.length + 1, B_RAMP = PALETTE.length + 2;
  const paletteIndex = new Map(PALETTE.map((c, k) => [c, k]));
  const baseBucket = new Int32Array(nNodes);
  for (let i = 0; i < nNodes; i++) { const c = colourOf(i); baseBucket[i] = c === GREY ? B_GREY : paletteIndex.get(c); }
  // Label anchors and extents of every node: mean and bounding box of its points.
  const sx = new Float64Array(nNodes), sy = new Float64Array(nNodes), cnt = new Int32Array(nNodes);
  const bx0 = new Float32Array(nNodes).fill(1), by0 = new Float32Array(nNodes).fill(1);
  const bx1 = new Float32Array(nNodes).fill(0), by1 = new Float32Array(nNodes).fill(0);
  for (let i = 0; i < nPoints; i++) {
    for (let j = pNode[i]; j >= 0; j = N.parent[j]) {
      sx[j] += px[i]; sy[j] += py[i]; cnt[j]++;
      if (px[i] < bx0[j]) bx0[j] = px[i]; if (px[i] > bx1[j]) bx1[j] = px[i];
      if (py[i] < by0[j]) by0[j] = py[i]; if (py[i] > by1[j]) by1[j] = py[i];
    }
  }
  // Marks: unit-square centre and radius; they extend their nodes' anchors and boxes like points.
  const mkx = new Float32Array(nMarks), mky = new Float32Array(nMarks), mkr = new Float32Array(nMarks);
  const mNode = Int32Array.from(MK.node);
  for (let k = 0; k < nMarks; k++) {
    mkx[k] = MK.x[k] / GRID; mky[k] = 1 - MK.y[k] / GRID; mkr[k] = MK.r[k] / GRID;
    for (let j = mNode[k]; j >= 0; j = N.parent[j]) {
      sx[j] += mkx[k]; sy[j] += mky[k]; cnt[j]++;
      bx0[j] = Math.min(bx0[j], mkx[k] - mkr[k]); bx1[j] = Math.max(bx1[j], mkx[k] + mkr[k]);
      by0[j] = Math.min(by0[j], mky[k] - mkr[k]); by1[j] = Math.max(by1[j], mky[k] + mkr[k]);
    }
  }
  const markOrder = Array.from({ length: nMarks }, (_, k) => k).sort((a, b) => mkr[b] - mkr[a] || a - b); // big first
  const centroidOf = new Map();
  for (let k = 0; k < C.node.length; k++) centroidOf.set(C.node[k], [C.x[k] / GRID, 1 - C.y[k] / GRID]);
  const anchor = (j) => centroidOf.get(j) || (cnt[j] ? [sx[j] / cnt[j], sy[j] / cnt[j]] : null);

  // Grid index for hover: G×G cells over the unit square, points listed per cell.
  const G = 96, cellStart = new Int32Array(G * G + 1), cellPts = new Int32Array(nPoints);
  const cellOf = (x, y) => Math.min(G - 1, Math.max(0, Math.floor(y * G))) * G + Math.min(G - 1, Math.max(0, Math.floor(x * G)));
  for (let i = 0; i < nPoints; i++) cellStart[cellOf(px[i], py[i]) + 1]++;
  for (let c = 0; c < G * G; c++) cellStart[c + 1] += cellStart[c];
  { const fill = cellStart.slice(0, G * G); for (let i = 0; i < nPoints; i++) cellPts[fill[cellOf(px[i], py[i])]++] = i; }

  // ------------------------------------------------------------------ state
  const state = { selected: -1, filter: null, expanded: new Set(), renders: 0, firstRenderMs: null, lastRenderMs: null, matches: [] };
  const inSelected = new Uint8Array(nPoints);
  // With a facet filter: each node's published share of the value (null: no published cell) and the
  // bucket of each node's points on the ramp (scaled to the largest share).
  let shareOfNode = null, rampBucket = null, shareFrom = null, rampMin = 0, rampMax = 0;

  // ------------------------------------------------------------------ map canvas
  const canvas = $("map"), ctx = canvas.getContext("2d");
  let W = 0, H = 0, dpr = 1;
  const view = { s: 1, tx: 0, ty: 0 }; // screen = data * s + t
  function fitView(x0, y0, x1, y1, pad) {
    const w = Math.max(x1 - x0, 1e-3), h = Math.max(y1 - y0, 1e-3);
    view.s = Math.min((W - 2 * pad) / w, (H - 2 * pad) / h);
    view.tx = (W - w * view.s) / 2 - x0 * view.s;
    view.ty = (H - h * view.s) / 2 - y0 * view.s;
  }
  const homeScale = () => Math.min(W, H) - 40;
  function resize() {
    const r = canvas.getBoundingClientRect();
    const first = W === 0;
    const oldW = W, oldH = H;
    dpr = window.devicePixelRatio || 1;
    W = Math.max(1, r.width); H = Math.max(1, r.height);
    canvas.width = Math.round(W * dpr); canvas.height = Math.round(H * dpr);
    if (first) fitView(0, 0, 1, 1, 20);
    else { view.tx += (W - oldW) / 2; view.ty += (H - oldH) / 2; }
    draw();
  }
  let buckets = null; // [colour bucket, point indices] in draw order; the selection drawn last, larger
  function pointBucket(i) {
    const j = pNode[i];
    if (!rampBucket) return baseBucket[j];
    return rampBucket[j];
  }
  function restyle() {
    const lists = Array.from({ length: COLOURS.length }, () => []);
    const hi = Array.from({ length: COLOURS.length }, () => []);
    for (let i = 0; i < nPoints; i++) {
      const b = pointBucket(i);
      if (state.selected < 0 || b === B_DIM) lists[b].push(i);
      else if (inSelected[i]) hi[b].push(i);
      else lists[B_DIM].push(i);
    }
    const order = [B_DIM, B_GREY];
    for (let b = 0; b < PALETTE.length; b++) order.push(b);
    for (let b = B_RAMP; b < COLOURS.length; b++) order.push(b);
    buckets = order.map((b) => [b, lists[b], false]).concat(order.map((b) => [b, hi[b], true]));
  }
  let frame = 0;
  function draw() {
    if (frame) return;
    frame = requestAnimationFrame(() => { frame = 0; render(); });
  }
  function render() {
    const t0 = performance.now();
    if (!buckets) restyle();
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, W, H);
    const zoom = view.s / homeScale();
    const r = Math.min(4, Math.max(1.1, 1.1 * Math.sqrt(zoom) * (nPoints > 20000 ? 0.85 : 1.2)));
    for (const [b, list, big] of buckets) {
      if (!list.length) continue;
      const rr = big ? r * 1.25 : r;
      ctx.fillStyle = COLOURS[b];
      ctx.beginPath();
      for (const i of list) {
        const x = px[i] * view.s + view.tx, y = py[i] * view.s + view.ty;
        if (x < -5 || y < -5 || x > W + 5 || y > H + 5) continue;
        ctx.rect(x - rr, y - rr, 2 * rr, 2 * rr);
      }
      ctx.fill();
    }
    drawMarks();
    drawCentroids(zoom);
    drawLabels(zoom);
    state.renders++;
    state.lastRenderMs = performance.now() - t0;
    if (state.firstRenderMs === null) {
      state.firstRenderMs = Math.round(performance.now());
      document.body.dataset.ready = "1";
    }
  }
  function markBucket(k) { const j = mNode[k]; return rampBucket ? rampBucket[j] : baseBucket[j]; }
  function drawMarks() {
    if (!nMarks) return;
    ctx.lineWidth = 1;
    let drawn = 0;
    for (const k of markOrder) {
      const x = mkx[k] * view.s + view.tx, y = mky[k] * view.s + view.ty, rr = Math.max(1.5, mkr[k] * view.s);
      if (x + rr < 0 || y + rr < 0 || x - rr > W || y - rr > H) continue;
      const b = markBucket(k);
      const dim = state.selected >= 0 && !isUnder(mNode[k], state.selected);
      ctx.beginPath(); ctx.arc(x, y, rr, 0, 2 * Math.PI);
      ctx.globalAlpha = dim ? 0.18 : 0.85;
      ctx.fillStyle = COLOURS[b]; ctx.fill();
      ctx.globalAlpha = 1;
      ctx.strokeStyle = mNode[k] === state.selected ? "#1d2330" : "rgba(255,255,255,0.9)";
      ctx.lineWidth = mNode[k] === state.selected ? 2 : 1;
      ctx.stroke();
      drawn++;
    }
    ctx.lineWidth = 1;
    state.marksDrawn = drawn;
  }
  function markerRadius(j, zoom) { return Math.min(18, Math.max(2.5, Math.sqrt(N.size[j] || 1) * 0.45 * Math.sqrt(zoom))); }
  function drawCentroids(zoom) {
    if (zoom < 1.8 && C.node.length > 60) return; // too crowded at home zoom for many clusters
    ctx.lineWidth = 1;
    for (let k = 0; k < C.node.length; k++) {
      const j = C.node[k];
      if (state.selected >= 0 && !isUnder(j, state.selected)) continue;
      const x = C.x[k] / GRID * view.s + view.tx, y = (1 - C.y[k] / GRID) * view.s + view.ty;
      if (x < -20 || y < -20 || x > W + 20 || y > H + 20) continue;
      ctx.beginPath(); ctx.arc(x, y, markerRadius(j, zoom), 0, 2 * Math.PI);
      ctx.strokeStyle = "rgba(29,35,48,0.55)"; ctx.stroke();
    }
  }
  function isUnder(j, anc) { for (; j >= 0; j = N.parent[j]) if (j === anc) return true; return false; }
  function labelLevel(zoom) {
    const maxLevel = D.meta.levels - 1;
    if (state.selected >= 0) return Math.max(0, N.level[state.selected] - 1);
    if (zoom < 2.2) return maxLevel;
    if (zoom < 6) return Math.max(0, maxLevel - 1);
    return Math.max(0, maxLevel - 2);
  }
  function overlayBoxes() {
    // [x0, y0, x1, y1] on the canvas of each visible box over the map
    const c = canvas.getBoundingClientRect(), out = [];
    for (const id of ["map-tools", "legend", "map-note"]) {
      const e = $(id); if (!e || e.hidden) continue;
      const r = e.getBoundingClientRect(); if (!r.width || !r.height) continue;
      out.push([r.left - c.left - 2, r.top - c.top - 2, r.right - c.left + 2, r.bottom - c.top + 2]);
    }
    return out;
  }
  let overlays = [];
  function drawLabels(zoom) {
    overlays = overlayBoxes();
    const level = labelLevel(zoom);
    const cand = [];
    for (let j = 0; j < nNodes; j++) {
      if (N.level[j] !== level || N.other[j]) continue;
      if (state.selected >= 0 && !isUnder(j, state.selected) && j !== state.selected) continue;
      const a = anchor(j); if (!a) continue;
      const ax = a[0] * view.s + view.tx, ay = a[1] * view.s + view.ty;
      if (ax < 0 || ay < 0 || ax > W || ay > H) continue; // off screen: leave the 60 labels to what is in view
      cand.push(j);
    }
    cand.sort(bySize);
    const boxes = [];
    ctx.font = "600 12px system-ui, sans-serif";
    ctx.textAlign = "center"; ctx.textBaseline = "middle";
    ctx.lineJoin = "round";
    for (const j of cand.slice(0, 60)) {
      const a = anchor(j);
      let x = a[0] * view.s + view.tx, y = a[1] * view.s + view.ty;
      if (x < 0 || y < 0 || x > W || y > H) continue;
      let text = N.name[j]; if (text.length > 38) text = text.slice(0, 36) + "…";
      const w = ctx.measureText(text).width + 6, h = 16;
      // Keep the whole label on the canvas (a region near the edge would cut it) and clear of the boxes
      // drawn over the map (zoom buttons at the top, legend and note at the bottom).
      const m = 4;
      x = w + 2 * m < W ? Math.min(Math.max(x, m + w / 2), W - m - w / 2) : W / 2;
      y = Math.min(Math.max(y, m + h / 2), H - m - h / 2);
      for (const o of overlays) {
        if (x - w / 2 < o[2] && o[0] < x + w / 2 && y - h / 2 < o[3] && o[1] < y + h / 2) {
          y = o[1] > H / 2 ? o[1] - h / 2 - 2 : o[3] + h / 2 + 2;
        }
      }
      const box = [x - w / 2, y - h / 2, x + w / 2, y + h / 2];
      if (boxes.some((b) => b[0] < box[2] && box[0] < b[2] && b[1] < box[3] && box[1] < b[3])) continue;
      boxes.push(box);
      ctx.strokeStyle = "rgba(255,255,255,0.92)"; ctx.lineWidth = 4; ctx.strokeText(text, x, y);
      ctx.fillStyle = "#1d2330"; ctx.fillText(text, x, y);
    }
    state.labelBoxes = boxes.map((b) => b.map((v) => Math.round(v * 10) / 10)); // for tests: what was drawn where
  }
  function nearest(mx, my) {
    // a mark under the cursor wins (the smallest, drawn on top); then a centroid marker; else the nearest point within 8 px
    const zoom = view.s / homeScale();
    for (let q = nMarks - 1; q >= 0; q--) {
      const k = markOrder[q];
      const x = mkx[k] * view.s + view.tx, y = mky[k] * view.s + view.ty;
      if (Math.hypot(mx - x, my - y) <= Math.max(3, mkr[k] * view.s)) return { node: mNode[k], point: -1, mark: k };
    }
    if (!(zoom < 1.8 && C.node.length > 60)) {
      for (let k = C.node.length - 1; k >= 0; k--) {
        const j = C.node[k];
        if (state.selected >= 0 && !isUnder(j, state.selected)) continue;
        const x = C.x[k] / GRID * view.s + view.tx, y = (1 - C.y[k] / GRID) * view.s + view.ty;
        if (Math.hypot(mx - x, my - y) <= markerRadius(j, zoom)) return { node: j, point: -1 };
      }
    }
    const dx = (mx - view.tx) / view.s, dy = (my - view.ty) / view.s, rad = 8 / view.s;
    const c0 = Math.max(0, Math.floor((dx - rad) * G)), c1 = Math.min(G - 1, Math.floor((dx + rad) * G));
    const r0 = Math.max(0, Math.floor((dy - rad) * G)), r1 = Math.min(G - 1, Math.floor((dy + rad) * G));
    let best = -1, bd = rad * rad;
    for (let r = r0; r <= r1; r++) for (let c = c0; c <= c1; c++) {
      const cell = r * G + c;
      for (let k = cellStart[cell]; k < cellStart[cell + 1]; k++) {
        const i = cellPts[k], d = (px[i] - dx) ** 2 + (py[i] - dy) ** 2;
        if (d <= bd) { bd = d; best = i; }
      }
    }
    return best < 0 ? null : { node: pNode[best], point: best };
  }
  const pathNames = (j) => { const out = []; for (; j >= 0; j = N.parent[j]) out.unshift(N.name[j]); return out; };
  const tooltip = $("tooltip");
  function showTip(hit, mx, my) {
    if (!hit) { tooltip.hidden = true; return; }
    tooltip.replaceChildren();
    tooltip.appendChild(el("div", null, N.name[hit.node]));
    const path = pathNames(hit.node);
    if (path.length > 1) tooltip.appendChild(el("div", "sub", path.slice(0, -1).join(" › ")));
    const size = N.size[hit.node];
    tooltip.appendChild(el("div", "sub", size === null ? "size below the privacy threshold"
      : fmtInt(size) + " records" + (N.share[hit.node] === null ? "" : " · " + fmtPct(N.share[hit.node]) + " of all")));
    if (hit.mark !== undefined && N.kw[hit.node].length) tooltip.appendChild(el("div", "sub", N.kw[hit.node].slice(0, 6).join(", ")));
    if (state.filter) {
      const k = shareFrom[hit.node], s = k >= 0 ? shareOfNode[k] : null;
      tooltip.appendChild(el("div", "sub", filterLabel() + ": " + (s === null ? "not published for this cluster"
        : fmtPct(s) + " of " + (k === hit.node ? "this cluster" : N.name[k]))));
    }
    tooltip.hidden = false;
    const box = canvas.getBoundingClientRect();
    tooltip.style.left = Math.min(mx + 14, box.width - 330) + "px";
    tooltip.style.top = Math.min(my + 14, box.height - 70) + "px";
  }
  const filterLabel = () => F.names[state.filter[0]] + " = " + F.values[state.filter[0]][state.filter[1]];

  // mouse: wheel zoom at the cursor, drag to pan, click to open, double-click to reset
  let drag = null;
  function zoomAt(mx, my, factor) {
    const s = Math.min(Math.max(view.s * factor, homeScale() * 0.5), homeScale() * 400);
    factor = s / view.s;
    view.tx = mx - (mx - view.tx) * factor; view.ty = my - (my - view.ty) * factor; view.s = s;
    draw();
  }
  canvas.addEventListener("wheel", (e) => {
    e.preventDefault();
    const b = canvas.getBoundingClientRect();
    zoomAt(e.clientX - b.left, e.clientY - b.top, Math.exp(-e.deltaY * (e.deltaMode === 1 ? 0.05 : 0.0015)));
  }, { passive: false });
  canvas.addEventListener("mousedown", (e) => { drag = { x: e.clientX, y: e.clientY, moved: false }; canvas.classList.add("dragging"); });
  window.addEventListener("mouseup", (e) => {
    if (!drag) return;
    canvas.classList.remove("dragging");
    const wasClick = !drag.moved; drag = null;
    if (wasClick && e.target === canvas) {
      const b = canvas.getBoundingClientRect();
      const hit = nearest(e.clientX - b.left, e.clientY - b.top);
      if (hit) select(hit.node, { zoom: false });
    }
  });
  window.addEventListener("mousemove", (e) => {
    const b = canvas.getBoundingClientRect();
    if (drag) {
      const ddx = e.clientX - drag.x, ddy = e.clientY - drag.y;
      if (Math.abs(ddx) + Math.abs(ddy) > 2) drag.moved = true;
      view.tx += ddx; view.ty += ddy; drag.x = e.clientX; drag.y = e.clientY;
      tooltip.hidden = true; draw(); return;
    }
    if (e.target !== canvas) { tooltip.hidden = true; return; }
    const mx = e.clientX - b.left, my = e.clientY - b.top;
    showTip(nearest(mx, my), mx, my);
  });
  canvas.addEventListener("mouseleave", () => { tooltip.hidden = true; });
  canvas.addEventListener("dblclick", () => { fitView(0, 0, 1, 1, 20); draw(); });
  $("zoom-in").onclick = () => zoomAt(W / 2, H / 2, 1.6);
  $("zoom-out").onclick = () => zoomAt(W / 2, H / 2, 1 / 1.6);
  $("zoom-reset").onclick = () => { fitView(0, 0, 1, 1, 20); draw(); };

  function zoomTo(j) {
    if (!cnt[j]) return;
    fitView(bx0[j], by0[j], bx1[j], by1[j], 40);
    view.s = Math.min(view.s, homeScale() * 60);
    const cx = (bx0[j] + bx1[j]) / 2, cy = (by0[j] + by1[j]) / 2;
    view.tx = W / 2 - cx * view.s; view.ty = H / 2 - cy * view.s;
  }

  // ------------------------------------------------------------------ legend and notes
  function renderLegend() {
    const box = $("legend"); box.replaceChildren();
    if (state.filter) {
      box.appendChild(el("div", null, "share of " + filterLabel()));
      RAMP.forEach((c, k) => {
        const row = el("div"); const sw = el("span", "sw"); sw.style.background = c;
        const at = (q) => fmtPct(rampMin + (rampMax - rampMin) * q / RAMP.length);
        row.append(sw, el("span", null, at(k) + " – " + at(k + 1)));
        box.appendChild(row);
      });
      const row = el("div"); const sw = el("span", "sw"); sw.style.background = "#dfe2e8";
      row.append(sw, el("span", null, "not published")); box.appendChild(row);
      return;
    }
    for (const r of roots) {
      const row = el("div"); const sw = el("span", "sw"); sw.style.background = colourOfRoot.get(r);
      row.append(sw, el("span", null, N.name[r] + (N.share[r] === null ? "" : " · " + fmtPct(N.share[r]))));
      row.onclick = () => select(r, { zoom: true });
      box.appendChild(row);
    }
    if (!roots.length) box.hidden = true;
  }
  function renderNote() {
    let text = nMarks ? fmtInt(nMarks) + " published base clusters, one disc each, area proportional to its published"
      + " records; clusters below the privacy threshold are not drawn"
      : nPoints ? fmtInt(nPoints) + " points on the map, the same number for each published cluster"
      + "; clusters below the privacy threshold are not drawn" : "No map points in this run.";
    if (state.filter) {
      let k = 0; for (let i = 0; i < nPoints; i++) k += rampBucket[pNode[i]] !== B_DIM ? 1 : 0;
      text = "Colour: published share of " + filterLabel() + " in each point's cluster (or its nearest ancestor where the "
        + "cluster's own cell is below the threshold); " + fmtInt(k) + " of " + fmtInt(nPoints) + " points coloured";
      if (nMarks) {
        k = 0; for (let q = 0; q < nMarks; q++) k += rampBucket[mNode[q]] !== B_DIM ? 1 : 0;
        text = "Colour: published share of " + filterLabel() + " in each cluster (or its nearest ancestor where the "
          + "cluster's own cell is below the threshold); " + fmtInt(k) + " of " + fmtInt(nMarks) + " clusters coloured";
      }
    }
    $("map-note").textContent = text;
  }

  // ------------------------------------------------------------------ tree
  const rowOf = new Map();
  function facetShare(j) {
    if (!state.filter) return null;
    const fs = N.fs[j]; if (!fs) return null;
    const cell = fs[F.names[state.filter[0]]]; if (!cell) return null;
    const v = cell[F.values[state.filter[0]][state.filter[1]]];
    return v === undefined ? null : v; // absent: no records, or a cell under the floors (merged into "suppressed")
  }
  function weight(j) { if (!state.filter) return N.size[j] || 0; const s = facetShare(j); return s === null ? 0 : s * (N.size[j] || 0); }
  const byWeight = (a, b) => (N.other[a] - N.other[b]) || (weight(b) - weight(a)) || (a - b);
  function treeRow(j) {
    const row = el("div", "tree-row" + (N.other[j] ? " other" : ""));
    row.setAttribute("role", "treeitem"); row.dataset.id = N.id[j];
    row.style.paddingLeft = (4 + 14 * depthOf[j]) + "px";
    const tw = el("span", "tw", kids[j].length ? (state.expanded.has(j) ? "▾" : "▸") : "");
    const sw = el("span", "sw"); sw.style.background = colourOf(j);
    const nm = el("span", "nm", N.name[j]); nm.title = N.name[j];
    let size = fmtInt(N.size[j]), share = fmtPct(N.share[j]);
    if (state.filter) { const s = facetShare(j); size = s === null ? "—" : "≈" + fmtInt(weight(j)); share = s === null ? "—" : fmtPct(s); }
    row.append(tw, sw, nm, el("span", "num", size), el("span", "num", share), el("span", "num", fmtInt(N.users[j])));
    if (j === state.selected) row.classList.add("selected");
    tw.onclick = (e) => { e.stopPropagation(); toggle(j); };
    row.onclick = () => select(j, { zoom: true });
    // Keyboard: Tab reaches the rows; arrows move and expand/collapse (WAI-ARIA tree), Enter opens.
    row.tabIndex = 0;
    if (kids[j].length) row.setAttribute("aria-expanded", state.expanded.has(j) ? "true" : "false");
    row.onkeydown = (e) => treeKey(e, j);
    rowOf.set(j, row);
    const wrap = el("div"); wrap.appendChild(row);
    if (state.expanded.has(j)) { const box = el("div", "kids"); for (const k of [...kids[j]].sort(byWeight)) box.appendChild(treeRow(k)); wrap.appendChild(box); }
    return wrap;
  }
  function renderTree() {
    rowOf.clear();
    const tree = $("tree"); tree.replaceChildren();
    for (const r of [...roots].sort(byWeight)) tree.appendChild(treeRow(r));
    $("th-size").textContent = state.filter ? "≈ records" : "records";
    $("th-share").textContent = state.filter ? "of cluster" : "share";
    // Users per facet value are not in this page: under a filter the column stays the whole cluster's, and says so.
    $("th-users").textContent = state.filter ? "cluster users" : "users";
    $("th-users").title = state.filter ? "all of the cluster's users, not only those with " + filterLabel() : "";
  }
  function toggle(j) { if (state.expanded.has(j)) state.expanded.delete(j); else state.expanded.add(j); renderTree(); }
  function focusRow(j) { const r = rowOf.get(j); if (r) r.focus(); }
  function treeKey(e, j) {
    const k = e.key;
    if (k === "Enter" || k === " ") { select(j, { zoom: true }); focusRow(j); }
    else if (k === "ArrowRight") {
      if (kids[j].length && !state.expanded.has(j)) { toggle(j); focusRow(j); }
      else if (kids[j].length) focusRow([...kids[j]].sort(byWeight)[0]);
    } else if (k === "ArrowLeft") {
      if (state.expanded.has(j)) { toggle(j); focusRow(j); } else if (N.parent[j] >= 0) focusRow(N.parent[j]);
    } else if (k === "ArrowDown" || k === "ArrowUp") {
      const rows = [...$("tree").querySelectorAll(".tree-row[role=treeitem]")];
      const next = rows[rows.indexOf(e.currentTarget) + (k === "ArrowDown" ? 1 : -1)];
      if (next) next.focus();
    } else return;
    e.preventDefault();
  }

  // ------------------------------------------------------------------ panel
  function select(j, opts) {
    state.selected = j;
    inSelected.fill(0);
    if (j >= 0) for (let i = 0; i < nPoints; i++) inSelected[i] = isUnder(pNode[i], j) ? 1 : 0;
    if (j >= 0) for (let a = N.parent[j]; a >= 0; a = N.parent[a]) state.expanded.add(a);
    if (j >= 0 && opts && opts.zoom) zoomTo(j);
    buckets = null;
    renderTree(); renderPanel(); draw();
    const row = rowOf.get(j); if (row && row.scrollIntoView) row.scrollIntoView({ block: "nearest" });
  }
  function section(title) { const d = el("div"); d.appendChild(el("h3", null, title)); return d; }
  function bars(cell, hitValue) {
    const box = el("div");
    const entries = Object.entries(cell).sort((a, b) => (a[0] === "(suppressed)") - (b[0] === "(suppressed)") || b[1] - a[1]);
    for (const [v, s] of entries.slice(0, 8)) {
      const row = el("div", "bar-row" + (v === "(suppressed)" ? " sup" : "") + (v === hitValue ? " hit" : ""));
      const lbl = el("span", "lbl", v === "(suppressed)" ? "small cells (suppressed)" : v); lbl.title = lbl.textContent;
      const track = el("div", "track"), fill = el("div", "fill"); fill.style.width = (100 * Math.min(1, s)).toFixed(1) + "%";
      track.appendChild(fill);
      row.append(lbl, track, el("span", "val", fmtPct(s)));
      box.appendChild(row);
    }
    if (entries.length > 8) box.appendChild(el("div", "note", "+ " + (entries.length - 8) + " more values"));
    return box;
  }
  function renderPanel() {
    const j = state.selected;
    $("panel-empty").hidden = j >= 0; $("panel-body").hidden = j < 0;
    if (j < 0) return;
    const crumbs = $("crumbs"); crumbs.replaceChildren();
    const chain = []; for (let a = N.parent[j]; a >= 0; a = N.parent[a]) chain.unshift(a);
    chain.forEach((a, k) => { const link = el("a", null, N.name[a]); link.onclick = () => select(a, { zoom: true }); if (k) crumbs.append(" › "); crumbs.append(link); });
    if (!chain.length) crumbs.textContent = N.other[j] ? "" : "top level";
    $("panel-name").textContent = N.name[j];
    $("panel-desc").textContent = N.desc[j];
    const stats = $("panel-stats"); stats.replaceChildren();
    const levelName = N.level[j] === 0 ? "base cluster" : N.level[j] === D.meta.levels - 1 ? "top level" : "level " + N.level[j];
    const rows = [["records", N.size[j] === null ? "below the privacy threshold" : fmtInt(N.size[j])], ["unique users", fmtInt(N.users[j])],
      ["share of all", fmtPct(N.share[j])], ["share of parent", N.parent[j] >= 0 ? fmtPct(N.sop[j]) : "—"], ["level", levelName]];
    if (N.id[j]) rows.push(["id", N.id[j]]);
    for (const [k, v] of rows) { const tr = el("tr"); tr.append(el("td", null, k), el("td", null, v)); stats.appendChild(tr); }
    const kw = $("panel-keywords"); kw.replaceChildren();
    if (N.kw[j].length) { const s = section("Keywords"); for (const w of N.kw[j]) s.appendChild(el("span", "chip", w)); kw.appendChild(s); }
    const fb = $("panel-facets"); fb.replaceChildren();
    if (N.fs[j]) {
      for (const f of Object.keys(N.fs[j])) {
        const s = section(f); const hit = state.filter && F.names[state.filter[0]] === f ? F.values[state.filter[0]][state.filter[1]] : null;
        s.appendChild(bars(N.fs[j][f], hit)); fb.appendChild(s);
      }
    }
    const ch = $("panel-children"); ch.replaceChildren();
    if (kids[j].length) {
      const s = section("Children (" + kids[j].length + ")"); const ol = el("ol");
      for (const k of kids[j]) { const li = el("li"); const a = el("a", null, N.name[k]); a.onclick = () => select(k, { zoom: true }); li.append(a, " " + fmtPct(N.sop[k])); ol.appendChild(li); }
      s.appendChild(ol); ch.appendChild(s);
    }
    const ex = $("panel-examples"); ex.replaceChildren();
    if (N.other[j]) {
      ex.appendChild(el("p", "note", "These records belong to clusters below the privacy threshold (" + D.meta.min_users + " users, " + D.meta.min_records + " records); their texts, names and keywords are not published."));
    } else if (N.ex[j].length) {
      const s = section("Examples (" + D.meta.examples + ")"); const ul = el("ul");
      for (const t of N.ex[j]) ul.appendChild(el("li", null, t));
      s.appendChild(ul); ex.appendChild(s);
    } else if (D.meta.public) {
      ex.appendChild(el("p", "note", "The public release holds no record text: examples are not part of it."));
    } else if (D.meta.examples === "none") {
      ex.appendChild(el("p", "note", "Examples are withheld in this run (privacy.examples = none)."));
    }
  }

  // ------------------------------------------------------------------ search
  const hay = N.name.map((n, j) => fold(n + " " + N.kw[j].join(" ")));
  const results = $("search-results"), search = $("search");
  function runSearch() {
    const q = fold(search.value.trim());
    results.replaceChildren();
    state.matches = [];
    if (!q) { results.hidden = true; return; }
    const terms = q.split(/\s+/);
    for (let j = 0; j < nNodes; j++) if (!N.other[j] && terms.every((t) => hay[j].includes(t))) state.matches.push(j);
    const nameHit = (j) => terms.every((t) => fold(N.name[j]).includes(t)) ? 0 : 1;
    state.matches.sort((a, b) => nameHit(a) - nameHit(b) || N.level[b] - N.level[a] || (N.size[b] || 0) - (N.size[a] || 0) || a - b);
    for (const j of state.matches.slice(0, 40)) {
      const li = el("li"); li.dataset.id = N.id[j];
      li.append(el("div", null, N.name[j]), el("div", "meta", (N.level[j] === 0 ? "base" : "level " + N.level[j]) + " · " + fmtInt(N.size[j]) + " records · " + N.kw[j].slice(0, 5).join(", ")));
      li.onclick = () => { results.hidden = true; select(j, { zoom: true }); };
      results.appendChild(li);
    }
    if (!state.matches.length) results.appendChild(el("li", "none", "no cluster matches"));
    results.hidden = false;
  }
  search.addEventListener("input", runSearch);
  search.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && state.matches.length) { results.hidden = true; select(state.matches[0], { zoom: true }); }
    if (e.key === "Escape") { results.hidden = true; }
  });
  search.addEventListener("focus", () => { if (search.value.trim()) results.hidden = false; });
  document.addEventListener("click", (e) => { if (!$("search-box").contains(e.target)) results.hidden = true; });

  // ------------------------------------------------------------------ facet filter
  const sel = $("facet-filter");
  F.names.forEach((f, fi) => {
    const group = el("optgroup"); group.label = f;
    F.values[fi].forEach((v, vi) => { const o = el("option", null, f + " = " + v); o.value = fi + ":" + vi; group.appendChild(o); });
    if (F.values[fi].length) sel.appendChild(group);
  });
  if (!F.names.length) $("filter-box").hidden = true;
  function setFilter(value) {
    if (!value) { state.filter = null; shareOfNode = null; rampBucket = null; }
    else {
      const [fi, vi] = value.split(":").map(Number);
      state.filter = [fi, vi];
      shareOfNode = new Array(nNodes);
      rampMin = Infinity; rampMax = -Infinity;
      for (let j = 0; j < nNodes; j++) {
        const s = shareOfNode[j] = facetShare(j);
        if (s !== null) { rampMin = Math.min(rampMin, s); rampMax = Math.max(rampMax, s); }
      }
      if (!(rampMax >= rampMin)) { rampMin = 0; rampMax = 1; }
      const span = Math.max(rampMax - rampMin, 1e-9); // the ramp spans the published shares, lowest to highest
      rampBucket = new Int32Array(nNodes); shareFrom = new Int32Array(nNodes);
      for (let j = 0; j < nNodes; j++) {
        // the finest published share on the way up: the node's own, else its nearest ancestor's
        let k = j; while (k >= 0 && (N.other[k] || shareOfNode[k] === null)) k = N.parent[k];
        shareFrom[j] = k;
        rampBucket[j] = k < 0 ? B_DIM : B_RAMP + Math.min(RAMP.length - 1, Math.floor((shareOfNode[k] - rampMin) / span * RAMP.length));
      }
    }
    state.filterChanges = (state.filterChanges || 0) + 1;
    buckets = null; renderTree(); renderPanel(); renderLegend(); renderNote(); draw();
  }
  sel.addEventListener("change", () => setFilter(sel.value));

  // ------------------------------------------------------------------ start
  const m = D.meta;
  let published = 0; for (let j = 0; j < nNodes; j++) published += N.other[j] ? 0 : 1;
  $("stats").textContent = fmtInt(m.records) + " records · " + published + " published clusters · ≥ " + m.min_users + " users and ≥ " + m.min_records + " records each";
  renderLegend(); renderNote(); renderTree(); renderPanel();
  if (typeof ResizeObserver !== "undefined") new ResizeObserver(resize).observe(canvas); else window.addEventListener("resize", resize);
  resize();
  // A small handle for tests and the console (read-only use; the page never needs it).
  window.clioExplorer = {
    state, view, points: nPoints, marks: nMarks,
    select: (id) => select(N.id.indexOf(id), { zoom: true }),
    pointScreen: (i) => [px[i] * view.s + view.tx, py[i] * view.s + view.ty],
    markScreen: (k) => [mkx[k] * view.s + view.tx, mky[k] * view.s + view.ty, mkr[k] * view.s],
  };
})();
