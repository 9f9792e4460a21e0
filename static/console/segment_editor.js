/* The segment editor in the console (campaigns.admin.SegmentAdmin):
   - each condition row offers only the operators that fit its field (the options carry
     data-fields; the server checks again) and the period only for fields that have one;
   - the audience of the conditions as entered is counted while editing (POST of the form to
     the live-count URL, at most one request in flight, 400 ms after the last change). */
(function () {
  "use strict";

  function rowOf(element) {
    return element.closest("tr") || element.closest(".form-row") || element.parentElement;
  }

  function fitRow(fieldSelect) {
    const row = rowOf(fieldSelect);
    const operator = row.querySelector("select[name$='-operator']");
    const days = row.querySelector("input[name$='-days']");
    const field = fieldSelect.value;
    if (operator) {
      for (const option of operator.options) {
        if (!option.value) continue;
        const fits = !field || (option.dataset.fields || "").split(" ").includes(field);
        option.hidden = !fits;
        option.disabled = !fits;
      }
      const chosen = operator.options[operator.selectedIndex];
      if (!field) {
        operator.value = "";
      } else if (!chosen || !chosen.value || chosen.disabled) {
        const first = Array.from(operator.options).find((option) => option.value && !option.disabled);
        operator.value = first ? first.value : "";
      }
    }
    if (days) {
      const option = fieldSelect.options[fieldSelect.selectedIndex];
      const hasPeriod = option && option.dataset.period === "1";
      days.disabled = !hasPeriod;
      if (!hasPeriod) days.value = "";
    }
  }

  function start() {
    const form = document.getElementById("segment_form");
    const live = document.querySelector("[data-segment-live-count]");
    if (!form) return;
    let timer = null;
    let inFlight = false;
    let again = false;

    function count() {
      if (!live) return;
      if (inFlight) { again = true; return; }
      inFlight = true;
      fetch(live.dataset.url, {method: "POST", body: new FormData(form), credentials: "same-origin"})
        .then((response) => response.json())
        .then((answer) => { live.textContent = answer.text || answer.error || ""; })
        .catch(() => {})
        .finally(() => {
          inFlight = false;
          if (again) { again = false; count(); }
        });
    }

    function countSoon() {
      window.clearTimeout(timer);
      timer = window.setTimeout(count, 400);
    }

    const isCondition = (target) => target.name && target.name.startsWith("conditions-");
    form.addEventListener("change", (event) => {
      if (event.target.matches("select[name$='-field']")) fitRow(event.target);
      if (isCondition(event.target)) countSoon();
    });
    form.addEventListener("input", (event) => { if (isCondition(event.target)) countSoon(); });
    // Rows added with "Add another" are fitted once a field is chosen in them (change above).
    form.querySelectorAll("select[name^='conditions-'][name$='-field']").forEach(fitRow);
    count();
  }

  // The console loads this in <head>, before the form exists.
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
