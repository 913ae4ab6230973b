// Behaviour shared by every page; each page works without it, this only adds conveniences.
// - Copy buttons: <button class="copy" data-copy="ID"> copies the text of element ID.
// - Typed confirmation: <input data-confirm="NAME" aria-controls="BUTTON"> enables BUTTON once NAME is typed.
// - Forms with data-confirm-message ask before they are sent.
// - Code blocks and tables too wide for the screen can be focused, so the keyboard can scroll them.
"use strict";

function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    return navigator.clipboard.writeText(text);
  }
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.className = "sr-only";
  document.body.appendChild(area);
  area.select();
  document.execCommand("copy");
  area.remove();
  return Promise.resolve();
}

function announce(button, words) {
  const original = button.dataset.label || button.textContent;
  button.dataset.label = original;
  button.textContent = words;
  setTimeout(() => { button.textContent = original; }, 1600);
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("button.copy");
  if (!button) return;
  const source = document.getElementById(button.dataset.copy);
  if (!source) return;
  copyText(source.textContent.trim()).then(
    () => announce(button, "Copied"),
    () => announce(button, "Copy failed"),
  );
});

for (const input of document.querySelectorAll("input[data-confirm]")) {
  const button = document.getElementById(input.getAttribute("aria-controls"));
  const update = () => { button.disabled = input.value.trim() !== input.dataset.confirm; };
  input.addEventListener("input", update);
  update();
}

document.addEventListener("submit", (event) => {
  const message = event.target.dataset.confirmMessage;
  if (message && !window.confirm(message)) event.preventDefault();
});

function focusScrollable() {
  for (const region of document.querySelectorAll("pre, .table-wrap")) {
    const scrolls = region.scrollWidth > region.clientWidth || region.scrollHeight > region.clientHeight;
    if (scrolls && !region.hasAttribute("tabindex")) {
      region.tabIndex = 0;
      region.dataset.scrollFocus = "";
    } else if (!scrolls && "scrollFocus" in region.dataset) {
      region.removeAttribute("tabindex");
      delete region.dataset.scrollFocus;
    }
  }
}
focusScrollable();
window.addEventListener("resize", focusScrollable);
