// The campaign designer's live parts: audience count and sample, member search, rendered preview with
// SMS segment count. Vendored with the app (the CSP allows scripts from 'self' only, never inline).
(function () {
  "use strict";
  var form = document.getElementById("designer");
  if (!form) {
    return;
  }
  var csrf = form.querySelector("input[name=csrf_token]").value;

  function debounce(fn, ms) {
    var timer;
    return function () {
      clearTimeout(timer);
      timer = setTimeout(fn, ms);
    };
  }

  function text(el, value) {
    if (el) {
      el.textContent = value;
    }
  }
  // Fills "{name}" slots in a sentence the page translated (data-t-* attributes on the preview panel).
  function fill(sentence, facts) {
    return sentence.replace(/\{(\w+)\}/g, function (slot, key) {
      return key in facts ? String(facts[key]) : slot;
    });
  }

  // Timing fields belong to one kind each: show only the chosen kind's.
  var kind = document.getElementById("kind");
  function showTiming() {
    form.querySelectorAll(".kind-timing").forEach(function (box) {
      box.hidden = box.dataset.kind !== kind.value;
    });
  }
  kind.addEventListener("change", showTiming);
  showTiming();

  // Audience: live count and a sample of matching members.
  var live = document.getElementById("audience-live");
  function refreshAudience() {
    var params = new URLSearchParams();
    form.querySelectorAll("[name^=audience_]").forEach(function (el) {
      if (el.type === "checkbox" ? el.checked : el.value) {
        params.append(el.name, el.type === "checkbox" ? "1" : el.value);
      }
    });
    fetch(form.dataset.audienceUrl + "?" + params.toString(), { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (data) {
        var list = live.querySelector("[data-sample]");
        list.innerHTML = "";
        if (data.error) {
          text(live.querySelector("[data-count]"), "—");
          var li = document.createElement("li");
          li.className = "error";
          li.textContent = data.error;
          list.appendChild(li);
          return;
        }
        text(live.querySelector("[data-count]"), new Intl.NumberFormat().format(data.count));
        data.sample.forEach(function (m) {
          var item = document.createElement("li");
          item.textContent = m.name + " · " + m.card + " · " + m.locale;
          list.appendChild(item);
        });
      })
      .catch(function () { text(live.querySelector("[data-count]"), "?"); });
  }
  form.querySelectorAll("[name^=audience_]").forEach(function (el) {
    el.addEventListener("input", debounce(refreshAudience, 300));
  });
  refreshAudience();

  // Preview: render the unsaved form on a real member.
  var panel = document.getElementById("live-preview");
  if (!panel || !form.dataset.previewUrl) {
    return;
  }
  var memberSelect = document.getElementById("preview_member_id");
  var search = document.getElementById("preview_member_q");
  var channel = document.getElementById("preview_channel");

  function refreshPreview() {
    var body = new FormData(form);
    body.set("preview_channel", channel.value);
    if (memberSelect.value) {
      body.set("member_id", memberSelect.value);
    }
    fetch(form.dataset.previewUrl, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrf },
    })
      .then(function (r) { return r.json(); })
      .then(function (data) {
        var warnings = panel.querySelector("[data-warnings]");
        warnings.innerHTML = "";
        if (data.errors) {
          Object.keys(data.errors).forEach(function (key) {
            var li = document.createElement("li");
            li.className = "error";
            li.textContent = key.replace(/^content_/, "") + ": " + data.errors[key];
            warnings.appendChild(li);
          });
          return;
        }
        (data.warnings || []).forEach(function (w) {
          var li = document.createElement("li");
          li.className = "warning";
          li.textContent = w;
          warnings.appendChild(li);
        });
        text(panel.querySelector("[data-subject]"), data.subject ? panel.dataset.tSubject + " " + data.subject : "");
        text(panel.querySelector("[data-text]"), data.text);
        var facts = data.sms ? {
          characters: data.sms.characters, encoding: data.sms.encoding, segments: data.sms.segments,
          cost: data.sms.cost, member: data.member.name
        } : { member: data.member.name };
        text(panel.querySelector("[data-sms-count]"), fill(data.sms ? panel.dataset.tSms : panel.dataset.tFor, facts));
      });
  }

  search.addEventListener("input", debounce(function () {
    fetch(form.dataset.membersUrl + "?q=" + encodeURIComponent(search.value), { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (data) {
        memberSelect.innerHTML = "";
        data.members.forEach(function (m) {
          var option = document.createElement("option");
          option.value = m.id;
          option.textContent = m.name + " · " + m.card + " · " + m.locale;
          memberSelect.appendChild(option);
        });
        refreshPreview();
      });
  }, 300));
  memberSelect.addEventListener("change", refreshPreview);
  channel.addEventListener("change", refreshPreview);
  document.getElementById("preview-refresh").addEventListener("click", refreshPreview);
  form.querySelectorAll("textarea, [name$=_subject]").forEach(function (el) {
    el.addEventListener("input", debounce(refreshPreview, 400));
  });
  refreshPreview();
})();
