// The gallery preview of `dreamer serve` (added to each page as it is served; the built site never carries it):
// reload the page when a build other than the one it was served after has finished, and show the last build's error
// in one line at the top of the page, as `mkdocs serve` does.
(() => {
  "use strict";
  const served = Number(document.currentScript.dataset.build);
  let banner = null;

  const show = (error) => {
    if (!error) {
      if (banner) banner.remove();
      banner = null;
      return;
    }
    if (!banner) {
      banner = document.createElement("p");
      banner.id = "dreamer-build-error";
      banner.setAttribute("role", "alert");
      Object.assign(banner.style, {position: "fixed", top: "0", left: "0", right: "0", zIndex: "1000", margin: "0",
                                   padding: "0.5em 1em", background: "#b00020", color: "#fff", font: "14px monospace"});
      document.body.prepend(banner);
    }
    banner.textContent = `Build failed: ${error}`;
  };

  new EventSource("/api/preview/events").addEventListener("build", (event) => {
    const state = JSON.parse(event.data);
    if (state.builds !== served) {
      location.reload();
    } else {
      show(state.error);
    }
  });
})();
