// labnet console: the one script, embedded in the binary. Copies an invite token.
document.addEventListener("click", function (e) {
  var button = e.target.closest("[data-copy]");
  if (!button) return;
  var field = document.getElementById(button.getAttribute("data-copy"));
  if (!field) return;
  field.select();
  if (navigator.clipboard) { navigator.clipboard.writeText(field.value); }
  else { document.execCommand("copy"); }
  button.textContent = "Copied";
});
