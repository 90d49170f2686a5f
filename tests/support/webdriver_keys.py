#!/usr/bin/env python3
"""Drive the permanent-key window (`astran-tray-window --keys ACTION`) through tauri-driver
(WebDriver) against a running agent: read what it says, choose the key (delete), confirm,
and wait for the result or the error. Screenshot to --shot. Prints one JSON line."""
import argparse
import json
import subprocess
import sys
import time

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.options import ArgOptions
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from webdriver_common import quit_session

p = argparse.ArgumentParser()
p.add_argument("--driver", required=True)
p.add_argument("--app", required=True)
p.add_argument("--action", required=True, choices=["create", "rotate", "delete"])
p.add_argument("--account", default="default")
p.add_argument("--key", help="delete: the access key id to choose")
p.add_argument("--shot")
a = p.parse_args()


def click(el):
    driver.execute_script("arguments[0].click();", el)


def visible_text(el_id):
    el = driver.find_element(By.ID, el_id)
    return el.text if el.is_displayed() else None


opts = ArgOptions()
opts.set_capability("browserName", "wry")
opts.set_capability("tauri:options", {
    "application": a.app,
    "args": ["--keys", a.action, "--account", a.account],
})
driver = webdriver.Remote(command_executor=a.driver, options=opts)
wait = WebDriverWait(driver, 60)
seen = {}
try:
    wait.until(EC.visibility_of_element_located((By.ID, "current")))
    seen["title"] = driver.title
    seen["heading"] = driver.find_element(By.ID, "title").text
    seen["warning"] = visible_text("warning")
    seen["keys_listed"] = driver.find_element(By.ID, "keys").text
    confirm = driver.find_element(By.ID, "confirm")
    seen["confirm_label"] = confirm.text
    seen["confirm_enabled_at_first"] = confirm.is_enabled()
    if a.action == "delete":
        radio = driver.find_element(By.CSS_SELECTOR, f"input[name=key][value='{a.key}']")
        click(radio)
        wait.until(lambda d: d.find_element(By.ID, "confirm").is_enabled())
    click(confirm)
    wait.until(lambda d: (visible_text("result") or visible_text("error")))
    seen["result"] = visible_text("result")
    seen["error"] = visible_text("error")
    if a.shot:
        time.sleep(0.4)
        wid = subprocess.run(["xdotool", "search", "--name", "^Astran permanent key$"],
                             capture_output=True, text=True).stdout.split()
        if wid:
            subprocess.run(["import", "-window", wid[0], a.shot], check=False)
    if not seen["result"]:
        raise SystemExit(0)
    closed = False
    try:
        click(driver.find_element(By.ID, "close"))
    except WebDriverException:
        # the window closed while the click was still being answered
        closed = True
    deadline = time.time() + 15
    while time.time() < deadline:
        try:
            if not driver.window_handles:
                closed = True
                break
        except WebDriverException:
            closed = True
            break
        time.sleep(0.2)
    seen["closed"] = closed
except WebDriverException as e:
    seen["webdriver_error"] = str(e).splitlines()[0]
finally:
    quit_session(driver)
    print(json.dumps(seen))
sys.exit(0 if seen.get("result") else 1)
