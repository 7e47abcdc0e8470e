"""Copy ``make dist``'s onedir into src-tauri/binaries/ in the layout tauri.conf.json expects.

    python3 scripts/stage_bridge.py ../../dist/capture-bridge-0.1.0-aarch64-apple-darwin

The folder's SHA256SUMS are verified first. Linux and Windows get
``capture-bridge-<triple>`` (Tauri's ``externalBin`` name) with
``capture-bridge-runtime/`` beside it; macOS gets the whole onedir as
``capture-bridge-onedir/`` with the entry renamed ``capture-bridge``, bundled
under ``Contents/Resources/capture-bridge`` (docs/tauri.md says why).
Only the standard library: a host's build machine needs no bridge checkout.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]


def verify(folder: Path) -> dict[str, object]:
    for line in (folder / "SHA256SUMS").read_text().splitlines():
        digest, rel = line.split("  ", 1)
        if hashlib.sha256((folder / rel).read_bytes()).hexdigest() != digest:
            raise SystemExit(f"{folder / rel} does not match SHA256SUMS: rebuild with `make dist`")
    manifest: dict[str, object] = json.loads((folder / "manifest.json").read_text())
    return manifest


def stage(folder: Path, binaries: Path) -> list[Path]:
    """Copy ``folder`` into ``binaries``; returns the paths written."""
    manifest = verify(folder)
    entry, runtime, triple = str(manifest["entry"]), str(manifest["contentsDirectory"]), str(manifest["targetTriple"])
    binaries.mkdir(parents=True, exist_ok=True)
    if triple.endswith("apple-darwin"):
        target = binaries / "capture-bridge-onedir"
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(folder / runtime, target / runtime, symlinks=True)
        shutil.copy2(folder / entry, target / "capture-bridge")
        return [target]
    shutil.rmtree(binaries / runtime, ignore_errors=True)
    shutil.copytree(folder / runtime, binaries / runtime, symlinks=True)
    shutil.copy2(folder / entry, binaries / entry)
    return [binaries / entry, binaries / runtime]


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    for path in stage(Path(argv[0]), HERE / "src-tauri" / "binaries"):
        print(f"staged {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
