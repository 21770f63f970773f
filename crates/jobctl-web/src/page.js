// jobctl-web's one script (docs/dashboard.md). The pages work without it;
// with it, a running run's page shows the run's new output lines as they
// are written (server-sent events). Everything shown is set as text
// (textContent, text nodes), never parsed as HTML. Served as a file of this
// origin: the Content-Security-Policy allows no inline script.
"use strict";

(function () {
  // The live tail: <pre class="output" data-events="/api/v1/…/output/events">.
  var out = document.querySelector("pre.output[data-events]");
  if (!out || !window.EventSource) {
    return;
  }
  var note = document.getElementById("live");
  function say(text, link) {
    if (!note) {
      return;
    }
    note.textContent = text;
    if (link) {
      var a = document.createElement("a");
      a.href = window.location.pathname;
      a.textContent = link;
      note.appendChild(document.createTextNode(" "));
      note.appendChild(a);
    }
  }
  function data(event) {
    try {
      return JSON.parse(event.data) || {};
    } catch (e) {
      return {};
    }
  }
  say("Live: the run's new lines appear below as it writes them.");
  var source = new EventSource(out.getAttribute("data-events"));
  source.addEventListener("line", function (event) {
    var line = data(event);
    var span = document.createElement("span");
    span.className = "live";
    var mark = document.createElement("span");
    mark.className = "mark";
    mark.textContent = "log|";
    span.appendChild(mark);
    span.appendChild(document.createTextNode(String(line.shown) + "\n"));
    out.appendChild(span);
  });
  source.addEventListener("end", function (event) {
    source.close();
    var status = String(data(event).status);
    var shown = document.getElementById("status");
    if (shown) {
      shown.textContent = status;
      shown.className = status === "success" ? "ok" : "bad";
    }
    say("The run ended: " + status + ".", "Show its captured output");
  });
  source.addEventListener("unavailable", function (event) {
    source.close();
    say("The live tail stopped: " + String(data(event).error) + ".", "Refresh");
  });
  source.addEventListener("error", function () {
    // The browser reconnects by itself (and the server goes on after the
    // last line shown) unless the stream is closed for good.
    if (source.readyState === EventSource.CLOSED) {
      say("The live tail stopped.", "Refresh");
    }
  });
})();

(function () {
  // Times: <time datetime="RFC 3339"> written in UTC by the server, shown
  // here in the viewer's zone, named (the UTC time stays in the tooltip).
  var zone = "";
  try {
    zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
  } catch (e) {
    zone = "";
  }
  function two(n) {
    return (n < 10 ? "0" : "") + n;
  }
  function offset(d) {
    var minutes = -d.getTimezoneOffset();
    var sign = minutes < 0 ? "-" : "+";
    minutes = Math.abs(minutes);
    return "UTC" + sign + two(Math.floor(minutes / 60)) + ":" + two(minutes % 60);
  }
  var times = document.querySelectorAll("time[datetime]");
  for (var i = 0; i < times.length; i++) {
    var t = times[i];
    var d = new Date(t.getAttribute("datetime"));
    if (isNaN(d.getTime())) {
      continue;
    }
    t.textContent = d.getFullYear() + "-" + two(d.getMonth() + 1) + "-" +
      two(d.getDate()) + " " + two(d.getHours()) + ":" + two(d.getMinutes()) +
      ":" + two(d.getSeconds()) + " " + (zone || offset(d));
  }
})();
