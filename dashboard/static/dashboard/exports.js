// The exports page: while an export is being prepared, fetch the list of past exports every
// 3 s and swap it in, until none is queued or running.
(function () {
  "use strict";

  var REFRESH_MS = 3000;

  function current() {
    return document.getElementById("export-rows");
  }

  function schedule() {
    var rows = current();
    if (rows && rows.hasAttribute("data-polling")) {
      window.setTimeout(refresh, REFRESH_MS);
    }
  }

  function refresh() {
    var rows = current();
    var source = rows && rows.getAttribute("data-src");
    if (!source) {
      return;
    }
    window
      .fetch(source, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.text();
      })
      .then(function (html) {
        var holder = document.createElement("div");
        holder.innerHTML = html;
        var fresh = holder.querySelector("#export-rows");
        if (fresh) {
          current().replaceWith(fresh);
        }
        schedule();
      })
      .catch(function () {
        // A dropped connection or an expired session: try again later, as a reload would.
        window.setTimeout(refresh, REFRESH_MS * 3);
      });
  }

  if (window.fetch) {
    schedule();
  }
})();
