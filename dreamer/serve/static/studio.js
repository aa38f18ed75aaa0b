// The studio: list the styles, send the photo and the ticked styles, then watch one card a style stream its
// frames over a single EventSource for the whole page; the page's slider puts every finished card at the same
// moment of its dream. Text goes in through textContent only.
"use strict";

const cards = new Map();  // dream id -> {card, image, caption, links, frames: [{step, total, image}], done}
let stream = null;

function element(tag, attributes = {}, text = "") {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  node.textContent = text;
  return node;
}

function say(line) {
  document.getElementById("message").textContent = line;
}

async function errorLine(response) {
  try { return (await response.json()).error; } catch { return `the server answered ${response.status}`; }
}

async function listStyles() {
  const response = await fetch("/api/styles");
  if (!response.ok) { say(await errorLine(response)); return; }
  const box = document.getElementById("styles");
  for (const style of await response.json()) {
    const label = element("label", {title: style.description});
    const tick = element("input", {type: "checkbox", name: "styles", value: style.name});
    label.append(tick, " " + style.name);
    box.append(label);
  }
  const first = box.querySelector("input");
  if (first) first.checked = true;
}

function about(status) {
  return status.estimate == null ? "" : `, about ${Math.max(1, Math.round(status.estimate))} s`;
}

function describe(status) {
  if (status.status === "queued") return `queued: place ${status.place}${about(status)}`;
  if (status.status === "running") return `step ${status.step} of ${status.total}${about(status)}`;
  if (status.status === "failed") return `failed: ${status.error}`;
  return status.status;
}

function addCard(status) {
  const card = element("article", {class: "card"});
  const image = element("img", {alt: `${status.style}, dreaming`});
  const caption = element("p", {}, describe(status));
  const links = element("p");
  card.append(element("h2", {}, status.style), image, caption, links);
  document.getElementById("cards").prepend(card);
  cards.set(status.id, {card, image, caption, links, frames: [], done: false});
  showStatus(status);
}

function showFrame(frame) {
  const entry = cards.get(frame.id);
  if (!entry) return;
  entry.frames.push({step: frame.step, total: frame.total, image: frame.image});
  entry.image.src = frame.image;
  const octave = frame.octave ? ` · octave ${frame.octave} of ${frame.octaves}` : "";
  entry.caption.textContent = `step ${frame.step} of ${frame.total}${octave}`;
}

function showStatus(status) {
  const entry = cards.get(status.id);
  if (!entry) return;
  if (status.status !== "running") entry.caption.textContent = describe(status);
  if (status.status === "done" && !entry.done) {
    entry.links.append(element("a", {href: status.gif, download: `${status.style}.gif`}, "GIF"),
                       element("a", {href: status.still, download: `${status.style}.jpg`}, "still"));
    for (const kind of ["webm", "mp4"]) {
      if (status[kind]) entry.links.append(element("a", {href: status[kind], download: `${status.style}.${kind}`},
                                                   kind.toUpperCase()));
    }
    const add = element("button", {type: "button"}, "Add to gallery");
    add.addEventListener("click", () => addToGallery(status.id, add));
    entry.links.append(add);
    if (!entry.frames.length) entry.image.src = status.still;
  }
  entry.done = ["done", "failed", "cancelled", "interrupted"].includes(status.status);
  const moment = document.getElementById("moment");
  moment.disabled = ![...cards.values()].some(card => card.done && card.frames.length);
  if (entry.done && moment.dataset.moved) scrub();
}

// The slider: each finished card shows its frame nearest the same share of its dream (0: the photo, 1000: the dream).
function scrub() {
  const moment = document.getElementById("moment");
  moment.dataset.moved = "yes";
  const share = Number(moment.value) / Number(moment.max);
  for (const entry of cards.values()) {
    if (!entry.done || !entry.frames.length) continue;
    const wanted = share * entry.frames[entry.frames.length - 1].total;
    const nearest = entry.frames.reduce((best, frame) =>
      Math.abs(frame.step - wanted) < Math.abs(best.step - wanted) ? frame : best);
    entry.image.src = nearest.image;
    entry.caption.textContent = `step ${nearest.step} of ${nearest.total}`;
  }
}

async function addToGallery(id, button) {
  button.disabled = true;
  const response = await fetch(`/api/dreams/${encodeURIComponent(id)}/gallery`, {method: "POST"});
  if (!response.ok) { say(await errorLine(response)); button.disabled = false; return; }
  const added = await response.json();
  button.textContent = added.added ? `added: inputs/${added.input}` : `in the gallery: inputs/${added.input}`;
}

function watch() {
  if (stream) stream.close();
  const open = [...cards].filter(([, entry]) => !entry.done).map(([id]) => id);
  if (!open.length) return;
  stream = new EventSource("/api/events?" + open.map(id => "id=" + encodeURIComponent(id)).join("&"));
  stream.addEventListener("frame", event => showFrame(JSON.parse(event.data)));
  stream.addEventListener("status", event => {
    showStatus(JSON.parse(event.data));
    if ([...cards.values()].every(entry => entry.done)) stream.close();  // else the browser would reconnect
  });
}

async function dream(event) {
  event.preventDefault();
  const form = new FormData();
  const source = document.querySelector("input[name=source]:checked").value;
  const size = document.getElementById("size").value;
  if (source === "photo") {
    const file = document.getElementById("photo").files[0];
    if (!file) { say("choose a photo first (or static)"); return; }
    form.append("photo", file);
  } else {
    const side = size || "320";
    form.append("noise", `${side}x${side}`);
  }
  for (const tick of document.querySelectorAll("#styles input:checked")) form.append("styles", tick.value);
  if (size) form.append("size", size);
  const steps = document.getElementById("steps").value;
  if (steps) form.append("steps", steps);
  say("");
  const response = await fetch("/api/dreams", {method: "POST", body: form});
  if (!response.ok) { say(await errorLine(response)); return; }
  for (const status of (await response.json()).dreams) addCard(status);
  watch();
}

document.getElementById("dream-form").addEventListener("submit", dream);
document.getElementById("moment").addEventListener("input", scrub);
listStyles();
