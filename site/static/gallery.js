// Dreamer gallery. Videos get their poster and sources when they come near the viewport (the smaller rendition where a
// cell is small), start on the finished dream and loop; "Pause all" / "Play all", "Replay in sync", and a
// slider that puts every video at the same moment of its dream (the same share of its steps). Under
// prefers-reduced-motion everything starts paused on its poster. Without JavaScript the GIFs show and play.
// Pages of GIFs only (no videos) keep the GIF controls: paused GIFs show their still. A clip's videos (the source
// and its dreams) carry their length and frames: the slider scrubs their time, and they start at their beginning.
(() => {
  "use strict";
  const controls = document.querySelector("[data-controls]");
  if (!controls) return;
  const toggle = controls.querySelector("[data-action=toggle]");
  const replay = controls.querySelector("[data-action=replay]");
  const scrubber = controls.querySelector("[data-scrubber]");
  const slider = scrubber.querySelector("input");
  const label = scrubber.querySelector("output");
  const videos = Array.from(document.querySelectorAll("video.dream-video"));
  const gifs = () => Array.from(document.querySelectorAll("img[data-gif]"));
  let paused = window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  let round = 0; // bumped by "replay": a new URL makes the browser restart a GIF
  let target = null; // the slider's share of the dream, once it was moved (null: playing freely)

  // --- each video's timeline: frame i shows step steps[i] during [times[i][0], times[i][1]) seconds
  const timelineOf = (video) => {
    if (video.dataset.length) { // a clip: its frames, evenly over its length
      const count = Math.max(1, Number(video.dataset.frames)), length = Number(video.dataset.length);
      const steps = Array.from({ length: count }, (_, i) => i);
      const times = steps.map((i) => [(i * length) / count, ((i + 1) * length) / count]);
      return { steps, times, total: Math.max(1, count - 1), clip: true, length };
    }
    if (!video.dataset.steps) return null;
    const steps = video.dataset.steps.split(" ").map(Number);
    const times = video.dataset.times.split(" ").map((pair) => pair.split(",").map(Number));
    return { steps, times, total: steps[steps.length - 1], octaves: Number(video.dataset.octaves),
             perOctave: Number(video.dataset.octaveSteps) };
  };
  const lines = new Map(videos.map((video) => [video, timelineOf(video)]));
  const frameAt = (line, share) => {
    let i = 0;
    while (i + 1 < line.steps.length && line.steps[i + 1] <= share * line.total + 1e-9) i += 1;
    return i;
  };
  const describe = (line, i) => {
    if (line.clip) return `${line.times[i][0].toFixed(1)} s of ${line.length.toFixed(1)} s`;
    const step = line.steps[i];
    const octave = line.octaves > 1 ? ` · octave ${step ? Math.ceil(step / line.perOctave) : 1} of ${line.octaves}` : "";
    return `step ${step} of ${line.total}${octave}`;
  };

  // --- sources, attached near the viewport
  const fallBack = (video) => { // no playable video: the GIF instead (a clip without one: its poster)
    const img = document.createElement("img");
    Object.assign(img, { src: video.dataset.gif || video.dataset.poster, width: video.width, height: video.height, alt: "" });
    video.replaceWith(img);
  };
  const attach = (video) => {
    if (video.dataset.attached) return;
    video.dataset.attached = "1";
    const small = Number(video.dataset.small) > 0 &&
      video.clientWidth * window.devicePixelRatio <= Number(video.dataset.small);
    let last = null;
    for (const format of ["webm", "mp4"]) {
      const src = (small && video.dataset[`${format}Small`]) || video.dataset[format];
      if (!src || !video.canPlayType(`video/${format}`)) continue;
      last = Object.assign(document.createElement("source"), { src, type: `video/${format}` });
      video.append(last);
    }
    if (!last) { fallBack(video); return; }
    last.addEventListener("error", () => fallBack(video));
    video.addEventListener("loadedmetadata", () => place(video), { once: true });
    video.load();
  };
  // A video that loads shows what the page shows: the slider's moment, or (playing) the finished dream first.
  const place = (video) => {
    const line = lines.get(video);
    if (target !== null && line) {
      const [start, end] = line.times[frameAt(line, target)];
      video.currentTime = (start + end) / 2;
    } else if (line && !round && !line.clip) {
      video.currentTime = line.times[line.times.length - 1][0];
    }
    if (paused) video.pause(); else video.play().catch(() => {});
  };
  // Near the viewport, a video loads when it has something to show: playing, or at the slider's moment
  // (paused before either, it stays on its poster and loads nothing).
  const nearby = new Set();
  const wanted = () => !paused || target !== null;
  if (paused) videos.forEach((video) => { video.autoplay = false; });
  if ("IntersectionObserver" in window) {
    const near = new IntersectionObserver((entries) => {
      for (const entry of entries) {
        if (!entry.isIntersecting) continue;
        nearby.add(entry.target);
        entry.target.poster = entry.target.dataset.poster;
        if (wanted()) { near.unobserve(entry.target); attach(entry.target); }
      }
    }, { rootMargin: "200px" });
    videos.forEach((video) => near.observe(video));
  } else {
    videos.forEach((video) => { nearby.add(video); video.poster = video.dataset.poster; });
  }

  // --- the slider: its positions are every moment at which some video changes frame
  const shares = [...new Set(Array.from(lines.values()).filter(Boolean)
    .flatMap((line) => line.steps.map((step) => Math.round((step / line.total) * 1e6) / 1e6)))].sort((a, b) => a - b);
  const showLabels = (share) => {
    const described = [];
    for (const [video, line] of lines) {
      if (!line) continue;
      const text = describe(line, frameAt(line, share));
      described.push(text);
      const card = video.closest(".card");
      const own = card && card.querySelector("[data-step-label]");
      if (own) own.textContent = text;
    }
    const same = described.every((text) => text === described[0]) && described.length;
    label.textContent = same ? described[0] : `${Math.round(share * 100)} % of the dream`;
  };
  const seek = () => {
    target = shares[Number(slider.value)];
    paused = true;
    for (const [video, line] of lines) {
      if (!line) continue;
      attach(video);
      if (video.readyState >= 1) place(video);
    }
    showLabels(target);
    apply();
  };
  if (shares.length > 1) {
    slider.max = String(shares.length - 1);
    slider.value = slider.max;
    showLabels(1);
    slider.addEventListener("input", seek);
    document.addEventListener("keydown", (event) => { // arrow keys step one frame from anywhere on the page
      const typing = event.target.closest && event.target.closest("input, textarea, select, button, a");
      if (typing || !["ArrowLeft", "ArrowRight"].includes(event.key)) return;
      const value = Number(slider.value) + (event.key === "ArrowRight" ? 1 : -1);
      if (value < 0 || value > Number(slider.max)) return;
      event.preventDefault();
      slider.value = String(value);
      seek();
    });
    scrubber.hidden = false;
  }

  // --- play / pause all, replay in sync
  const gifUrl = (img) => (round ? `${img.dataset.gif}?replay=${round}` : img.dataset.gif);
  const show = (img, playing) => {
    const src = playing ? gifUrl(img) : img.dataset.still;
    if (img.getAttribute("src") !== src) img.setAttribute("src", src);
  };
  const apply = () => {
    if (wanted()) nearby.forEach(attach);
    gifs().forEach((img) => img.dataset.still && show(img, !paused));
    for (const video of videos) {
      if (!video.dataset.attached) continue;
      if (paused) video.pause(); else video.play().catch(() => {});
    }
    toggle.textContent = paused ? "Play all" : "Pause all";
    toggle.setAttribute("aria-pressed", String(paused));
  };
  toggle.addEventListener("click", () => {
    paused = !paused;
    if (!paused) { target = null; videos.forEach((video) => { video.autoplay = true; }); }
    apply();
  });
  replay.addEventListener("click", () => {
    round += 1;
    paused = false;
    target = null;
    for (const video of videos) {
      video.autoplay = true;
      if (video.dataset.attached) video.currentTime = 0;
    }
    // Decode every GIF first, then swap them all in one frame so they start together.
    const loads = gifs().filter((img) => img.dataset.still)
      .map((img) => { const pre = new Image(); pre.src = gifUrl(img); return pre.decode().catch(() => {}); });
    Promise.all(loads).then(() => requestAnimationFrame(apply));
  });
  const hovered = (event) => event.target.closest && event.target.closest(".dream");
  for (const [type, playing] of [["mouseover", true], ["focusin", true], ["mouseout", false], ["focusout", false]]) {
    document.addEventListener(type, (event) => { // while paused, hovering or focusing one plays it
      const dream = hovered(event);
      if (!dream || !paused || target !== null) return;
      const img = dream.querySelector("img[data-still]");
      if (img) show(img, playing);
      const video = dream.querySelector("video.dream-video");
      if (video) {
        attach(video);
        if (playing) video.play().catch(() => {}); else video.pause();
      }
    });
  }
  controls.hidden = false;
  apply();
})();
