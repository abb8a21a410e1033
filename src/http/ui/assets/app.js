// langfuse-rs web UI: small progressive enhancements. Every page works without this file.
"use strict";

// Times: the server writes UTC text; show it in the browser's time zone, with UTC on hover.
// A `<time data-ms>` (where durations matter) keeps its seconds and milliseconds. Pages that
// swap HTML in (assets/trace.js) call this on what they swapped in; each element is done once.
function localTimes(root) {
  for (const el of root.querySelectorAll("time[datetime]:not([data-local])")) {
    const at = new Date(el.getAttribute("datetime"));
    if (Number.isNaN(at.getTime())) continue;
    if (!el.title) el.title = el.textContent.trim();
    const options = {
      year: "numeric", month: "short", day: "numeric",
      hour: "2-digit", minute: "2-digit",
    };
    if (el.hasAttribute("data-ms")) {
      options.second = "2-digit";
      options.fractionalSecondDigits = 3;
    }
    el.textContent = at.toLocaleString(undefined, options);
    el.setAttribute("data-local", "");
  }
}

// Destructive forms ask first.
function confirmForms(root) {
  for (const form of root.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.getAttribute("data-confirm"))) event.preventDefault();
    });
  }
}

// Copy buttons (hidden without JavaScript, where there is nothing to click).
function copyButtons(root) {
  for (const button of root.querySelectorAll("button[data-copy]")) {
    const target = document.getElementById(button.getAttribute("data-copy"));
    if (!target || !navigator.clipboard) continue;
    button.hidden = false;
    button.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(target.textContent.trim());
        button.textContent = "Copied";
      } catch (_) {
        button.textContent = "Copy failed";
      }
      setTimeout(() => { button.textContent = "Copy"; }, 2000);
    });
  }
}

// An open menu closes when one clicks elsewhere or presses Escape.
function menus() {
  const open = () => document.querySelectorAll("details.menu[open]");
  document.addEventListener("click", (event) => {
    for (const menu of open()) if (!menu.contains(event.target)) menu.open = false;
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape") for (const menu of open()) menu.open = false;
  });
}

// The score config form (settings/scores): only the parts of the chosen data type are shown, and
// category rows can be added. Without script every part shows and the server ignores the others.
function configForms(root) {
  for (const select of root.querySelectorAll("select[data-config-type]")) {
    const form = select.form;
    const show = () => {
      for (const part of form.querySelectorAll("[data-for-type]")) {
        part.hidden = part.getAttribute("data-for-type") !== select.value;
      }
    };
    select.addEventListener("change", show);
    show();
    const add = form.querySelector("#add-category");
    const rows = form.querySelector("#category-rows");
    if (!add || !rows || !rows.lastElementChild) continue;
    add.hidden = false;
    add.addEventListener("click", () => {
      const row = rows.lastElementChild.cloneNode(true);
      for (const input of row.querySelectorAll("input")) input.value = "";
      rows.appendChild(row);
      row.querySelector("input").focus();
    });
  }
}

document.addEventListener("DOMContentLoaded", () => {
  configForms(document);
  localTimes(document);
  confirmForms(document);
  copyButtons(document);
  menus();
});
