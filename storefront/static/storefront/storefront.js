// Progressive enhancement only: every page works without this file.
(function () {
  "use strict";

  var STEPS = ["placed", "accepted", "preparing", "ready", "completed"];
  var FINAL = ["completed", "cancelled"];
  var POLL_MS = 5000;

  // The order page: follow the kitchen's progress.
  function showStatus(root, data) {
    var label = document.getElementById("order-status");
    if (label && data.status_label) label.textContent = data.status_label;
    root.setAttribute("data-status", data.status);
    root.classList.toggle("cancelled", data.status === "cancelled");
    root.querySelectorAll("[data-while]").forEach(function (note) {
      note.hidden = note.getAttribute("data-while") !== data.status;
    });
    var reached = STEPS.indexOf(data.status);
    root.querySelectorAll("[data-step]").forEach(function (step) {
      var index = STEPS.indexOf(step.getAttribute("data-step"));
      var state = index < reached ? "done" : index === reached ? "current" : "todo";
      step.className = state;
      if (state === "current") step.setAttribute("aria-current", "step");
      else step.removeAttribute("aria-current");
    });
  }

  function follow(root) {
    var url = root.getAttribute("data-status-url");
    var etag = null;
    var timer = null;

    function schedule() {
      if (FINAL.indexOf(root.getAttribute("data-status")) === -1) {
        timer = setTimeout(poll, POLL_MS);
      }
    }

    function poll() {
      timer = null;
      if (document.hidden) return; // resumed by visibilitychange
      var headers = { Accept: "application/json" };
      if (etag) headers["If-None-Match"] = etag;
      fetch(url, { headers: headers, cache: "no-store", credentials: "same-origin" })
        .then(function (response) {
          if (response.status === 404) return null; // nothing to follow
          if (response.status === 200) {
            etag = response.headers.get("ETag");
            return response.json().then(function (data) {
              showStatus(root, data);
              return true;
            });
          }
          return true; // 304 or a passing error: try again later
        })
        .catch(function () {
          return true;
        })
        .then(function (again) {
          if (again) schedule();
        });
    }

    document.addEventListener("visibilitychange", function () {
      if (!document.hidden && timer === null) poll();
    });
    schedule();
  }

  // Checkout: the shown total follows the tip and delivery choices. The server prices the
  // order and refuses it when this total is not its own.
  function totals(form) {
    var currency = form.getAttribute("data-currency");
    var places = ["JPY", "KRW", "ISK", "CLP", "VND", "UGX", "XAF", "XOF", "PYG"]
      .indexOf(currency) === -1 ? 2 : 0;
    var goods = parseInt(form.getAttribute("data-goods-total"), 10);
    var fee = parseInt(form.getAttribute("data-delivery-fee"), 10);

    function format(minor) {
      return (minor / Math.pow(10, places)).toFixed(places) + " " + currency;
    }

    function tip() {
      var chosen = form.querySelector("input[name=tip]:checked");
      if (!chosen) return 0;
      if (chosen.value !== "custom") return parseInt(chosen.getAttribute("data-amount"), 10);
      var text = form.querySelector("#tip_custom").value.trim().replace(",", ".");
      var pattern = places ? /^\d+(\.\d{1,2})?$/ : /^\d+$/;
      if (!pattern.test(text)) return null;
      return Math.round(parseFloat(text) * Math.pow(10, places));
    }

    function update() {
      var amount = tip();
      if (amount === null) return; // the server will say what is wrong
      var delivery = form.querySelector("input[name=fulfilment]:checked");
      var extra = delivery && delivery.value === "delivery" ? fee : 0;
      var feeRow = form.querySelector("[data-row=delivery-fee]");
      if (feeRow) feeRow.hidden = extra === 0;
      document.getElementById("tip-amount").textContent = format(amount);
      document.getElementById("order-total").textContent = format(goods + extra + amount);
      document.getElementById("expected_total").value = String(goods + extra + amount);
    }

    form.addEventListener("change", update);
    form.querySelector("#tip_custom").addEventListener("input", function () {
      form.querySelector("#tip-custom").checked = true;
      update();
    });
  }

  var live = document.getElementById("order-live");
  if (live && live.getAttribute("data-status-url")) follow(live);
  var checkout = document.getElementById("checkout-form");
  if (checkout) totals(checkout);
})();
