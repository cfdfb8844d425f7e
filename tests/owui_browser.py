"""A real browser on Open WebUI: the OS package chromium, headless, driven by selenium.

    with open_browser(artifacts) as browser:     # raises BrowserUnavailable without chromium
        browser.sign_up(url, "Admin", "admin@example.com", password)   # first account: admin
        browser.model_choices()                  # the model ids the selector offers
        browser.chat("tiny", "Say hi")           # -> the answer's text and how it grew
        browser.screenshot("name")               # -> Path of a PNG under `artifacts`

No browser or driver download: selenium gets the paths of /usr/bin/chromium and
/usr/bin/chromedriver (apt: chromium, chromium-driver), and SE_OFFLINE keeps Selenium Manager
off the network. The profile is an empty temporary dir; background networking, component
updates and sync are off, so the browser talks to nothing but the page it is given.

Selectors are those of Open WebUI 0.12.4's own frontend (ids it sets for this purpose:
`chat-input`, `send-message-button`, `model-selector-model-button`), found by reading the wheel's
built frontend; a wait that runs out raises with the page's text and a screenshot.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
    "--disable-default-apps", "--no-proxy-server", "--window-size=1280,900",
)
# The button in the message bar that opens the model list (it shows the chosen model); each
# model in the list carries its id in data-value.
SELECTOR = "#model-selector-model-button"
# Records the text of the last assistant message at every DOM change, so a test can tell a
# streamed answer (several lengths on the way) from one that arrived whole.
OBSERVER_JS = """
window.__airpodsLengths = [];
const seen = () => {
  const msgs = document.querySelectorAll('#response-content-container');
  const last = msgs[msgs.length - 1];
  const n = last ? last.innerText.trim().length : 0;
  const a = window.__airpodsLengths;
  if (a.length === 0 || a[a.length - 1] !== n) a.push(n);
};
window.__airpodsObserver && window.__airpodsObserver.disconnect();
window.__airpodsObserver = new MutationObserver(seen);
window.__airpodsObserver.observe(document.body,
  {subtree: true, childList: true, characterData: true});
"""


class BrowserUnavailable(RuntimeError):
    """No chromium / chromedriver / selenium here."""


def artifacts_dir() -> Path:
    """Where screenshots go: $AIRPODS_ARTIFACTS, else /tmp/airpods-artifacts."""
    path = Path(os.environ.get("AIRPODS_ARTIFACTS") or "/tmp/airpods-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass
class Answer:
    text: str
    lengths: list[int]  # the answer's length at each DOM change while it arrived
    pushes: int  # websocket frames that brought the browser a piece of this answer


class Browser:
    def __init__(self, driver: Any, artifacts: Path) -> None:
        self.driver = driver
        self.artifacts = artifacts

    # ------------------------------------------------------------------ waiting
    def wait(self, what: str, probe: Callable[[], Any], timeout: float = 60) -> Any:
        """`probe()` until it returns something truthy; on timeout, fail with the page."""
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(Exception):
                self._dismiss_whats_new()
                got = probe()
                if got:
                    return got
            if time.monotonic() > deadline:
                shot = self.screenshot(f"timeout-{what.replace(' ', '-')[:40]}")
                raise AssertionError(f"browser: no {what} within {timeout}s (screenshot {shot})"
                                     f"\npage text:\n{self.text()[-2000:]}")
            time.sleep(0.2)

    def text(self) -> str:
        with contextlib.suppress(Exception):
            return str(self.driver.find_element("tag name", "body").text)
        return ""

    def screenshot(self, name: str) -> Path:
        path = self.artifacts / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path

    def click(self, what: str, css: str, timeout: float = 60) -> Any:
        """Click the first visible `css` element, again until it takes (a toast or a closing
        menu may cover it for a moment); the element."""
        def probe() -> Any:
            element = self._visible(css)[0]
            element.click()
            return element
        return self.wait(what, probe, timeout)

    def _dismiss_whats_new(self) -> None:
        # Open WebUI opens its "what's new" dialog once per version, a moment after the first
        # page that is ready: it may come after sign-in looked done, and it covers the page.
        button = self._button("Okay, Let's Go!", "Okay, Let's Go")
        if button is not None:
            button.click()

    def _visible(self, css: str) -> list[Any]:
        return [e for e in self.driver.find_elements("css selector", css) if e.is_displayed()]

    def _button(self, *labels: str) -> Any:
        for button in self._visible("button"):
            if button.text.strip() in labels:
                return button
        return None

    # ------------------------------------------------------------------ flows
    def sign_up(self, url: str, name: str, email: str, password: str) -> None:
        """The first visit: onboarding, then the form that creates the admin account."""
        self.driver.get(f"{url}/auth")
        form_or_start = self.wait("sign-up page", lambda: self._visible(
            "input[type=email]") or self._button("Get started"))
        if not isinstance(form_or_start, list):  # the onboarding splash comes first
            form_or_start.click()
        self.wait("email field", lambda: self._visible("input[type=email]"))
        for field in self._visible("input"):
            kind = (field.get_attribute("type") or "").lower()
            autocomplete = (field.get_attribute("autocomplete") or "").lower()
            value = {"email": email, "password": password}.get(kind)
            if value is None and (kind == "text" and ("name" in autocomplete
                                                      or field.get_attribute("name") == "name")):
                value = name
            if value is not None:
                field.clear()
                field.send_keys(value)
        self.screenshot("01-sign-up")
        self.click("submit button", "button[type=submit]")
        self.wait("chat input", self._after_sign_in, timeout=90)

    def _after_sign_in(self) -> bool:
        return bool(self._visible("#chat-input"))

    def model_choices(self) -> list[str]:
        """Opens the model selector; the model ids it lists. Leaves it open."""
        self.click("model selector", SELECTOR)
        items = self.wait("model list", lambda: self._visible("[data-value]"))
        return [str(i.get_attribute("data-value")) for i in items]

    def pick_model(self, model_id: str) -> None:
        if not self._visible(f'[data-value="{model_id}"]'):
            self.model_choices()
        self.click(f"model {model_id} in the selector", f'[data-value="{model_id}"]')
        self.wait(f"{model_id} selected", lambda: model_id in self._visible(SELECTOR)[0].text)

    def chat(self, model_id: str, prompt: str, timeout: float = 120) -> Answer:
        """Pick `model_id`, send `prompt` in a new chat; the answer once it stops changing."""
        self.pick_model(model_id)
        self._completion_pushes()  # drop what came before this answer
        before = len(self._visible("#response-content-container"))
        self.driver.execute_script(OBSERVER_JS)
        self.click("chat input", "#chat-input").send_keys(prompt)
        self.click("send button", "#send-message-button")
        self.wait("an answer", lambda: len(self._visible("#response-content-container")) > before
                  and self._visible("#response-content-container")[-1].text.strip(),
                  timeout=timeout)
        # Done: the stop button is gone and the text held still for a second.
        last, still_since = "", time.monotonic()
        while time.monotonic() - still_since < 1.0:
            now = self._visible("#response-content-container")[-1].text.strip()
            if now != last:
                last, still_since = now, time.monotonic()
            time.sleep(0.1)
        lengths = list(self.driver.execute_script("return window.__airpodsLengths || []"))
        return Answer(last, [int(n) for n in lengths], self._completion_pushes())

    def _completion_pushes(self) -> int:
        """Websocket frames (socket.io events) carrying answer text since the last call: Open
        WebUI pushes a streamed answer to the page piece by piece, a whole one at once."""
        pushes = 0
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message.get("method") != "Network.webSocketFrameReceived":
                continue
            payload = message["params"]["response"].get("payloadData", "")
            # 0.12.4 sends each streamed delta as "response:completion", and the whole
            # message as "chat:completion" (utils/middleware.py, socket/main.py).
            if '"response:completion"' in payload or (
                    '"chat:completion"' in payload and '"content"' in payload):
                pushes += 1
        return pushes

    def new_chat(self, url: str) -> None:
        self.driver.get(url)
        self.wait("chat input", self._after_sign_in)


@contextlib.contextmanager
def open_browser(artifacts: Path | None = None) -> Iterator[Browser]:
    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).exists():
            raise BrowserUnavailable(f"{path} not found (apt-get install chromium chromium-driver)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError as exc:
        raise BrowserUnavailable(f"selenium is not installed ({exc})") from exc
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not download
    profile = tempfile.mkdtemp(prefix="airpods-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})  # websocket frames
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    try:
        yield Browser(driver, artifacts or artifacts_dir())
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
