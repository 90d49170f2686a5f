"use strict";
let args = { account: null };

async function init() {
  args = await invoke("window_args");
  try {
    const s = await invoke("get_settings");
    const names = Object.keys(s.config.accounts || {});
    const current = args.account || s.default_account;
    if (names.length > 1) {
      const sel = $("account");
      for (const n of names) sel.add(new Option(n, n, n === current, n === current));
      show($("account-row"), true);
    }
    const acct = (s.config.accounts || {})[current] || {};
    $("email").value = acct.email || s.email || "";
    $("remember").checked = !!acct.remember_password;
  } catch (e) {
    fail(e);
  }
  ($("email").value ? $("password") : $("email")).focus();
}

function fail(e) {
  $("error").textContent = errorText(e);
  // the kind as the agent raised it (wrong_credentials, login_required, unavailable...)
  $("error").dataset.kind = (e && e.kind) || "";
  show($("error"), true);
}

async function submit(ev) {
  ev.preventDefault();
  show($("error"), false);
  show($("progress"), true);
  $("submit").disabled = true;
  const roleRow = !$("role-row").classList.contains("hidden");
  const accountRow = !$("account-row").classList.contains("hidden");
  try {
    await invoke("login", {
      email: $("email").value.trim(),
      password: $("password").value,
      account: accountRow ? $("account").value : args.account,
      roleArn: roleRow ? $("role").value : null,
      rememberPassword: $("remember").checked,
    });
    $("password").value = "";
    await invoke("finish");
  } catch (e) {
    if (e && e.kind === "role_choice" && e.roles) {
      const sel = $("role");
      sel.innerHTML = "";
      for (const r of e.roles) sel.add(new Option(r, r));
      show($("role-row"), true);
      $("error").textContent = "Pick a role, then log in again.";
      show($("error"), true);
    } else {
      fail(e);
      $("password").select();
    }
  } finally {
    show($("progress"), false);
    $("submit").disabled = false;
  }
}

$("form").addEventListener("submit", submit);
document.addEventListener("keydown", (e) => { if (e.key === "Escape") invoke("finish"); });
init();
