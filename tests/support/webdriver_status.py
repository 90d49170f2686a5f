#!/usr/bin/env python3
"""Drive the status window through tauri-driver (WebDriver) against a running agent.

With --via-menu SERVICE the WebDriver application is the tray agent itself (already set up
by the caller's environment); the window is opened by clicking the tray menu's "Status…"
through the test StatusNotifier host, and the session attaches to it. Otherwise the window
binary is started with --status.

It reads every account's marks, clicks "Refresh now" and waits for the picture to follow the
renewal, sets an IdP fault (HTTP 503) and clicks again to see the failure event, walks the
marks with the Tab key, checks the layout at 400 px, and takes screenshots. Prints one JSON
line with what it saw."""
import argparse
import json
import pathlib
import subprocess
import sys
import threading
import time
import urllib.request

from selenium import webdriver
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.common.options import ArgOptions
from selenium.webdriver.support.ui import WebDriverWait

from webdriver_common import click as dom_click, x_screenshot_painted, quit_session

p = argparse.ArgumentParser()
p.add_argument("--driver", required=True)
p.add_argument("--app", required=True)
p.add_argument("--idp", required=True, help="the test IdP's base URL (faults)")
p.add_argument("--shots", required=True)
p.add_argument("--via-menu", metavar="FILE",
               help="the StatusNotifier host's item file: the app is the tray agent, and the "
                    "window is opened from the menu of the item it registers")
p.add_argument("--python", default=sys.executable)
p.add_argument("--socket", help="the agent's control socket: log in through it first")
p.add_argument("--email")
p.add_argument("--password")
a = p.parse_args()
here = pathlib.Path(__file__).parent
shots = pathlib.Path(a.shots)
shots.mkdir(parents=True, exist_ok=True)
seen = {}

MARKS_JS = """
return Array.from(document.querySelectorAll('section.account')).map(s => ({
  account: s.getAttribute('data-account'),
  state: s.querySelector('.state').textContent,
  summary: s.querySelector('.summary').textContent,
  marks: Array.from(s.querySelectorAll('g.mark')).map(g => ({
    kind: g.getAttribute('data-kind'), at: g.getAttribute('data-at'),
    id: g.getAttribute('data-id'), label: g.getAttribute('aria-label'),
    projected: g.classList.contains('projected'),
    title: g.querySelector('title').textContent,
    focusable: g.getAttribute('tabindex') === '0'})),
  events: Array.from(s.querySelectorAll('ol.events li.event')).map(li => ({
    kind: li.getAttribute('data-kind'), text: li.querySelector('span').textContent,
    local: li.querySelector('time').textContent, utc: li.querySelector('time').getAttribute('title')})),
  buttons: Array.from(s.querySelectorAll('.actions button')).map(b => b.textContent)}));
"""


def fault(mode):
    req = urllib.request.Request(f"{a.idp}/__test/fault", data=json.dumps({"mode": mode}).encode(),
                                 method="POST", headers={"content-type": "application/json"})
    urllib.request.urlopen(req, timeout=5).read()


def accounts():
    return driver.execute_script(MARKS_JS)


def default_account():
    return next(x for x in accounts() if x["account"] == "default")


def first(acct, kind):
    return next((m for m in acct["marks"] if m["kind"] == kind), None)


def items():
    try:
        return [json.loads(l)["service"] for l in pathlib.Path(a.via_menu).read_text().splitlines() if l]
    except FileNotFoundError:
        return []


def login_over_socket():
    import socket
    deadline = time.time() + 30
    while not pathlib.Path(a.socket).exists() and time.time() < deadline:
        time.sleep(0.1)
    s = socket.socket(socket.AF_UNIX)
    s.connect(a.socket)
    s.sendall((json.dumps({"cmd": "login", "email": a.email, "password": a.password}) + "\n").encode())
    reply = s.makefile().readline()
    seen["logged_in_at"] = time.time()
    seen["login_reply_ok"] = json.loads(reply)["ok"]


def click_menu_later(known):
    # the session waits for a window to appear: click "Status…" once the agent's item is up
    deadline = time.time() + 30
    logged_in = not a.socket
    while time.time() < deadline:
        new = [s for s in items() if s not in known]
        if new and not logged_in:
            login_over_socket()
            logged_in = True
        if new:
            r = subprocess.run([a.python, str(here / "sni_host.py"), "click", new[-1], "Status"],
                               capture_output=True, text=True)
            if r.returncode == 0:
                seen["menu_clicked"] = True
                return
        time.sleep(0.3)
    seen["menu_clicked"] = False


opts = ArgOptions()
opts.set_capability("browserName", "wry")
if a.via_menu:
    opts.set_capability("tauri:options", {"application": a.app, "args": []})
    threading.Thread(target=click_menu_later, args=(items(),), daemon=True).start()
else:
    opts.set_capability("tauri:options", {"application": a.app, "args": ["--status"]})
t0 = time.time()
driver = webdriver.Remote(command_executor=a.driver, options=opts)
seen["session_s"] = round(time.time() - t0, 3)
wait = WebDriverWait(driver, 30)
ok = False
try:
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "section.account[data-account=default] g.mark"))
    seen["title"] = driver.title
    driver.set_window_size(640, 900)
    # the page laid out at its new size (it grows from 720 px high) and two frames drawn
    # since: under load, X shows the grown window before WebKit has painted it, black where
    # it grew, and the light theme's screenshot came out dark
    WebDriverWait(driver, 10).until(lambda d: d.execute_script("return window.innerHeight") >= 900)
    driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "requestAnimationFrame(() => requestAnimationFrame(() => done(true)));")
    time.sleep(0.5)
    seen["before"] = accounts()
    seen["status_shot_tries"] = x_screenshot_painted("Astran status", shots / "status.png")

    # a renewal: the credentials' end moves, and the event is listed first
    before = default_account()
    old_exp = first(before, "credentials_expire")["at"]
    time.sleep(1.1)
    dom_click(driver, driver.find_element(By.ID, "refresh-default"))
    wait.until(lambda d: (first(default_account(), "credentials_expire") or {}).get("at") != old_exp)
    wait.until(lambda d: default_account()["events"] and default_account()["events"][0]["kind"] == "renewal")
    seen["after_renewal"] = default_account()
    seen["message_after_renewal"] = driver.find_element(By.ID, "message").text

    # the IdP fails: the failure is an event, in words
    fault("http503")
    dom_click(driver, driver.find_element(By.ID, "refresh-default"))
    wait.until(lambda d: default_account()["events"][0]["kind"] == "failure")
    seen["after_failure"] = default_account()
    seen["message_after_failure"] = driver.find_element(By.ID, "message").text
    fault("none")

    # Log in… and Settings… ask the agent for those windows, for this account
    def window_running(args):
        return subprocess.run(["pgrep", "-f", f"astran-tray-window {args}"],
                              capture_output=True).returncode == 0

    for button, args in [("login-ops", "--login --account ops"), ("settings-ops", "--settings --account ops")]:
        dom_click(driver, driver.find_element(By.ID, button))
        deadline = time.time() + 20
        while not window_running(args) and time.time() < deadline:
            time.sleep(0.2)
        seen[f"{button}_opened"] = window_running(args)
        subprocess.run(["pkill", "-f", f"astran-tray-window {args}"])
    dom_click(driver, driver.find_element(By.ID, "copy-default"))
    wait.until(lambda d: "clipboard" in d.find_element(By.ID, "message").text)
    seen["message_after_copy"] = driver.find_element(By.ID, "message").text

    # the keyboard reaches every mark, in order
    all_marks = [m["id"] for acct in accounts() for m in acct["marks"]]
    driver.execute_script("document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0);")
    reached, tip_ok = [], True
    for _ in range(len(all_marks) * 2 + 60):
        ActionChains(driver).send_keys(Keys.TAB).perform()
        info = driver.execute_script(
            "const e = document.activeElement; const s = e && e.closest && e.closest('section.account');"
            "return e ? {id: e.getAttribute('data-id'), tip: s ? (s.querySelector('.tip') || {}).textContent : null,"
            " label: e.getAttribute('aria-label')} : null;")
        if info and info["id"]:
            if info["id"] in reached:
                break
            reached.append(info["id"])
            tip_ok = tip_ok and info["tip"] == info["label"]
    seen["marks_total"] = len(all_marks)
    seen["marks_reached"] = len([m for m in all_marks if m in reached])
    seen["tip_follows_focus"] = tip_ok

    # 400 px wide: nothing sticks out sideways
    driver.set_window_size(400, 900)
    time.sleep(0.8)
    seen["overflow_at_400"] = driver.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth;")
    seen["svg_width_at_400"] = driver.execute_script(
        "return Math.max(...Array.from(document.querySelectorAll('svg.timeline')).map(s => s.getBoundingClientRect().right));")
    seen["viewport_at_400"] = driver.execute_script("return document.documentElement.clientWidth;")
    x_screenshot_painted("Astran status", shots / "status-400.png")
    ok = True
finally:
    quit_session(driver)
print(json.dumps(seen))
sys.exit(0 if ok else 1)
