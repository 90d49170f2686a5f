// The confirmation window of the tray's "Permanent key…" items: create, rotate, delete. The
// work is the agent's (the same as `astran-creds keys …`); the secret never comes here.
"use strict";
let args = {};

const WORDS = {
  create: {
    title: "Create a permanent key",
    button: "Create key",
    progress: "Creating the key…",
    what: (p) => `A new access key for your user, written to profile ${p} of your credentials file.`,
  },
  rotate: {
    title: "Rotate the permanent key",
    button: "Rotate now",
    progress: "Creating the new key and checking that it works…",
    what: (p) => `A new key replaces the one in profile ${p}; the old key is deleted once the new one works.`,
  },
  delete: {
    title: "Delete a permanent key",
    button: "Delete key",
    progress: "Deleting the key…",
    what: () => "Whatever uses the key you choose stops working. Our profile that holds it is removed.",
  },
};

function fail(e) {
  $("error").textContent = errorText(e);
  $("error").dataset.kind = (e && e.kind) || "";
  show($("error"), true);
}

function selectedKey() {
  const r = document.querySelector("input[name=key]:checked");
  return r ? r.value : null;
}

function listKeys(report) {
  const ul = $("keys");
  ul.textContent = "";
  for (const k of report.keys) {
    const li = document.createElement("li");
    const label = document.createElement("label");
    const held = k.profile ? `profile ${k.profile}` : "no profile of ours";
    const text = `${k.access_key_id} · ${k.status} · ${k.age_days} days · ${held}`;
    if (args.key_action === "delete") {
      const radio = document.createElement("input");
      radio.type = "radio";
      radio.name = "key";
      radio.value = k.access_key_id;
      radio.addEventListener("change", () => { $("confirm").disabled = false; });
      label.append(radio, text);
    } else {
      label.textContent = text;
    }
    li.append(label);
    ul.append(li);
  }
  if (!report.keys.length) {
    const li = document.createElement("li");
    li.textContent = "Your user has no access keys.";
    ul.append(li);
  }
  show($("current"), true);
}

async function init() {
  args = await invoke("window_args");
  const w = WORDS[args.key_action] || WORDS.create;
  $("title").textContent = w.title;
  $("what").textContent = w.what(args.profile || "its own profile");
  $("confirm").textContent = w.button;
  $("progress-text").textContent = w.progress;
  if (args.key_action === "create" || !WORDS[args.key_action]) {
    $("warning").textContent = args.warning;
    show($("warning"), true);
  }
  $("confirm").disabled = args.key_action === "delete";
  $("cancel").focus();
  await refreshList(w);
}

async function refreshList(w) {
  try {
    const report = await invoke("keys_list", { account: args.account });
    // the profile the agent will write, as the CLI would
    $("what").textContent = w.what(args.profile || report.default_profile);
    listKeys(report);
  } catch (e) {
    fail(e);
  }
}

function done(text) {
  refreshList(WORDS[args.key_action] || WORDS.create);
  $("result").textContent = text;
  show($("result"), true);
  show($("buttons"), false);
  show($("close"), true);
  $("close").focus();
}

async function confirm() {
  show($("error"), false);
  show($("progress"), true);
  $("confirm").disabled = true;
  $("cancel").disabled = true;
  const account = args.account;
  try {
    if (args.key_action === "delete") {
      const key = selectedKey();
      const r = await invoke("keys_delete", { account, keyId: key });
      const removed = r.profiles_removed.length ? `; removed profile ${r.profiles_removed.join(", ")}` : "";
      done(`Deleted the access key ${r.access_key_id}${removed}.`);
    } else {
      const cmd = args.key_action === "rotate" ? "keys_rotate" : "keys_create";
      const r = await invoke(cmd, { account, profile: args.profile });
      const replaced = r.replaced ? `, replacing ${r.replaced} (deleted)` : "";
      const notes = r.warnings.length ? ` Note: ${r.warnings.join("; ")}.` : "";
      done(`Access key ${r.access_key_id} of user ${r.user_name}, created ${r.created}, is in profile ${r.profile}${replaced}.${notes}`);
    }
  } catch (e) {
    fail(e);
    $("confirm").disabled = args.key_action === "delete" && !selectedKey();
    $("cancel").disabled = false;
  } finally {
    show($("progress"), false);
  }
}

$("confirm").addEventListener("click", confirm);
$("cancel").addEventListener("click", () => invoke("finish"));
$("close").addEventListener("click", () => invoke("finish"));
document.addEventListener("keydown", (e) => { if (e.key === "Escape") invoke("finish"); });
init();
