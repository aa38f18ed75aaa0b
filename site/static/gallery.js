// Dreamer gallery: pause / play all GIFs (paused ones show their last frame) and replay them in
// sync. Without JavaScript every GIF simply plays. While paused, hovering or focusing one plays it.
(() => {
  "use strict";
  const controls = document.querySelector("[data-controls]");
  if (!controls) return;
  const toggle = controls.querySelector("[data-action=toggle]");
  const replay = controls.querySelector("[data-action=replay]");
  const gifs = () => Array.from(document.querySelectorAll("img[data-gif]"));
  let paused = window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  let round = 0; // bumped by "replay": a new URL makes the browser restart the animation

  const gifUrl = (img) => (round ? `${img.dataset.gif}?replay=${round}` : img.dataset.gif);
  const show = (img, playing) => {
    const src = playing ? gifUrl(img) : img.dataset.still;
    if (img.getAttribute("src") !== src) img.setAttribute("src", src);
  };
  const apply = () => {
    gifs().forEach((img) => show(img, !paused));
    toggle.textContent = paused ? "Play all" : "Pause all";
    toggle.setAttribute("aria-pressed", String(paused));
  };

  toggle.addEventListener("click", () => { paused = !paused; apply(); });
  replay.addEventListener("click", () => {
    round += 1;
    paused = false;
    // Decode every GIF first, then swap them all in one frame so they start together.
    const loads = gifs().map((img) => { const pre = new Image(); pre.src = gifUrl(img); return pre.decode().catch(() => {}); });
    Promise.all(loads).then(() => requestAnimationFrame(apply));
  });
  const hovered = (event) => event.target.closest && event.target.closest(".dream")?.querySelector("img[data-gif]");
  for (const [type, playing] of [["mouseover", true], ["focusin", true], ["mouseout", false], ["focusout", false]]) {
    document.addEventListener(type, (event) => {
      const img = hovered(event);
      if (img && paused) show(img, playing);
    });
  }
  controls.hidden = false;
  if (paused) apply();
})();
