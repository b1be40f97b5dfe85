"""The room in the web view, in a real browser (Debian's chromium via Playwright, no browser
download): three real replay daemons publishing over ZeroMQ TCP on 127.0.0.1 into a real
``arraydaemon fuse`` process, one ``arraydaemon web`` given fuse's endpoint and one given the room
file (it fuses the arrays itself). Both pages must draw the arrays at their poses, the landmark,
the fused position near the talker with a stable id and a trail, the arrays' states, and say "no
data" when fuse is gone; with the daemons gone and fuse running, every array is "down" and no
position is left on the map."""

from __future__ import annotations

import json
import math
import shutil
import signal
import subprocess
import time
from urllib.parse import urlsplit

import numpy as np
import pytest
import yaml

from tests.helpers import ARRAYDAEMON, REPO_ROOT, free_port, local_requests_only, replay_array
from tests.web.processes import WebServer

pytestmark = [pytest.mark.live, pytest.mark.sim, pytest.mark.slow]

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the test extra")
CHROMIUM = "/usr/bin/chromium"
if shutil.which(CHROMIUM) is None:
    pytest.skip("Debian's chromium is not installed (tools/test.sh installs it)", allow_module_level=True)
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
SCENE_S = 8.0
LEAD_S = 10.0  # the daemons start (imports, numba cache) before the common wall start
SNAPSHOT = """() => {
  const v = window.arraydaemonView;
  const canvas = document.getElementById("room");
  const ctx = canvas.getContext("2d");
  const dpr = window.devicePixelRatio || 1;
  const lit = (x, y) => {  // whether something is drawn within 2 px of (x, y) (CSS pixels)
    let best = 0;
    for (let dx = -2; dx <= 2; dx++) for (let dy = -2; dy <= 2; dy++) {
      const d = ctx.getImageData(Math.round((x + dx) * dpr), Math.round((y + dy) * dpr), 1, 1).data;
      best = Math.max(best, d[3]);
    }
    return best;
  };
  const arrays = v.room ? v.room.arrays.map(a => {
    const [x, y] = v.roomPoint(a.position[0], a.position[1]);
    return {name: a.name, lit: lit(x, y)};
  }) : [];
  return {
    roomMode: document.body.classList.contains("room-mode"),
    roomPanelShown: !document.getElementById("room-panel").hidden &&
                    document.getElementById("polar-panel").offsetParent === null,
    positions: [...document.querySelectorAll("li.position")].map(e => ({
      id: Number(e.dataset.positionId), x: Number(e.dataset.x), y: Number(e.dataset.y),
      arrays: e.dataset.arrays.split(","),
      lit: lit(...v.roomPoint(Number(e.dataset.x), Number(e.dataset.y)))})),
    states: Object.fromEntries([...document.querySelectorAll("li.room-array")].map(e => [e.dataset.arrayName,
                                                                                        e.dataset.state])),
    arrays, landmarks: v.room ? v.room.landmarks.map(l => l.name) : [],
    landmarkLit: v.room && v.room.landmarks.length ?
      lit(...v.roomPoint(v.room.landmarks[0].position[0], v.room.landmarks[0].position[1])) : 0,
    trails: Object.fromEntries([...v.trails].map(([id, t]) => [id, t.length])),
    bearings: v.bearings.length,
    nodata: !document.getElementById("nodata").hidden,
    title: document.getElementById("room-name").textContent,
  };
}"""


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    from arraydaemon.research.fusion.scenes import load_scene

    return load_scene("dev", 1, tmp_path_factory.mktemp("fusion"), arrays=3, talkers=1, duration=SCENE_S)


class Page:
    def __init__(self, browser, url: str):
        self.context = browser.new_context(viewport={"width": 1200, "height": 760})
        self.requests: list[str] = []
        self.errors: list[str] = []
        local_requests_only(self.context, self.requests)
        self.page = self.context.new_page()
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.goto(url)
        self.snaps: list[tuple[float, dict]] = []

    def snapshot(self) -> dict:
        return self.page.evaluate(SNAPSHOT)


def test_web_draws_the_room_from_fuse_and_from_the_room_file(scene, tmp_path):
    from arraydaemon.research.fusion.scenes import position_at

    room = yaml.safe_load((scene / "room.yaml").read_text())
    for a in room["arrays"]:
        a["endpoint"] = f"tcp://127.0.0.1:{free_port()}"
        a["profile"] = str(scene / a["profile"])
    room["landmarks"] = [{"name": "door", "position": [0.0, round(room["size"][1] / 2, 2)]}]
    path = tmp_path / "room.yaml"
    path.write_text(yaml.safe_dump(room))
    truth = np.array(json.loads((scene / "truth.json").read_text())["talkers"][0]["path"])
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    fuse = subprocess.Popen([*ARRAYDAEMON, "fuse", str(path), "--endpoint", endpoint], cwd=REPO_ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    webs = [WebServer(endpoint), WebServer.room(path)]
    daemons = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            pages = [Page(browser, web.url) for web in webs]
            wall_start = time.time() + LEAD_S
            daemons = [replay_array(scene, a, wall_start) for a in room["arrays"]]
            while time.time() < wall_start + SCENE_S + 4.0:
                for page in pages:
                    page.snaps.append((time.time() - wall_start, page.snapshot()))
                time.sleep(0.25)
            assert fuse.poll() is None, fuse.stderr.read()
            for web in webs:
                assert web.proc.poll() is None, "".join(web.stderr)
            fuse.send_signal(signal.SIGTERM)  # fuse gone: its page says "no data" within about 2 s
            fuse.wait(timeout=20)
            time.sleep(3.0)
            gone = pages[0].snapshot()
        finally:
            for d in daemons:
                if d.poll() is None:
                    d.send_signal(signal.SIGTERM)
                d.wait(timeout=30)
            if fuse.poll() is None:
                fuse.send_signal(signal.SIGTERM)
                fuse.wait(timeout=20)
            for web in webs:
                web.stop()
            browser.close()
    names = [a["name"] for a in room["arrays"]]
    for which, page in zip(("fuse's endpoint", "the room file"), pages):
        during = [(s, snap) for s, snap in page.snaps if 1.0 <= s <= SCENE_S - 0.5]
        assert during, which
        last = during[-1][1]
        assert last["roomMode"] and last["roomPanelShown"], (which, last)
        assert f"{room['name']}: 3 arrays" in last["title"] and "door" in last["title"], (which, last["title"])
        assert [a["name"] for a in last["arrays"]] == names and all(a["lit"] > 0 for a in last["arrays"]), \
            (which, last["arrays"])
        assert last["landmarks"] == ["door"] and last["landmarkLit"] > 0, which
        all_up = [snap for _, snap in during if snap["states"] == {n: "up" for n in names}]
        assert len(all_up) >= 0.8 * len(during), (which, [snap["states"] for _, snap in during][:5])
        placed = [(s, p) for s, snap in during for p in snap["positions"]]
        assert len({s for s, _ in placed}) >= 0.5 * len(during), f"{which}: a position in few snapshots"
        errors = [math.dist((p["x"], p["y"]), position_at(truth, s)[:2]) for s, p in placed]
        assert np.median(errors) < 0.6, f"{which}: median floor error {np.median(errors):.2f} m"
        assert all(p["lit"] > 0 for _, p in placed), f"{which}: a listed position not drawn"
        ids = {p["id"] for _, p in placed}
        assert len(ids) <= 2, f"{which}: ids {ids} for one talker"
        assert max((n for _, snap in during for n in snap["trails"].values()), default=0) >= 10, which
        assert all(set(p["arrays"]) <= set(names) and len(p["arrays"]) >= 2 for _, p in placed), which
        # the daemons are gone, the fusion goes on: every array down, no position left on the map
        after = [snap for s, snap in page.snaps if s > SCENE_S + 3.0]
        assert after and after[-1]["states"] == {n: "down" for n in names} and not after[-1]["positions"], \
            (which, after[-1:])
        assert not after[-1]["nodata"], which
        assert not page.errors, (which, page.errors)
        hosts = {urlsplit(u).hostname for u in page.requests}
        assert hosts == {"127.0.0.1"}, (which, sorted(set(page.requests)))
    assert gone["nodata"] and not gone["positions"], gone
