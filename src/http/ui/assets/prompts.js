// The prompts pages and the scores table: the chat messages editor (rows of role and content written back into the
// JSON textarea on submit, so the form works the same without this script), the type choice of a
// new prompt, and selects that submit their form (the diff page).
"use strict";

(function () {
  const ROLES = ["system", "user", "assistant", "developer", "tool"];

  function messageRow(list, message) {
    const row = document.createElement("div");
    row.className = "message-row";
    const role = document.createElement("input");
    role.type = "text";
    role.className = "message-role";
    role.setAttribute("list", "message-roles");
    role.setAttribute("aria-label", "Role");
    role.value = message.role || "";
    const content = document.createElement("textarea");
    content.className = "message-content mono";
    content.rows = 3;
    content.setAttribute("aria-label", "Content");
    const placeholder = message.type === "placeholder";
    content.value = placeholder ? message.name || "" : (typeof message.content === "string" ? message.content : JSON.stringify(message.content || ""));
    if (placeholder) {
      role.value = "placeholder";
    }
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "button small danger";
    remove.textContent = "Remove";
    remove.addEventListener("click", () => row.remove());
    row.append(role, content, remove);
    list.append(row);
    return row;
  }

  function chatEditor(textarea) {
    let messages;
    try {
      messages = JSON.parse(textarea.value || "[]");
    } catch (_) {
      return; // Leave the JSON as typed: the server says what is wrong with it.
    }
    if (!Array.isArray(messages)) return;
    const roles = document.createElement("datalist");
    roles.id = "message-roles";
    for (const r of ROLES) {
      const option = document.createElement("option");
      option.value = r;
      roles.append(option);
    }
    const list = document.createElement("div");
    list.className = "message-list";
    list.id = "message-rows";
    if (messages.length === 0) messages = [{ role: "system", content: "" }];
    for (const m of messages) messageRow(list, m);
    const add = document.createElement("button");
    add.type = "button";
    add.className = "button small";
    add.id = "add-message";
    add.textContent = "Add message";
    add.addEventListener("click", () => {
      const row = messageRow(list, { role: "user", content: "" });
      row.querySelector("textarea").focus();
    });
    textarea.hidden = true;
    const hint = textarea.parentElement.querySelector(".json-hint");
    if (hint) hint.hidden = true;
    const label = document.querySelector('label[for="' + textarea.id + '"]');
    if (label) label.textContent = "Chat messages";
    textarea.after(roles, list, add);
    textarea.form.addEventListener("submit", () => {
      const out = [];
      for (const row of list.querySelectorAll(".message-row")) {
        const role = row.querySelector(".message-role").value.trim();
        const content = row.querySelector(".message-content").value;
        if (role === "placeholder") out.push({ type: "placeholder", name: content.trim() });
        else out.push({ role: role, content: content });
      }
      textarea.value = JSON.stringify(out);
    });
  }

  function typeChoice(form) {
    const radios = form.querySelectorAll('input[name="type"][type="radio"]');
    if (radios.length === 0) return;
    const show = () => {
      const chosen = form.querySelector('input[name="type"]:checked');
      for (const part of form.querySelectorAll(".prompt-kind")) {
        part.hidden = chosen && part.getAttribute("data-kind") !== chosen.value;
      }
    };
    for (const r of radios) r.addEventListener("change", show);
    show();
  }

  // Empty filters stay out of the URL: they are disabled just before the form is sent, and
  // enabled again when the page is shown from the history.
  function compactFilters(form) {
    const fields = () => form.querySelectorAll("input[name], select[name]");
    form.addEventListener("submit", () => {
      for (const f of fields()) if (f.value === "") f.disabled = true;
    });
    window.addEventListener("pageshow", () => {
      for (const f of fields()) f.disabled = false;
    });
  }

  function start() {
    const filters = document.getElementById("score-filters");
    if (filters) compactFilters(filters);
    for (const textarea of document.querySelectorAll("textarea[data-chat-editor]")) chatEditor(textarea);
    const form = document.getElementById("prompt-form");
    if (form) typeChoice(form);
    for (const select of document.querySelectorAll("#diff-form select[data-autosubmit]")) {
      select.addEventListener("change", () => select.form.submit());
    }
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
