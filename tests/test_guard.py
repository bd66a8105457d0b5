"""The guard in front of Gradio: finding file objects in event data, and the per-client ledger of uploads."""

from __future__ import annotations

import time
from pathlib import Path

from rag.web.guard import UploadLedger, file_paths


def test_file_paths_are_found_at_any_depth_without_recursion() -> None:
    deep: object = {"path": "/deep"}
    for _ in range(100_000):
        deep = [deep]
    data = [{"path": "/a", "meta": {"_type": "gradio.FileData"}}, {"value": [{"content": {"path": "/b"}}]},
            {"path": 3}, "path", deep]
    assert sorted(file_paths(data)) == ["/a", "/b", "/deep"]


def test_uploads_belong_to_one_client_and_expire_from_disk(tmp_path: Path) -> None:
    ledger = UploadLedger(budget_bytes=1000, ttl_s=0.2)
    upload = tmp_path / "up.jsonl"
    upload.write_bytes(b"x" * 400)
    ledger.add("alice", str(upload))
    assert ledger.owns("alice", str(upload)) and not ledger.owns("mallory", str(upload))
    assert ledger.room("alice") == 600 and ledger.room("mallory") == 1000
    link = tmp_path / "link.jsonl"
    link.symlink_to(upload)
    assert ledger.owns("alice", str(link)), "owned by what it resolves to"
    time.sleep(0.3)
    assert not ledger.owns("alice", str(upload)) and not upload.exists(), "expired uploads are deleted"
    assert ledger.room("alice") == 1000


def test_the_ledger_does_not_grow_without_bound(tmp_path: Path) -> None:
    ledger = UploadLedger(budget_bytes=10**6, max_clients=2)
    files = []
    for n in range(3):
        files.append(tmp_path / f"{n}.txt")
        files[-1].write_text("x")
        ledger.add(f"client{n}", str(files[-1]))
    assert ledger.owns("client1", str(files[1])) and not ledger.owns("client2", str(files[2]))
    assert not files[2].exists(), "an upload that cannot be recorded is not kept"
