// arraydaemon live view: plain JavaScript and Canvas, served by `arraydaemon web`, nothing fetched
// from elsewhere. Messages arrive over the WebSocket /ws as JSON arrays of messages: the daemon's
// wire payloads (see arraydaemon/io/wire.py) plus `topic` and `web_time`, and a `web` status
// message once a second (arraydaemon/web/feed.py).
//
// For tests and tools: every confirmed track is an <li class="track"> with data-track-id and
// data-azimuth (degrees, as published); #health-state carries data-health-state; #nodata shows when
// nothing has arrived for 2 s (the tracks are then removed). window.arraydaemonView exposes the state.
//
// From `arraydaemon fuse` (or `arraydaemon web --room`), the `room` and `positions` topics: the page
// switches to the room view (body.room-mode). Every fused position is an <li class="position"> with
// data-position-id, data-x, data-y (metres, room frame) and data-arrays (the arrays that fused it,
// comma-separated); every array of the room an <li class="room-array"> with data-array-name and
// data-state; view.room, view.positions, view.bearings and view.trails hold what the room view draws.
"use strict";

(() => {
  const STALE_MS = 2000; // nothing for this long: "no data", tracks removed
  const HISTORY_MS = 30000; // the timeline's span
  const RAW_FADE_MS = 1500; // raw detections fade out over this
  const RAW_MAX = 6000;
  const LIST_MS = 250; // the track list's text is refreshed at most this often
  const LATENCY_KEEP = 8192;
  const RETRY_MS = [250, 2000]; // reconnect: first and longest wait
  const TRAIL_MS = 10000; // a fused position's trail
  const $ = (id) => document.getElementById(id);

  const view = {
    tracks: new Map(), // id -> the track as last published (only while fresh)
    elements: new Map(), // id -> its <li>
    history: new Map(), // "stream:id" -> {id, points: [[ms, azimuth, activity]]}
    raw: [], // [ms, azimuth, elevation, confidence] of each detection, oldest first
    health: null,
    array: null,
    geometry: null,
    ambiguity: "",
    web: null,
    room: null, // the latest room message (size, arrays, landmarks)
    positions: new Map(), // id -> the position as last published (only while fresh)
    positionElements: new Map(), // id -> its <li>
    bearings: [], // the latest positions message's single-array bearings
    arrayStates: [],
    trails: new Map(), // id -> [[ms, x, y]] of the last TRAIL_MS
    lastPositions: 0,
    lastPositionsSeq: -1,
    roomMode: false,
    lastMessage: Date.now(),
    lastTracks: 0,
    lastSeq: -1,
    stream: 0, // increases when the publisher restarts (seq goes back)
    connections: 0,
    messages: 0,
    stale: false,
    // of each tracks message, ms: from the window's capture (wall_time) to this browser, and from
    // its arrival at the web server (web_time) to this browser (both need the clocks to agree)
    latency: new Float64Array(LATENCY_KEEP),
    hop: new Float64Array(LATENCY_KEEP),
    latencyCount: 0,
    latencySamples(which = "latency") {
      const ring = this[which];
      const n = Math.min(this.latencyCount, LATENCY_KEEP);
      const out = [];
      for (let i = this.latencyCount - n; i < this.latencyCount; i++) out.push(ring[i % LATENCY_KEEP]);
      return out;
    },
  };
  window.arraydaemonView = view;

  const hue = (id) => (id * 137.508) % 360;
  const colour = (id, alpha) => `hsla(${hue(id).toFixed(1)}, 78%, 60%, ${alpha})`;
  const signed = (x, digits = 0) => (x >= 0 ? "+" : "-") + Math.abs(x).toFixed(digits);
  const DEG = Math.PI / 180;

  // ------------------------------------------------------------------ connection

  let socket = null;
  let retry = RETRY_MS[0];

  function setConn(state, text) {
    const el = $("conn");
    el.dataset.conn = state;
    el.textContent = text;
  }

  function connect() {
    const url = new URL("ws", location.href);
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    setConn("connecting", "connecting…");
    const ws = new WebSocket(url);
    socket = ws;
    ws.onopen = () => {
      retry = RETRY_MS[0];
      view.connections += 1;
      setConn("open", "connected");
    };
    ws.onmessage = (event) => {
      let batch;
      try {
        batch = JSON.parse(event.data); // an array of messages
      } catch (err) {
        return;
      }
      if (!Array.isArray(batch)) return;
      for (const message of batch) if (message && typeof message === "object") onMessage(message);
    };
    ws.onclose = () => {
      if (socket !== ws) return;
      socket = null;
      setConn("closed", "reconnecting…");
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, RETRY_MS[1]);
    };
  }

  // ------------------------------------------------------------------ messages

  function onMessage(m) {
    const now = Date.now();
    switch (m.topic) {
      case "web":
        view.web = m;
        renderWebStatus();
        return; // about the web server, not the daemon
      case "doa":
        onDoa(m, now); // drawn with the window's tracks message, which follows it
        break;
      case "tracks":
        onTracks(m, now);
        requestDraw();
        break;
      case "health":
        onHealth(m);
        break;
      case "array":
        onArray(m);
        break;
      case "positions":
        onPositions(m, now);
        requestDraw();
        break;
      case "room":
        onRoom(m);
        break;
      default:
        return;
    }
    view.lastMessage = now;
    view.messages += 1;
    setStale(false);
  }

  // ------------------------------------------------------------------ the room (fuse)

  function setRoomMode() {
    if (view.roomMode) return;
    view.roomMode = true;
    document.body.classList.add("room-mode");
    $("room-panel").hidden = false;
    $("positions-panel").hidden = false;
  }

  function onRoom(m) {
    setRoomMode();
    const key = JSON.stringify([m.array, m.size, m.arrays, m.landmarks]);
    view.room = m;
    if (key !== view.roomKey) {
      view.roomKey = key;
      const size = m.size && m.size.length === 3 ? `${m.size.map((v) => v.toFixed(1)).join(" × ")} m` : "size not given";
      setText("room-name", `${m.array}: ${m.arrays.length} arrays, ${size}` +
        (m.landmarks.length ? `, landmarks ${m.landmarks.map((l) => l.name).join(", ")}` : ""));
      renderRoomArrays();
      requestDraw();
    }
  }

  function onPositions(m, now) {
    setRoomMode();
    if (typeof m.wall_time === "number" && typeof m.web_time === "number") {
      view.latency[view.latencyCount % LATENCY_KEEP] = now - m.wall_time * 1000;
      view.hop[view.latencyCount % LATENCY_KEEP] = now - m.web_time * 1000;
      view.latencyCount += 1;
    }
    if (m.seq < view.lastPositionsSeq) view.trails.clear(); // fuse restarted: ids begin again
    view.lastPositionsSeq = m.seq;
    view.lastPositions = now;
    view.positions.clear();
    for (const p of m.positions || []) {
      view.positions.set(p.id, p);
      let trail = view.trails.get(p.id);
      if (!trail) view.trails.set(p.id, (trail = []));
      trail.push([now, p.x, p.y]);
    }
    for (const [id, trail] of view.trails) {
      let cut = 0;
      while (cut < trail.length && now - trail[cut][0] > TRAIL_MS) cut++;
      if (cut) trail.splice(0, cut);
      if (!trail.length) view.trails.delete(id);
    }
    view.bearings = m.bearings || [];
    view.arrayStates = m.array_states || [];
    renderPositions(now);
    renderRoomArrays();
  }

  function renderPositions(now = Date.now()) {
    const list = $("positions");
    for (const [id, el] of view.positionElements) {
      if (!view.positions.has(id)) {
        el.remove();
        view.positionElements.delete(id);
      }
    }
    const ids = [...view.positions.keys()].sort((a, b) => a - b);
    for (const id of ids) {
      const p = view.positions.get(id);
      let el = view.positionElements.get(id);
      if (!el) {
        el = document.createElement("li");
        el.className = "position";
        el.dataset.positionId = String(id);
        el.style.color = colour(id, 1);
        el.innerHTML = '<span class="id"></span><span class="where"></span>';
        el.querySelector(".id").textContent = `#${id}`;
        const next = ids.find((other) => other > id && view.positionElements.has(other));
        list.insertBefore(el, next === undefined ? null : view.positionElements.get(next));
        view.positionElements.set(id, el);
      }
      el.dataset.x = String(p.x);
      el.dataset.y = String(p.y);
      el.dataset.arrays = p.fused_arrays.join(",");
      if (now - (el.shownAt || 0) < LIST_MS) continue;
      el.shownAt = now;
      const speed = Math.hypot(p.velocity[0], p.velocity[1]);
      setText(el.querySelector(".where"), `(${p.x.toFixed(2)}, ${p.y.toFixed(2)}) m ±${p.sigma_m.toFixed(2)}` +
        `${speed >= 0.2 ? ` · ${speed.toFixed(1)} m/s` : ""} · ` +
        (p.bearing_only ? `held on ${p.fused_arrays[0]}'s bearing` : p.fused_arrays.join(" + ")));
    }
    setHidden("positions-empty", ids.length > 0);
  }

  function renderRoomArrays() {
    const list = $("room-arrays");
    const arrays = view.room ? view.room.arrays.map((a) => a.name) : view.arrayStates.map((a) => a.name);
    const states = new Map(view.arrayStates.map((a) => [a.name, a]));
    while (list.children.length > arrays.length) list.lastChild.remove();
    arrays.forEach((name, i) => {
      let el = list.children[i];
      if (!el) {
        el = document.createElement("li");
        el.className = "room-array";
        list.appendChild(el);
      }
      const st = states.get(name);
      const state = st ? st.state : "waiting";
      if (el.dataset.arrayName !== name) el.dataset.arrayName = name;
      if (el.dataset.state !== state) el.dataset.state = state;
      const bearings = view.bearings.filter((b) => b.array === name).length;
      setText(el, `${name}: ${state}${st && st.state !== "up" && st.silent_s >= 0 ? ` (silent ${st.silent_s.toFixed(0)} s)` : ""}` +
        (bearings ? ` · ${bearings} bearing${bearings === 1 ? "" : "s"} only it has` : ""));
    });
  }

  function onDoa(m, now) {
    view.ambiguity = m.ambiguity || view.ambiguity;
    for (const s of m.sources || []) view.raw.push([now, s.azimuth_deg, s.elevation_deg, s.confidence]);
    if (view.raw.length > RAW_MAX) view.raw.splice(0, view.raw.length - RAW_MAX);
  }

  function onTracks(m, now) {
    if (typeof m.wall_time === "number" && typeof m.web_time === "number") {
      view.latency[view.latencyCount % LATENCY_KEEP] = now - m.wall_time * 1000;
      view.hop[view.latencyCount % LATENCY_KEEP] = now - m.web_time * 1000;
      view.latencyCount += 1;
    }
    if (m.seq < view.lastSeq) view.stream += 1; // a new stream: ids begin again
    view.lastSeq = m.seq;
    view.lastTracks = now;
    view.ambiguity = m.ambiguity || view.ambiguity;
    view.tracks.clear();
    for (const t of m.tracks || []) {
      view.tracks.set(t.id, t);
      const key = `${view.stream}:${t.id}`;
      let h = view.history.get(key);
      if (!h) view.history.set(key, (h = { id: t.id, points: [] }));
      h.points.push([now, t.azimuth_deg, t.activity]);
    }
    renderTracks(now);
  }

  function renderTracks(now = Date.now()) {
    const list = $("tracks");
    for (const [id, el] of view.elements) {
      if (!view.tracks.has(id)) {
        el.remove();
        view.elements.delete(id);
      }
    }
    const ids = [...view.tracks.keys()].sort((a, b) => a - b);
    for (const id of ids) {
      const t = view.tracks.get(id);
      let el = view.elements.get(id);
      if (!el) {
        el = document.createElement("li");
        el.className = "track";
        el.dataset.trackId = String(id);
        el.style.color = colour(id, 1);
        el.innerHTML = '<span class="swatch"></span><span class="id"></span><span class="dir"></span>' +
          '<span class="bar" title="activity"><i></i></span>';
        el.querySelector(".swatch").style.background = colour(id, 1);
        el.querySelector(".id").textContent = `#${id}`;
        const next = ids.find((other) => other > id && view.elements.has(other));
        list.insertBefore(el, next === undefined ? null : view.elements.get(next));
        view.elements.set(id, el);
      }
      el.dataset.azimuth = String(t.azimuth_deg);
      el.dataset.elevation = String(t.elevation_deg);
      el.dataset.activity = String(t.activity);
      // What is shown as text changes at most 4 times a second, and in visible steps: each change
      // costs the browser a layout and a repaint (the polar view shows every window).
      if (now - (el.shownAt || 0) < LIST_MS) continue;
      el.shownAt = now;
      const step = Math.round(t.activity * 10);
      if (el.activityStep !== step) {
        el.activityStep = step;
        el.style.opacity = String(0.35 + 0.065 * step);
        el.querySelector(".bar i").style.transform = `scaleX(${step / 10})`;
      }
      setText(el.querySelector(".dir"), `az ${signed(t.azimuth_deg)}°  el ${signed(t.elevation_deg)}°`);
    }
    setHidden("tracks-empty", ids.length > 0);
  }

  function setHidden(id, hidden) {
    const el = $(id);
    if (el.hidden !== hidden) el.hidden = hidden;
  }

  function setText(target, text, warn) {
    const el = typeof target === "string" ? $(target) : target;
    const node = el.firstChild;
    if (node && node === el.lastChild && node.nodeType === Node.TEXT_NODE) {
      if (node.data !== text) node.data = text; // cheaper than replacing the text node
    } else if (el.textContent !== text) {
      el.textContent = text;
    }
    if (warn !== undefined) el.classList.toggle("nonzero", warn);
  }

  function duration(s) {
    if (s < 120) return `${s.toFixed(0)} s`;
    if (s < 7200) return `${(s / 60).toFixed(0)} min`;
    return `${(s / 3600).toFixed(1)} h`;
  }

  function onHealth(m) {
    view.health = m;
    const state = $("health-state");
    if (state.dataset.healthState !== m.state) state.dataset.healthState = m.state;
    setText(state, m.state);
    setText("h-overflows", String(m.overflows), m.overflows > 0);
    setText("h-dropped", String(m.dropped_blocks), m.dropped_blocks > 0);
    setText("h-bad", String(m.bad_blocks), m.bad_blocks > 0);
    setText("h-queue", String(m.queue_depth));
    setText("h-cpu", `${m.cpu_percent.toFixed(0)} %`);
    setText("h-windows", String(m.windows));
    setText("h-uptime", duration(m.uptime_s));
    const body = $("stages").tBodies[0];
    const stages = Object.entries(m.stage_ms || {});
    while (body.rows.length > stages.length) body.deleteRow(-1);
    stages.forEach(([name, times], i) => {
      const row = body.rows[i] || body.insertRow();
      while (row.cells.length < 3) row.insertCell();
      setText(row.cells[0], name);
      setText(row.cells[1], Number(times.p50 || 0).toFixed(2));
      setText(row.cells[2], Number(times.p99 || 0).toFixed(2));
    });
    setHidden("exposed", !m.exposed);
    setText("array-name", `${m.array} · frame ${m.frame_id}`);
    renderLatency();
  }

  function onArray(m) {
    const key = JSON.stringify([m.array, m.mics, m.kind, m.ambiguity, m.sample_rate, m.estimator]);
    view.array = m;
    if (key === view.arrayKey) return;
    view.arrayKey = key;
    view.geometry = deriveGeometry(m);
    requestDraw();
    $("array-info").textContent = `${m.array}: ${m.kind}, ${m.mics.length} mics, aperture ` +
      `${(view.geometry.aperture * 100).toFixed(1)} cm, ${m.sample_rate} Hz, estimator ${m.estimator}`;
    $("ambiguity").textContent = view.geometry.note;
    drawGeometry();
  }

  function renderLatency() {
    const samples = view.latencySamples().slice(-300).sort((a, b) => a - b);
    if (!samples.length) return;
    const q = (p) => samples[Math.min(samples.length - 1, Math.floor(p * samples.length))];
    setText("latency", `capture → browser: p50 ${q(0.5).toFixed(0)} ms · p99 ${q(0.99).toFixed(0)} ms`);
  }

  function renderWebStatus() {
    const w = view.web;
    const parts = [`feed from ${w.endpoint} via ${location.host}`, `${w.received} messages`];
    if (w.rejected) parts.push(`${w.rejected} malformed skipped (${w.last_error})`);
    if (w.dropped) parts.push(`${w.dropped} dropped for this browser (too slow)`);
    parts.push(`${w.clients} viewer${w.clients === 1 ? "" : "s"}`);
    setText("web-status", parts.join(" · "));
  }

  function setStale(stale) {
    if (stale === view.stale) return;
    view.stale = stale;
    $("nodata").hidden = !stale;
    document.body.classList.toggle("stale", stale);
    if (stale) {
      view.tracks.clear();
      renderTracks();
      view.positions.clear();
      view.bearings = [];
      renderPositions();
      const state = $("health-state");
      state.dataset.healthState = "";
      state.textContent = "no data";
    }
    requestDraw();
  }

  function tick() {
    const now = Date.now();
    if (now - view.lastMessage > STALE_MS) setStale(true);
    if (view.tracks.size && now - view.lastTracks > STALE_MS) {
      view.tracks.clear();
      renderTracks();
    }
    if ((view.positions.size || view.bearings.length) && now - view.lastPositions > STALE_MS) {
      view.positions.clear();
      view.bearings = [];
      renderPositions();
    }
    // fading dots and a scrolling timeline while no message comes to redraw them
    if (now - lastDraw >= 250 && (view.raw.length || view.history.size || view.trails.size)) requestDraw();
  }

  // ------------------------------------------------------------------ geometry

  const sub = (a, b) => [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
  const dot = (a, b) => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
  const cross = (a, b) => [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
  const norm = (a) => Math.sqrt(dot(a, a));
  const unit = (a) => {
    const n = norm(a) || 1;
    return [a[0] / n, a[1] / n, a[2] / n];
  };
  const reflect = (d, n) => {
    const k = 2 * dot(d, n);
    return [d[0] - k * n[0], d[1] - k * n[1], d[2] - k * n[2]];
  };

  // What the page draws of an array: aperture, whether elevations are only ever above the plane,
  // and the mirror image a direction cannot be told from (null: none that the polar view shows).
  function deriveGeometry(a) {
    const mics = a.mics;
    const c = [0, 1, 2].map((k) => mics.reduce((s, p) => s + p[k], 0) / mics.length);
    let aperture = 0;
    let far = [mics[0], mics[0]];
    for (const p of mics) for (const q of mics) if (norm(sub(p, q)) > aperture) [aperture, far] = [norm(sub(p, q)), [p, q]];
    const g = { aperture, centre: c, upperOnly: false, mirror: null, line: null, note: "" };
    if (a.kind === "linear") {
      const axis = unit(sub(far[1], far[0]));
      const side = cross(axis, [0, 0, 1]);
      g.line = axis;
      if (norm(side) < 0.1) {
        g.note = "vertical linear: no azimuth can be told from another";
      } else {
        const n = unit(side);
        g.mirror = (d) => reflect(d, n);
        g.note = "linear: front and back look alike; a source may be at the dashed mirror image across its axis";
      }
    } else if (a.kind === "planar") {
      let best = [0, 0, 1];
      let size = 0;
      for (const p of mics) {
        const n = cross(sub(far[0], c), sub(p, c));
        if (norm(n) > size) [size, best] = [norm(n), n];
      }
      const n = unit(best);
      if (Math.abs(n[2]) > 0.99) {
        g.upperOnly = true;
        g.note = "planar: up and down look alike; a source below the plane shows mirrored above it";
      } else {
        g.mirror = (d) => reflect(d, n);
        g.note = "planar: the two sides of its plane look alike; mirror images dashed";
      }
    } else {
      g.note = "3-D: no geometric ambiguity";
    }
    return g;
  }

  // ------------------------------------------------------------------ drawing
  //
  // Cheap enough for a small board's browser: the polar view is redrawn once per window (and the
  // timeline at most 4 times a second), only while messages arrive or something fades; the grids
  // and labels are drawn once per size into an offscreen canvas and copied.

  const canvases = { polar: $("polar"), timeline: $("timeline"), geometry: $("geometry"), room: $("room") };
  const sizes = new Map();
  const backgrounds = new Map(); // canvas -> {key, image}
  const TIMELINE_MS = 250;
  let drawPending = false;
  let lastTimeline = 0;
  let lastDraw = 0;

  function requestDraw() {
    if (drawPending) return;
    drawPending = true;
    requestAnimationFrame(() => {
      drawPending = false;
      const now = Date.now();
      lastDraw = now;
      if (view.roomMode) {
        drawRoom(now);
        return;
      }
      drawPolar(now);
      if (now - lastTimeline >= TIMELINE_MS) {
        lastTimeline = now;
        drawTimeline(now);
      }
    });
  }

  function prepare(canvas) {
    const size = sizes.get(canvas) || { width: canvas.clientWidth, height: canvas.clientHeight };
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(size.width * dpr));
    const h = Math.max(1, Math.round(size.height * dpr));
    if (canvas.width !== w || canvas.height !== h) {
      canvas.width = w;
      canvas.height = h;
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, size.width, size.height);
    return [ctx, size.width, size.height];
  }

  // Copies the background of ``canvas`` (painted by ``paint(ctx, w, h)`` whenever ``key`` or the
  // size changes) into ``ctx``.
  function background(canvas, ctx, w, h, key, paint) {
    const dpr = window.devicePixelRatio || 1;
    const full = `${key}|${w}x${h}@${dpr}`;
    let bg = backgrounds.get(canvas);
    if (!bg || bg.key !== full) {
      const image = document.createElement("canvas");
      image.width = Math.max(1, Math.round(w * dpr));
      image.height = Math.max(1, Math.round(h * dpr));
      const bctx = image.getContext("2d");
      bctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      paint(bctx, w, h);
      backgrounds.set(canvas, (bg = { key: full, image }));
    }
    ctx.drawImage(bg.image, 0, 0, w, h);
  }

  const GRID = "#2f3944";
  const LABEL = "#8a96a3";

  function polarFrame(w, h) {
    const g = view.geometry;
    const upperOnly = g ? g.upperOnly : view.ambiguity === "up-down";
    const span = upperOnly ? 90 : 180;
    const cx = w / 2;
    const cy = h / 2;
    const R = Math.max(20, Math.min(w, h) / 2 - 40);
    const at = (az, el) => {
      const r = (R * Math.min(span, Math.max(0, 90 - el))) / span;
      return [cx - r * Math.sin(az * DEG), cy - r * Math.cos(az * DEG)];
    };
    return { g, upperOnly, span, cx, cy, R, at };
  }

  function paintPolarGrid(ctx, w, h) {
    const { upperOnly, span, cx, cy, R, at } = polarFrame(w, h);
    ctx.lineWidth = 1;
    ctx.strokeStyle = GRID;
    ctx.fillStyle = LABEL;
    ctx.font = "11px system-ui, sans-serif";
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    const rings = upperOnly ? [0, 30, 60] : [-60, -30, 0, 30, 60];
    for (const el of rings) {
      const r = (R * (90 - el)) / span;
      ctx.beginPath();
      ctx.arc(cx, cy, r, 0, 2 * Math.PI);
      ctx.lineWidth = el === 0 ? 1.5 : 1;
      ctx.stroke();
      const label = upperOnly ? el !== 0 : Math.abs(el) !== 30; // the horizon is the rim, or the bold ring
      if (label) ctx.fillText(el === 0 ? "0° horizon" : `${signed(el)}°`, cx + 3 + r * Math.sin(20 * DEG), cy - r * Math.cos(20 * DEG));
    }
    ctx.lineWidth = 1;
    const names = { 0: "0° front", 90: "+90° left", 180: "180° back", "-90": "-90° right" };
    for (let az = -150; az <= 180; az += 30) {
      const [x, y] = at(az, 90 - span);
      ctx.beginPath();
      ctx.moveTo(cx, cy);
      ctx.lineTo(x, y);
      ctx.stroke();
      const [lx, ly] = [cx - (R + 8) * Math.sin(az * DEG), cy - (R + 10) * Math.cos(az * DEG)];
      ctx.textAlign = Math.abs(Math.sin(az * DEG)) < 0.1 ? "center" : az > 0 ? "right" : "left";
      const text = names[az] || `${signed(az)}°`;
      if (Math.abs(az) === 90) {
        const [degrees, side] = text.split(" "); // two lines beside the circle
        ctx.fillText(degrees, lx, ly - 7);
        ctx.fillText(side, lx, ly + 7);
      } else {
        ctx.fillText(text, lx, ly);
      }
    }
  }

  function drawPolar(now) {
    const [ctx, w, h] = prepare(canvases.polar);
    const { g, upperOnly, cx, cy, at } = polarFrame(w, h);
    background(canvases.polar, ctx, w, h, upperOnly ? "upper" : "sphere", paintPolarGrid);
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    if (view.stale) {
      ctx.fillStyle = "#f85149";
      ctx.font = "600 18px system-ui, sans-serif";
      ctx.fillText("no data", cx, cy);
      return;
    }
    // raw detections, fading
    for (let i = view.raw.length - 1; i >= 0; i--) {
      const [t, az, el, conf] = view.raw[i];
      const age = now - t;
      if (age > RAW_FADE_MS) break;
      const [x, y] = at(az, el);
      ctx.globalAlpha = (1 - age / RAW_FADE_MS) * (0.25 + 0.6 * conf);
      ctx.fillStyle = "rgb(190, 200, 210)";
      ctx.beginPath();
      ctx.arc(x, y, 3.5, 0, 2 * Math.PI);
      ctx.fill();
    }
    ctx.globalAlpha = 1;
    // tracks, with the mirror image the geometry cannot tell them from
    ctx.font = "600 13px system-ui, sans-serif";
    ctx.textAlign = "left";
    for (const t of view.tracks.values()) {
      const alpha = 0.25 + 0.75 * t.activity;
      if (g && g.mirror) {
        const m = g.mirror([t.x, t.y, t.z]);
        const maz = Math.atan2(m[1], m[0]) / DEG;
        const mel = Math.asin(Math.max(-1, Math.min(1, m[2]))) / DEG;
        if (Math.acos(Math.max(-1, Math.min(1, dot(m, [t.x, t.y, t.z])))) > 3 * DEG) {
          const [gx, gy] = at(maz, upperOnly ? Math.abs(mel) : mel);
          ctx.setLineDash([3, 3]);
          ctx.strokeStyle = colour(t.id, (alpha * 0.7).toFixed(2));
          ctx.beginPath();
          ctx.arc(gx, gy, 8, 0, 2 * Math.PI);
          ctx.stroke();
          ctx.setLineDash([]);
          ctx.fillStyle = colour(t.id, (alpha * 0.6).toFixed(2));
          ctx.fillText(`#${t.id}?`, gx + 11, gy);
        }
      }
      const [x, y] = at(t.azimuth_deg, t.elevation_deg);
      ctx.strokeStyle = colour(t.id, (alpha * 0.5).toFixed(2));
      ctx.beginPath();
      ctx.moveTo(cx, cy);
      ctx.lineTo(x, y);
      ctx.stroke();
      ctx.fillStyle = colour(t.id, alpha.toFixed(2));
      ctx.beginPath();
      ctx.arc(x, y, 9, 0, 2 * Math.PI);
      ctx.fill();
      ctx.fillText(`#${t.id}`, x + 13, y);
    }
  }

  const TL = { left: 44, right: 34, top: 6, bottom: 18 };

  function timelineFrame(w, h) {
    const pw = Math.max(10, w - TL.left - TL.right);
    const ph = Math.max(10, h - TL.top - TL.bottom);
    return { pw, ph, Y: (az) => TL.top + ((180 - az) / 360) * ph };
  }

  function paintTimelineGrid(ctx, w, h) {
    const { pw, ph, Y } = timelineFrame(w, h);
    ctx.strokeStyle = GRID;
    ctx.fillStyle = LABEL;
    ctx.font = "11px system-ui, sans-serif";
    ctx.lineWidth = 1;
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (const az of [180, 90, 0, -90, -180]) {
      ctx.beginPath();
      ctx.moveTo(TL.left, Y(az));
      ctx.lineTo(TL.left + pw, Y(az));
      ctx.stroke();
      ctx.fillText(`${signed(az)}°`, TL.left - 5, Y(az));
    }
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    for (let s = 0; s <= 30; s += 5) {
      ctx.fillText(s ? `-${s} s` : "now", TL.left + ((HISTORY_MS - s * 1000) / HISTORY_MS) * pw, TL.top + ph + 4);
    }
  }

  function drawTimeline(now) {
    const [ctx, w, h] = prepare(canvases.timeline);
    background(canvases.timeline, ctx, w, h, "timeline", paintTimelineGrid);
    const { pw, Y } = timelineFrame(w, h);
    const from = now - HISTORY_MS;
    const X = (t) => TL.left + ((t - from) / HISTORY_MS) * pw;
    // raw detections
    let first = 0;
    while (first < view.raw.length && view.raw[first][0] < from) first++;
    if (first) view.raw.splice(0, first);
    ctx.fillStyle = "rgba(190, 200, 210, 0.35)";
    for (const [t, az] of view.raw) ctx.fillRect(X(t) - 1, Y(az) - 1, 2, 2);
    // tracks
    ctx.lineWidth = 2;
    ctx.textAlign = "left";
    ctx.textBaseline = "middle";
    ctx.font = "600 12px system-ui, sans-serif";
    for (const [key, hist] of view.history) {
      const pts = hist.points;
      let cut = 0;
      while (cut < pts.length && pts[cut][0] < from) cut++;
      if (cut) pts.splice(0, cut);
      if (!pts.length) {
        view.history.delete(key);
        continue;
      }
      ctx.strokeStyle = colour(hist.id, 0.9);
      ctx.beginPath();
      for (let i = 0; i < pts.length; i++) {
        const [t, az] = pts[i];
        const jump = i === 0 || t - pts[i - 1][0] > 1000 || Math.abs(az - pts[i - 1][1]) > 180;
        if (jump) ctx.moveTo(X(t), Y(az));
        else ctx.lineTo(X(t), Y(az));
      }
      ctx.stroke();
      const [t, az] = pts[pts.length - 1];
      if (now - t < STALE_MS) {
        ctx.fillStyle = colour(hist.id, 1);
        ctx.fillText(`#${hist.id}`, X(t) + 4, Y(az));
      }
    }
  }

  function drawGeometry() {
    const [ctx, w, h] = prepare(canvases.geometry);
    const a = view.array;
    const g = view.geometry;
    if (!a || !g) return;
    const c = g.centre;
    let extent = 0;
    for (const p of a.mics) extent = Math.max(extent, Math.hypot(p[0] - c[0], p[1] - c[1]));
    const cx = w / 2;
    const cy = h / 2;
    const scale = (Math.min(w, h) / 2 - 22) / Math.max(extent, 1e-3);
    const at = (p) => [cx - (p[1] - c[1]) * scale, cy - (p[0] - c[0]) * scale]; // x up, y left
    ctx.strokeStyle = GRID;
    ctx.fillStyle = LABEL;
    ctx.lineWidth = 1;
    ctx.font = "11px system-ui, sans-serif";
    // the array frame's axes, in a corner: x forward (up), y left
    const [ox, oy] = [34, h - 10];
    ctx.beginPath();
    ctx.moveTo(ox, oy);
    ctx.lineTo(ox, oy - 26);
    ctx.moveTo(ox, oy);
    ctx.lineTo(ox - 26, oy);
    ctx.stroke();
    ctx.textAlign = "center";
    ctx.textBaseline = "bottom";
    ctx.fillText("x", ox, oy - 27);
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    ctx.fillText("y", ox - 28, oy);
    ctx.strokeStyle = GRID;
    ctx.beginPath();
    ctx.arc(cx, cy, 2, 0, 2 * Math.PI);
    ctx.stroke();
    if (g.line) {
      // the linear array's axis: front and back mirror across it
      ctx.setLineDash([4, 4]);
      ctx.strokeStyle = "#d29922";
      ctx.beginPath();
      const L = Math.max(w, h);
      ctx.moveTo(cx + g.line[1] * L, cy + g.line[0] * L);
      ctx.lineTo(cx - g.line[1] * L, cy - g.line[0] * L);
      ctx.stroke();
      ctx.setLineDash([]);
    }
    const zs = a.mics.map((p) => p[2]);
    const zmin = Math.min(...zs);
    const zspan = Math.max(...zs) - zmin;
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    a.mics.forEach((p, i) => {
      const [x, y] = at(p);
      const light = zspan > 1e-4 ? 35 + (40 * (p[2] - zmin)) / zspan : 60;
      ctx.fillStyle = `hsl(200, 70%, ${light.toFixed(0)}%)`;
      ctx.beginPath();
      ctx.arc(x, y, 8, 0, 2 * Math.PI);
      ctx.fill();
      ctx.fillStyle = "#0b0f13";
      ctx.font = "600 10px system-ui, sans-serif";
      ctx.fillText(String(i), x, y + 0.5);
    });
    if (zspan > 1e-4) {
      ctx.fillStyle = LABEL;
      ctx.font = "11px system-ui, sans-serif";
      ctx.textAlign = "right";
      ctx.textBaseline = "bottom";
      ctx.fillText(`lighter = higher (z ${(zmin * 100).toFixed(1)}…${((zmin + zspan) * 100).toFixed(1)} cm)`, w - 2, h - 2);
    }
  }

  // The room from above: x to the right, y up, metres; the floor area is the room's size, or the
  // box around the arrays (and what was placed) grown by 1 m.
  function roomFrame(w, h) {
    const r = view.room;
    let lo = [0, 0];
    let hi = [1, 1];
    if (r && r.size && r.size.length === 3) {
      hi = [r.size[0], r.size[1]];
    } else {
      const pts = [];
      if (r) for (const a of r.arrays) pts.push(a.position);
      for (const b of view.bearings) pts.push(b.array_position);
      for (const p of view.positions.values()) pts.push([p.x, p.y]);
      if (pts.length) {
        lo = [Math.min(...pts.map((p) => p[0])) - 1, Math.min(...pts.map((p) => p[1])) - 1];
        hi = [Math.max(...pts.map((p) => p[0])) + 1, Math.max(...pts.map((p) => p[1])) + 1];
      }
    }
    const pad = 28;
    const scale = Math.max(1e-3, Math.min((w - 2 * pad) / Math.max(hi[0] - lo[0], 0.1), (h - 2 * pad) / Math.max(hi[1] - lo[1], 0.1)));
    const ox = (w - scale * (hi[0] - lo[0])) / 2;
    const oy = (h - scale * (hi[1] - lo[1])) / 2;
    const at = (x, y) => [ox + (x - lo[0]) * scale, h - oy - (y - lo[1]) * scale];
    return { lo, hi, scale, at };
  }

  // Where a ray from (x, y) along (dx, dy) leaves the box lo..hi (its length, metres).
  function rayLength(x, y, dx, dy, lo, hi) {
    let t = Infinity;
    for (const [p, d, a, b] of [[x, dx, lo[0], hi[0]], [y, dy, lo[1], hi[1]]]) {
      if (d > 1e-9) t = Math.min(t, (b - p) / d);
      else if (d < -1e-9) t = Math.min(t, (a - p) / d);
    }
    return Number.isFinite(t) && t > 0 ? t : 0;
  }

  function drawRoom(now) {
    const [ctx, w, h] = prepare(canvases.room);
    const { lo, hi, scale, at } = roomFrame(w, h);
    const r = view.room;
    // the floor, a 1 m grid
    ctx.lineWidth = 1;
    ctx.strokeStyle = GRID;
    ctx.fillStyle = LABEL;
    ctx.font = "11px system-ui, sans-serif";
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    for (let x = Math.ceil(lo[0]); x <= hi[0] + 1e-9; x++) {
      const [px, py0] = at(x, lo[1]);
      const [, py1] = at(x, hi[1]);
      ctx.beginPath();
      ctx.moveTo(px, py0);
      ctx.lineTo(px, py1);
      ctx.stroke();
      ctx.fillText(`${x}`, px, py0 + 3);
    }
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (let y = Math.ceil(lo[1]); y <= hi[1] + 1e-9; y++) {
      const [px0, py] = at(lo[0], y);
      const [px1] = at(hi[0], y);
      ctx.beginPath();
      ctx.moveTo(px0, py);
      ctx.lineTo(px1, py);
      ctx.stroke();
      ctx.fillText(`${y}`, px0 - 4, py);
    }
    if (r && r.size && r.size.length === 3) {
      const [x0, y0] = at(0, 0);
      ctx.strokeStyle = "#8a96a3";
      ctx.lineWidth = 2;
      ctx.strokeRect(x0, y0 - r.size[1] * scale, r.size[0] * scale, r.size[1] * scale);
    }
    if (view.stale) {
      ctx.fillStyle = "#f85149";
      ctx.font = "600 18px system-ui, sans-serif";
      ctx.textAlign = "center";
      ctx.fillText("no data", w / 2, h / 2);
    }
    // landmarks
    ctx.font = "12px system-ui, sans-serif";
    ctx.textAlign = "left";
    ctx.textBaseline = "middle";
    for (const l of (r && r.landmarks) || []) {
      const [x, y] = at(l.position[0], l.position[1]);
      ctx.fillStyle = "#d29922";
      ctx.beginPath();
      ctx.moveTo(x, y - 6);
      ctx.lineTo(x + 6, y);
      ctx.lineTo(x, y + 6);
      ctx.lineTo(x - 6, y);
      ctx.closePath();
      ctx.fill();
      ctx.fillText(l.name, x + 9, y);
    }
    // bearings only one array has: a ray to the floor area's edge
    if (!view.stale) {
      ctx.lineWidth = 1.5;
      for (const b of view.bearings) {
        const [x0, y0] = b.array_position;
        const [dx, dy] = b.direction;
        const n = Math.hypot(dx, dy);
        if (n < 1e-6) continue;
        const len = rayLength(x0, y0, dx / n, dy / n, lo, hi);
        const [ax, ay] = at(x0, y0);
        const [bx, by] = at(x0 + (dx / n) * len, y0 + (dy / n) * len);
        ctx.strokeStyle = "rgba(154, 166, 178, 0.55)";
        ctx.setLineDash(b.ambiguity === "none" ? [] : [6, 4]);
        ctx.beginPath();
        ctx.moveTo(ax, ay);
        ctx.lineTo(bx, by);
        ctx.stroke();
      }
      ctx.setLineDash([]);
    }
    // arrays at their poses
    const states = new Map(view.arrayStates.map((a) => [a.name, a.state]));
    for (const a of (r && r.arrays) || []) {
      const [x, y] = at(a.position[0], a.position[1]);
      const yaw = a.yaw_deg * DEG;
      const state = states.get(a.name) || "waiting";
      ctx.fillStyle = state === "up" ? "#58a6ff" : "#6e7681";
      ctx.strokeStyle = ctx.fillStyle;
      ctx.save();
      ctx.translate(x, y);
      ctx.rotate(-yaw);
      ctx.beginPath();
      ctx.moveTo(12, 0);
      ctx.lineTo(-7, -7);
      ctx.lineTo(-7, 7);
      ctx.closePath();
      ctx.fill();
      ctx.restore();
      ctx.fillStyle = state === "down" ? "#f85149" : LABEL;
      ctx.font = "11px system-ui, sans-serif";
      ctx.fillText(`${a.name}${state === "up" ? "" : ` (${state})`}`, x + 12, y + 12);
    }
    // fused positions: trail, 1-sigma circle, dot, id
    for (const [id, trail] of view.trails) {
      if (trail.length < 2) continue;
      ctx.strokeStyle = colour(id, 0.5);
      ctx.lineWidth = 2;
      ctx.beginPath();
      trail.forEach(([, tx, ty], i) => {
        const [px, py] = at(tx, ty);
        if (i === 0) ctx.moveTo(px, py);
        else ctx.lineTo(px, py);
      });
      ctx.stroke();
    }
    ctx.font = "600 13px system-ui, sans-serif";
    for (const p of view.positions.values()) {
      const [x, y] = at(p.x, p.y);
      ctx.strokeStyle = colour(p.id, 0.6);
      ctx.lineWidth = 1;
      ctx.beginPath();
      ctx.arc(x, y, Math.max(4, p.sigma_m * scale), 0, 2 * Math.PI);
      ctx.stroke();
      ctx.fillStyle = colour(p.id, 1);
      ctx.beginPath();
      ctx.arc(x, y, 7, 0, 2 * Math.PI);
      ctx.fill();
      ctx.fillText(`#${p.id}`, x + 10, y - 10);
    }
  }

  // The canvas point (CSS pixels) of room point (x, y), as last drawn (for tests and tools).
  view.roomPoint = (x, y) => {
    const c = canvases.room;
    const size = sizes.get(c) || { width: c.clientWidth, height: c.clientHeight };
    return roomFrame(size.width, size.height).at(x, y);
  };

  // ------------------------------------------------------------------ start

  const observer = new ResizeObserver((entries) => {
    for (const e of entries) sizes.set(e.target, { width: e.contentRect.width, height: e.contentRect.height });
    requestDraw();
    if (view.array) drawGeometry();
  });
  Object.values(canvases).forEach((c) => observer.observe(c));
  setInterval(tick, 250);
  connect();
})();
