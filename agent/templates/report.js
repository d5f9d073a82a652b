// Optional helpers; the page works without them.
(function () {
  var tools = document.getElementById("timeline-tools");
  if (tools) {
    tools.hidden = false;
    tools.addEventListener("click", function (ev) {
      var b = ev.target.closest("button[data-open]");
      if (!b) return;
      var open = b.getAttribute("data-open") === "1";
      document.querySelectorAll("details.step").forEach(function (d) { d.open = open; });
    });
  }
  function openTarget() {
    var id = decodeURIComponent(location.hash.slice(1));
    var el = id && document.getElementById(id);
    if (el && el.tagName === "DETAILS") { el.open = true; }
  }
  window.addEventListener("hashchange", openTarget);
  openTarget();
})();
