"""`arraydaemon web` in a real browser: Debian's chromium, headless, driven by Playwright (no browser
download), showing a real replay of the demo recording published on ZeroMQ in real time.

The page must show a track within 10° of the demo talker (azimuth +60°, arraydaemon/data/demo.json)
within 5 s of its first message, keep its id, show the health state and the array, fetch nothing
from beyond 127.0.0.1, say "no data" instead of keeping stale tracks, and keep working when the
publisher or the web server restarts."""

from __future__ import annotations

import json
import shutil
import time
from urllib.parse import urlsplit

import pytest

from arraydaemon.core.angles import azimuth_difference
from arraydaemon.core.paths import DATA_DIR
from tests.helpers import local_requests_only
from tests.web.processes import WebServer, free_port, start_replay, stop

pytestmark = [pytest.mark.live, pytest.mark.slow]

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the test extra")
CHROMIUM = "/usr/bin/chromium"
if shutil.which(CHROMIUM) is None:
    pytest.skip("Debian's chromium is not installed (tools/test.sh installs it)", allow_module_level=True)
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]

TALKER_AZ = json.loads((DATA_DIR / "demo.json").read_text())["sources"][0]["azimuth_deg"]
STARTUP_S = 90.0  # a replay's start (imports, numba cache) on a loaded 2-core machine
SNAPSHOT = """() => ({
    tracks: [...document.querySelectorAll("[data-track-id]")].map(e => [Number(e.dataset.trackId),
                                                                      Number(e.dataset.azimuth)]),
    health: document.querySelector("[data-health-state]").dataset.healthState,
    nodata: !document.getElementById("nodata").hidden,
    array: document.getElementById("array-info").textContent,
    connections: window.arraydaemonView.connections,
    messages: window.arraydaemonView.messages,
})"""


class Viewer:
    """The web server, the browser and the page; every request the page makes is recorded, and any
    that is not for 127.0.0.1 is aborted."""

    def __init__(self, playwright):
        self.endpoint = f"tcp://127.0.0.1:{free_port()}"
        self.web = WebServer(self.endpoint)
        self.browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        self.context = self.browser.new_context(viewport={"width": 1200, "height": 760})
        self.requests: list[str] = []
        self.errors: list[str] = []
        local_requests_only(self.context, self.requests)
        self.page = self.context.new_page()
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.on("websocket", lambda ws: self.requests.append(ws.url))
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.goto(self.web.url)

    def snapshot(self) -> dict:
        return self.page.evaluate(SNAPSHOT)

    def wait(self, condition, timeout: float, what: str, period: float = 0.1) -> tuple[dict, float]:
        """Poll the page until ``condition(snapshot)``; returns that snapshot and when it came."""
        deadline = time.monotonic() + timeout
        while True:
            snap = self.snapshot()
            if condition(snap):
                return snap, time.monotonic()
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not within {timeout:g} s; page shows {snap}")
            time.sleep(period)

    def close(self) -> None:
        self.browser.close()
        self.web.stop()


def near_talker(snap: dict) -> list[int]:
    return [tid for tid, az in snap["tracks"] if azimuth_difference(az, TALKER_AZ) <= 10.0]


@pytest.fixture(scope="module")
def viewer():
    with sync_api.sync_playwright() as playwright:
        v = Viewer(playwright)
        try:
            yield v
        finally:
            v.close()


def assert_only_loopback(viewer: Viewer) -> None:
    assert viewer.requests, "no request recorded"
    hosts = {urlsplit(url).hostname for url in viewer.requests}
    assert hosts == {"127.0.0.1"}, sorted(set(viewer.requests))
    schemes = {urlsplit(url).scheme for url in viewer.requests}
    assert schemes <= {"http", "ws"}, schemes
    assert not viewer.errors, viewer.errors


def test_page_shows_the_replayed_talker_with_a_stable_id(viewer):
    replay = start_replay(viewer.endpoint)
    try:
        _, first = viewer.wait(lambda s: s["messages"] > 0, STARTUP_S, "a first message from the replay")
        snap, found = viewer.wait(lambda s: near_talker(s), 5.0, f"a track within 10° of {TALKER_AZ:+.0f}°")
        assert found - first <= 5.0
        talker = near_talker(snap)[0]
        snapshots = []
        while replay.poll() is None:  # the rest of the replay (about 5 s)
            snapshots.append(viewer.snapshot())
            time.sleep(0.1)
        assert replay.returncode == 0, replay.stderr.read()
    finally:
        stop(replay)
    assert len(snapshots) >= 20
    ids_near_talker = {tid for s in snapshots for tid in near_talker(s)}
    assert ids_near_talker == {talker}, "the talker's track changed id"
    shown = sum(talker in near_talker(s) for s in snapshots)
    assert shown >= 0.9 * len(snapshots), f"the talker's track was shown in {shown} of {len(snapshots)} snapshots"
    assert {s["health"] for s in snapshots} & {"replay", "stopping"}
    assert snapshots[-1]["array"].startswith("demo: planar, 4 mics"), snapshots[-1]["array"]
    # nothing arrives any more: "no data" within about 2 s, and no stale track
    snap, _ = viewer.wait(lambda s: s["nodata"], 4.0, "'no data' after the replay ended")
    assert snap["tracks"] == [] and snap["health"] == ""
    assert viewer.snapshot()["connections"] == 1
    assert_only_loopback(viewer)


def test_feed_survives_a_web_server_restart_and_a_publisher_restart(viewer):
    replay = start_replay(viewer.endpoint)
    try:
        viewer.wait(near_talker, STARTUP_S, "the talker's track from a second replay")
        connections = viewer.snapshot()["connections"]

        # the web server restarts on the same port: the page reconnects by itself
        assert viewer.web.stop() == 0
        viewer.web = WebServer(viewer.endpoint, http=f"127.0.0.1:{viewer.web.port}")
        snap, _ = viewer.wait(lambda s: s["connections"] > connections and near_talker(s), 5.0,
                              "the talker's track through the restarted web server")
        connections = snap["connections"]

        # the publisher dies: "no data" instead of its tracks; another one starts: tracks come back
        stop(replay)
        snap, _ = viewer.wait(lambda s: s["nodata"], 4.0, "'no data' after the publisher was killed")
        assert snap["tracks"] == []
        replay = start_replay(viewer.endpoint)
        viewer.wait(lambda s: not s["nodata"], STARTUP_S, "messages from the new publisher")
        snap, _ = viewer.wait(near_talker, 5.0, "the talker's track from the new publisher")
        assert snap["connections"] == connections, "the page had to reconnect to see the new publisher"
    finally:
        stop(replay)
    assert_only_loopback(viewer)
