"""The fusion core: bearings in the room frame, triangulation, association, the position tracker
and the fuser, on exact and noisy synthetic bearings."""

from __future__ import annotations

import math

import numpy as np
import pytest

from arraydaemon.fusion.associate import AssociationConfig, associate
from arraydaemon.fusion.fuser import Fuser, bearing_entries, position_entries
from arraydaemon.fusion.geometry import bearings_of, triangulate
from arraydaemon.fusion.room import parse_room, rotation
from arraydaemon.fusion.tracker import PositionTracker
from arraydaemon.io import wire
from tests.helpers import array_vector, tracks_message

LINE = "mics: [[-0.05, 0, 0], [0, 0, 0], [0.05, 0, 0], [0.1, 0, 0]]\nname: line4\nsample_rate: 16000\n"


def room_of(poses, tmp_path=None, profiles=None, size=(6.0, 5.0, 2.7)):
    arrays = []
    for k, (pos, yaw) in enumerate(poses):
        prof = (profiles or {}).get(k, "respeaker_4mic_hat")
        arrays.append({"name": f"a{k}", "profile": prof, "endpoint": f"tcp://127.0.0.1:{5600 + k}",
                       "position": list(pos), "yaw_deg": yaw})
    data = {"arrays": arrays}
    if size is not None:
        data["size"] = list(size)
    return parse_room(data, "<test>", tmp_path)


THREE = [((0.2, 2.5, 1.2), 0.0), ((3.0, 0.2, 1.5), 90.0), ((5.8, 4.0, 1.0), 200.0)]


def noisy(vector, sigma_deg, rng):
    az = math.atan2(vector[1], vector[0]) + math.radians(sigma_deg) * rng.standard_normal()
    el = math.asin(vector[2]) + math.radians(sigma_deg) * rng.standard_normal()
    return np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])


def test_an_array_frame_bearing_turns_into_the_room_frame_with_the_pose():
    room = room_of([((1.0, 1.0, 1.0), 90.0), ((4.0, 1.0, 1.0), 0.0)])
    (b,) = [h for h in bearings_of(room.array("a0"), 3, [1.0, 0.0, 0.0]) if h.hypothesis == 0]
    np.testing.assert_allclose(b.direction, [0.0, 1.0, 0.0], atol=1e-12)
    assert b.azimuth_deg == pytest.approx(90.0) and b.track_id == 3 and b.array == "a0"
    hyps = bearings_of(room.array("a0"), 3, [0.6, 0.0, 0.8])
    assert [h.hypothesis for h in hyps] == [0, 1]  # planar: up or down
    np.testing.assert_allclose(hyps[1].direction, [0.0, 0.6, -0.8], atol=1e-12)


CUBE = "name: cube\nsample_rate: 16000\nmics: [[0.03, 0, 0], [0, 0.03, 0], [-0.03, 0, 0], [0, 0, 0.03]]\n"


def test_exact_bearings_triangulate_to_the_point_in_3d(tmp_path):
    (tmp_path / "cube.yaml").write_text(CUBE)
    room = room_of(THREE, tmp_path, {k: "cube.yaml" for k in range(3)})
    assert {a.kind for a in room.arrays} == {"3d"}
    p = np.array([2.5, 3.1, 1.6])
    bs = [bearings_of(a, 1, array_vector(a, p))[0] for a in room.arrays]
    fix = triangulate(bs, 5.0)
    np.testing.assert_allclose(fix.point, p, atol=1e-9)
    assert fix.residual == pytest.approx(0.0, abs=1e-12) and math.isfinite(fix.sigma_z)


def test_planar_arrays_level_with_the_talker_give_no_height():
    room = room_of(THREE)  # horizontal planar arrays at 1.0-1.5 m: the talker is within 55 degrees of their plane
    p = np.array([2.5, 3.1, 1.6])
    fix = triangulate([bearings_of(a, 1, array_vector(a, p))[0] for a in room.arrays], 5.0)
    np.testing.assert_allclose(fix.point[:2], p[:2], atol=1e-9)
    assert fix.sigma_z == math.inf and fix.point[2] == pytest.approx(np.mean([a.position[2] for a in room.arrays]))
    high = np.array([1.0, 2.6, 3.0])  # 66 degrees above the first array: its elevation counts
    bs = [bearings_of(a, 1, array_vector(a, high))[0] for a in room.arrays]
    assert [b.elevation_known for b in bs] == [True, False, False]
    assert triangulate(bs, 5.0).point[2] == pytest.approx(3.0)


def test_the_covariance_matches_the_spread_of_noisy_fixes():
    room = room_of(THREE)
    p = np.array([2.0, 2.8, 1.5])
    rng = np.random.default_rng(1)
    sigma = 3.0
    points, covs = [], []
    for _ in range(400):
        bs = [bearings_of(a, 1, noisy(array_vector(a, p), sigma, rng))[0] for a in room.arrays]
        fix = triangulate(bs, sigma)
        points.append(fix.point[:2])
        covs.append(fix.cov_xy)
    empirical = np.cov(np.array(points).T)
    predicted = np.mean(covs, axis=0)
    assert np.trace(empirical) == pytest.approx(np.trace(predicted), rel=0.25)
    assert np.linalg.norm(np.mean(points, axis=0) - p[:2]) < 0.03


def test_parallel_rays_and_points_behind_an_array_give_no_fix():
    room = room_of([((1.0, 1.0, 1.0), 0.0), ((1.0, 3.0, 1.0), 0.0)])
    a, b = room.arrays
    assert triangulate([bearings_of(a, 1, [1, 0, 0])[0], bearings_of(b, 1, [1, 0, 0])[0]], 5.0) is None
    # lines that cross behind both arrays, at (0, 2); the opposite rays meet there in front
    assert triangulate([bearings_of(a, 1, np.array([1, -1, 0]) / np.sqrt(2))[0],
                        bearings_of(b, 1, np.array([1, 1, 0]) / np.sqrt(2))[0]], 5.0) is None
    fix = triangulate([bearings_of(a, 1, np.array([-1, 1, 0]) / np.sqrt(2))[0],
                       bearings_of(b, 1, np.array([-1, -1, 0]) / np.sqrt(2))[0]], 5.0)
    np.testing.assert_allclose(fix.point[:2], [0.0, 2.0], atol=1e-9)
    assert triangulate([bearings_of(a, 1, [1, 0, 0])[0]], 5.0) is None


def obs_for(room, talkers, rng=None, sigma=0.0, skip=()):
    obs = {}
    for k, p in enumerate(talkers):
        for a in room.arrays:
            if (a.name, k) in skip:
                continue
            v = array_vector(a, p)
            if rng is not None:
                v = noisy(v, sigma, rng)
            obs[(a.name, 10 + k)] = bearings_of(a, 10 + k, v)
    return obs


def test_two_talkers_three_arrays_no_ghosts():
    room = room_of(THREE)
    talkers = [np.array([2.0, 3.5, 1.7]), np.array([4.0, 1.5, 1.1])]
    rng = np.random.default_rng(2)
    low, high = np.zeros(3), room.size
    for _ in range(20):
        result = associate(obs_for(room, talkers, rng, 2.0), AssociationConfig(sigma_deg=5.0), low, high)
        assert len(result.fixes) == 2 and not result.singles
        for fix in result.fixes:
            k = {b.track_id for b in fix.bearings}
            assert len(k) == 1  # one talker's bearings only
            truth = talkers[k.pop() - 10]
            assert np.linalg.norm(fix.point[:2] - truth[:2]) < 0.3


def test_ceiling_arrays_up_down_mirror_is_resolved():
    room = room_of([((1.5, 1.5, 2.8), 0.0), ((3.5, 1.5, 2.8), 90.0), ((2.5, 3.2, 2.8), 200.0)], size=(6.0, 5.0, 3.0))
    p = np.array([2.4, 2.1, 0.9])  # 57-60 degrees below every array
    obs = {}
    for a in room.arrays:
        v = array_vector(a, p)
        obs[(a.name, 1)] = bearings_of(a, 1, [v[0], v[1], abs(v[2])])  # a planar daemon reports the upper side
    (fix,) = associate(obs, AssociationConfig(sigma_deg=5.0), np.zeros(3), room.size).fixes
    assert all(b.hypothesis == 1 and b.elevation_known for b in fix.bearings)  # all mirrored: down
    np.testing.assert_allclose(fix.point, p, atol=1e-6)


def test_a_linear_arrays_front_back_mirror_is_resolved_by_the_others(tmp_path):
    (tmp_path / "line4.yaml").write_text(LINE)
    room = room_of(THREE, tmp_path, {1: "line4.yaml"})
    assert room.array("a1").kind == "linear"
    p = np.array([2.5, 1.6, 1.5])  # off the line through a0 and a2 (there any third ray would fit)
    obs = {}
    for a in room.arrays:
        v = array_vector(a, p)
        if a.kind == "linear":  # the daemon reports the other side of the cone
            v = np.array([v[0], -v[1], v[2]])
        obs[(a.name, 1)] = bearings_of(a, 1, v)
    result = associate(obs, AssociationConfig(sigma_deg=5.0), np.zeros(3), room.size)
    (fix,) = result.fixes
    assert len(fix.bearings) == 3 and np.linalg.norm(fix.point[:2] - p[:2]) < 1e-6
    assert [b.hypothesis for b in fix.bearings if b.array == "a1"] == [1]


def test_a_talker_only_one_array_hears_stays_a_bearing():
    room = room_of(THREE)
    talkers = [np.array([2.0, 3.5, 1.7]), np.array([4.0, 1.5, 1.1])]
    skip = {("a1", 1), ("a2", 1)}
    result = associate(obs_for(room, talkers, skip=skip), AssociationConfig(sigma_deg=5.0), np.zeros(3), room.size)
    assert len(result.fixes) == 1 and len(result.singles) == 1
    assert result.singles[0][0].array == "a0" and result.singles[0][0].track_id == 11


def test_tracker_keeps_one_id_for_a_walker_and_retires_it_after_silence():
    room = room_of(THREE)
    tracker = PositionTracker()
    rng = np.random.default_rng(3)
    errors = []
    for k in range(80):  # 8 s at 10 Hz, walking at 0.6 m/s
        t = 100.0 + 0.1 * k
        p = np.array([1.0 + 0.06 * k * 0.75, 1.2 + 0.06 * k * 0.5, 1.6])
        bs = [bearings_of(a, 1, noisy(array_vector(a, p), 3.0, rng))[0] for a in room.arrays]
        confirmed = tracker.step(t, [triangulate(bs, 3.0)])
        if k >= 10:
            assert [tr.id for tr in confirmed] == [1]
            errors.append(np.linalg.norm(confirmed[0].state[:2] - p[:2]))
            if k == 79:
                np.testing.assert_allclose(confirmed[0].state[2:], [0.45, 0.3], atol=0.15)
    assert np.median(errors) < 0.15
    assert not tracker.step(108.0 + 0.7, [])  # coasting: kept, not published
    assert [tr.id for tr in tracker.tracks] == [1]
    tracker.step(108.0 + 2.5, [])
    assert not tracker.tracks  # retired after max_silence_s
    p = np.array([3.0, 3.0, 1.5])
    bs = [bearings_of(a, 1, array_vector(a, p))[0] for a in room.arrays]
    tracker.step(111.0, [triangulate(bs, 3.0)])
    assert [tr.id for tr in tracker.step(111.1, [triangulate(bs, 3.0)])] == [2]  # ids never reused


def test_the_fuser_aligns_by_wall_time_and_publishes_valid_positions():
    room = room_of(THREE)
    fuser = Fuser(room)
    p = np.array([2.5, 2.0, 1.6])
    names = list(room.names)
    out = None
    for k in range(10):
        t = 1_700_000_000.0 + 0.1 * k
        for j, a in enumerate(room.arrays):
            fuser.add(a.name, tracks_message(a, p, t + 0.013 * j, k))  # clocks 13 ms apart
            steps = fuser.steps(names)
            if j < len(names) - 1:
                assert not steps  # waits for the last array of this window
            else:
                assert [s.t for s in steps] == [t]  # one step per window
                out = steps[0]
    assert out is not None and out.t == pytest.approx(1_700_000_000.9, abs=1e-6)
    (entry,) = position_entries(out)
    assert math.dist((entry["x"], entry["y"]), p[:2]) < 0.05 and not entry["z_known"]  # level with planar arrays
    assert entry["fused_arrays"] == names and entry["fused_tracks"] == [1, 1, 1]
    payload = wire.positions_payload(wire.common(1, "room", "room", 1.0, out.t), [entry], bearing_entries(out, room),
                                     [{"name": "a0", "state": "up", "endpoint": "tcp://127.0.0.1:1", "silent_s": 0.1}])
    wire.validate("positions", payload)
    from arraydaemon.cli.display import format_message

    line = format_message("positions", payload)
    assert line.startswith("positions seq=1") and f"#1@({entry['x']:.2f},{entry['y']:.2f}," in line
    assert "not up" not in line and "\n" not in line
    assert wire.receive(wire.encode("positions", payload))[1]["positions"][0]["x"] == entry["x"]
    # a stale or down array is not waited for, and a lone array's track is a bearing
    t = 1_700_000_001.0
    fuser.add("a0", tracks_message(room.array("a0"), p, t, 11))
    (step,) = fuser.steps(["a0"])
    assert not step.tracks or all(tr.last_fix < t for tr in step.tracks)
    (bearing,) = bearing_entries(step, room)
    assert bearing["array"] == "a0" and bearing["id"] == 1
    d = p - room.array("a0").position
    assert bearing["azimuth_deg"] == pytest.approx(math.degrees(math.atan2(d[1], d[0])), abs=1e-6)


def test_the_fuser_steps_once_per_common_window_however_the_messages_are_bunched():
    """Arrays whose windows arrive out of step (a daemon sending several at once, another late):
    every window all of them reached is fused once, in capture order, with every array's message of
    that window, as many steps as when they arrive one window at a time."""
    room = room_of(THREE)
    names = list(room.names)
    p = np.array([2.5, 2.0, 1.6])
    t0 = 1_700_000_000.0
    windows = 30
    skew = {"a0": 0.0, "a1": 0.013, "a2": -0.021}  # clocks apart by up to 34 ms
    msgs = {a.name: [tracks_message(a, p, t0 + 0.1 * k + skew[a.name], k) for k in range(windows)]
            for a in room.arrays}
    # a0 in bursts of 3, a1 one at a time, a2 in bursts of 4 that lag behind
    bursts = {"a0": 3, "a1": 1, "a2": 4}
    fuser = Fuser(room)
    sent = {n: 0 for n in names}
    steps = []
    for tick in range(windows + 4):
        for n in names:
            if tick % bursts[n] == bursts[n] - 1 or tick >= windows:
                for m in msgs[n][sent[n]:min(tick + 1, windows)]:
                    fuser.add(n, m)
                sent[n] = min(tick + 1, windows)
            steps.extend((s, position_entries(s)) for s in fuser.steps(names))
    times = [s.t for s, _ in steps]
    assert len(times) == windows
    np.testing.assert_allclose(times, [t0 + 0.1 * k for k in range(windows)], atol=1e-6)  # a0's windows
    assert all(s.contributing == tuple(names) for s, _ in steps)
    assert fuser.fused == windows
    # the same messages one window at a time give the same steps and the same positions
    one = Fuser(room)
    ref = []
    for k in range(windows):
        for n in names:
            one.add(n, msgs[n][k])
        ref.extend((s, position_entries(s)) for s in one.steps(names))
    assert [s.t for s, _ in ref] == times
    assert [e for _, e in ref] == [e for _, e in steps]
    assert sum(len(e) for _, e in steps) >= windows - 2  # the talker placed from the second step on


def test_rotation_round_trip_on_tilted_arrays():
    r = rotation(123.0, 20.0, -15.0)
    room = parse_room({"arrays": [{"profile": "respeaker_4mic_hat", "endpoint": "tcp://127.0.0.1:1",
                                   "position": [1, 1, 2], "yaw_deg": 123, "pitch_deg": 20, "roll_deg": -15}]})
    np.testing.assert_allclose(room.arrays[0].rotation, r)
    np.testing.assert_allclose(room.arrays[0].mirror_normal, r @ [0, 0, 1], atol=1e-9)


def test_an_idle_step_before_the_daemons_are_heard_does_not_skip_their_first_windows():
    """fuse publishes once a second while no array is up; daemons that start late send their first
    windows in a burst, older than that idle step: they are fused all the same."""
    room = room_of(THREE)
    names = list(room.names)
    p = np.array([2.5, 2.0, 1.6])
    t0 = 1_700_000_000.0
    fuser = Fuser(room)
    assert fuser.advance(t0 + 2.0).tracks == []  # nothing heard yet, at wall time t0 + 2 s
    for k in range(15):
        for a in room.arrays:
            fuser.add(a.name, tracks_message(a, p, t0 + 0.1 * k, k))
    steps = fuser.steps(names)
    np.testing.assert_allclose([s.t for s in steps], [t0 + 0.1 * k for k in range(15)], atol=1e-6)
    assert [tr.id for tr in steps[-1].tracks] == [1]


def test_a_fused_talker_one_array_still_follows_is_held_on_its_bearing_for_a_short_while_only():
    """Three arrays place a walker; then two lose it: the one that still tracks it holds the
    position on its bearing (flagged bearing_only, on that bearing, its uncertainty growing along
    it) for at most hold_s after the last fix, then it is a bearing only. A talker that array alone
    ever heard is never a point."""
    room = room_of(THREE)
    names = list(room.names)
    t0 = 1_700_000_000.0
    fuser = Fuser(room)
    walk = lambda k: np.array([1.5 + 0.05 * k, 2.0 + 0.02 * k, 1.6])
    lone = np.array([4.5, 4.2, 1.6])  # heard by a0 only, from the start
    out = []
    for k in range(60):
        t = t0 + 0.1 * k
        for a in room.arrays:
            msg = tracks_message(a, walk(k), t, k)
            if a.name == "a0":
                msg["tracks"].append(tracks_message(a, lone, t, k, track_id=2)["tracks"][0])
            elif k >= 20:
                msg["tracks"] = []  # a1 and a2 lose the walker after 2 s
            fuser.add(a.name, msg)
        for step in fuser.steps(names):
            out.append((round(step.t - t0, 1), position_entries(step), step.bearings))
    entries = {k: e for k, e, _ in out}
    assert all(len(e) == 1 and not e[0]["bearing_only"] for k, e in entries.items() if 0.5 <= k < 2.0)
    held = {k: e for k, e in entries.items() if 2.0 <= k <= 3.4}
    assert all(len(e) == 1 and e[0]["bearing_only"] and e[0]["fused_arrays"] == ["a0"] for e in held.values())
    a0 = room.array("a0")
    for k, (e,) in held.items():
        p = walk(round(k * 10))
        d = p[:2] - a0.position[:2]
        to = np.array([e["x"], e["y"]]) - a0.position[:2]
        miss = abs(d[0] * to[1] - d[1] * to[0]) / np.linalg.norm(d)
        assert miss < 0.05  # on the array's bearing to the walker
        assert math.dist((e["x"], e["y"]), p[:2]) < 0.5
    sigmas = [e[0]["sigma_m"] for _, e in sorted(held.items())]
    assert sigmas[-1] > 2 * sigmas[0]  # the range along the bearing is not measured
    assert all(not e for k, e in entries.items() if k >= 3.6)  # past hold_s: no point, ...
    assert any(b.array == "a0" and b.track_id == 1 for b in out[-1][2])  # ... a bearing
    assert all(not any(math.dist((p["x"], p["y"]), lone[:2]) < 1.0 for p in e) for e in entries.values())
