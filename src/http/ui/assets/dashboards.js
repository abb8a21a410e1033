// Dashboards: the widget editor offers only the measures and dimensions of the chosen view,
// and a dashboard's widgets can be dragged by their titles; the new order is posted with the
// page's layout form (CSRF token included), as the arrow buttons would. Everything works
// without this file.
"use strict";

function editorViews() {
  const view = document.getElementById("widget-view");
  if (!view) return;
  const selects = [document.getElementById("widget-measure"),
    ...document.querySelectorAll("select.widget-dimension")].filter(Boolean);
  const apply = () => {
    for (const select of selects) {
      for (const group of select.querySelectorAll("optgroup")) {
        const here = group.getAttribute("data-view") === view.value;
        group.hidden = !here;
        for (const option of group.querySelectorAll("option")) option.disabled = !here;
      }
      const chosen = select.selectedOptions[0];
      if (chosen && chosen.disabled) {
        const first = select.querySelector("option:not([disabled])");
        if (first) first.selected = true;
      }
    }
  };
  view.addEventListener("change", apply);
  apply();
}

function dragWidgets() {
  const grid = document.querySelector(".widget-grid[data-arrange]");
  const form = document.getElementById("layout-form");
  if (!grid || !form) return;
  const hint = document.querySelector(".drag-hint");
  if (hint) hint.hidden = false;
  let dragged = null;
  for (const widget of grid.querySelectorAll(".widget")) {
    const handle = widget.querySelector(".widget-title");
    handle.addEventListener("dragstart", (event) => {
      dragged = widget;
      widget.classList.add("dragging");
      event.dataTransfer.effectAllowed = "move";
      event.dataTransfer.setData("text/plain", widget.getAttribute("data-widget"));
    });
    handle.addEventListener("dragend", () => {
      widget.classList.remove("dragging");
      for (const w of grid.querySelectorAll(".drop-target")) w.classList.remove("drop-target");
    });
    widget.addEventListener("dragover", (event) => {
      if (!dragged || dragged === widget) return;
      event.preventDefault();
      widget.classList.add("drop-target");
    });
    widget.addEventListener("dragleave", () => widget.classList.remove("drop-target"));
    widget.addEventListener("drop", (event) => {
      event.preventDefault();
      if (!dragged || dragged === widget) return;
      const widgets = [...grid.querySelectorAll(".widget")];
      const before = widgets.indexOf(dragged) > widgets.indexOf(widget);
      grid.insertBefore(dragged, before ? widget : widget.nextSibling);
      const layout = [...grid.querySelectorAll(".widget")]
        .map((w) => `${w.getAttribute("data-widget")}:${w.getAttribute("data-width")}`)
        .join(",");
      form.querySelector("input[name=layout]").value = layout;
      form.submit();
    });
  }
}

document.addEventListener("DOMContentLoaded", () => {
  editorViews();
  dragWidgets();
});
