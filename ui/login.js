"use strict";
let args = { account: null };
let settings = null;
// the account whose browser or device login is waiting, or null
let waiting = null;

function authOf(name) {
  return (settings && settings.auth && settings.auth[name]) || "password";
}

function currentAccount() {
  const ssoRow = !$("sso-account-row").classList.contains("hidden");
  if (ssoRow) return $("sso-account").value;
  const row = !$("account-row").classList.contains("hidden");
  return row ? $("account").value : (args.account || (settings && settings.default_account));
}

// the face of the window for the chosen account: the password form, or the browser/device one
function face() {
  const auth = authOf(currentAccount());
  const sso = auth === "browser" || auth === "device";
  show($("form"), !sso);
  show($("sso"), sso);
  $("sso-begin").textContent = auth === "device" ? "Get a sign-in code" : "Sign in with your browser";
  $("sso-intro").textContent = auth === "device"
    ? "You sign in on another device: this window shows a code and an address to open there."
    : "Your company signs you in. Your browser opens its sign-in page; come back here when it says you are logged in.";
  document.title = "Log in to Astran";
  if (sso) $("sso-begin").focus();
}

function ssoState(state) {
  show($("sso-start"), state === "start");
  show($("sso-browser"), state === "browser");
  show($("sso-device"), state === "device");
  show($("sso-cancel"), state === "browser" || state === "device");
  $("sso-account").disabled = state !== "start";
}

async function begin() {
  show($("error"), false);
  const account = currentAccount();
  $("sso-begin").disabled = true;
  try {
    const r = await invoke("login_begin", { account, roleArn: null });
    waiting = account;
    const p = r.prompt;
    if (p.kind === "device") {
      $("device-url").value = p.verification_uri_complete || p.verification_uri;
      $("device-code").textContent = p.user_code;
      // the agent's own SVG (qrcode crate), not a page's: shown as an image
      $("device-qr").innerHTML = "";
      if (r.qr_svg) {
        const img = new Image();
        img.alt = "QR code of " + $("device-url").value;
        img.src = "data:image/svg+xml;charset=utf-8," + encodeURIComponent(r.qr_svg);
        $("device-qr").appendChild(img);
      }
      ssoState("device");
    } else {
      $("sso-url").value = p.url;
      ssoState("browser");
    }
    $("sso-cancel").focus();
    await invoke("login_wait", { account });
    waiting = null;
    await invoke("finish");
  } catch (e) {
    const cancelled = waiting === null;
    waiting = null;
    ssoState("start");
    if (!cancelled) fail(e);
  } finally {
    $("sso-begin").disabled = false;
  }
}

async function cancel() {
  const account = waiting;
  waiting = null;
  ssoState("start");
  if (account !== null) {
    try { await invoke("login_cancel", { account }); } catch (e) { fail(e); }
  }
  $("sso-begin").focus();
}

async function init() {
  args = await invoke("window_args");
  try {
    const s = await invoke("get_settings");
    settings = s;
    const names = Object.keys(s.config.accounts || {});
    const current = args.account || s.default_account;
    if (names.length > 1) {
      for (const id of ["account", "sso-account"]) {
        const sel = $(id);
        for (const n of names) sel.add(new Option(n, n, n === current, n === current));
      }
      show($("account-row"), true);
      show($("sso-account-row"), true);
    }
    const acct = (s.config.accounts || {})[current] || {};
    $("email").value = acct.email || s.email || "";
    $("remember").checked = !!acct.remember_password;
  } catch (e) {
    fail(e);
  }
  ($("email").value ? $("password") : $("email")).focus();
  face();
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
$("sso-begin").addEventListener("click", begin);
$("sso-cancel").addEventListener("click", cancel);
// one account list for both faces: switching to an account that logs in otherwise changes it
$("account").addEventListener("change", () => { $("sso-account").value = $("account").value; face(); });
$("sso-account").addEventListener("change", () => { $("account").value = $("sso-account").value; face(); });
document.addEventListener("keydown", async (e) => {
  if (e.key !== "Escape") return;
  if (waiting !== null) await cancel();
  invoke("finish");
});
init();
