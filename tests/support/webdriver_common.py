"""What the WebDriver scripts of the windows share (imported from beside them)."""
import subprocess
import time

from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By


def click(driver, el):
    # WebKitWebDriver's native click on a submit button waits for a page load that a
    # script-handled form never makes; a DOM click is what the user's click does here.
    driver.execute_script("arguments[0].click();", el)


def x_screenshot(title, path):
    """The window as X shows it (WebKitWebDriver's own screenshot can stall on a page that
    does not repaint)."""
    time.sleep(0.4)
    wid = subprocess.run(["xdotool", "search", "--name", f"^{title}$"], capture_output=True,
                         text=True).stdout.split()
    if wid:
        subprocess.run(["import", "-window", wid[0], str(path)], check=False)


def black_share(path):
    """The share of a capture's pixels that are pure black (#000000): what X shows where a
    window has not been painted yet. None when the capture cannot be read."""
    try:
        hist = subprocess.run(["convert", str(path), "-format", "%c", "histogram:info:-"],
                              capture_output=True, text=True, timeout=30).stdout
        size = subprocess.run(["identify", "-format", "%w %h", str(path)],
                              capture_output=True, text=True, timeout=30).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return None
    if len(size) != 2:
        return None
    total = int(size[0]) * int(size[1])
    black = sum(int(line.split(":")[0]) for line in hist.splitlines() if "#000000 " in line)
    return black / total if total else None


def x_screenshot_painted(title, path, seconds=15):
    """x_screenshot, taken again until no more than 1% of it is pure black (a light page
    being painted after a resize: under load, X shows the window's new size black until
    WebKit's frame reaches it, well after the page has laid out and drawn its frames).
    How many captures it took; the last one stays when the time runs out."""
    deadline = time.time() + seconds
    tries = 0
    while True:
        x_screenshot(title, path)
        tries += 1
        share = black_share(path)
        if share is not None and share <= 0.01 or time.time() > deadline:
            return tries
        time.sleep(0.3)


def wait_closed(driver, seen, seconds, error_id="error"):
    """Wait until the window closes by itself; an error shown in `error_id` first is put in
    seen["unexpected_error"]. Whether it closed."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            if not driver.window_handles:
                return True
            if error_id:
                e = driver.find_element(By.ID, error_id)
                if e.is_displayed() and e.text:
                    seen["unexpected_error"] = e.text
                    return False
        except WebDriverException:
            return True
        time.sleep(0.2)
    return False


def quit_session(driver):
    """End the session (and the app); one already gone is fine."""
    try:
        driver.quit()
    except WebDriverException:
        pass
