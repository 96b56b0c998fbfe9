"""The search page of semsearch serve in a real headless Chromium (Debian's package), driven over the
DevTools protocol: a query typed into the box shows hits with their contribution bars; a screenshot is saved."""

import asyncio
import base64
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import aiohttp

from .conftest import SERVE_TOKEN

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
QUERY = "Apollo astronauts who walked on the Moon"


class DevTools:
    """One page target of a headless Chromium, over its DevTools websocket."""

    def __init__(self, socket) -> None:
        self.socket, self.next_id = socket, 0

    async def call(self, method: str, **params):
        self.next_id += 1
        await self.socket.send_json({"id": self.next_id, "method": method, "params": params})
        while True:
            message = json.loads((await self.socket.receive()).data)
            if message.get("id") == self.next_id:
                assert "error" not in message, message
                return message["result"]

    async def evaluate(self, expression: str):
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout: float = 60.0):
        deadline = time.monotonic() + timeout
        while not (value := await self.evaluate(expression)):
            assert time.monotonic() < deadline, f"timed out waiting for {expression}"
            await asyncio.sleep(0.2)
        return value


def start_chromium(profile: str) -> tuple[subprocess.Popen, int]:
    binary = shutil.which("chromium")
    assert binary, "Debian's chromium is not installed (scripts/bootstrap.sh installs it)"
    proc = subprocess.Popen([binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                             "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--remote-debugging-port=0",
                             "--window-size=1200,1400", "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # its own process group: stop_chromium ends the helpers too
    deadline = time.monotonic() + 60
    for line in proc.stderr:  # "DevTools listening on ws://127.0.0.1:PORT/devtools/browser/…"
        if match := re.search(r"ws://127\.0\.0\.1:(\d+)/", line):
            return proc, int(match[1])
        assert time.monotonic() < deadline, "chromium did not open its DevTools port"
    raise AssertionError(f"chromium exited: {proc.wait()}")


def stop_chromium(proc: subprocess.Popen) -> None:
    """Stop the browser and every helper process it started (renderer, zygote, crash handler): one left behind
    may still write into the profile folder while it is being removed."""
    for stop in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, stop)
        except ProcessLookupError:  # the whole group has exited
            break
        if stop == signal.SIGTERM:
            proc.wait(timeout=30)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                os.killpg(proc.pid, 0)  # any process of the group left?
            except ProcessLookupError:
                proc.wait(timeout=30)
                return
            time.sleep(0.1)
    proc.wait(timeout=30)  # only unreaped processes can be left after SIGKILL, and they write nothing


async def type_a_query_and_read_the_hits(page_url: str, port: int, screenshot: Path) -> list[dict]:
    async with aiohttp.ClientSession() as http:
        targets = await (await http.get(f"http://127.0.0.1:{port}/json/list")).json()
        page = next(t for t in targets if t["type"] == "page")
        async with http.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as socket:
            tools = DevTools(socket)
            await tools.call("Page.enable")
            await tools.call("Page.navigate", url=page_url)
            await tools.wait_for("document.readyState === 'complete' && !!document.getElementById('q')")
            await tools.evaluate("document.getElementById('q').focus(), true")
            await tools.call("Input.insertText", text=QUERY)
            for kind in ("keyDown", "keyUp"):
                await tools.call("Input.dispatchKeyEvent", type=kind, key="Enter", code="Enter",
                                 windowsVirtualKeyCode=13, nativeVirtualKeyCode=13, text="\r")
            await tools.wait_for("document.querySelectorAll('#hits .hit').length > 0")
            hits = await tools.evaluate("""[...document.querySelectorAll('#hits .hit')].map(hit => ({
                id: hit.dataset.id, title: hit.querySelector('h3').textContent,
                keyword: parseFloat(hit.querySelector('.bar .keyword').style.width),
                semantic: parseFloat(hit.querySelector('.bar .semantic').style.width),
                marked: hit.querySelectorAll('p em').length}))""")
            fusion = await tools.evaluate("document.getElementById('how-fused').textContent")
            options = await tools.evaluate("[...document.getElementById('fusion').options].map(o => o.value)")
            shot = await tools.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
            screenshot.write_bytes(base64.b64decode(shot["data"]))
            return hits, await tools.evaluate("document.getElementById('q').value"), fusion, options


def test_a_query_typed_into_the_page_shows_hits_with_contribution_bars(served, dbpedia):
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "search-page.png"
    screenshot.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        proc, port = start_chromium(profile)
        try:
            hits, typed, fusion, options = asyncio.run(type_a_query_and_read_the_hits(
                f"{served.url}/?index={dbpedia.name}#token={SERVE_TOKEN}", port, screenshot))
        finally:
            stop_chromium(proc)
    assert typed == QUERY
    assert len(hits) == 10
    assert all(abs(h["keyword"] + h["semantic"] - 100) < 0.5 for h in hits), hits  # each bar is whole
    assert any(h["keyword"] > 0 and h["semantic"] > 0 for h in hits), hits  # both retrievers contributed
    assert any("Apollo" in h["title"] or "Moon" in h["title"] for h in hits), hits
    assert any(h["marked"] for h in hits), "no highlighted keyword matches"
    assert fusion.startswith("fused by") and "weights keyword" in fusion, fusion  # how hybrid fused them
    assert options == ["", "rrf", "minmax", "zscore", "sum"], options  # the fusion switch is left as it was
    assert screenshot.stat().st_size > 10_000, "the screenshot is empty"
    print(f"screenshot: {screenshot}")  # noqa: T201
