#!/usr/bin/env python3
"""A $BROWSER that acts as a person would, for the login tests.

Invoked as `scripted_browser.py URL` (only the first argument is read). It opens the
URL, reads the pages the way a person reads them (the Keycloak login theme of the test
IdP: the `kc-form-login` form, the device code form, the consent page), types what it
is told, presses the buttons a person presses, and finally visits the loopback
callback the IdP redirects to. Redirects are followed by hand, never by urllib, so the
callback can be tampered with and every step is logged. Python 3 standard library
only; it never reads stdin, so it works when started detached and not waited for.

Environment:
  SCRIPTED_ACTION     login (default), cancel, wrong-state, stray-then-login, never,
                      replay, device-approve, device-deny, wrong-password,
                      steal-code (another program redeems the code first, without
                      the PKCE verifier, then the callback is visited)
  SCRIPTED_EMAIL      what the person types as username
  SCRIPTED_PASSWORD   what the person types as password (never logged)
  SCRIPTED_USER_CODE  the device user code to type when the URL has no ?user_code=
  SCRIPTED_LOG        a file the step log is appended to (besides stderr)
  SCRIPTED_DELAY      seconds to wait before opening the URL (default 0)
  SCRIPTED_TIMEOUT    seconds per HTTP request (default 10)

Exit status: 0 when it did what it was told; 2 for a usage error (no URL, unknown
action, a missing variable); 3 when a page did not look as expected; 4 when a server
could not be reached.
"""

import html.parser
import http.cookiejar
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

ACTIONS = (
    "login",
    "cancel",
    "wrong-state",
    "stray-then-login",
    "never",
    "replay",
    "device-approve",
    "device-deny",
    "wrong-password",
    "steal-code",
)
LOOPBACK_HOSTS = ("127.0.0.1", "localhost")
INVALID_USER = "Invalid username or password."
# Query parameters whose values are credentials: logged as their length only.
SECRET_PARAMS = ("code", "session_code", "device_code", "password", "refresh_token", "access_token", "id_token")
MAX_REDIRECTS = 20


class Failure(Exception):
    """The run cannot go on; `status` is the exit status."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


def _write_log(line):
    path = os.environ.get("SCRIPTED_LOG")
    if path:
        try:
            with open(path, "a", encoding="utf-8") as f:
                f.write(line + "\n")
        except OSError:
            pass
    # Started detached, stderr may be closed (sys.stderr is then None) or a dead pipe.
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except Exception:
        pass


def log(message):
    stamp = time.strftime("%H:%M:%S")
    _write_log(f"scripted_browser[{os.getpid()}] {stamp} {message}")


def redact(url):
    """The URL with the values of credential-like parameters replaced by their length."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "<unparsable URL>"

    def scrub(query):
        if not query:
            return query
        out = []
        for k, v in urllib.parse.parse_qsl(query, keep_blank_values=True):
            if k in SECRET_PARAMS:
                v = f"<{len(v)} chars>"
            out.append(f"{k}={v}")
        return "&".join(out)

    return urllib.parse.urlunsplit(
        (parts.scheme, parts.netloc, parts.path, scrub(parts.query), scrub(parts.fragment))
    )


def origin(url):
    p = urllib.parse.urlsplit(url)
    return (p.scheme, (p.hostname or "").lower(), p.port or (443 if p.scheme == "https" else 80))


def is_loopback(url):
    p = urllib.parse.urlsplit(url)
    return p.scheme == "http" and (p.hostname or "").lower() in LOOPBACK_HOSTS


class Form:
    def __init__(self, attrs):
        self.attrs = attrs
        self.fields = []  # (name, value, type) of inputs that a browser submits
        self.buttons = []  # (name, value, id) of submit buttons

    def button(self, name):
        for b in self.buttons:
            if b[0] == name:
                return b
        return None


class PageParser(html.parser.HTMLParser):
    """Collects the forms, the title and the text of a page."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms = []
        self.text = []
        self.title = ""
        self.h1 = ""
        self._in = None
        self._form = None
        self._button = None

    def handle_starttag(self, tag, attrs):
        a = {k: (v if v is not None else "") for k, v in attrs}
        if tag == "form":
            self._form = Form(a)
            self.forms.append(self._form)
        elif tag == "input" and self._form is not None:
            kind = a.get("type", "text").lower()
            name = a.get("name")
            if kind in ("submit", "image"):
                self._form.buttons.append((name, a.get("value", ""), a.get("id")))
            elif name and kind not in ("checkbox", "radio", "file", "reset", "button"):
                self._form.fields.append((name, a.get("value", ""), kind))
            elif name and kind in ("checkbox", "radio") and "checked" in a:
                self._form.fields.append((name, a.get("value", "on"), kind))
        elif tag == "button" and self._form is not None:
            if a.get("type", "submit").lower() == "submit":
                self._button = [a.get("name"), a.get("value", ""), a.get("id")]
        elif tag in ("title", "h1"):
            self._in = tag

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
        elif tag == "button" and self._button is not None and self._form is not None:
            self._form.buttons.append(tuple(self._button))
            self._button = None
        elif tag == self._in:
            self._in = None

    def handle_data(self, data):
        self.text.append(data)
        if self._in == "title":
            self.title += data
        elif self._in == "h1":
            self.h1 += data


class Page:
    def __init__(self, url, status, body):
        self.url = url
        self.status = status
        self.body = body
        p = PageParser()
        try:
            p.feed(body)
            p.close()
        except Exception:  # a broken page is still a page; it just has fewer forms
            pass
        self.forms = p.forms
        self.text = " ".join(" ".join(p.text).split())
        self.title = " ".join(p.title.split())
        self.h1 = " ".join(p.h1.split())

    def form(self, form_id=None, button=None):
        for f in self.forms:
            if form_id is not None and f.attrs.get("id") == form_id:
                return f
            if button is not None and f.button(button):
                return f
        return None

    def describe(self):
        heading = self.h1 or self.title or "(no heading)"
        return f"HTTP {self.status} page {heading!r}"


class Callback:
    def __init__(self, url):
        self.url = url


class NoRedirects(urllib.request.HTTPErrorProcessor):
    """Hands every response back as it is: no automatic redirects, no HTTPError."""

    def http_response(self, request, response):
        return response

    https_response = http_response


class Browser:
    def __init__(self, timeout):
        self.timeout = timeout
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            NoRedirects(), urllib.request.HTTPCookieProcessor(self.jar)
        )
        self.idp_origin = None

    def request(self, url, fields=None):
        """One request; gives (status, headers, body text)."""
        data = None
        headers = {"User-Agent": "scripted_browser/1 (astran tests)", "Accept": "text/html,*/*"}
        if fields is not None:
            data = urllib.parse.urlencode(fields).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        req = urllib.request.Request(url, data=data, headers=headers, method="POST" if data is not None else "GET")
        try:
            with self.opener.open(req, timeout=self.timeout) as resp:
                body = resp.read().decode("utf-8", "replace")
                return resp.status, resp.headers, body
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise Failure(4, f"cannot reach {redact(url)}: {reason}") from None

    def is_callback(self, url):
        if not is_loopback(url):
            return False
        if self.idp_origin is not None:
            return origin(url) != self.idp_origin
        # Not on the IdP's pages yet: only an authorization response goes to the client.
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
        return "code" in q or "error" in q

    def navigate(self, url, fields=None):
        """GET (or POST the fields to) url and follow redirects by hand. Gives the Page
        reached, or the Callback the IdP redirected to (not fetched)."""
        for _ in range(MAX_REDIRECTS):
            verb = "POST" if fields is not None else "GET"
            status, headers, body = self.request(url, fields)
            log(f"{verb} {redact(url)} -> {status}")
            if status in (301, 302, 303, 307, 308):
                location = headers.get("Location")
                if not location:
                    raise Failure(3, f"HTTP {status} without a Location from {redact(url)}")
                target = urllib.parse.urljoin(url, location)
                if self.is_callback(target):
                    log(f"redirected to the loopback callback {redact(target)}")
                    return Callback(target)
                if not is_loopback(target):
                    raise Failure(3, f"redirected off loopback to {redact(target)}; a test IdP never does that")
                url, fields = target, None
                continue
            page = Page(url, status, body)
            if self.idp_origin is None and page.forms:
                self.idp_origin = origin(url)
            log(f"  {page.describe()}")
            return page
        raise Failure(3, f"more than {MAX_REDIRECTS} redirects")

    def submit(self, page, form, button, typed=None):
        """Submits the form as a browser does when the person presses `button` (a name)."""
        fields = []
        typed = dict(typed or {})
        typed_into = ", ".join(typed) or "nothing"
        for name, value, _kind in form.fields:
            if name in typed:
                value = typed.pop(name)
            fields.append((name, value))
        fields.extend(typed.items())
        b = form.button(button)
        if b is None:
            raise Failure(3, f"{page.describe()}: no {button!r} button in the form")
        if b[0]:
            fields.append((b[0], b[1]))
        action = urllib.parse.urljoin(page.url, form.attrs.get("action") or page.url)
        log(f"press {b[1] or button!r} (fields typed into: {typed_into})")
        return self.navigate(action, fields)

    def visit_callback(self, url, label="callback"):
        """GETs the loopback callback like a browser showing the client's page."""
        status, _headers, body = self.request(url)
        log(f"GET {label} {redact(url)} -> {status}")
        shown = body if len(body) <= 2000 else body[:2000] + "…"
        log(f"  {label} body: {shown.strip()!r}")
        return status


def env(name, required=True):
    v = os.environ.get(name)
    if required and not v:
        raise Failure(2, f"{name} is not set")
    return v


def login_form(page):
    form = page.form(form_id="kc-form-login")
    if form is None:
        raise Failure(3, f"expected the login form (kc-form-login), got {page.describe()}: {page.text[:300]!r}")
    return form


def sign_in(browser, page, wrong_first=False):
    """Types the credentials into the login form (a wrong password first if asked)."""
    email = env("SCRIPTED_EMAIL")
    password = env("SCRIPTED_PASSWORD")
    if wrong_first:
        log(f"type {email!r} and a wrong password")
        page = browser.submit(page, login_form(page), "login", {"username": email, "password": password + "-not-it"})
        if not isinstance(page, Page):
            raise Failure(3, "a wrong password was accepted: redirected to the callback")
        if INVALID_USER not in page.text:
            raise Failure(3, f"after a wrong password expected {INVALID_USER!r}, got {page.describe()}: {page.text[:300]!r}")
        log(f"  the page says {INVALID_USER!r}")
    log(f"type {email!r} and the password")
    return browser.submit(page, login_form(page), "login", {"username": email, "password": password})


def expect_callback(result, what):
    if not isinstance(result, Callback):
        raise Failure(3, f"{what}: expected a redirect to the loopback callback, got {result.describe()}: {result.text[:300]!r}")
    return result.url


def tamper_state(url):
    parts = urllib.parse.urlsplit(url)
    q = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    tampered = "tampered-" + os.urandom(6).hex()
    if any(k == "state" for k, _ in q):
        q = [(k, tampered if k == "state" else v) for k, v in q]
    else:
        q.append(("state", tampered))
    log("replace the state in the callback URL with another one")
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, urllib.parse.urlencode(q), parts.fragment))


def steal_code(browser, auth_url, callback):
    """Redeems the callback's code at the token endpoint first, as a program that caught it
    would, without the PKCE verifier it cannot know."""
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(auth_url).query)
    code = (urllib.parse.parse_qs(urllib.parse.urlsplit(callback).query).get("code") or [None])[0]
    if not code:
        raise Failure(3, "steal-code: the callback carries no code")
    parts = urllib.parse.urlsplit(auth_url)
    if not parts.path.endswith("/auth"):
        raise Failure(2, "steal-code needs a Keycloak authorization URL (…/openid-connect/auth)")
    token_url = urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path[: -len("auth")] + "token", "", ""))
    fields = {
        "grant_type": "authorization_code",
        "client_id": (q.get("client_id") or [""])[0],
        "code": code,
        "redirect_uri": (q.get("redirect_uri") or [""])[0],
    }
    status, _h, body = browser.request(token_url, fields)
    log(f"POST {token_url} with the caught code and no verifier -> {status}: {body.strip()[:300]}")


def stray_requests(browser, url):
    """GETs /favicon.ico and the callback path without parameters on the client's listener."""
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    redirect = (q.get("redirect_uri") or [None])[0]
    if not redirect or not is_loopback(redirect):
        raise Failure(2, "stray-then-login needs an authorization URL with a loopback redirect_uri")
    r = urllib.parse.urlsplit(redirect)
    base = f"{r.scheme}://{r.netloc}"
    for path in ("/favicon.ico", r.path or "/callback"):
        stray = base + path
        try:
            status, _h, body = browser.request(stray)
            log(f"GET stray {stray} -> {status} ({len(body)} bytes)")
        except Failure as e:
            log(f"GET stray {stray} failed: {e}")


def device_login(browser, url, approve):
    page = browser.navigate(url)
    if isinstance(page, Callback):
        raise Failure(3, "the device verification URL redirected to a loopback callback")
    code_form = page.form(form_id="kc-user-verify-device-user-code-form")
    if code_form is not None:
        if "Invalid code" in page.text or "expired" in page.text:
            raise Failure(3, f"the device page refused the code: {page.text[:300]!r}")
        user_code = env("SCRIPTED_USER_CODE")
        log(f"type the user code {user_code!r}")
        # The Submit button has no name: submit(..., None) presses the unnamed one.
        page = browser.submit(page, code_form, None, {"device_user_code": user_code})
        if isinstance(page, Callback):
            raise Failure(3, "submitting the user code redirected to a loopback callback")
    page = sign_in(browser, page)
    if isinstance(page, Callback):
        raise Failure(3, "a device login redirected to a loopback callback")
    consent = page.form(button="accept")
    if consent is None or not consent.button("cancel"):
        raise Failure(3, f"expected the consent page (accept / cancel), got {page.describe()}: {page.text[:300]!r}")
    log(f"consent page: {page.h1!r}")
    page = browser.submit(page, consent, "accept" if approve else "cancel")
    if isinstance(page, Callback):
        raise Failure(3, "the consent answer redirected to a loopback callback")
    want = "Device Login Successful" if approve else "Device Login Failed"
    if want not in page.text:
        raise Failure(3, f"expected {want!r}, got {page.describe()}: {page.text[:300]!r}")
    log(f"result page: {page.text[:200]!r}")


def run(action, url):
    if action == "never":
        log("never: the browser does not come back (nothing requested)")
        return
    timeout = float(os.environ.get("SCRIPTED_TIMEOUT") or 10)
    delay = float(os.environ.get("SCRIPTED_DELAY") or 0)
    if delay > 0:
        log(f"wait {delay:g} s before opening the page")
        time.sleep(delay)
    browser = Browser(timeout)
    if action in ("device-approve", "device-deny"):
        device_login(browser, url, approve=action == "device-approve")
        return
    if action == "stray-then-login":
        stray_requests(browser, url)
    page = browser.navigate(url)
    if isinstance(page, Callback):
        # The IdP answered the authorization request at once (an error, or prompt=none).
        callback = page.url
    elif action == "cancel":
        form = login_form(page)
        log("press Cancel on the login page")
        callback = expect_callback(browser.submit(page, form, "cancel"), "cancel")
    else:
        callback = expect_callback(sign_in(browser, page, wrong_first=action == "wrong-password"), "login")
    if action == "wrong-state":
        callback = tamper_state(callback)
    if action == "steal-code":
        steal_code(browser, url, callback)
    status = browser.visit_callback(callback)
    if action == "replay":
        log("visit the same callback URL a second time")
        try:
            browser.visit_callback(callback, label="callback again")
        except Failure as e:
            log(f"second callback visit failed: {e}")
    log(f"callback answered HTTP {status}")


def main(argv):
    action = os.environ.get("SCRIPTED_ACTION") or "login"
    try:
        if len(argv) < 2 or not argv[1]:
            raise Failure(2, "usage: scripted_browser.py URL")
        if action not in ACTIONS:
            raise Failure(2, f"unknown SCRIPTED_ACTION {action!r} (one of {', '.join(ACTIONS)})")
        url = argv[1]
        log(f"start: action {action}, URL {redact(url)}")
        run(action, url)
    except Failure as e:
        log(f"FAILED ({e.status}): {e}")
        return e.status
    except KeyboardInterrupt:
        log("FAILED: interrupted")
        return 130
    except Exception as e:  # a bug here must still end with a message, not a silent trace
        log(f"FAILED (3): unexpected {type(e).__name__}: {e}")
        return 3
    log(f"done: {action}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
