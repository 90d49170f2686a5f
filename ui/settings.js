"use strict";
const TEXT = ["email", "token_url", "client_id", "sts_endpoint", "region", "profile"];
const NUM = ["duration_seconds", "refresh_lead_seconds", "notice_lead_seconds", "max_key_age_days"];
let loaded = null;

async function init() {
  try {
    loaded = await invoke("get_settings");
    $("path").textContent = loaded.config_path;
    const name = loaded.default_account;
    const a = (loaded.config.accounts || {})[name] || {};
    $("account").value = name;
    $("make_default").checked = true;
    for (const k of TEXT) { $(k).value = a[k] || ""; $(k).placeholder = loaded.defaults[k] || ""; }
    for (const k of NUM) { $(k).value = a[k] == null ? "" : a[k]; $(k).placeholder = loaded.defaults[k] || "auto"; }
    $("credential_mode").value = a.credential_mode || "";
  } catch (e) {
    $("error").textContent = errorText(e);
    show($("error"), true);
  }
}

async function save(ev) {
  ev.preventDefault();
  show($("error"), false);
  show($("saved"), false);
  const name = $("account").value.trim();
  const before = ((loaded && loaded.config.accounts) || {})[name] || {};
  const settings = Object.assign({}, before);
  for (const k of TEXT) settings[k] = $(k).value.trim() || null;
  for (const k of NUM) settings[k] = $(k).value === "" ? null : Number($(k).value);
  settings.credential_mode = $("credential_mode").value || null;
  try {
    await invoke("save_settings", { account: name, settings, makeDefault: $("make_default").checked });
    loaded = await invoke("get_settings");
    show($("saved"), true);
  } catch (e) {
    $("error").textContent = errorText(e);
    show($("error"), true);
  }
}

$("form").addEventListener("submit", save);
document.addEventListener("keydown", (e) => { if (e.key === "Escape") invoke("finish"); });
init();
