// The status window: every account on one timeline (SVG, drawn to scale), its recent events,
// and the buttons that apply. It asks the agent for its overview once a second: the same
// account state the tray icon is drawn from. It redraws only when that state changes (or the
// window's width does), so keyboard focus stays where it is.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const POLL_MS = 1000;
const EVENTS_SHOWN = 20;
const STATES = {
  fresh: "valid", expiring: "expiring soon", expired: "expired",
  login_required: "login required", logged_out: "logged out",
};
const KINDS = {
  credentials_expire: "Credentials expire",
  renewal: "Renewal",
  keep_alive: "Session kept alive",
  session_idle_end: "Session idle end",
  session_max_end: "Session maximum end",
  login_needed: "Login needed",
  key_too_old: "Permanent key too old",
};
// the lane each kind is drawn in: 0 the credentials bar, 1 renewals, 2 the session and keys
const LANE = {
  credentials_expire: 0, renewal: 1, keep_alive: 1,
  session_idle_end: 2, session_max_end: 2, login_needed: 2, key_too_old: 2,
};

let last = null;      // the overview drawn
let lastKey = "";     // what it was drawn from (state + width)

function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function svgEl(tag, attrs) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  return e;
}

function sameDay(a, b) {
  return a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() && a.getDate() === b.getDate();
}

// Local time, with the date when it is not today.
function local(d, now) {
  const t = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  if (sameDay(d, now || new Date())) return t;
  return d.toLocaleDateString([], { month: "short", day: "numeric" }) + " " + t;
}

function utc(d) {
  return d.toISOString().replace("T", " ").replace(/:\d\d(\.\d+)?Z$/, " UTC");
}

function timeEl(iso, now) {
  const d = new Date(iso);
  return el("time", { datetime: d.toISOString(), title: utc(d) }, local(d, now));
}

function markWords(m, now) {
  const d = new Date(m.at);
  let w = KINDS[m.kind] || m.kind;
  if (m.detail) w += " " + m.detail;
  if (m.projected) w += " (projected)";
  return `${w}: ${local(d, now)} (${utc(d)})`;
}

// Hour ticks between from and to: every 1, 2, 3, 6 or 12 hours, or days, so that at most
// about one label per 70 px is drawn.
function ticks(from, to, width) {
  const span = to - from, hour = 3600e3;
  const steps = [hour, 2 * hour, 3 * hour, 6 * hour, 12 * hour, 24 * hour, 7 * 24 * hour];
  const most = Math.max(2, Math.floor(width / 70));
  const step = steps.find((s) => span / s <= most) || steps[steps.length - 1];
  const out = [];
  const first = new Date(from);
  first.setMinutes(0, 0, 0);
  for (let t = first.getTime(); t <= to; t += step) {
    if (t >= from) out.push(t);
  }
  return out;
}

function shape(kind, x, y) {
  switch (kind) {
    case "renewal": return svgEl("path", { class: "shape renewal", d: `M${x} ${y - 7} L${x + 6} ${y + 5} L${x - 6} ${y + 5} Z` });
    case "keep_alive": return svgEl("circle", { class: "shape keep_alive", cx: x, cy: y, r: 5 });
    case "session_idle_end":
    case "session_max_end": return svgEl("path", { class: "shape " + kind, d: `M${x} ${y - 7} L${x + 7} ${y} L${x} ${y + 7} L${x - 7} ${y} Z` });
    case "login_needed": return svgEl("path", { class: "shape login_needed", d: `M${x} ${y + 7} L${x} ${y - 8} L${x + 10} ${y - 5} L${x} ${y - 1}` });
    case "key_too_old": return svgEl("rect", { class: "shape key_too_old", x: x - 5, y: y - 5, width: 10, height: 10, rx: 2 });
    default: return svgEl("circle", { class: "shape end", cx: x, cy: y, r: 5 });
  }
}

const PAD = 12;

// The plot's inner width and its scale: a time (ms) to an x within [PAD, PAD + inner].
function scale(tl, width) {
  const from = new Date(tl.from).getTime(), to = new Date(tl.to).getTime();
  const inner = Math.max(100, width - 2 * PAD);
  return { from, to, inner, x: (t) => PAD + Math.min(1, Math.max(0, (t - from) / (to - from))) * inner };
}

function drawTimeline(acct, width, now, tip) {
  const tl = acct.timeline;
  const { from, to, inner, x } = scale(tl, width);
  // an account with nothing but a login to ask for gets one short lane
  const compact = !tl.marks.some((m) => LANE[m.kind] !== 2 || m.kind.startsWith("session"));
  const [lanes, axis, height] = compact ? [[16, 16, 16], 34, 54] : [[18, 44, 70], 92, 112];
  const name = acct.account;
  const svg = svgEl("svg", {
    class: "timeline", width, height, viewBox: `0 0 ${width} ${height}`, role: "group",
    "aria-label": `Timeline of account ${name}, from ${local(new Date(from), now)} to ${local(new Date(to), now)}`,
  });
  // the axis and its hours
  svg.appendChild(svgEl("line", { class: "axis", x1: PAD, y1: axis, x2: PAD + inner, y2: axis }));
  for (const t of ticks(from, to, inner)) {
    svg.appendChild(svgEl("line", { class: "grid", x1: x(t), y1: 6, x2: x(t), y2: axis + 4 }));
    const label = svgEl("text", { class: "hour", x: x(t), y: axis + 16, "text-anchor": "middle", "aria-hidden": "true" });
    label.textContent = local(new Date(t), now);
    svg.appendChild(label);
  }
  // the current credentials: a bar from the left edge (they are valid now) to their end
  const exp = tl.marks.find((m) => m.kind === "credentials_expire");
  if (exp) {
    const end = new Date(exp.at).getTime();
    if (end > from) {
      svg.appendChild(svgEl("rect", { class: "bar", x: PAD, y: lanes[0] - 6, width: Math.max(2, x(end) - PAD), height: 12, rx: 3, "aria-hidden": "true" }));
    }
  }
  // now: moves between redraws (see tick())
  svg.appendChild(svgEl("line", { class: "now", x1: x(now.getTime()), y1: 4, x2: x(now.getTime()), y2: axis, "data-now": "1" }));
  // the marks, each focusable, with its exact time on hover and focus
  const nth = {};
  tl.marks.forEach((m) => {
    const t = new Date(m.at).getTime();
    // an id that stays across redraws (a "now" mark moves with each look): kind and rank
    nth[m.kind] = (nth[m.kind] || 0) + 1;
    const mx = x(t), y = lanes[LANE[m.kind] ?? 2];
    const words = markWords(m, now);
    const g = svgEl("g", {
      class: `mark ${m.kind}${m.projected ? " projected" : ""}${t < from || t > to ? " off-scale" : ""}`,
      tabindex: "0", role: "img", "aria-label": words,
      "data-kind": m.kind, "data-at": new Date(m.at).toISOString(), "data-id": `${name}/${m.kind}/${nth[m.kind]}`,
    });
    const title = svgEl("title");
    title.textContent = words;
    g.appendChild(title);
    g.appendChild(svgEl("line", { class: "stem", x1: mx, y1: y, x2: mx, y2: axis }));
    g.appendChild(shape(m.kind, mx, y));
    const say = () => { tip.textContent = words; tip.classList.remove("hidden"); };
    g.addEventListener("mouseenter", say);
    g.addEventListener("focus", say);
    svg.appendChild(g);
  });
  return svg;
}

// What the picture says, in one sentence (its text alternative beside the marks' own).
function summary(acct, now) {
  const first = (k) => acct.timeline.marks.find((m) => m.kind === k && new Date(m.at) >= new Date(acct.timeline.from));
  const parts = [];
  const at = (iso) => local(new Date(iso), now);
  if (acct.credentials_expire_at) {
    const e = new Date(acct.credentials_expire_at);
    parts.push((e > now ? "credentials valid until " : "credentials expired at ") + at(acct.credentials_expire_at));
  } else {
    parts.push("no credentials");
  }
  const r = first("renewal");
  if (r) parts.push("next renewal " + at(r.at));
  const k = first("keep_alive");
  if (k) parts.push("session kept alive at " + at(k.at));
  const idle = first("session_idle_end");
  if (idle) parts.push("session idle end " + at(idle.at));
  const max = first("session_max_end");
  if (max) parts.push("session ends for good at " + at(max.at));
  const login = acct.timeline.marks.find((m) => m.kind === "login_needed");
  if (login) parts.push(new Date(login.at) <= now ? "a login is needed now" : "a login is needed by " + at(login.at));
  else if (acct.logged_in) parts.push("no login needed as far as known");
  for (const key of acct.permanent_keys || []) {
    parts.push(`permanent key ${key.access_key_id} is ${key.age_days} days old`);
  }
  const s = parts.join("; ");
  return s.charAt(0).toUpperCase() + s.slice(1) + ".";
}

function button(label, id, run, primary) {
  const b = el("button", { type: "button", id, class: primary ? "primary" : "" }, label);
  b.addEventListener("click", async () => {
    b.disabled = true;
    try { await run(); } catch (e) { say(errorText(e), true); } finally { b.disabled = false; }
  });
  return b;
}

function say(text, bad) {
  const m = $("message");
  m.textContent = text;
  m.className = bad ? "error" : "ok";
}

function accountSection(acct, events, width, now) {
  const name = acct.account;
  const sec = el("section", { class: "account", "aria-labelledby": `h-${name}`, "data-account": name });
  const h = el("h2", { id: `h-${name}` }, name + " ");
  const state = acct.failures > 0 && acct.logged_in && acct.state !== "login_required" ? "failing" : acct.state;
  h.appendChild(el("span", { class: `state ${state}` }, state === "failing" ? "renewing keeps failing" : STATES[acct.state] || acct.state));
  sec.appendChild(h);
  const who = [`profile ${acct.profile}`];
  if (acct.email) who.push(acct.email);
  if (acct.offline_session) who.push("offline session");
  sec.appendChild(el("p", { class: "who" }, who.join(" · ")));
  if (acct.last_error) sec.appendChild(el("p", { class: "error small" }, errorText({ message: acct.last_error })));
  sec.appendChild(el("p", { class: "summary", id: `sum-${name}` }, summary(acct, now)));
  const tip = el("p", { class: "tip hidden", "aria-live": "polite", id: `tip-${name}` });
  const svg = drawTimeline(acct, width, now, tip);
  svg.setAttribute("aria-describedby", `sum-${name}`);
  const wrap = el("div", { class: "plot" });
  wrap.appendChild(svg);
  sec.appendChild(wrap);
  sec.appendChild(tip);

  const acts = el("div", { class: "actions" });
  const a = { account: name };
  acts.appendChild(button(acct.state === "login_required" ? "Log in again…" : "Log in…", `login-${name}`,
    () => invoke("show", { window: "login", account: name }), !acct.logged_in || acct.state === "login_required"));
  if (acct.logged_in) {
    acts.appendChild(button("Refresh now", `refresh-${name}`, async () => {
      say("Renewing…");
      const r = await invoke("refresh", a);
      say(`Profile ${r.profile} renewed.`);
    }));
    acts.appendChild(button("Log out", `logout-${name}`, async () => {
      await invoke("logout", a);
      say(`Logged out of ${name}.`);
    }));
  }
  acts.appendChild(button("Settings…", `settings-${name}`, () => invoke("show", { window: "settings", account: name })));
  if (acct.credentials_expire_at) {
    acts.appendChild(button("Copy export lines", `copy-${name}`, async () => {
      await invoke("copy_export", a);
      say("The export lines are on the clipboard.");
    }));
  }
  sec.appendChild(acts);

  sec.appendChild(el("h3", {}, "Recent events"));
  const mine = events.filter((e) => e.account === name).slice(0, EVENTS_SHOWN);
  const list = el("ol", { class: "events", "aria-label": `Recent events of account ${name}, newest first` });
  if (!mine.length) list.appendChild(el("li", { class: "none" }, "Nothing yet since the agent started."));
  for (const e of mine) {
    const li = el("li", { class: `event ${e.kind}`, "data-kind": e.kind });
    li.appendChild(timeEl(e.at, now));
    li.appendChild(document.createTextNode(" "));
    li.appendChild(el("span", {}, e.words.charAt(0).toUpperCase() + e.words.slice(1)));
    list.appendChild(li);
  }
  sec.appendChild(list);
  return sec;
}

function draw(ov) {
  const now = new Date();
  const root = $("accounts");
  const width = Math.max(300, Math.floor(root.clientWidth || document.body.clientWidth - 48));
  const key = JSON.stringify([ov.accounts, ov.events, ov.problem]) + "|" + width;
  const d = new Date(ov.now);
  $("updated").textContent = `As the tray sees it, ${d.toLocaleTimeString()}.`;
  if (key === lastKey) {
    moveNow(now);
    return;
  }
  lastKey = key;
  last = ov;
  // keep the focus on the same mark or button across a redraw
  const focused = document.activeElement;
  const keep = focused && (focused.getAttribute("data-id") || focused.id);
  show($("problem"), !!ov.problem);
  $("problem").textContent = ov.problem ? errorText({ message: ov.problem }) : "";
  // the default account first, the others in the config's order
  const shown = [...ov.accounts].sort((a, b) => (b.account === ov.default_account) - (a.account === ov.default_account));
  root.replaceChildren(...shown.map((a) => accountSection(a, ov.events, width, now)));
  if (keep) {
    const again = root.querySelector(`[data-id="${CSS.escape(keep)}"]`) || document.getElementById(keep);
    if (again) again.focus();
  }
}

// Between redraws only the "now" line moves.
function moveNow(now) {
  if (!last) return;
  for (const sec of document.querySelectorAll("section.account")) {
    const acct = last.accounts.find((a) => a.account === sec.getAttribute("data-account"));
    const line = sec.querySelector("line.now");
    if (!acct || !line) continue;
    const width = Number(sec.querySelector("svg.timeline").getAttribute("width"));
    const x = scale(acct.timeline, width).x(now.getTime());
    line.setAttribute("x1", x);
    line.setAttribute("x2", x);
  }
}

async function tick() {
  try {
    draw(await invoke("overview"));
  } catch (e) {
    $("updated").textContent = "The agent does not answer: " + errorText(e);
  }
  setTimeout(tick, POLL_MS);
}

window.addEventListener("resize", () => { if (last) { lastKey = ""; draw(last); } });
window.addEventListener("keydown", (e) => { if (e.key === "Escape") invoke("finish"); });
tick();
