// The add-field form shows only the inputs of the chosen type (max length for text, code
// table for code, ...). Without this script they all show and the server ignores the others.
const type = document.getElementById("field-type");
function showInputsOf(t) {
  for (const el of document.querySelectorAll("#field-new [data-types]")) {
    el.hidden = !el.dataset.types.split(" ").includes(t);
  }
}
if (type) {
  type.addEventListener("change", () => showInputsOf(type.value));
  showInputsOf(type.value);
}
