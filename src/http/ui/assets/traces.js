// langfuse-rs web UI: the traces table's keys and filter form. The table works without this file.
"use strict";

// j/k move a visible selection over the rows, Enter opens the selected row's trace. The table is
// looked up on each key: the filter form may have swapped it for a new one.
function rowKeys() {
  const rows = () => {
    const table = document.getElementById("traces-table");
    return table ? Array.from(table.querySelectorAll("tbody tr")) : [];
  };
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
  // Empty fields stay out of the URL, so a shared link says only what filters it. The table is
  // fetched alone and swapped in: the page around it does not change with the filters.
  form.addEventListener("submit", (event) => {
    const params = new URLSearchParams();
    for (const [name, value] of new FormData(form)) if (value !== "") params.append(name, value);
    const query = params.toString();
    const url = form.action.split("?")[0] + (query ? "?" + query : "");
    const results = document.getElementById("traces-results");
    if (!results || !window.fetch) {
      for (const field of Array.from(form.elements)) {
        if (field.name && field.value === "" && !field.disabled) field.disabled = true;
      }
      return;
    }
    event.preventDefault();
    swapResults(results, url, true);
  });
  // Coming back to this page from the browser's history restores it as it was left: usable.
  window.addEventListener("pageshow", () => {
    for (const field of Array.from(form.elements)) field.disabled = false;
  });
}

// Fetches the table of `url` and puts it in place of `results`; the URL becomes the page's, so
// the filtered view is still a link (and Back returns to the previous filters). Anything but a
// table (an error page, a signed-out session) is shown as the whole page it is.
async function swapResults(results, url, push) {
  results.setAttribute("aria-busy", "true");
  try {
    const answer = await fetch(url, {
      headers: { "X-Lfrs-Results-Only": "1" },
      credentials: "same-origin",
    });
    if (!answer.ok || answer.redirected) throw new Error(String(answer.status));
    const page = new DOMParser().parseFromString(await answer.text(), "text/html");
    results.replaceChildren(...Array.from(page.body.childNodes));
    if (typeof localTimes === "function") localTimes(results);
    if (push) window.history.pushState({ tracesResults: true }, "", url);
  } catch (_) {
    window.location.assign(url);
  } finally {
    results.removeAttribute("aria-busy");
  }
}

// Pages of the same filters are swapped in as well.
function pagerLinks(results) {
  results.addEventListener("click", (event) => {
    const link = event.target instanceof Element ? event.target.closest("nav.pager a") : null;
    if (!link || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
    event.preventDefault();
    swapResults(results, link.href, true);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  rowKeys();
  const results = document.getElementById("traces-results");
  if (results) {
    pagerLinks(results);
    // Back and forward between swapped tables: the form shows the filters of the URL again.
    window.addEventListener("popstate", () => window.location.reload());
  }
  const form = document.getElementById("trace-filters");
  if (form) autoSubmit(form);
});
