// The runs index: filter rows by verdict and text.
(function () {
  "use strict";
  const boxes = Array.from(document.querySelectorAll("#filters input[data-verdict]"));
  const text = document.getElementById("filter-text");
  function apply() {
    const shown = new Set(boxes.filter((b) => b.checked).map((b) => b.dataset.verdict));
    const needle = text.value.toLowerCase();
    for (const row of document.querySelectorAll("#runs-table tr.run")) {
      row.hidden = !shown.has(row.dataset.verdict) || !row.textContent.toLowerCase().includes(needle);
    }
  }
  boxes.forEach((b) => b.addEventListener("change", apply));
  text.addEventListener("input", apply);
})();
