"""ODAS beside arraydaemon (research/odas.py, research/tracking/peer.py): its configuration per array,
its tracked output read back (a parser of another program's bytes: property-tested), and, where an
``odaslive`` is built (``ARRAYDAEMON_ODASLIVE`` or on the PATH), the real ODAS scored on a scene."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arraydaemon.core.options import PipelineOptions
from arraydaemon.research import dataset, odas

SAMPLE = """{
    "timeStamp": 1,
    "src": [
        { "id": 0, "tag": "", "x": 0.000, "y": 0.000, "z": 0.000, "activity": 0.000 },
        { "id": 0, "tag": "", "x": 0.000, "y": 0.000, "z": 0.000, "activity": 0.000 }
    ]
}
{
    "timeStamp": 2,
    "src": [
        { "id": 7, "tag": "dynamic", "x": 0.500, "y": 0.866, "z": 0.000, "activity": 0.910 },
        { "id": 0, "tag": "", "x": 0.000, "y": 0.000, "z": 0.000, "activity": 0.000 }
    ]
}
"""


def test_tracked_output_read_back_keeps_tracked_sources_only():
    frames = odas.read_tracked(SAMPLE)
    assert [stamp for stamp, _ in frames] == [1, 2]
    assert frames[0][1] == []
    (sid, v, act), = frames[1][1]
    assert sid == 7 and act == pytest.approx(0.91)
    np.testing.assert_allclose(v, [0.5, 0.866, 0.0], atol=1e-3)
    assert np.linalg.norm(v) == pytest.approx(1.0)


@pytest.mark.parametrize("text, what", [
    ("{ not json", "not JSON"),
    ('{"timeStamp": "1", "src": []}', "integer timeStamp"),
    ('{"timeStamp": 1, "src": [3]}', "not an object"),
    ('{"timeStamp": 1, "src": [{"id": 1, "x": 1}]}', "numeric id, x, y"),
])
def test_bad_tracked_output_is_one_line_naming_what_is_wrong(text, what):
    with pytest.raises(ValueError, match=what) as info:
        odas.read_tracked(text)
    assert "\n" not in str(info.value)


source = st.fixed_dictionaries({
    "id": st.integers(0, 2**31), "tag": st.text(max_size=5),
    "x": st.floats(allow_nan=True, allow_infinity=True), "y": st.floats(-1, 1), "z": st.floats(-1, 1),
    "activity": st.floats(0, 1)})


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(source, max_size=4), max_size=5))
def test_any_well_formed_output_reads_to_finite_unit_vectors(frames):
    text = "\n".join(json.dumps({"timeStamp": k + 1, "src": src}) for k, src in enumerate(frames))
    out = odas.read_tracked(text)
    assert [stamp for stamp, _ in out] == list(range(1, len(frames) + 1))
    for (_, got), src in zip(out, frames):
        assert len(got) <= len(src)
        for sid, v, _ in got:
            assert sid > 0 and np.all(np.isfinite(v)) and np.linalg.norm(v) == pytest.approx(1.0)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_any_text_reads_or_fails_with_a_value_error(text):
    try:
        odas.read_tracked(text)
    except ValueError as exc:
        assert "\n" not in str(exc)


def _profile(mics):
    return dataset.geometry_profile(np.asarray(mics, dtype=float), "t")


def test_configuration_follows_the_geometry():
    planar = _profile([[0.05, 0, 0], [0, 0.05, 0], [-0.05, 0, 0], [0, -0.05, 0]])
    linear = _profile([[-0.06, 0, 0], [-0.02, 0, 0], [0.02, 0, 0], [0.06, 0, 0]])
    stock = odas.odas_config(linear, "in.raw", "out")
    assert stock.count("angle = ( 80.0, 100.0 )") == 4 + 1  # ODAS's stock cone on every mic and the scan
    assert "nChannels = 4" in stock and "fS = 16000" in stock and 'path = "out/sst.json"' in stock
    assert odas.odas_config(planar, "in.raw", "out", "geometry").count("+0.000000, +0.000000, +1.000000") == 5
    whole = odas.odas_config(linear, "in.raw", "out", "geometry")
    assert whole.count("angle = ( 180.0, 180.0 )") == 5 and "80.0, 100.0" not in whole
    with pytest.raises(ValueError, match="directivity"):
        odas.odas_config(linear, "in.raw", "out", "narrow")


def test_raw_input_is_interleaved_int32(tmp_path):
    audio = np.array([[0.5, -0.25], [1.0, -1.0]], dtype=np.float32)
    data = np.frombuffer(odas.raw_int32(audio, tmp_path / "x.raw").read_bytes(), dtype="<i4")
    assert data.tolist() == [2**30, -2**29, 2**31 - 1, -2**31]


ODASLIVE = os.environ.get("ARRAYDAEMON_ODASLIVE") or shutil.which("odaslive")


@pytest.mark.skipif(ODASLIVE is None, reason="no odaslive built (set ARRAYDAEMON_ODASLIVE to its path)")
def test_real_odas_tracks_a_talker_and_is_scored_beside_the_pipeline(tmp_path):
    from tests.research.test_tracking import _scene

    from arraydaemon.research.tracking.peer import odas_messages
    from arraydaemon.research.tracking.score import score_scene, summarize

    scene = _scene()
    messages = odas_messages(scene, ODASLIVE, work=tmp_path)
    assert messages and all(t > 0 for _, t, _ in messages)
    assert any(tracks for _, _, tracks in messages)
    row = summarize([score_scene(scene, PipelineOptions(), messages)])
    assert row["coverage_pct"] > 0.0  # ODAS finds at least one of the two free-field sources


def test_eval_refuses_a_missing_odaslive_in_one_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "arraydaemon", "eval", "--tracking", "--odaslive",
                           str(tmp_path / "nope"), "--scenes", "1", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "--odaslive" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
