// The import job page while a worker reads the file: poll the job and move the bar; reload when
// it is done. A file, not an inline script: the Content Security Policy allows no inline scripts.
(function () {
  var url = document.currentScript.dataset.progressUrl;
  function poll() {
    fetch(url, {credentials: "same-origin"}).then(function (r) { return r.json(); }).then(function (data) {
      document.getElementById("job-progress").style.width = data.progress + "%";
      document.getElementById("job-status").textContent = data.status_display;
      document.getElementById("job-rows").textContent = data.rows_processed + (data.rows_total ? " / " + data.rows_total : "");
      if (data.running) { setTimeout(poll, 1500); } else { window.location.reload(); }
    }).catch(function () { setTimeout(poll, 5000); });
  }
  setTimeout(poll, 1000);
})();
