"use strict";
const TEXT = ["email", "token_url", "client_id", "authorize_url", "device_url", "sts_endpoint", "region", "profile"];
const NUM = ["duration_seconds", "refresh_lead_seconds", "notice_lead_seconds", "max_key_age_days"];
let loaded = null;

async function init() {
  try {
    const [got, args] = await Promise.all([invoke("get_settings"), invoke("window_args")]);
    loaded = got;
    $("path").textContent = loaded.config_path;
    // the account asked for (the status window's Settings… of an account), else the default
    const name = args.account || loaded.default_account;
    const a = (loaded.config.accounts || {})[name] || {};
    $("account").value = name;
    $("make_default").checked = name === loaded.default_account;
    for (const k of TEXT) { $(k).value = a[k] || ""; $(k).placeholder = loaded.defaults[k] || ""; }
    for (const k of NUM) { $(k).value = a[k] == null ? "" : a[k]; $(k).placeholder = loaded.defaults[k] || "auto"; }
    $("credential_mode").value = a.credential_mode || "";
    $("auth").value = a.auth || "";
    $("offline").value = a.offline == null ? "" : String(a.offline);
    besideToken();
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
  settings.auth = $("auth").value || null;
  settings.offline = $("offline").value === "" ? null : $("offline").value === "true";
  try {
    await invoke("save_settings", { account: name, settings, makeDefault: $("make_default").checked });
    loaded = await invoke("get_settings");
    show($("saved"), true);
  } catch (e) {
    $("error").textContent = errorText(e);
    show($("error"), true);
  }
}

// Keycloak's endpoints sit beside the token endpoint: shown as the placeholders
function besideToken() {
  const t = ($("token_url").value.trim() || (loaded && loaded.defaults.token_url) || "");
  const base = t.endsWith("/token") ? t.slice(0, -"/token".length) : null;
  $("authorize_url").placeholder = base ? base + "/auth" : "";
  $("device_url").placeholder = base ? base + "/auth/device" : "";
}

$("token_url").addEventListener("input", besideToken);
$("form").addEventListener("submit", save);
document.addEventListener("keydown", (e) => { if (e.key === "Escape") invoke("finish"); });
init();
