"""The on-disk export queue: order, bounds (oldest dropped and counted), restarts."""

from __future__ import annotations

from pathlib import Path

from bridge.enrichment.disk_queue import DiskQueue


def files(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir())


def test_batches_come_back_oldest_first_and_go_only_when_done(tmp_path: Path) -> None:
    q = DiskQueue(tmp_path / "q")
    q.put("traces", b"one")
    q.put("logs", b"two")
    assert (q.depth, q.size_bytes) == (2, 6)
    first = q.claim()
    assert first is not None and first.signal == "traces" and first.path.read_bytes() == b"one"
    second = q.claim()  # the first is being sent: the next one is offered
    assert second is not None and second.signal == "logs"
    assert q.claim() is None
    q.release(first)
    again = q.claim()
    assert again == first
    q.done(first)
    assert q.depth == 1 and not first.path.exists()
    assert files(tmp_path / "q") == [second.path.name]


def test_count_bound_drops_the_oldest_and_counts_them(tmp_path: Path) -> None:
    q = DiskQueue(tmp_path / "q", max_batches=3)
    for i in range(5):
        q.put("traces", f"b{i}".encode())
    assert q.depth == 3 and q.dropped_batches == 2
    assert [b.path.read_bytes() for b in q.pending()] == [b"b2", b"b3", b"b4"]
    assert len(files(tmp_path / "q")) == 3


def test_byte_bound_drops_the_oldest(tmp_path: Path) -> None:
    q = DiskQueue(tmp_path / "q", max_bytes=25)
    for i in range(4):
        q.put("logs", bytes([i]) * 10)
    assert q.size_bytes <= 25 and q.dropped_batches == 2 and q.dropped_bytes == 20
    assert [b.path.read_bytes()[0] for b in q.pending()] == [2, 3]


def test_the_batch_being_sent_is_never_dropped(tmp_path: Path) -> None:
    q = DiskQueue(tmp_path / "q", max_batches=2)
    q.put("traces", b"a")
    sending = q.claim()
    assert sending is not None
    q.put("traces", b"b")
    q.put("traces", b"c")
    assert sending in q.pending() and q.dropped_batches == 1
    assert [b.path.read_bytes() for b in q.pending()] == [b"a", b"c"]


def test_a_restart_finds_the_queue_in_order_and_discards_half_writes(tmp_path: Path) -> None:
    root = tmp_path / "q"
    q = DiskQueue(root)
    for i in range(3):
        q.put("traces" if i % 2 == 0 else "logs", f"b{i}".encode())
    (root / ".0000000000000099-traces.pb.tmp").write_bytes(b"half")
    (root / "unrelated.txt").write_bytes(b"keep")
    again = DiskQueue(root)
    assert [(b.signal, b.path.read_bytes()) for b in again.pending()] == [
        ("traces", b"b0"), ("logs", b"b1"), ("traces", b"b2"),
    ]  # fmt: skip
    assert not (root / ".0000000000000099-traces.pb.tmp").exists()
    assert (root / "unrelated.txt").exists()
    again.put("logs", b"b3")
    assert again.pending()[-1].seq > q.pending()[-1].seq


def test_a_restart_with_a_smaller_bound_drops_the_oldest(tmp_path: Path) -> None:
    root = tmp_path / "q"
    q = DiskQueue(root)
    for i in range(4):
        q.put("traces", f"b{i}".encode())
    smaller = DiskQueue(root, max_batches=2)
    assert smaller.dropped_batches == 2
    assert [b.path.read_bytes() for b in smaller.pending()] == [b"b2", b"b3"]
    assert len(files(root)) == 2
