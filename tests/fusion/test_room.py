"""The room file: parsing, the one-line errors, ``room check``."""

from __future__ import annotations

import subprocess
import textwrap
import time

import numpy as np
import pytest

from arraydaemon.fusion.room import RoomError, load_room, rotation
from tests.helpers import ARRAYDAEMON, REPO_ROOT, free_port

ROOM = """\
name: test-room
size: [6, 5, 2.7]
arrays:
  - name: west
    profile: respeaker_4mic_hat
    endpoint: tcp://127.0.0.1:{p1}
    position: [0.2, 2.5, 1.2]
    yaw_deg: 0
  - name: south
    profile: ./my_array.yaml
    endpoint: tcp://127.0.0.1:{p2}
    position: [3.0, 0.2, 1.3]
    yaw_deg: 90
landmarks:
  - name: door
    position: [0, 2.5]
  - name: table
    position: [3.0, 2.5, 0.75]
"""
MY_ARRAY = """\
name: my_array
sample_rate: 16000
mics: [[0.03, 0, 0], [0, 0.03, 0], [-0.03, 0, 0], [0, -0.03, 0.02]]
"""


def write_room(tmp_path, text=ROOM, **ports):
    (tmp_path / "my_array.yaml").write_text(MY_ARRAY)
    ports = {"p1": 5601, "p2": 5602, **ports}
    path = tmp_path / "room.yaml"
    path.write_text(text.format(**ports))
    return path


def test_rotation_is_ccw_yaw_then_pitch_then_roll():
    np.testing.assert_allclose(rotation(90) @ [1, 0, 0], [0, 1, 0], atol=1e-12)
    np.testing.assert_allclose(rotation(0, 90) @ [1, 0, 0], [0, 0, -1], atol=1e-12)  # +x tilted down
    np.testing.assert_allclose(rotation(0, 0, 90) @ [0, 1, 0], [0, 0, 1], atol=1e-12)
    r = rotation(30, 10, -20)
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)


def test_a_room_file_loads_with_profiles_by_name_and_relative_path(tmp_path):
    room = load_room(write_room(tmp_path))
    assert room.names == ("west", "south") and room.name == "test-room"
    south = room.array("south")
    assert south.profile_name == "my_array" and south.kind == "3d" and south.mirror_normal is None
    west = room.array("west")
    assert west.kind == "planar" and west.ambiguity == "up-down"
    np.testing.assert_allclose(west.mirror_normal, [0, 0, 1], atol=1e-9)  # horizontal: mirrors z only
    np.testing.assert_allclose(south.rotation @ [1, 0, 0], [0, 1, 0], atol=1e-12)
    assert [m.name for m in room.landmarks] == ["door", "table"]
    np.testing.assert_allclose(room.landmarks[0].position, [0, 2.5, 0])  # z 0 when only x, y are given
    np.testing.assert_allclose(room.landmarks[1].position, [3.0, 2.5, 0.75])


def test_fuse_publishes_the_room_layout_once_a_second(tmp_path):
    """A real FuseService publishing on a real socket: the ``room`` topic (validated by the
    subscriber) carries the arrays' poses and the landmarks, even with no array up."""
    from arraydaemon.fusion.service import FuseService
    from arraydaemon.io.publisher import ZmqPublisher
    from arraydaemon.io.subscriber import Subscriber

    room = load_room(write_room(tmp_path, p1=free_port(), p2=free_port()))
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    publisher = ZmqPublisher(endpoint)
    sub = Subscriber(endpoint, ["room"])
    service = FuseService(room, publisher, notify=lambda text: None)
    try:
        service.run(2.5)
        got = [p for _, p in sub.receive(time.monotonic() + 1.0)]
    finally:
        service.close()
        sub.close()
        publisher.close()
    assert got, "no room message"
    msg = got[-1]
    assert msg["array"] == "test-room" and msg["frame_id"] == "room" and msg["size"] == [6.0, 5.0, 2.7]
    assert [(a["name"], a["profile"], a["kind"], a["position"], a["yaw_deg"]) for a in msg["arrays"]] == [
        ("west", "respeaker_4mic_hat", "planar", [0.2, 2.5, 1.2], 0.0), ("south", "my_array", "3d", [3.0, 0.2, 1.3], 90.0)]
    assert msg["landmarks"] == [{"name": "door", "position": [0.0, 2.5, 0.0]},
                                {"name": "table", "position": [3.0, 2.5, 0.75]}]


@pytest.mark.parametrize("change, message", [
    (("yaw_deg: 0", "yaw_dg: 0"), "arrays[0]: unknown key 'yaw_dg'; did you mean 'yaw_deg'?"),
    (("respeaker_4mic_hat", "respeaker_4mic_hta"), "did you mean 'respeaker_4mic_hat'?"),
    (("./my_array.yaml", "./missing.yaml"), "missing.yaml: profile file not found"),
    (("[3.0, 0.2, 1.3]", "[0.25, 2.5, 1.2]"), "is 0.05 m from array 'west' (two arrays at one place"),
    (("name: south", "name: west"), "a second array named 'west'"),
    (("127.0.0.1:{p2}", "127.0.0.1:99999"), "port 99999 is not in 1-65535"),
    (("[3.0, 0.2, 1.3]", "[3.0, 7.2, 1.3]"), "key 'position': expected a point inside the room"),
    (("size: [6, 5, 2.7]", "sise: [6, 5, 2.7]"), "unknown key 'sise'; did you mean 'size'?"),
    (("landmarks:", "landmark:"), "unknown key 'landmark'; did you mean 'landmarks'?"),
    (("name: table", "name: Door"), "landmark 'Door': a second landmark named 'Door'"),
    (("[0, 2.5]", "[0, 9.5]"), "landmark 'door': key 'position': expected a point inside the room"),
    (("[0, 2.5]", "[0]"), "landmark 'door': key 'position': expected [x, y] or [x, y, z] in metres"),
    (("    position: [0, 2.5]\n", "    positon: [0, 2.5]\n"), "landmarks[0]: unknown key 'positon'; did you mean "
                                                           "'position'?"),
    (("  - name: door\n", "  - nme: door\n"), "landmarks[0]: unknown key 'nme'; did you mean 'name'?"),
])
def test_room_file_errors_are_one_clear_line(tmp_path, change, message):
    path = write_room(tmp_path, ROOM.replace(*change))
    with pytest.raises(RoomError) as err:
        load_room(path)
    text = str(err.value)
    assert message in text and "\n" not in text and str(path) in text


def test_room_check_maps_coverage_and_names_an_unreachable_endpoint(tmp_path):
    path = write_room(tmp_path, p1=free_port(), p2=free_port())
    done = subprocess.run([*ARRAYDAEMON, "room", "check", str(path)], check=False, capture_output=True, text=True, timeout=60,
                          cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "west: respeaker_4mic_hat (planar, ambiguity up-down)" in out
    assert out.count("unreachable (Connection refused)") == 2
    assert "good  (#)" in out and "A" in out.split("map")[1] and "B" in out.split("map")[1]


def test_room_check_with_a_bad_file_is_one_line_exit_2(tmp_path):
    path = tmp_path / "room.yaml"
    path.write_text(textwrap.dedent("arrays:\n  - profile: nope_array\n    endpoint: tcp://127.0.0.1:1\n"
                                    "    position: [0, 0, 1]\n    yaw_deg: 0\n"))
    done = subprocess.run([*ARRAYDAEMON, "room", "check", str(path)], check=False, capture_output=True, text=True, timeout=60,
                          cwd=REPO_ROOT)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "profile 'nope_array' not found" in lines[0] and "arrays[0]" in lines[0]
