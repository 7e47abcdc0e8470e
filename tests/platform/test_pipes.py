"""Pipe capacity: a pipe end is enlarged where the system allows it; anything else is left alone."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from bridge.platform.pipes import PIPE_BYTES, enlarge_pipe


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="only Linux sizes pipes")
def test_a_pipe_end_grows_to_the_size_asked_for_within_the_systems_limit() -> None:
    read_fd, write_fd = os.pipe()
    try:
        with open("/proc/sys/fs/pipe-max-size") as f:
            limit = int(f.read())
        size = enlarge_pipe(write_fd)  # either end sizes the one buffer they share
        assert size == PIPE_BYTES if limit >= PIPE_BYTES else (size or 0) >= 65536
        assert enlarge_pipe(read_fd, 4096) == 4096
    finally:
        os.close(read_fd)
        os.close(write_fd)


def test_what_is_not_a_pipe_is_left_as_it_is(tmp_path: Path) -> None:
    with open(tmp_path / "f", "wb") as f:
        assert enlarge_pipe(f.fileno()) is None
    assert enlarge_pipe(10_000) is None  # not open at all
