"""Where things live: the data dir, the user's home and the files in them.

``$HOME`` decides ``~`` (never the password database), so tests run on temp
homes and the user's real collector roots are never touched by them.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

ENV_HOME = "CAPTURE_BRIDGE_HOME"
TELEMETRY_FILE = "telemetry.sqlite3"
# Files of a data dir that only the user may read: the store (and its WAL/SHM) and the config (it may hold secrets).
PRIVATE_FILES = (
    "capture.sqlite3",
    "capture.sqlite3-wal",
    "capture.sqlite3-shm",
    "telemetry.sqlite3",
    "telemetry.sqlite3-wal",
    "telemetry.sqlite3-shm",
    "config.json",
)


def resolve_data_dir(cli_value: str | None = None) -> Path:
    """``--data-dir``, else ``$CAPTURE_BRIDGE_HOME``, else the platform's user data dir."""
    if cli_value:
        return Path(cli_value).expanduser().absolute()
    env = os.environ.get(ENV_HOME)
    if env:
        return Path(env).expanduser().absolute()
    import platformdirs

    return Path(platformdirs.user_data_dir("capture-bridge", appauthor=False))


def user_home() -> Path:
    home = os.environ.get("HOME")
    return Path(home) if home else Path.home()


class DataDir:
    """The files of one bridge's data dir."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def ensure(self) -> None:
        """Create the data dir (0700) and make what it holds private (0600), before anything opens it.

        The store file is created here, 0600, before SQLite opens it: SQLite
        gives its ``-wal`` and ``-shm`` the main file's mode, so they are 0600 too.
        """
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        with contextlib.suppress(PermissionError):  # not ours to change: it still works
            os.chmod(self.root, 0o700)
        os.close(os.open(self.database, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600))
        for name in PRIVATE_FILES:
            with contextlib.suppress(FileNotFoundError, PermissionError):
                os.chmod(self.root / name, 0o600)

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    @property
    def database(self) -> Path:
        return self.root / "capture.sqlite3"

    @property
    def telemetry(self) -> Path:
        """The OTEL baseline's received records, written by the receiver's decoder process."""
        return self.root / TELEMETRY_FILE

    @property
    def lock(self) -> Path:
        return self.root / "bridge.lock"

    @property
    def runtime(self) -> Path:
        return self.root / "runtime.json"

    @property
    def otlp_key(self) -> Path:
        return self.root / "otlp.key"

    @property
    def export_queue(self) -> Path:
        return self.root / "export-queue"


def process_alive(pid: object) -> bool:
    """Whether process ``pid`` exists (one we may not signal counts as alive)."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
