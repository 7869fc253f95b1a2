// Progressive enhancement only: every page works without this file.
// Adds a copy button next to each pull command.
"use strict";
document.querySelectorAll(".pull code").forEach(function (code) {
  if (!navigator.clipboard) return;
  var b = document.createElement("button");
  b.type = "button";
  b.textContent = "Copy";
  b.setAttribute("aria-label", "Copy: " + code.textContent);
  b.addEventListener("click", function () {
    navigator.clipboard.writeText(code.textContent).then(function () {
      b.textContent = "Copied";
      setTimeout(function () { b.textContent = "Copy"; }, 1500);
    }, function () { b.textContent = "Copy failed"; });
  });
  code.after(b);
});
