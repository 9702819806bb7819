// Runs as a gr.HTML component's js_on_load (arguments: element, trigger, props, server,
// upload, watch). Lays props.value, a PNG data URL ("" for none), over the drawing pad
// whose elem_id is props.pad, as an image blended with `multiply`: white leaves the pad
// as it is, dark strokes stay dark, so the image looks as if it were under the strokes.
// It never enters the editor, so it is never sent back as part of the drawing and never
// replaces strokes. The pad shows a props.side px canvas, centred at the zoom its toolbar
// displays; pan and zoom are hidden so the two stay aligned.
const padId = props.pad;
const side = props.side || 512;
window.s2aOverlay = window.s2aOverlay || { strokeEnd: {}, latency: {} };
const timing = window.s2aOverlay;
timing.latency[padId] = timing.latency[padId] || [];

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
// When a stroke ends (the shadow's latency is measured from here).
window.addEventListener("pointerup", (event) => {
  if (event.target.closest && event.target.closest("#" + padId)) {
    timing.strokeEnd[padId] = performance.now();
  }
}, { capture: true });

let overlay = null;
function place() {
  const pad = document.getElementById(padId);
  const canvas = pad && pad.querySelector(".pixi-target canvas");
  const url = props.value || "";
  if (!canvas || !url || !canvas.clientWidth) {
    if (overlay) overlay.style.display = "none";
    return;
  }
  const box = canvas.parentElement;
  if (!overlay || overlay.parentElement !== box) {
    overlay = document.createElement("img");
    overlay.className = "s2a-overlay";
    overlay.dataset.pad = padId;
    overlay.alt = "";
    overlay.addEventListener("load", () => {
      const end = timing.strokeEnd[padId];
      if (end !== undefined) timing.latency[padId].push(performance.now() - end);
      timing.strokeEnd[padId] = undefined;
    });
    if (getComputedStyle(box).position === "static") box.style.position = "relative";
    box.appendChild(overlay);
  }
  if (overlay.getAttribute("src") !== url) overlay.setAttribute("src", url);
  const zoomText = pad.querySelector(".zoom-number span");
  const zoom = (zoomText && parseFloat(zoomText.textContent) / 100) || 1;
  const size = side * zoom;
  overlay.style.width = size + "px";
  overlay.style.height = size + "px";
  overlay.style.left = canvas.offsetLeft + (canvas.clientWidth - size) / 2 + "px";
  overlay.style.top = canvas.offsetTop + (canvas.clientHeight - size) / 2 + "px";
  overlay.style.display = "block";
}
watch("value", place);
setInterval(place, 200); // pads mount late (a tab opened) and resize with the window
place();
