// langfuse-rs web UI: the trace page's tree folding, panel swap and keys. The page works
// without this file (the tree's links reload the page with ?observation=).
"use strict";

// The rows under `row` in the tree (the flat list's following rows of greater depth).
function descendants(rows, index) {
  const depth = Number(rows[index].dataset.depth);
  const out = [];
  for (let i = index + 1; i < rows.length && Number(rows[i].dataset.depth) > depth; i++) out.push(rows[i]);
  return out;
}

// Folding: a folded row hides its subtree; unfolding shows what is not folded below.
function folding(tree) {
  const rows = Array.from(tree.querySelectorAll("li.obs"));
  const apply = () => {
    let hideBelow = Infinity;
    for (const row of rows) {
      const depth = Number(row.dataset.depth);
      if (depth <= hideBelow) hideBelow = Infinity;
      row.hidden = depth > hideBelow;
      if (!row.hidden && row.classList.contains("folded")) hideBelow = Math.min(hideBelow, depth);
    }
  };
  rows.forEach((row) => {
    const button = row.querySelector("button.fold");
    if (!button) return;
    button.hidden = false;
    button.addEventListener("click", () => {
      const folded = row.classList.toggle("folded");
      button.setAttribute("aria-expanded", folded ? "false" : "true");
      apply();
    });
  });
  const setAll = (folded) => {
    for (const row of rows) {
      const button = row.querySelector("button.fold");
      if (!button || Number(row.dataset.depth) === 0) continue;
      row.classList.toggle("folded", folded);
      button.setAttribute("aria-expanded", folded ? "false" : "true");
    }
    apply();
  };
  for (const [id, folded] of [["tree-collapse", true], ["tree-expand", false]]) {
    const button = document.getElementById(id);
    if (!button) continue;
    button.hidden = false;
    button.addEventListener("click", () => setAll(folded));
  }
  // A large tree opens folded below its first levels, so it is readable at once.
  if (rows.length > 300) {
    for (const row of rows) {
      if (Number(row.dataset.depth) >= 2 && row.querySelector("button.fold")) {
        row.classList.add("folded");
        row.querySelector("button.fold").setAttribute("aria-expanded", "false");
      }
    }
    const selected = tree.querySelector("li.obs.selected");
    // Keep the selected row visible: unfold its ancestors.
    if (selected) {
      let depth = Number(selected.dataset.depth);
      for (let i = rows.indexOf(selected) - 1; i >= 0 && depth > 0; i--) {
        if (Number(rows[i].dataset.depth) < depth) {
          rows[i].classList.remove("folded");
          depth = Number(rows[i].dataset.depth);
        }
      }
    }
    apply();
  }
}

// Selecting an observation loads its panel alone and swaps it in; the address follows.
function panelSwap(tree, panel) {
  let current = null;
  const show = async (link, push) => {
    const url = new URL(link.href);
    const id = url.searchParams.get("observation");
    if (!id || !tree.dataset.fragments) return false;
    const fragment = tree.dataset.fragments + "/" + encodeURIComponent(id);
    const query = url.search;
    if (current) current.abort();
    current = new AbortController();
    panel.classList.add("loading");
    try {
      const response = await fetch(fragment + query, { signal: current.signal, credentials: "same-origin" });
      if (!response.ok) throw new Error(String(response.status));
      panel.innerHTML = await response.text();
    } catch (error) {
      if (error.name === "AbortError") return true;
      window.location.assign(link.href);
      return true;
    } finally {
      panel.classList.remove("loading");
    }
    for (const row of tree.querySelectorAll("li.obs.selected")) {
      row.classList.remove("selected");
      row.querySelector("a.obs-link").removeAttribute("aria-current");
    }
    const row = link.closest("li.obs");
    row.classList.add("selected");
    link.setAttribute("aria-current", "true");
    if (push) history.pushState({ fragment: true }, "", link.href);
    if (typeof localTimes === "function") localTimes(panel);
    if (typeof copyButtons === "function") copyButtons(panel);
    return true;
  };
  tree.addEventListener("click", (event) => {
    const link = event.target.closest("a.obs-link");
    if (!link || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    if (!new URL(link.href).searchParams.get("observation")) return;
    event.preventDefault();
    show(link, true);
  });
  window.addEventListener("popstate", () => window.location.reload());
}

// j/k: the next or previous trace of the list; Esc: back to the list.
function traceKeys() {
  document.addEventListener("keydown", (event) => {
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    const target = event.target;
    if (target instanceof HTMLElement &&
        (target.isContentEditable || ["INPUT", "SELECT", "TEXTAREA"].includes(target.tagName))) return;
    const ids = { j: "trace-next", k: "trace-prev", Escape: "trace-back" };
    const id = ids[event.key];
    if (!id) return;
    if (event.key === "Escape" && document.querySelector("details.menu[open]")) return;
    const link = document.getElementById(id);
    if (!link) return;
    event.preventDefault();
    window.location.assign(link.href);
  });
}

// The score form's value field says what its type takes.
function scoreHints() {
  const hints = { NUMERIC: "a number, e.g. 0.9", CATEGORICAL: "a category, e.g. good",
    BOOLEAN: "true or false", TEXT: "up to 500 characters" };
  document.addEventListener("change", (event) => {
    const select = event.target;
    if (!(select instanceof HTMLSelectElement) || select.name !== "data_type") return;
    const part = select.closest("[data-score-part]");
    const value = part && part.querySelector("input[name=value]");
    if (value) value.placeholder = hints[select.value] || "";
  });
}

// Choosing a score config shows its value input (a range, a select of its categories, True or
// False) instead of the free-form fields; only the shown part's inputs are enabled, so only
// they are posted. Without script the free-form value is posted and read as the config's type.
function showScorePart(select) {
  for (const part of select.form.querySelectorAll("[data-score-part]")) {
    const shown = part.getAttribute("data-score-part") === select.value;
    part.hidden = !shown;
    for (const input of part.querySelectorAll("input, select")) input.disabled = !shown;
  }
}

function scoreConfigs() {
  document.addEventListener("change", (event) => {
    const select = event.target;
    if (select instanceof HTMLSelectElement && select.hasAttribute("data-score-config")) {
      showScorePart(select);
    }
  });
  // A browser may restore a chosen config when the page is shown again.
  for (const select of document.querySelectorAll("select[data-score-config]")) {
    if (select.value) showScorePart(select);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  scoreHints();
  scoreConfigs();
  const tree = document.getElementById("obs-tree");
  const panel = document.getElementById("detail-panel");
  if (tree) folding(tree);
  if (tree && panel) panelSwap(tree, panel);
  traceKeys();
});
