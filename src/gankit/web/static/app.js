// gankit serve: the playground and the explorer. Plain browser JavaScript, no build step, nothing fetched
// from elsewhere. Each view's state lives in the URL hash (#explorer?model=0&point=7~3=1.5&c.labels=2), so a
// copied URL opens the same picture.
"use strict";

const $ = (id) => document.getElementById(id);
const status = (text) => { $("status").textContent = text || ""; };
// Names, class names, captions and messages come from run folders a stranger may have made: the page puts text
// into the document only as text (textContent, option labels), never as HTML.
function setOptions(select, items) {  // items: [value, label, title?]
  select.replaceChildren(...items.map(([value, label, title]) =>
    Object.assign(document.createElement("option"), {value: String(value), textContent: String(label), title: title ? String(title) : ""})));
}

async function api(path, body) {
  const response = await fetch(path, body === undefined ? {} : {
    method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
  const data = await response.json();
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
}

function hashState() {
  const [view, query] = location.hash.slice(1).split("?");
  return {view: view || "playground", params: new URLSearchParams(query || "")};
}
function setHash(view, params) {
  const text = `#${view}${[...params].length ? "?" + params.toString() : ""}`;
  if (location.hash !== text) history.replaceState(null, "", text);
}

// ---------------------------------------------------------------------------------------------- playground
const pg = {id: null, view: null, playing: false, drawn: [], extra: {}, layers: new Set(["heat", "manifold", "real", "fake", "arrows"]),
            choices: null, busy: false};

function pgOptions() {
  const form = $("pg-options"), out = {};
  for (const el of form.elements) {
    if (!el.name) continue;
    if (el.type === "checkbox") out[el.name] = el.checked;
    else if (el.type === "number") out[el.name] = Number(el.value);
    else out[el.name] = el.value;
  }
  if (out.target === "drawn") out.points = pg.drawn;
  return {...pg.extra, ...out};  // options without a field on the form (hidden, batch_size) come from the URL
}

function pgSaveHash() {
  const params = new URLSearchParams();
  const options = pgOptions(), defaults = pg.choices.defaults;
  for (const [k, v] of Object.entries(options)) if (k !== "points" && String(v) !== String(defaults[k])) params.set(k, v);
  if (options.target === "drawn") params.set("points", pg.drawn.map((p) => p.map((v) => v.toFixed(3)).join(":")).join(","));
  setHash("playground", params);
}

async function pgInit(params) {
  pg.choices = await api("/api/playground/choices");
  pg.extra = {};
  const form = $("pg-options");
  setOptions(form.target, Object.entries(pg.choices.targets).map(([k, v]) => [k, k, v]));
  setOptions(form.loss, pg.choices.losses.map((k) => [k, k]));
  for (const [k, v] of Object.entries(pg.choices.defaults)) {
    const el = form.elements[k], given = params.get(k);
    if (!el) {
      if (given !== null && k !== "points") pg.extra[k] = typeof v === "number" ? Number(given) : given;
      continue;
    }
    if (el.type === "checkbox") el.checked = given === null ? v : given === "true";
    else el.value = given === null ? v : given;
  }
  pg.drawn = params.get("points") ? params.get("points").split(",").map((p) => p.split(":").map(Number)) : [];
  pgUpdateDrawHint();
  await pgReset();
}

function pgUpdateDrawHint() { $("pg-draw-hint").hidden = $("pg-options").target.value !== "drawn"; }

async function pgReset() {
  pgStop();
  pgSaveHash();
  const options = pgOptions();
  if (options.target === "drawn" && pg.drawn.length < 3) {
    pg.id = null; pg.view = null; pgDraw();
    status("draw at least 3 points on the plane, then press Reset");
    return;
  }
  try {
    const data = await api("/api/playground", {options});
    pg.id = data.id; pg.view = data.view; status(""); pgDraw();
  } catch (error) { status(error.message); }
}

async function pgStep(mode, steps) {
  if (!pg.id || pg.busy) return;
  pg.busy = true;
  try {
    const data = await api("/api/playground/step", {id: pg.id, mode, steps});
    pg.view = data.view; pgDraw();
  } catch (error) { status(error.message); pgStop(); }
  pg.busy = false;
}

async function pgLoop() {
  while (pg.playing) {
    await pgStep("both", Math.max(1, Math.min(200, Number($("pg-speed").value) || 10)));
    await new Promise((resolve) => requestAnimationFrame(resolve));
  }
}
function pgStop() { pg.playing = false; $("pg-play").textContent = "Play"; }

function toCanvas(bounds, canvas) {
  const [x0, x1, y0, y1] = bounds;
  return ([x, y]) => [(x - x0) / (x1 - x0) * canvas.width, (y1 - y) / (y1 - y0) * canvas.height];
}

function pgDraw() {
  const canvas = $("pg-canvas"), ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const v = pg.view;
  if (!v) {  // drawing mode before the first session: the raw [-1.5, 1.5] square
    const at = toCanvas([-1.5, 1.5, -1.5, 1.5], canvas);
    ctx.fillStyle = "#1a9850";
    for (const p of pg.drawn) { const [a, b] = at(p); ctx.fillRect(a - 3, b - 3, 6, 6); }
    return;
  }
  const at = toCanvas(v.bounds, canvas);
  if (pg.layers.has("heat")) {
    const n = v.d_map.resolution, values = v.d_map.values.flat();
    const low = v.d_map.kind === "probability" ? 0 : Math.min(...values), high = v.d_map.kind === "probability" ? 1 : Math.max(...values);
    const small = document.createElement("canvas");  // one pixel per cell, scaled up smoothly
    small.width = small.height = n;
    const pixels = small.getContext("2d").createImageData(n, n);
    values.forEach((value, i) => {
      const t = (value - low) / Math.max(1e-9, high - low);  // 0: looks fake (orange), 1: looks real (green)
      pixels.data.set([Math.round(250 - 170 * t), Math.round(190 + 40 * t), Math.round(140 - 10 * t), 255], 4 * i);
    });
    small.getContext("2d").putImageData(pixels, 0, 0);
    ctx.imageSmoothingEnabled = true;
    ctx.globalAlpha = 0.55;
    ctx.drawImage(small, 0, 0, canvas.width, canvas.height);
    ctx.globalAlpha = 1;
    $("pg-heat-legend").textContent = `background: D's ${v.d_map.kind} (green: real-looking, orange: fake-looking; ${low.toFixed(2)}..${high.toFixed(2)})`;
  } else $("pg-heat-legend").textContent = "";
  if (pg.layers.has("manifold")) {
    const side = v.manifold.side, pts = v.manifold.points.map(at);
    ctx.strokeStyle = "rgba(120, 120, 120, 0.5)"; ctx.lineWidth = 1;
    for (let i = 0; i < side; i++) {
      ctx.beginPath();
      for (let j = 0; j < side; j++) { const [a, b] = pts[i * side + j]; j ? ctx.lineTo(a, b) : ctx.moveTo(a, b); }
      ctx.stroke(); ctx.beginPath();
      for (let j = 0; j < side; j++) { const [a, b] = pts[j * side + i]; j ? ctx.lineTo(a, b) : ctx.moveTo(a, b); }
      ctx.stroke();
    }
  }
  const dots = (points, colour) => { ctx.fillStyle = colour; for (const p of points) { const [a, b] = at(p); ctx.fillRect(a - 1.5, b - 1.5, 3, 3); } };
  if (pg.layers.has("real")) dots(v.real, "#1a9850");
  if (pg.layers.has("fake")) dots(v.fake, "#7b3294");
  if (pg.layers.has("arrows")) {
    const lengths = v.arrows.map(([a, b]) => Math.hypot(a, b)), longest = Math.max(1e-12, ...lengths);
    ctx.strokeStyle = "rgba(40, 40, 40, 0.7)";
    v.fake.forEach((p, i) => {
      if (i % 4) return;  // every fourth point: readable arrows
      const [a, b] = at(p), [gx, gy] = v.arrows[i], scale = 18 / longest;
      ctx.beginPath(); ctx.moveTo(a, b); ctx.lineTo(a + gx * scale, b - gy * scale); ctx.stroke();
    });
  }
  $("pg-steps").textContent = `G steps ${v.steps.g}, D steps ${v.steps.d}`;
  $("pg-modes").textContent = v.modes
    ? `modes captured ${v.modes.modes_captured} of ${v.modes.modes_total}; high quality ${(100 * v.modes.high_quality).toFixed(1)}%`
    : "this target has no modes to count";
  chart($("pg-losses"), v.history, ["d_loss", "g_loss"], "losses");
  chart($("pg-outputs"), v.history, ["D(x)", "D(G(z))"], "D(x) and D(G(z))");
}

function chart(canvas, rows, keys, title) {
  const ctx = canvas.getContext("2d"), colours = ["#1f77b4", "#d62728"];
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.fillStyle = "#222"; ctx.font = "12px sans-serif"; ctx.fillText(title, 6, 14);
  const values = rows.flatMap((r) => keys.map((k) => r[k]).filter((x) => typeof x === "number"));
  if (values.length < 2) return;
  const low = Math.min(...values), high = Math.max(...values), span = Math.max(1e-9, high - low);
  const x = (i) => 36 + i / Math.max(1, rows.length - 1) * (canvas.width - 44), y = (value) => 22 + (high - value) / span * (canvas.height - 34);
  ctx.fillText(high.toFixed(2), 2, 26); ctx.fillText(low.toFixed(2), 2, canvas.height - 8);
  keys.forEach((k, j) => {
    ctx.strokeStyle = colours[j]; ctx.beginPath();
    rows.forEach((r, i) => { if (typeof r[k] === "number") i ? ctx.lineTo(x(i), y(r[k])) : ctx.moveTo(x(i), y(r[k])); });
    ctx.stroke(); ctx.fillStyle = colours[j]; ctx.fillText(k, canvas.width - 70, 14 + 13 * j);
  });
}

function pgWire() {
  $("pg-reset").onclick = pgReset;
  $("pg-step").onclick = () => pgStep("both", 1);
  $("pg-step-d").onclick = () => pgStep("d", 1);
  $("pg-step-g").onclick = () => pgStep("g", 1);
  $("pg-play").onclick = () => {
    if (pg.playing) { pgStop(); return; }
    pg.playing = true; $("pg-play").textContent = "Pause"; pgLoop();
  };
  $("pg-download").onclick = () => { $("pg-download").href = $("pg-canvas").toDataURL("image/png"); };
  $("pg-clear").onclick = () => { pg.drawn = []; pg.view = null; pg.id = null; pgDraw(); pgSaveHash(); };
  $("pg-options").addEventListener("change", (event) => {
    pgUpdateDrawHint();
    if (event.target.name === "target" && event.target.value === "drawn") { pg.view = null; pg.id = null; pgStop(); pgDraw(); }
    pgSaveHash();
  });
  for (const box of document.querySelectorAll("[data-layer]")) {
    box.onchange = () => { box.checked ? pg.layers.add(box.dataset.layer) : pg.layers.delete(box.dataset.layer); pgDraw(); };
  }
  $("pg-canvas").addEventListener("click", (event) => {
    if ($("pg-options").target.value !== "drawn" || pg.view) return;
    const rect = event.target.getBoundingClientRect();
    const x = (event.clientX - rect.left) / rect.width * 3 - 1.5, y = 1.5 - (event.clientY - rect.top) / rect.height * 3;
    if (pg.drawn.length < 500) pg.drawn.push([x, y]);
    pgDraw(); pgSaveHash();
  });
}

// ---------------------------------------------------------------------------------------------- explorer
const ex = {models: [], model: null, params: new URLSearchParams(), z: []};

function exQuery(extra) {
  const params = new URLSearchParams({model: ex.model.id});
  for (const [k, v] of ex.params) if (k.startsWith("c.")) params.set(k, v);
  for (const [k, v] of Object.entries(extra || {})) params.set(k, v);
  return params.toString();
}

function exPoint() { return ex.params.get("point") || "0"; }
function pointSeed(point) { return Number(point.split("~")[0]); }
function pointEdits(point) {
  return Object.fromEntries(point.split("~").slice(1).map((pair) => pair.split("=")).map(([i, v]) => [Number(i), Number(v)]));
}
function makePoint(seed, edits) {
  const pairs = Object.entries(edits).sort((a, b) => a[0] - b[0]).map(([i, v]) => `${i}=${Number(v).toFixed(3).replace(/\.?0+$/, "")}`);
  return [String(seed), ...pairs].join("~");
}

function pointLabel(point) {  // a projected image's point sets every z entry: say so rather than list them
  const edits = Object.keys(pointEdits(point)).length;
  return edits > 8 ? `${pointSeed(point)} with ${edits} z entries set` : point;
}

function exSave() { setHash("explorer", ex.params); }

const UPLOAD_SIDE = 160;  // an upload is scaled down to at most this many pixels a side before it is sent

async function exProject(file) {
  const say = (text) => { $("ex-project-status").textContent = text; };
  say("projecting...");
  try {
    const bitmap = await createImageBitmap(file);
    const scale = Math.min(1, UPLOAD_SIDE / Math.max(bitmap.width, bitmap.height));
    const canvas = document.createElement("canvas");
    canvas.width = Math.max(1, Math.round(bitmap.width * scale));
    canvas.height = Math.max(1, Math.round(bitmap.height * scale));
    canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
    const image = canvas.toDataURL("image/png");
    const found = await api(`/api/project?model=${encodeURIComponent(ex.model.id)}`, {image});
    $("ex-target").src = image;
    $("ex-target-figure").hidden = false;
    ex.params.set("point", found.point);
    for (const [name, value] of Object.entries(found.settings)) ex.params.set(`c.${name}`, String(value));
    say(`${found.psnr_shown.toFixed(1)} dB PSNR as shown (${found.psnr.toFixed(1)} dB at the optimum), ` +
        `${found.seconds.toFixed(1)} s: ${found.steps} steps of Adam from ${found.restarts} starts`);
    exBuildControls();
    exRefresh();
  } catch (error) {
    say(`could not project it: ${error.message}`);
  }
}

async function exInit(params) {
  ex.models = await api("/api/models");
  if (!ex.models.length) { $("ex-empty").hidden = false; $("ex-main").hidden = true; return; }
  setOptions($("ex-model"), ex.models.map((m) => [m.id, `${m.name} (${m.summary}, step ${m.step})`]));
  const runs = ex.models.filter((m) => m.report);
  $("ex-compare").hidden = runs.length < 2;
  $("ex-compare").textContent = `compare the ${runs.length} served runs`;
  $("ex-compare").href = "/api/compare";
  ex.params = params;
  exSelect(params.get("model") || "0", false);
}

function exSelect(id, fresh) {
  ex.model = ex.models.find((m) => m.id === id) || ex.models[0];
  if (fresh) ex.params = new URLSearchParams();
  ex.params.set("model", ex.model.id);
  $("ex-model").value = ex.model.id;
  const m = ex.model;
  $("ex-info").textContent = `${m.model} on ${m.data}, step ${m.step}${m.ema ? ", EMA weights" : ""}; ${m.summary}; z has ${m.noise_dims} noise entries${m.source_note ? "; " + m.source_note : ""}`;
  $("ex-report").hidden = !m.report;
  $("ex-report").href = `/api/report?model=${m.id}`;
  $("ex-project-box").hidden = !m.projects;
  $("ex-target-figure").hidden = true;
  $("ex-project-status").textContent = "";
  $("ex-project").value = "";
  exBuildControls();
  exRefresh();
}

function exBuildControls() {
  const box = $("ex-controls");
  box.replaceChildren();
  for (const control of ex.model.controls) {
    if (control.type === "image") continue;  // input images come from the run's data (the pairs panel)
    const key = `c.${control.name}`, label = document.createElement("label");
    label.textContent = `${control.label} `;
    let input;
    if (control.type === "class" || control.type === "choice") {
      input = document.createElement("select");
      const options = control.type === "class" ? control.options : [...Array(control.count).keys()].map(String);
      setOptions(input, options.map((o, i) => [i, o]));
    } else if (control.type === "range" || control.type === "setting") {
      input = document.createElement("input");
      Object.assign(input, {type: "range", min: control.min, max: control.max, step: 0.05});
    } else {
      input = document.createElement("input");
      Object.assign(input, {type: "text", maxLength: control.max_length, size: 40, placeholder: "type a caption, press Enter"});
    }
    input.dataset.control = key;
    input.value = ex.params.get(key) ?? control.default;
    if (!ex.params.has(key) && control.type !== "text") ex.params.set(key, input.value);
    const shown = document.createElement("span");
    if (control.type === "range" || control.type === "setting") shown.textContent = ` ${input.value}`;
    input.addEventListener(control.type === "text" ? "change" : "input", () => {
      if (control.type === "text" && !input.value.trim()) ex.params.delete(key); else ex.params.set(key, input.value);
      if (shown.textContent) shown.textContent = ` ${input.value}`;
      exRefresh();
    });
    label.append(input, shown);
    box.append(label);
  }
}

function ready() {  // a text-to-image G draws nothing until it has a caption
  return ex.model.controls.every((c) => c.type !== "text" || (ex.params.get(`c.${c.name}`) || "").trim());
}

function setImage(img, link, url) {
  img.src = url; if (link) link.href = url;
}

function takesImages() { return ex.model.controls.some((c) => c.type === "image"); }

async function exRefresh() {
  exSave();
  const pairs = takesImages();  // an image-conditioned G: input | output | target on its data, nothing else
  for (const id of ["ex-seeds", "ex-sample-panel", "ex-tools"]) $(id).hidden = pairs;
  $("ex-pairs-panel").hidden = !pairs;
  if (pairs) {
    const start = Number(ex.params.get("start") || 0);
    $("ex-pairs-page").textContent = `${start}..${start + 7}`;
    setImage($("ex-pairs"), $("ex-pairs-download"), `/api/pairs.png?${exQuery({start, count: 8})}`);
    return;
  }
  const point = exPoint();
  $("ex-point").textContent = pointLabel(point);
  const page = Number(ex.params.get("seed") || 0);
  $("ex-page").textContent = `${page}..${page + 15}`;
  if (!ready()) { status("type a caption to draw from this generator"); return; }
  status("");
  setImage($("ex-image"), null, `/api/image.png?${exQuery({point})}`);
  $("ex-download").href = `/api/image.png?${exQuery({point, size: 256})}`;
  const stages = $("ex-stages");  // the earlier stages of a staged G (StackGAN's Stage-I) beside the last
  stages.replaceChildren();
  ex.model.stages.slice(0, -1).forEach((name, i) => {
    const figure = document.createElement("figure"), img = document.createElement("img");
    img.className = "stage"; img.alt = name; img.src = `/api/image.png?${exQuery({point, stage: i})}`;
    figure.append(img, Object.assign(document.createElement("figcaption"), {textContent: name}));
    stages.append(figure);
  });
  const plane = $("ex-plane");
  plane.replaceChildren();
  $("ex-plane-download").href = `/api/plane.png?${exQuery({seed: page, count: 16, columns: 8})}`;
  const images = ex.model.kind === "images";  // a points generator shows 2,000 samples of the seed, nothing else
  for (const id of ["ex-plane-download", "ex-sliders", "ex-tools"]) $(id).hidden = !images;
  if (ex.model.kind === "images") {
    for (let k = 0; k < 16; k++) {
      const img = document.createElement("img");
      img.src = `/api/image.png?${exQuery({point: String(page + k)})}`;
      img.alt = img.title = `seed ${page + k}`;
      if (pointSeed(point) === page + k) img.className = "chosen";
      img.onclick = () => { ex.params.set("point", String(page + k)); exRefresh(); };
      plane.append(img);
    }
  }
  if (!images) return;
  await exSliders(point);
  exStrip();
  exArithmetic();
}

async function exSliders(point) {
  const data = await api(`/api/latent?${exQuery({point})}`);
  const box = $("ex-sliders"), edits = pointEdits(point);
  box.replaceChildren();
  data.z.forEach((value, i) => {
    const row = document.createElement("div");
    const slider = Object.assign(document.createElement("input"), {type: "range", min: -3, max: 3, step: 0.01, value});
    const exact = Object.assign(document.createElement("input"), {type: "number", min: -10, max: 10, step: "any", value});
    slider.dataset.dim = exact.dataset.dim = i;
    const apply = (v) => {
      edits[i] = Number(v);
      ex.params.set("point", makePoint(pointSeed(point), edits));
      exRefresh();
    };
    slider.onchange = () => apply(slider.value);
    slider.oninput = () => { exact.value = slider.value; };
    exact.onchange = () => apply(exact.value);
    const name = Object.assign(document.createElement("span"), {className: "dim", textContent: `z${i}${i in edits ? "*" : ""}`});
    row.append(name, slider, exact);
    box.append(row);
  });
}

function exStrip() {
  const a = ex.params.get("a"), b = ex.params.get("b");
  $("ex-a").textContent = a ? pointLabel(a) : "(choose a sample, press 'start of strip')";
  $("ex-b").textContent = b ? pointLabel(b) : "(then one for 'end of strip')";
  if (a && b && ex.model.kind === "images") {
    const steps = ex.params.get("steps") || "9", mode = ex.params.get("mode") || "slerp";
    $("ex-steps").value = steps; $("ex-mode").value = mode;
    setImage($("ex-strip"), $("ex-strip-download"), `/api/interpolate.png?${exQuery({a, b, steps, mode})}`);
  } else $("ex-strip").removeAttribute("src");
}

function exArithmetic() {
  const concepts = Object.fromEntries(["A", "B", "C"].map((k) => [k, ex.params.get(k) || ""]));
  for (const k of ["A", "B", "C"]) {
    $(`ex-${k}`).textContent = concepts[k] ? concepts[k].split(",").map(pointLabel).join(", ") : "(empty)";
  }
  if (concepts.A && concepts.B && concepts.C && ex.model.kind === "images") {
    setImage($("ex-arithmetic"), $("ex-arithmetic-download"), `/api/arithmetic.png?${exQuery(concepts)}`);
  } else $("ex-arithmetic").removeAttribute("src");
}

function exWire() {
  $("ex-model").onchange = (event) => exSelect(event.target.value, true);
  $("ex-prev").onclick = () => { ex.params.set("seed", Math.max(0, Number(ex.params.get("seed") || 0) - 16)); exRefresh(); };
  $("ex-next").onclick = () => { ex.params.set("seed", Number(ex.params.get("seed") || 0) + 16); exRefresh(); };
  $("ex-pairs-prev").onclick = () => { ex.params.set("start", Math.max(0, Number(ex.params.get("start") || 0) - 8)); exRefresh(); };
  $("ex-pairs-next").onclick = () => { ex.params.set("start", Number(ex.params.get("start") || 0) + 8); exRefresh(); };
  $("ex-reset-z").onclick = () => { ex.params.set("point", String(pointSeed(exPoint()))); exRefresh(); };
  $("ex-set-a").onclick = () => { ex.params.set("a", exPoint()); exRefresh(); };
  $("ex-set-b").onclick = () => { ex.params.set("b", exPoint()); exRefresh(); };
  $("ex-mode").onchange = (event) => { ex.params.set("mode", event.target.value); exRefresh(); };
  $("ex-steps").onchange = (event) => { ex.params.set("steps", event.target.value); exRefresh(); };
  for (const button of document.querySelectorAll("[data-concept]")) {
    button.onclick = () => {
      const k = button.dataset.concept, list = (ex.params.get(k) || "").split(",").filter(Boolean);
      if (list.length < 16) list.push(exPoint());
      ex.params.set(k, list.join(",")); exRefresh();
    };
  }
  $("ex-project").onchange = (event) => { if (event.target.files[0]) exProject(event.target.files[0]); };
  $("ex-clear-concepts").onclick = () => { ["A", "B", "C"].forEach((k) => ex.params.delete(k)); exRefresh(); };
  for (const img of [$("ex-image"), $("ex-strip"), $("ex-arithmetic"), $("ex-pairs")]) {
    img.onerror = async () => {  // show the server's message instead of a broken image
      if (!img.getAttribute("src")) return;
      try { await api(img.getAttribute("src")); } catch (error) { status(error.message); }
    };
  }
}

// ---------------------------------------------------------------------------------------------- tabs
let started = {};
async function show(reload) {  // reload: the URL's state replaces the view's (a hash typed or pasted into the tab)
  const {view, params} = hashState();
  const name = view === "explorer" ? "explorer" : "playground";
  for (const id of ["playground", "explorer"]) {
    $(id).hidden = id !== name;
    $(`tab-${id}`).classList.toggle("active", id === name);
  }
  if (!started[name] || reload) {
    started[name] = true;
    try { await (name === "playground" ? pgInit(params) : exInit(params)); } catch (error) { status(error.message); }
  }
}
pgWire();
exWire();
// The page rewrites its own hash with replaceState (no event): a hashchange is a person's (a link, a typed or pasted
// URL, back / forward). A bare "#explorer" switches tabs and keeps each view's state; a hash with a state loads it.
window.addEventListener("hashchange", () => show(location.hash.includes("?")));
show();
