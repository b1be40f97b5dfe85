"""Endpoints as users type them: checked in full, the bound one reported, exposure flagged."""

from __future__ import annotations

import logging
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from arraydaemon.core.errors import UserError
from arraydaemon.io.endpoints import check_endpoint, is_loopback
from arraydaemon.io.publisher import ZmqPublisher


@pytest.mark.parametrize("endpoint", ["tcp://127.0.0.1:99999", "tcp://127.0.0.1:-1", "tcp://127.0.0.1", "udp://x:1",
                                      "tcp://:5570", "tcp://127.0.0.1:55 70", "ipc://", "5570", "tcp://a b:1",
                                      "tcp://[zz::1]:5570", "tcp://127.0.0.1:5570/x"])
def test_bad_endpoints_are_one_line_errors(endpoint):
    with pytest.raises(UserError, match=re.escape(repr(endpoint))) as caught:
        check_endpoint(endpoint)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("endpoint", ["tcp://127.0.0.1:*", "tcp://127.0.0.1:0", "tcp://*:5570"])
def test_subscribers_need_a_host_and_port(endpoint):
    check_endpoint(endpoint)  # fine to bind
    with pytest.raises(UserError):
        check_endpoint(endpoint, for_bind=False)


@pytest.mark.parametrize("endpoint, local", [("tcp://127.0.0.1:5570", True), ("tcp://127.0.0.9:1", True),
                                             ("tcp://localhost:1", True), ("tcp://[::1]:1", True),
                                             ("ipc:///tmp/x", True), ("tcp://0.0.0.0:1", False),
                                             ("tcp://*:1", False), ("tcp://eth0:1", False),
                                             ("tcp://192.168.1.2:1", False), ("tcp://[::]:1", False)])
def test_loopback_or_exposed(endpoint, local):
    assert is_loopback(endpoint) is local


def test_a_free_port_is_reported_and_beyond_loopback_is_a_warning(caplog):
    with caplog.at_level(logging.INFO, logger="arraydaemon.publisher"):
        pub = ZmqPublisher("tcp://127.0.0.1:0")
        try:
            assert not pub.exposed and not pub.bound_endpoint.endswith(":0")
            assert f"publishing on {pub.bound_endpoint}" in caplog.text
        finally:
            pub.close()
        pub = ZmqPublisher("tcp://0.0.0.0:*")
        try:
            assert pub.exposed
            assert any(r.levelno == logging.WARNING and "beyond loopback" in r.getMessage() for r in caplog.records)
        finally:
            pub.close()


@given(st.text(max_size=60))
def test_any_text_is_an_endpoint_or_a_user_error(text):
    for for_bind in (True, False):
        try:
            check_endpoint(text, for_bind)
        except UserError as exc:
            assert "\n" not in str(exc)
