// The step page's log: streams the server's HTML rendering of the log (text escaped and
// ANSI colours turned into classes on the server) and appends it as it arrives.
(function () {
  "use strict";
  var pre = document.getElementById("log");
  if (!pre) { return; }
  var current = null;
  // The server's HTML is flat: text and <span class="...">text</span>, never nested. A
  // network read may end inside a tag, a span or an entity: hold that part back.
  function safeCut(buf) {
    var cut = buf.length;
    var open = buf.lastIndexOf("<span"), close = buf.lastIndexOf("</span>");
    if (open > close) { cut = open; }
    var lt = buf.lastIndexOf("<", cut - 1), gt = buf.lastIndexOf(">", cut - 1);
    if (lt > gt) { cut = lt; }
    var amp = buf.lastIndexOf("&", cut - 1), semi = buf.lastIndexOf(";", cut - 1);
    if (amp > semi) { cut = amp; }
    return cut;
  }
  function load(url) {
    if (current) { current.abort(); }
    current = new AbortController();
    pre.textContent = "";
    pre.setAttribute("aria-busy", "true");
    fetch(url, { credentials: "same-origin", cache: "no-store", signal: current.signal })
      .then(function (response) {
        if (!response.ok) {
          pre.textContent = response.status === 404 ? "This step has no log." : "The log could not be read (" + response.status + ").";
          return null;
        }
        var reader = response.body.getReader();
        var decoder = new TextDecoder();
        var held = "";
        function next() {
          return reader.read().then(function (part) {
            if (part.done) {
              if (held) { pre.insertAdjacentHTML("beforeend", held); }
              pre.setAttribute("aria-busy", "false");
              pre.setAttribute("data-done", "1");
              return;
            }
            var follow = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
            var buf = held + decoder.decode(part.value, { stream: true });
            var cut = safeCut(buf);
            held = buf.slice(cut);
            pre.insertAdjacentHTML("beforeend", buf.slice(0, cut));
            if (follow) { pre.scrollTop = pre.scrollHeight; }
            return next();
          });
        }
        return next();
      })
      .catch(function (err) { if (err.name !== "AbortError") { pre.textContent = "The log stream broke."; } });
  }
  load(pre.getAttribute("data-src"));
  var whole = document.getElementById("whole-log");
  if (whole) {
    whole.addEventListener("click", function (event) {
      event.preventDefault();
      load(whole.getAttribute("data-src"));
    });
  }
})();
