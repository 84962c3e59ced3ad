// The run page's live part: polls the run's status fragment and updates the status of
// the run, of each step row and of each graph node, without reloading the page.
// Values are set as text (textContent / class names from a fixed list), never as HTML.
(function () {
  "use strict";
  var script = document.getElementById("live-script");
  if (!script) { return; }
  var url = script.getAttribute("data-live");
  var KNOWN = ["queued", "running", "succeeded", "failed", "cancelled", "interrupted",
               "skipped", "pending", "not-run"];
  function statusClass(el, status) {
    KNOWN.forEach(function (s) { el.classList.remove("s-" + s); });
    if (KNOWN.indexOf(status) >= 0) { el.classList.add("s-" + status); }
  }
  function rows() {
    return document.querySelectorAll("[data-step]");
  }
  function apply(data) {
    var head = document.getElementById("run-status");
    head.textContent = data.status;
    statusClass(head, data.status);
    document.getElementById("run-duration").textContent = data.duration;
    rows().forEach(function (el) {
      var step = data.steps[el.getAttribute("data-step")];
      if (!step) { return; }
      if (el.tagName.toLowerCase() === "tr") {
        var cell = el.querySelector("[data-field=status]");
        cell.textContent = step.status;
        statusClass(cell, step.status);
        el.querySelector("[data-field=cached]").textContent = step.cached ? "yes" : "";
        el.querySelector("[data-field=exit_code]").textContent =
          step.exit_code === null ? "" : String(step.exit_code);
        el.querySelector("[data-field=attempts]").textContent = String(step.attempts);
        el.querySelector("[data-field=duration]").textContent = step.duration;
      } else {
        statusClass(el, step.status);
      }
    });
    document.querySelectorAll("[data-job]").forEach(function (el) {
      var job = data.jobs[el.getAttribute("data-job")];  // [status, steps recorded]
      if (!job) { return; }
      var status = job[0];
      var unstarted = job[1] < Number(el.getAttribute("data-size"));
      if (unstarted && !data.final && (status === "succeeded" || status === "skipped")) {
        status = "running";
      }
      statusClass(el, status);
    });
    return data.final;
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
