"""Where the collector roots and the migration's own files live, all under ``$HOME``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bridge.config.paths import user_home

CANONICAL_REL = ".agents/otel/collector"
# Migrated in this order; a later root wins over an earlier one (see plan.py).
LEGACY_RELS = (".codex/otel-collector", ".agents/otel-collector")
OTEL_REL = ".agents/otel"


@dataclass(frozen=True)
class Roots:
    """The paths of one home. ``$HOME`` decides ``~``, so tests use temp homes."""

    home: Path

    @classmethod
    def of_user(cls) -> Roots:
        return cls(user_home())

    @property
    def canonical(self) -> Path:
        return self.home / CANONICAL_REL

    @property
    def legacy(self) -> tuple[Path, ...]:
        return tuple(self.home / rel for rel in LEGACY_RELS)

    @property
    def otel_dir(self) -> Path:
        """``~/.agents/otel``: parent of the canonical root and of the bookkeeping."""
        return self.home / OTEL_REL

    @property
    def state_file(self) -> Path:
        return self.otel_dir / ".collector-migration.json"

    @property
    def lock_file(self) -> Path:
        return self.otel_dir / ".collector-migration.lock"

    @property
    def backups(self) -> Path:
        return self.otel_dir / ".collector-backups"

    def staging(self, stamp: str) -> Path:
        """A per-run staging dir beside the canonical root (same filesystem, so renames are atomic)."""
        return self.otel_dir / f".collector-staging-{stamp}"


def backup_label(index: int, legacy_rel: str) -> str:
    """``1-codex-otel-collector`` for the first legacy root, and so on."""
    return f"{index + 1}-" + legacy_rel.replace("/", "-").lstrip(".")
