// langfuse-rs web UI: the traces table's keys and filter form. The table works without this file.
"use strict";

// j/k move a visible selection over the rows, Enter opens the selected row's trace.
function rowKeys(table) {
  const rows = () => Array.from(table.querySelectorAll("tbody tr"));
  let selected = -1;
  const select = (index) => {
    const all = rows();
    if (all.length === 0) return;
    selected = Math.max(0, Math.min(all.length - 1, index));
    all.forEach((row, i) => {
      row.classList.toggle("selected", i === selected);
      if (i === selected) row.setAttribute("aria-selected", "true");
      else row.removeAttribute("aria-selected");
    });
    all[selected].scrollIntoView({ block: "nearest" });
  };
  document.addEventListener("keydown", (event) => {
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    const target = event.target;
    // Typing in a field is the field's; Enter on a focused link or button is theirs.
    if (!(target instanceof HTMLElement)) return;
    if (target.isContentEditable || ["INPUT", "SELECT", "TEXTAREA"].includes(target.tagName)) return;
    if (event.key === "Enter" && ["A", "BUTTON", "SUMMARY"].includes(target.tagName)) return;
    if (event.key === "j") {
      select(selected + 1);
    } else if (event.key === "k") {
      select(selected < 0 ? 0 : selected - 1);
    } else if (event.key === "Enter" && selected >= 0) {
      const link = rows()[selected].querySelector("a.row-link");
      if (link) {
        event.preventDefault();
        window.location.assign(link.href);
      }
    } else {
      return;
    }
    if (event.key !== "Enter") event.preventDefault();
  });
}

// Menus of the filter form apply as soon as they change.
function autoSubmit(form) {
  for (const field of form.querySelectorAll("select[data-autosubmit]")) {
    field.addEventListener("change", () => {
      // A preset range replaces typed times; typed times replace the preset.
      if (field.name === "range" && field.value !== "") {
        for (const name of ["from", "to"]) form.elements[name].value = "";
      }
      form.requestSubmit();
    });
  }
  // Empty fields stay out of the URL, so a shared link says only what filters it.
  form.addEventListener("submit", () => {
    for (const field of Array.from(form.elements)) {
      if (field.name && field.value === "" && !field.disabled) field.disabled = true;
    }
  });
  // Coming back to this page from the browser's history restores it as it was left: usable.
  window.addEventListener("pageshow", () => {
    for (const field of Array.from(form.elements)) field.disabled = false;
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const table = document.getElementById("traces-table");
  if (table) rowKeys(table);
  const form = document.getElementById("trace-filters");
  if (form) autoSubmit(form);
});
