"""``make dist``: the PyInstaller onedir build, named for Tauri's ``externalBin``, with its manifest.

Writes ``dist/capture-bridge-<version>-<target triple>/`` holding

- ``capture-bridge-<target triple>`` (``.exe`` on Windows): the entry Tauri's
  ``externalBin: ["binaries/capture-bridge"]`` looks for;
- ``capture-bridge-runtime/``: the Python runtime and libraries the entry loads
  (it must stay beside the entry);
- ``manifest.json``: name, version, protocolVersion, target triple, the entry,
  the source hash it was built from, and every file with its size and SHA-256;
- ``SHA256SUMS``: the same checksums in ``sha256sum -c`` form.

``--if-changed`` skips the build when the folder's manifest already carries the
hash of the current sources (the tests build once and reuse it).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bridge import PROTOCOL_VERSION, __version__  # noqa: E402
from bridge.runtime import target_triple  # noqa: E402

CONTENTS_DIR = "capture-bridge-runtime"
# What the build is made of: a change to any of these makes --if-changed rebuild.
SOURCES = ("bridge/**/*.py", "packaging/*.py", "packaging/*.spec", "pyproject.toml")


def source_hash() -> str:
    digest = hashlib.sha256()
    for pattern in SOURCES:
        for path in sorted(ROOT.glob(pattern)):
            if "__pycache__" in path.parts:
                continue
            digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def entry_name(triple: str) -> str:
    return f"capture-bridge-{triple}" + (".exe" if "windows" in triple else "")


def out_dir(dist: Path, triple: str) -> Path:
    return dist / f"capture-bridge-{__version__}-{triple}"


def write_manifest(folder: Path, triple: str, sources: str) -> dict[str, object]:
    files = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()):
        rel = path.relative_to(folder).as_posix()
        if rel in ("manifest.json", "SHA256SUMS"):
            continue
        files.append({"path": rel, "size": path.stat().st_size, "sha256": sha256_file(path)})
    manifest: dict[str, object] = {
        "name": "capture-bridge",
        "version": __version__,
        "protocolVersion": PROTOCOL_VERSION,
        "targetTriple": triple,
        "entry": entry_name(triple),
        "contentsDirectory": CONTENTS_DIR,
        "sourceHash": sources,
        "files": files,
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    sums = [f"{f['sha256']}  {f['path']}" for f in files]
    sums.append(f"{sha256_file(folder / 'manifest.json')}  manifest.json")
    (folder / "SHA256SUMS").write_text("\n".join(sums) + "\n")
    return manifest


def up_to_date(folder: Path, sources: str) -> bool:
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError):
        return False
    return manifest.get("sourceHash") == sources and (folder / str(manifest.get("entry"))).is_file()


def build(dist: Path, *, if_changed: bool = False, quiet: bool = False) -> Path:
    triple = target_triple()
    folder = out_dir(dist, triple)
    sources = source_hash()
    if if_changed and up_to_date(folder, sources):
        print(f"{folder} is up to date")
        return folder
    work = ROOT / "build" / "pyinstaller"
    staging = work / "dist"
    name = entry_name(triple).removesuffix(".exe")
    env = {**os.environ, "CAPTURE_BRIDGE_ENTRY_NAME": name, "CAPTURE_BRIDGE_CONTENTS_DIR": CONTENTS_DIR}
    argv = [sys.executable, "-m", "PyInstaller", "--noconfirm", "--clean", "--distpath", str(staging),
            "--workpath", str(work / "work"), str(ROOT / "packaging" / "capture-bridge.spec")]  # fmt: skip
    if quiet:
        argv[3:3] = ["--log-level", "WARN"]
    subprocess.run(argv, check=True, env=env, cwd=ROOT)
    if folder.exists():
        shutil.rmtree(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(staging / name), folder)
    manifest = write_manifest(folder, triple, sources)
    print(f"built {folder} ({len(manifest['files'])} files)")  # type: ignore[arg-type]
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="packaging/build.py", description=__doc__.split("\n")[0])
    parser.add_argument("--dist", default=str(ROOT / "dist"), help="where the folder goes (default: dist/)")
    parser.add_argument("--if-changed", action="store_true", help="skip when the sources are unchanged")
    parser.add_argument("--quiet", action="store_true", help="only PyInstaller's warnings")
    args = parser.parse_args(argv)
    build(Path(args.dist), if_changed=args.if_changed, quiet=args.quiet)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
