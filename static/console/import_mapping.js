/* Column mapping of a contact import: keep the required marks of the consent fields true while the
   columns are chosen. The rule is the server's (campaigns.imports.import_requirements), which also
   decides on submit: on a promotional list, without a consent date column the confirmation is
   required, and then the wording version too unless a column gives it. */
document.addEventListener("DOMContentLoaded", () => {
  const form = document.querySelector("form[data-import-mapping]");
  if (!form || form.dataset.consentNeeded !== "1") return;
  const selects = Array.from(form.querySelectorAll("select[name^='col_']"));

  function setMark(fieldId, required) {
    const label = form.querySelector(`label[for='${fieldId}']`);
    if (!label) return;
    const host = label.classList.contains("checkbox") ? label.querySelector(":scope > span") : label;
    const mark = host.querySelector(".required-mark");
    if (required && !mark) {
      const added = document.createElement("span");
      added.className = "required-mark";
      added.textContent = form.dataset.requiredLabel;
      host.append(" ", added);
    } else if (!required && mark) {
      mark.remove();
    }
  }

  function update() {
    const targets = selects.map((select) => select.value);
    const dated = targets.includes("consent_granted_at");
    setMark("id_attested", !dated);
    setMark("id_wording_version", !dated && !targets.includes("consent_wording_version"));
  }

  selects.forEach((select) => select.addEventListener("change", update));
});
