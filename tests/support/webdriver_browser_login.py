#!/usr/bin/env python3
"""Drive the login window of an account with `auth = "browser"` through tauri-driver
(WebDriver) against a running agent, whose $BROWSER is the scripted browser:

1. the window shows "Sign in with your browser", not the password form;
2. Sign in → the waiting face with the address and a Cancel button; Cancel → the start face
   again, and the agent's redirect listener is closed;
3. Sign in again → the agent opens the (scripted) browser, which logs in; the window closes
   by itself.
Screenshots go to --shots. Prints one JSON line with what it saw."""
import argparse
import json
import pathlib
import socket
import sys
import time
import urllib.parse

from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.options import ArgOptions
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from webdriver_common import click as dom_click, wait_closed, x_screenshot as shoot, quit_session

p = argparse.ArgumentParser()
p.add_argument("--driver", required=True)
p.add_argument("--app", required=True)
p.add_argument("--shots", required=True)
a = p.parse_args()


def x_screenshot(path):
    shoot("Log in to Astran", path)


def click(el):
    dom_click(driver, el)


def listening(url):
    """Whether the redirect listener named in the authorization URL accepts connections."""
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    r = urllib.parse.urlsplit(q["redirect_uri"][0])
    try:
        with socket.create_connection((r.hostname, r.port), timeout=1):
            return True
    except OSError:
        return False


opts = ArgOptions()
opts.set_capability("browserName", "wry")
opts.set_capability("tauri:options", {"application": a.app, "args": ["--login"]})
driver = webdriver.Remote(command_executor=a.driver, options=opts)
wait = WebDriverWait(driver, 30)
shots = pathlib.Path(a.shots)
shots.mkdir(parents=True, exist_ok=True)
seen = {}

begin = wait.until(EC.visibility_of_element_located((By.ID, "sso-begin")))
seen["title"] = driver.title
seen["begin_label"] = begin.text
seen["password_form_shown"] = driver.find_element(By.ID, "form").is_displayed()
x_screenshot(shots / "login-browser.png")

# the scripted browser is told (through a file the test reads) to wait: first we cancel
click(begin)
wait.until(EC.visibility_of_element_located((By.ID, "sso-browser")))
url = wait.until(lambda d: d.find_element(By.ID, "sso-url").get_attribute("value"))
seen["url_shown"] = url
seen["cancel_shown"] = driver.find_element(By.ID, "sso-cancel").is_displayed()
seen["listening_while_waiting"] = listening(url)
x_screenshot(shots / "login-browser-waiting.png")
click(driver.find_element(By.ID, "sso-cancel"))
wait.until(EC.visibility_of_element_located((By.ID, "sso-begin")))
deadline = time.time() + 5
while listening(url) and time.time() < deadline:
    time.sleep(0.1)
seen["listening_after_cancel"] = listening(url)

# now for real: the agent opens the scripted browser, which signs in
pathlib.Path(a.shots, "go").write_text("go")
click(driver.find_element(By.ID, "sso-begin"))
t1 = time.time()
closed = wait_closed(driver, seen, 40)
seen["closed"] = closed
seen["login_to_close_s"] = round(time.time() - t1, 3)
quit_session(driver)
print(json.dumps(seen))
sys.exit(0 if closed else 1)
