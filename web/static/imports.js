// The import run page: poll the run's JSON status until it finishes, then reload for the error list.
// Vendored with the app (the CSP allows scripts from 'self' only, never inline).
(function () {
  "use strict";
  var box = document.getElementById("import-progress");
  if (!box || box.dataset.finished === "yes") {
    return;
  }
  var url = box.dataset.statusUrl;
  var bar = box.querySelector("progress");
  var number = new Intl.NumberFormat();

  function show(status) {
    box.querySelectorAll("[data-field]").forEach(function (el) {
      var value = status[el.dataset.field];
      if (value !== undefined && value !== null) {
        el.textContent = typeof value === "number" ? number.format(value) : value;
      }
    });
    if (bar && status.percent !== null) {
      bar.value = status.percent;
      bar.textContent = status.percent + "%";
    }
  }

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("status " + response.status);
        }
        return response.json();
      })
      .then(function (status) {
        show(status);
        if (status.finished) {
          window.location.reload();
        } else {
          window.setTimeout(poll, 1000);
        }
      })
      .catch(function () {
        window.setTimeout(poll, 5000);
      });
  }

  window.setTimeout(poll, 500);
})();
