#!/usr/bin/env python3
"""Drive the login window through tauri-driver (WebDriver) against a running agent.

1. wrong password: the error is shown in words and the credentials file is unchanged;
2. right password: the window closes by itself.
Screenshots of the form go to --shots. Prints one JSON line with what it saw."""
import argparse
import json
import pathlib
import sys
import time

from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.options import ArgOptions
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from webdriver_common import click as dom_click, wait_closed, x_screenshot as shoot, quit_session

p = argparse.ArgumentParser()
p.add_argument("--driver", required=True)
p.add_argument("--app", required=True)
p.add_argument("--email", required=True)
p.add_argument("--password", required=True)
p.add_argument("--creds", required=True)
p.add_argument("--shots", required=True)
a = p.parse_args()


def x_screenshot(path):
    shoot("Log in to Astran", path)


def click(el):
    dom_click(driver, el)


opts = ArgOptions()
opts.set_capability("browserName", "wry")
opts.set_capability("tauri:options", {"application": a.app, "args": ["--login"]})
t0 = time.time()
driver = webdriver.Remote(command_executor=a.driver, options=opts)
seen = {"session_s": round(time.time() - t0, 3)}
wait = WebDriverWait(driver, 30)
shots = pathlib.Path(a.shots)
shots.mkdir(parents=True, exist_ok=True)

email = wait.until(EC.visibility_of_element_located((By.ID, "email")))
seen["title"] = driver.title
# the remembered email arrives asynchronously from the agent
time.sleep(0.5)
seen["prefilled_email"] = email.get_attribute("value")
email.clear()
email.send_keys(a.email)
time.sleep(0.3)
x_screenshot(shots / "login.png")

before = pathlib.Path(a.creds).read_bytes() if pathlib.Path(a.creds).exists() else None
driver.find_element(By.ID, "password").send_keys("not-the-password")
click(driver.find_element(By.ID, "submit"))
err = wait.until(EC.visibility_of_element_located((By.ID, "error")))
wait.until(lambda d: err.text.strip() != "")
seen["wrong_password_error"] = err.text
seen["wrong_password_kind"] = err.get_attribute("data-kind")
x_screenshot(shots / "login-wrong-password.png")
after = pathlib.Path(a.creds).read_bytes() if pathlib.Path(a.creds).exists() else None
seen["file_unchanged"] = before == after

pw = driver.find_element(By.ID, "password")
pw.clear()
pw.send_keys(a.password)
t1 = time.time()
click(driver.find_element(By.ID, "submit"))
closed = wait_closed(driver, seen, 30)
seen["closed"] = closed
seen["login_to_close_s"] = round(time.time() - t1, 3)
quit_session(driver)
print(json.dumps(seen))
sys.exit(0 if closed and seen["file_unchanged"] else 1)
