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
