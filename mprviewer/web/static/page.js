// The page's keyboard, wheel, upload and download glue; every action is a call on the server.
(function () {
  "use strict";
  const KEYS = new Set(["ArrowUp", "ArrowDown", "PageUp", "PageDown", "m", "M",
    "1", "2", "3", "4", "5", "6", "7", "8", "9", "n", "N", "d", "D", ")"]);

  function trigger(name, args) {
    return window.trame ? window.trame.trigger(name, args || []) : Promise.resolve(null);
  }
  function typing(event) {
    const t = event.target;
    return !!t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" ||
      t.tagName === "SELECT" || t.isContentEditable ||
      (t.getAttribute && t.getAttribute("role") === "slider"));
  }
  function viewOf(node) {
    const view = node && node.closest ? node.closest("[data-plane]") : null;
    return view ? view.getAttribute("data-plane") : null;
  }

  window.addEventListener("keydown", function (event) {
    if (typing(event) || event.altKey || event.metaKey) return;
    const undo = event.ctrlKey && ["z", "Z", "y", "Y", "ArrowLeft", "ArrowRight"].includes(event.key);
    const noFinding = event.shiftKey && event.code === "Digit0";  // Shift+0 on any layout
    if (!undo && !noFinding && (event.ctrlKey || !KEYS.has(event.key))) return;
    event.preventDefault();
    event.stopPropagation();
    window.mprLastKey = performance.now();
    trigger("key", [event.key, event.shiftKey, event.ctrlKey, event.code]);
  }, true);

  window.addEventListener("wheel", function (event) {
    const plane = viewOf(event.target);
    if (!plane) return;  // the 3D view keeps its own zoom
    event.preventDefault();
    event.stopPropagation();
    trigger("wheel", [plane, event.deltaY < 0 ? 1 : -1]);
  }, { capture: true, passive: false });

  window.addEventListener("pointerdown", function (event) {
    const plane = viewOf(event.target);
    if (plane) trigger("focus", [plane]);
  }, true);

  document.addEventListener("change", async function (event) {
    const input = event.target;
    if (!input || input.getAttribute("data-testid") !== "upload" || !input.files.length) return;
    const file = input.files[0];
    try {
      const answer = await fetch("upload?name=" + encodeURIComponent(file.name),
        { method: "POST", body: file, credentials: "same-origin" });
      const reply = await answer.json();
      if (!answer.ok) { trigger("upload_failed", [reply.error || ("upload failed: " + answer.status)]); return; }
      trigger("open_upload", [reply.file]);
    } catch (error) {
      trigger("upload_failed", [file.name + ": upload failed (" + error + ")"]);
    } finally {
      input.value = "";
    }
  }, true);

  window.mprDownload = async function (format) {
    const reply = await trigger(format === "csv" ? "export_csv" : "export_json", [format]);
    if (!reply) return;
    const blob = new Blob([reply.text], { type: reply.type || "application/json" });
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = reply.name;
    document.body.appendChild(link);
    link.click();
    setTimeout(function () { URL.revokeObjectURL(link.href); link.remove(); }, 1000);
  };

  window.addEventListener("beforeunload", function (event) {
    try {
      if (window.trame && window.trame.state.get("unsaved")) { event.preventDefault(); event.returnValue = ""; }
    } catch (error) { /* the page is going anyway */ }
  });
})();
