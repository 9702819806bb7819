// Runs as a gr.HTML component's js_on_load (arguments: element, trigger, props, server,
// upload, watch). Lays an image over the drawing pad whose elem_id is props.pad, blended
// with `multiply`: white leaves the pad as it is, dark strokes stay dark, so the image
// looks as if it were under the strokes. It never enters the editor, so it is never sent
// back as part of the drawing and never replaces strokes. The pad shows a props.side px
// canvas, centred at the zoom its toolbar displays; pan and zoom are hidden so the two
// stay aligned.
//
// The image is props.value, a PNG data URL ("" for none), except with props.route (the
// shadow): then, when a stroke ends (and when the Shadow box, k, or the pins and drops
// change), the pad as props.read_side px grey bytes (a copy kept here, see below) is
// posted to the route, which answers the shadow PNG (204: empty pad). Only the newest
// request's answer is shown; the Shadow box hides it at once and the strength slider is
// its CSS opacity. While the route fails, props.value (the shadow from Gradio's slower
// event path) is shown instead. props.brush: the pen's width on the props.side px pad.
//
// The route's shadow is fetched and painted by a worker into a canvas handed to it
// (OffscreenCanvas): when a stroke ends the editor keeps the page's main thread busy for
// a second or more (rendering, then reading its layers back to upload them), and an <img>
// could only change after that. The worker's canvas shows without the main thread.
// window.s2aOverlay.src(pad): the image the pad's overlay shows now (a URL), or null.
const padId = props.pad;
const side = props.side || 512;
const route = props.route || "";
const readSide = props.read_side || 128;
window.s2aOverlay = window.s2aOverlay ||
  { strokeEnd: {}, latency: {}, phases: {}, sources: {}, src: (pad) => null };
const timing = window.s2aOverlay;
timing.src = (pad) => (timing.sources[pad] ? timing.sources[pad]() : null);
timing.latency[padId] = timing.latency[padId] || [];
// Per shadow shown after a stroke, ms after the stroke ended (the pointer's release, its
// event's time stamp): release handled by this page, pad read, route answered (of that,
// the route's own work), image shown (where the time goes).
timing.phases[padId] = timing.phases[padId] || [];
let phase = {};

if (!document.getElementById("s2a-overlay-style")) {
  const style = document.createElement("style");
  style.id = "s2a-overlay-style";
  const pads = ["#sketch-pad", "#hint-pad"];
  const hidden = ['button[aria-label="Pan"]', 'button[aria-label="Zoom in"]',
                  'button[aria-label="Zoom out"]', ".zoom-number"];
  style.textContent =
    ".s2a-overlay { position: absolute; pointer-events: none; mix-blend-mode: multiply;" +
    " z-index: 2; margin: 0; padding: 0; border: 0; max-width: none; }\n" +
    pads.flatMap((pad) => hidden.map((h) => pad + " " + h)).join(", ") +
    " { display: none !important; }\n" +
    // The two pads share one place; the tabs above only say which one is on top. The
    // other stays mounted and laid out (its drawing engine ready), but unseen.
    "#pads { display: grid !important; }\n" +
    "#pads > #sketch-column, #pads > #hint-column { grid-area: 1 / 1; min-width: 0; }\n" +
    "#hint-column, body[data-s2a-pad=hints] #sketch-column" +
    " { opacity: 0; pointer-events: none; z-index: 0; }\n" +
    "body[data-s2a-pad=hints] #hint-column { opacity: 1; pointer-events: auto; z-index: 1; }\n" +
    ".pad-help p { margin: 0; }\n" +
    ".s2a-overlay-source { display: none !important; }\n";
  document.head.appendChild(style);
}

// The pads zoom on the mouse wheel; the overlay follows only the centred, fitted view.
window.addEventListener("wheel", (event) => {
  if (event.target.closest && event.target.closest("#" + padId + " .pixi-target")) {
    event.stopPropagation();
  }
}, { capture: true });
function control(id) { // a checkbox, or a slider's range (k, strength)
  return document.querySelector("#" + id + " input[type=range]") ||
    document.querySelector("#" + id + " input");
}
function shadowOn() {
  const box = control("show-shadow");
  return !box || box.checked;
}
function zoomOf(pad) {
  const zoomText = pad.querySelector(".zoom-number span");
  return (zoomText && parseFloat(zoomText.textContent) / 100) || 1;
}
function inPad(event, inside) {
  return !!(event.target.closest && event.target.closest("#" + padId + (inside || "")));
}

// The pad as this page last knew it, readSide px grey: the last read of the pad itself
// plus the brush strokes drawn since, replayed from the pointer. Reading the pad's WebGL
// canvas back waits for a frame and, with software rendering, costs a third of a second;
// the copy is ready the moment a stroke ends. What the copy cannot follow (the eraser,
// undo, clear, a sketch loaded into the pad, another brush size) makes the next shadow
// read the pad itself. A copy older than TRUST_MS when the pad's value changes is read
// again if the pad shows, but kept if it does not: it followed every stroke since.
const TRUST_MS = 10000;
const copy = document.createElement("canvas");
copy.width = copy.height = readSide;
const pen = copy.getContext("2d", { willReadFrequently: true });
pen.fillStyle = "#fff";
pen.fillRect(0, 0, readSide, readSide);
let trusted = true; // the pad starts blank, like the copy
let due = false; // the copy is old: read the pad again where it can be read
let readAt = performance.now();
let foreignAt = -Infinity; // a click outside the pad (an example, an upload, the history)
let erasing = false;
let last = null; // the stroke being drawn: its last point, in copy px

function copyPoint(event) {
  const pad = document.getElementById(padId);
  const canvas = pad && pad.querySelector(".pixi-target canvas");
  if (!canvas) return null;
  const box = canvas.getBoundingClientRect(), shown = side * zoomOf(pad);
  const scale = readSide / shown;
  return [(event.clientX - box.left - (box.width - shown) / 2) * scale,
          (event.clientY - box.top - (box.height - shown) / 2) * scale];
}
function penTo(point) {
  pen.strokeStyle = "#000";
  pen.lineCap = pen.lineJoin = "round";
  pen.lineWidth = Math.max(1, ((props.brush || 6) * readSide) / side);
  pen.beginPath();
  pen.moveTo(last[0], last[1]);
  pen.lineTo(point[0], point[1]);
  pen.stroke();
  last = point;
}

if (route) {
  window.addEventListener("pointerdown", (event) => {
    if (event.button !== 0 || !inPad(event, " .pixi-target")) return;
    if (erasing) { trusted = false; return; }
    last = copyPoint(event);
    if (last) penTo(last);
  }, { capture: true });
  window.addEventListener("pointermove", (event) => {
    if (!last) return;
    const points = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
    for (const point of points.length ? points : [event]) {
      const at = copyPoint(point);
      if (at) penTo(at);
    }
  }, { capture: true });
  window.addEventListener("click", (event) => {
    if (!inPad(event)) { foreignAt = performance.now(); return; }
    const button = event.target.closest("button");
    const label = button && button.getAttribute("aria-label");
    if (label === "Erase") erasing = true;
    else if (label === "Brush") erasing = false;
    else if (label === "Undo" || label === "Redo" || label === "Clear canvas") {
      trusted = false;
      requestAnimationFrame(() => refreshSoon()); // after the pad redraws
    }
  }, { capture: true });
  window.addEventListener("keyup", (event) => {
    if (inPad(event)) { trusted = false; refreshSoon(); }
  }, { capture: true });
  document.addEventListener("change", (event) => {
    if (event.target.closest && event.target.closest("#show-shadow, #k")) refreshSoon();
  }, true);
  document.addEventListener("input", (event) => {
    if (event.target.closest && event.target.closest("#shadow-opacity")) place();
  }, true);
  window.addEventListener("s2a-shadow-selection", () => refreshSoon());
}
// When a stroke ends (the shadow's latency is measured from here).
window.addEventListener("pointerup", (event) => {
  const stroke = last !== null;
  if (stroke) {
    const at = copyPoint(event);
    if (at) penTo(at);
    last = null;
  }
  if (stroke || inPad(event)) {
    timing.strokeEnd[padId] = event.timeStamp;
    phase = { handled: performance.now() };
    refreshSoon();
  }
}, { capture: true });

// The worker that fetches the route's shadow and paints it into the overlay canvas handed
// to it. A job: {id, url, grey} (url "": clear); it answers {id, shown, answered, work,
// blob} once the picture is painted, {id, empty} on 204, {id, failed} on an error. Times
// are absolute (timeOrigin + now), work is the route's own ms (Server-Timing).
const PAINTER = `
let canvas = null, context = null, controller = null, newest = 0;
const clock = () => performance.timeOrigin + performance.now();
const nextFrame = self.requestAnimationFrame ? (f) => requestAnimationFrame(f) : (f) => setTimeout(f, 0);
function clear() { if (context) context.clearRect(0, 0, canvas.width, canvas.height); }
onmessage = async (event) => {
  const job = event.data;
  if (job.canvas) {
    // A canvas kept in memory: drawing into one kept on the GPU waits for it, which
    // without a GPU (software rendering) takes a quarter of a second.
    canvas = job.canvas;
    context = canvas.getContext("2d", { willReadFrequently: true });
    return;
  }
  newest = job.id;
  if (controller) controller.abort();
  controller = null;
  if (!job.url) return clear();
  const mine = controller = new AbortController();
  try {
    const response = await fetch(job.url, { method: "POST", body: job.grey, signal: mine.signal,
      headers: { "Content-Type": "application/octet-stream" } });
    const answered = clock();
    const work = /dur=([0-9.]+)/.exec(response.headers.get("Server-Timing") || "");
    if (job.id !== newest) return;
    if (response.status === 204) { clear(); return postMessage({ id: job.id, empty: true }); }
    if (!response.ok) {
      return postMessage({ id: job.id, failed: response.status + " " + await response.text() });
    }
    const blob = await response.blob();
    const picture = await createImageBitmap(blob);
    if (job.id !== newest) return picture.close();
    if (canvas.width !== picture.width || canvas.height !== picture.height) {
      canvas.width = picture.width;
      canvas.height = picture.height;
    }
    context.clearRect(0, 0, canvas.width, canvas.height);
    context.drawImage(picture, 0, 0);
    picture.close();
    nextFrame(() => postMessage({ id: job.id, blob: blob, answered: answered,
                                  work: work ? parseFloat(work[1]) : null, shown: clock() }));
  } catch (error) {
    if (error.name !== "AbortError" && job.id === newest) postMessage({ id: job.id, failed: String(error) });
  } finally {
    if (controller === mine) controller = null;
  }
};`;

// {worker, canvas}, or null where the browser cannot hand a canvas to a worker (then the
// page fetches the shadow itself and shows it in an <img>).
let painter = null;
if (route && window.Worker && window.OffscreenCanvas &&
    HTMLCanvasElement.prototype.transferControlToOffscreen) {
  try {
    const canvas = document.createElement("canvas");
    canvas.className = "s2a-overlay";
    canvas.dataset.pad = padId;
    canvas.dataset.painter = "worker";
    const offscreen = canvas.transferControlToOffscreen();
    const source = URL.createObjectURL(new Blob([PAINTER], { type: "text/javascript" }));
    const worker = new Worker(source);
    worker.postMessage({ canvas: offscreen }, [offscreen]);
    worker.onmessage = (event) => painted(event.data);
    worker.onerror = (event) => {
      console.warn("Shadow painter failed, the page shows the shadow instead:", event.message);
      painter.canvas.remove();
      painter = null;
      refreshSoon();
    };
    painter = { worker: worker, canvas: canvas };
  } catch (error) {
    console.warn("No shadow painter, the page shows the shadow instead:", error);
  }
}

// The route's latest shadow (a blob: URL, "" for none), or null while the route is not
// answering (then props.value is shown). The painter's canvas shows at once what the
// worker paints, so it starts as "" (shown, empty).
let fetched = painter ? "" : null;
let sequence = 0;
let inFlight = null;
let soon = false;
const reader = document.createElement("canvas");
reader.width = reader.height = readSide;
const readerContext = reader.getContext("2d", { willReadFrequently: true });

function refreshSoon() {
  if (!route) return;
  if (trusted && !due) return refresh(0); // the copy: at once
  if (soon) return;
  soon = true;
  // The pad's canvas is WebGL without a kept drawing buffer: it reads back only in the
  // frame it was drawn in, so read it in an animation frame (after the editor's).
  requestAnimationFrame(() => { soon = false; refresh(0); });
}

// Reads the pad's paper into the copy; false when it cannot be read this frame.
function readPad() {
  const pad = document.getElementById(padId);
  const canvas = pad && pad.querySelector(".pixi-target canvas");
  if (!canvas || !canvas.width || !canvas.clientWidth) return false;
  const size = side * zoomOf(pad) * (canvas.width / canvas.clientWidth);
  readerContext.clearRect(0, 0, readSide, readSide);
  readerContext.imageSmoothingQuality = "high";
  readerContext.drawImage(canvas, (canvas.width - size) / 2, (canvas.height - size) / 2,
                          size, size, 0, 0, readSide, readSide);
  const rgba = readerContext.getImageData(0, 0, readSide, readSide).data;
  let shown = false, cleared = true;
  for (let i = 0; i < rgba.length; i += 4) {
    if (rgba[i + 3]) shown = true;
    if (rgba[i] || rgba[i + 1] || rgba[i + 2] || rgba[i + 3] !== 255) cleared = false;
  }
  if (!shown || cleared) return false;
  pen.fillStyle = "#fff";
  pen.fillRect(0, 0, readSide, readSide);
  pen.drawImage(reader, 0, 0); // over white paper
  trusted = true;
  readAt = performance.now();
  return true;
}

// The copy as readSide x readSide grey bytes (255 paper), or null when nothing is drawn.
function copyGrey() {
  const rgba = pen.getImageData(0, 0, readSide, readSide).data;
  const grey = new Uint8Array(readSide * readSide);
  let ink = 0;
  for (let i = 0, j = 0; j < grey.length; i += 4, j++) {
    grey[j] = Math.round((rgba[i] * 299 + rgba[i + 1] * 587 + rgba[i + 2] * 114) / 1000);
    if (grey[j] < 128) ink++;
  }
  return ink ? grey : null;
}
function show(url) { // a blob: URL of the route's PNG, "" for none, null: use props.value
  // Without an answer the painter's canvas is hidden; clear it so that it does not show a
  // stale shadow when it is shown again (and drop a job still on its way).
  if (url === null && painter) painter.worker.postMessage({ id: sequence, url: "" });
  if (fetched && fetched !== url) URL.revokeObjectURL(fetched);
  fetched = url;
  place();
}

// A new shadow was shown at `now` (this page's clock) after the stroke: time it.
function record(now) {
  const end = timing.strokeEnd[padId];
  if (end === undefined) return;
  timing.latency[padId].push(now - end);
  timing.phases[padId].push([phase.handled, phase.read, phase.answered, now].map(
    (t) => (t === undefined ? null : Math.round(t - end))).concat([phase.work ?? null]));
  timing.strokeEnd[padId] = undefined;
}

// The painter's answer to job `message.id`.
function painted(message) {
  if (message.id !== sequence) return; // a newer job is on its way
  if (message.failed) {
    console.warn("Shadow route:", message.failed);
    return show(null);
  }
  if (message.empty) return show("");
  const origin = performance.timeOrigin;
  phase.answered = message.answered - origin;
  phase.work = message.work;
  record(message.shown - origin);
  show(URL.createObjectURL(message.blob));
}

function refresh(tries) {
  const id = ++sequence;
  if (inFlight) inFlight.abort();
  inFlight = null;
  const clear = () => {
    if (painter) painter.worker.postMessage({ id: id, url: "" });
    show("");
  };
  if (!shadowOn()) return clear();
  if ((!trusted || due) && !readPad()) {
    // The editor draws only while something changes on the pad; until it does (the next
    // stroke), show the event path's shadow, unless the copy is only old.
    if (tries < 10) {
      requestAnimationFrame(() => { if (id === sequence) refresh(tries + 1); });
      return;
    }
    if (!trusted) return show(null);
  }
  due = false;
  const grey = copyGrey();
  if (grey === null) return clear();
  phase.read = performance.now();
  const [include, exclude] = (window.s2aShadowSelection || ";").split(";");
  const k = (control("k") || {}).value || "10";
  const query = new URLSearchParams({ side: readSide, k: k, include: include || "",
                                      exclude: exclude || "" });
  const root = ((window.gradio_config && window.gradio_config.root) || "").replace(/\/$/, "");
  const url = new URL(root + "/" + route + "?" + query, location.href).href;
  if (painter) {
    if (fetched === null) fetched = ""; // the route may answer again: show the canvas
    place();
    return painter.worker.postMessage({ id: id, url: url, grey: grey }, [grey.buffer]);
  }
  const controller = new AbortController();
  inFlight = controller;
  fetch(url, {
    method: "POST", body: grey, signal: controller.signal,
    headers: { "Content-Type": "application/octet-stream" },
  }).then(async (response) => {
    if (id !== sequence) return;
    if (response.status === 204) return show("");
    if (!response.ok) {
      console.warn("Shadow route:", response.status, await response.text());
      return show(null);
    }
    const blob = await response.blob();
    if (id !== sequence) return;
    phase.answered = performance.now();
    show(URL.createObjectURL(blob));
  }).catch((error) => {
    if (error.name !== "AbortError" && id === sequence) show(null);
  }).finally(() => {
    if (inFlight === controller) inFlight = null;
  });
}

let overlay = null; // the <img>: props.value, or the route's shadow without a painter
let settings = null; // the Shadow box and k last seen: a change asks the route again

// Lays `element` over the pad's paper (`canvas`: the pad's), or hides it.
function lay(element, visible, pad, canvas, opacity) {
  if (!visible) {
    element.style.display = "none";
    return;
  }
  const box = canvas.parentElement;
  if (element.parentElement !== box) {
    if (getComputedStyle(box).position === "static") box.style.position = "relative";
    box.appendChild(element);
  }
  const size = side * zoomOf(pad);
  element.style.opacity = opacity;
  element.style.width = size + "px";
  element.style.height = size + "px";
  element.style.left = canvas.offsetLeft + (canvas.clientWidth - size) / 2 + "px";
  element.style.top = canvas.offsetTop + (canvas.clientHeight - size) / 2 + "px";
  element.style.display = "block";
}

function place() {
  if (route) {
    const now = shadowOn() + " " + (control("k") || {}).value;
    if (settings !== null && now !== settings) {
      settings = now;
      return refreshSoon(); // shows, and places, the answer
    }
    settings = now;
  }
  const pad = document.getElementById(padId);
  const canvas = pad && pad.querySelector(".pixi-target canvas");
  const ready = !!canvas && canvas.clientWidth > 0 && (!route || shadowOn());
  const fast = route && fetched !== null;
  // The route's shadow comes at full strength; the slider sets how much of it shows.
  const strength = fast && control("shadow-opacity");
  const opacity = strength ? String(parseFloat(strength.value) || 0) : "1";
  if (painter) lay(painter.canvas, ready && fast, pad, canvas, opacity);
  const url = (painter && fast) ? "" : ((fast ? fetched : props.value) || "");
  if (!overlay && url) {
    overlay = document.createElement("img");
    overlay.className = "s2a-overlay";
    overlay.dataset.pad = padId;
    overlay.alt = "";
    // Painted in the frame after it loads: time it.
    overlay.addEventListener("load", () => requestAnimationFrame(() => record(performance.now())));
  }
  if (overlay && url && overlay.getAttribute("src") !== url) overlay.setAttribute("src", url);
  if (overlay) lay(overlay, ready && !!url, pad, canvas, opacity);
}
// What the pad's overlay shows now (a URL), or null.
timing.sources[padId] = () => {
  const shownBy = (element) => !!element && element.style.display === "block";
  if (painter && shownBy(painter.canvas)) return fetched || null;
  return shownBy(overlay) && overlay.complete && overlay.naturalWidth > 0
    ? overlay.getAttribute("src") : null;
};
// A new value from the event path: shown while the route fails. The pad changed (a
// stroke, or an example, an upload, the history): unless the copy is surely right, read
// the pad and ask the route again.
watch("value", () => {
  place();
  const now = performance.now();
  if (route && last === null) {
    if (!trusted || now - foreignAt < 60000) trusted = false;
    else if (now - readAt > TRUST_MS) due = true;
    else return;
    refreshSoon();
  }
});
setInterval(place, 200); // pads mount late (a tab opened) and resize with the window
place();
