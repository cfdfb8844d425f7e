"""PodmanReads.process_gone: how Podman's `top` answers for a container recorded as running whose
process was killed with its conmon. The real case (Podman 4.3.1: an empty 200) runs in
tests/integration/test_faults.py; these are the answers other releases give."""

from __future__ import annotations

import pytest

from airpods.engine.podman_reads import PodmanReads


class _Api:
    def __init__(self, status: int, body: bytes) -> None:
        self.answer = (status, body)
        self.asked: list[tuple[str, object]] = []

    def request(self, path: str, params: object = None, **_: object) -> tuple[int, bytes]:
        self.asked.append((path, params))
        return self.answer


@pytest.mark.parametrize(("status", "body", "gone"), [
    (200, b"", True),  # Podman 4.3: the error is swallowed, nothing listed
    (200, b'{"Processes": [], "Titles": ["PID"]}', True),
    (200, b'{"Processes": [["root", "1", "0"]], "Titles": ["USER", "PID", "PPID"]}', False),
    (500, b'{"cause": "no such file or directory", "message": "open /proc/4242/ns/mnt: no such '
          b'file or directory", "response": 500}', True),
    (500, b'{"message": "reading /proc/4242/stat: no such process"}', True),
    (500, b'{"message": "container is paused"}', False),  # another problem: not ours to fix
    (404, b'{"message": "no such container"}', False),
    (200, b"not json", False),
])
def test_process_gone_reads_tops_answer(status: int, body: bytes, gone: bool) -> None:
    reads = PodmanReads.__new__(PodmanReads)
    reads.api = _Api(status, body)  # type: ignore[assignment]
    assert reads.process_gone("airpods-x-server") is gone
    assert reads.api.asked == [("/containers/airpods-x-server/top", {"stream": "false"})]
