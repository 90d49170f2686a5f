// Shared by the login and settings pages: the Tauri bridge (withGlobalTauri) and helpers.
"use strict";
const invoke = (cmd, args) => window.__TAURI__.core.invoke(cmd, args);
const $ = (id) => document.getElementById(id);
function show(el, on) { el.classList.toggle("hidden", !on); }
function errorText(e) {
  if (e && typeof e === "object" && e.message) return e.message.charAt(0).toUpperCase() + e.message.slice(1) + ".";
  return String(e);
}
