// The run page's live part: polls the run's status fragment and updates the status of
// the run, of each step row and of each graph node, and the timeline, without reloading
// the page.
// Values are set as text (textContent / class names from a fixed list), never as HTML.
(function () {
  "use strict";
  var script = document.getElementById("live-script");
  if (!script) { return; }
  var url = script.getAttribute("data-live");
  var KNOWN = ["queued", "running", "succeeded", "failed", "cancelled", "interrupted",
               "skipped", "pending", "not-run"];
  function statusClass(el, status) {  // touches the element only when its class changes
    if (!el) { return; }
    var want = KNOWN.indexOf(status) >= 0 ? "s-" + status : null;
    KNOWN.forEach(function (s) {
      if ("s-" + s !== want && el.classList.contains("s-" + s)) { el.classList.remove("s-" + s); }
    });
    if (want && !el.classList.contains(want)) { el.classList.add(want); }
  }
  // Each step's row cells and graph nodes, found once: a 1,000-step page is not searched
  // again on every poll, and only what changed since the last poll is touched (a class
  // or text set to the value it has still costs a style recalculation).
  var steps = null;
  function index() {
    steps = {};
    document.querySelectorAll("[data-step]").forEach(function (el) {
      var id = el.getAttribute("data-step");
      var entry = steps[id] || (steps[id] = { rows: [], nodes: [], last: null });
      if (el.tagName.toLowerCase() === "tr") {
        var cells = {};
        ["status", "cached", "exit_code", "attempts", "duration"].forEach(function (f) {
          cells[f] = el.querySelector("[data-field=" + f + "]");
        });
        entry.rows.push(cells);
      } else {
        entry.nodes.push(el);
      }
    });
  }
  function setText(el, text) {
    if (el && el.textContent !== text) { el.textContent = text; }
  }
  function updateStep(entry, step) {
    var last = entry.last;
    var fresh = !last || last.status !== step.status;
    entry.rows.forEach(function (cells) {
      if (fresh) {
        setText(cells.status, step.status);
        statusClass(cells.status, step.status);
      }
      setText(cells.cached, step.cached ? "yes" : "");
      setText(cells.exit_code, step.exit_code === null ? "" : String(step.exit_code));
      setText(cells.attempts, String(step.attempts));
      setText(cells.duration, step.duration);
    });
    if (fresh) {
      entry.nodes.forEach(function (el) { statusClass(el, step.status); });
    }
    entry.last = step;
  }
  function unchanged(a, b) {
    return a && a.status === b.status && a.cached === b.cached && a.exit_code === b.exit_code &&
      a.attempts === b.attempts && a.duration === b.duration;
  }
  function apply(data) {
    var head = document.getElementById("run-status");
    setText(head, data.status);
    statusClass(head, data.status);
    setText(document.getElementById("run-duration"), data.duration);
    if (!steps) { index(); }
    Object.keys(data.steps).forEach(function (id) {
      var entry = steps[id];
      var step = data.steps[id];
      if (entry && !unchanged(entry.last, step)) { updateStep(entry, step); }
    });
    // a job's box, or a fan-out's (a matrix's or datums' instances): [status, steps recorded]
    [["data-job", data.jobs], ["data-group", data.groups || {}]].forEach(function (kind) {
      document.querySelectorAll("[" + kind[0] + "]").forEach(function (el) {
        var node = kind[1][el.getAttribute(kind[0])];
        if (!node) { return; }
        var status = node[0];
        var unstarted = node[1] < Number(el.getAttribute("data-size"));
        if (unstarted && !data.final && (status === "succeeded" || status === "skipped")) {
          status = "running";
        }
        statusClass(el, status);
      });
    });
    timeline(data);
    return data.final;
  }
  // The Gantt timeline: a bar per step that ran (not a cache hit), from the first start;
  // a running step's bar reaches the server's now. Built with DOM calls, text as text.
  var SVG = "http://www.w3.org/2000/svg";
  function timeline(data) {
    var svg = document.getElementById("timeline");
    if (!svg) { return; }
    var ran = Object.keys(data.steps).map(function (id) {
      var s = data.steps[id];
      return { id: id, status: s.status, start: s.started, end: s.ended, duration: s.duration,
               cached: s.cached };
    }).filter(function (s) { return s.start !== null && !s.cached; });
    ran.sort(function (a, b) { return a.start - b.start || (a.id < b.id ? -1 : 1); });
    if (!ran.length || ran.length > Number(svg.getAttribute("data-max"))) { return; }
    var origin = ran[0].start;
    var span = Math.max(1, Math.max.apply(null, ran.map(function (s) {
      return (s.end === null ? data.now : s.end) - origin;
    })));
    while (svg.firstChild) { svg.removeChild(svg.firstChild); }
    ran.forEach(function (s, i) {
      var g = document.createElementNS(SVG, "g");
      g.setAttribute("class", "bar");
      statusClass(g, s.status);
      var title = document.createElementNS(SVG, "title");
      title.textContent = s.id + ": " + s.duration;
      var rect = document.createElementNS(SVG, "rect");
      var end = s.end === null ? data.now : s.end;
      rect.setAttribute("x", ((s.start - origin) / span * 1000).toFixed(1));
      rect.setAttribute("y", String(i * 20 + 5));
      rect.setAttribute("width", Math.max((end - s.start) / span * 1000, 2).toFixed(1));
      rect.setAttribute("height", "14");
      g.appendChild(title);
      g.appendChild(rect);
      svg.appendChild(g);
    });
    var height = String(ran.length * 20 + 10);
    svg.setAttribute("height", height);
    svg.setAttribute("viewBox", "0 0 1000 " + height);
    document.getElementById("timeline-span").textContent = span.toFixed(1);
  }
  function poll() {
    fetch(url, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.json(); })
      .then(function (data) {
        if (apply(data)) {
          // the run ended: cancelling makes no sense any more, running it again does
          var cancel = document.getElementById("cancel-form");
          if (cancel) { cancel.hidden = true; }
          var rerun = document.getElementById("rerun-form");
          if (rerun) { rerun.hidden = false; }
          document.body.setAttribute("data-run-final", "1");
        } else {
          setTimeout(poll, 1000);
        }
      })
      .catch(function () { setTimeout(poll, 5000); });
  }
  poll();
})();
