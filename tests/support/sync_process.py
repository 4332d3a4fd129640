"""`core-registry sync` in a child process, for the crash and concurrency tests.

Run as `python -m tests.support.sync_process` with the environment of the sync (database URL, provider
base URLs, keys). Two test-only controls, both read from the environment and applied by patching this
process only (the package itself has no test hooks):

- `TEST_SYNC_READY_FILE` and `TEST_SYNC_START_FILE`: once imports and definitions are loaded, write the
  ready file, then wait until the start file exists before syncing — so that several children start
  their syncs at the same moment, or a kill lands in the sync rather than in Python's start-up.
- `TEST_SYNC_PAUSE_AT` + `TEST_SYNC_MARKER`: stop at a named point of the sync, write the marker file and
  sleep until killed. Points (PAUSE_POINTS): `snapshots_recorded` (a provider's new snapshot is
  committed, the registry not yet written), `registry_upserted` (inside the registry's write
  transaction, rows upserted, nothing committed), `registry_before_commit` (every statement of the write
  transaction done, COMMIT not sent), `registry_committed` (the write transaction committed, the run
  not finished).

`spawn_sync` and `wait_for` are the parent's side.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
PAUSE_POINTS = ("snapshots_recorded", "registry_upserted", "registry_before_commit", "registry_committed")


def _pause(marker: str) -> None:
    Path(marker).write_text(str(os.getpid()))
    while True:
        time.sleep(60)


def _install_pause(point: str, marker: str) -> None:
    from core_assets.db import registry
    from core_assets.defs.providers import assets as provider_assets
    from core_assets.defs.registry import assets as registry_assets

    if point == "snapshots_recorded":
        original_record = provider_assets.record_fetch

        def record_then_pause(*args: Any, **kwargs: Any):
            recorded = original_record(*args, **kwargs)
            if recorded.outcome == "ok":
                _pause(marker)
            return recorded

        provider_assets.record_fetch = record_then_pause
    elif point == "registry_upserted":
        original_upsert = registry._upsert

        def upsert_then_pause(conn, rows):
            original_upsert(conn, rows)
            _pause(marker)

        registry._upsert = upsert_then_pause
    elif point == "registry_before_commit":
        original_transaction = registry.locked_transaction

        @contextlib.contextmanager
        def transaction_paused_before_commit(engine) -> Iterator[Any]:
            with original_transaction(engine) as conn:
                yield conn
                _pause(marker)

        registry.locked_transaction = transaction_paused_before_commit
    elif point == "registry_committed":
        original_write = registry_assets.write_registry

        def write_then_pause(*args: Any, **kwargs: Any):
            result = original_write(*args, **kwargs)
            _pause(marker)
            return result

        registry_assets.write_registry = write_then_pause
    else:
        raise SystemExit(f"unknown pause point {point!r}; known: {', '.join(PAUSE_POINTS)}")


def main() -> int:
    point = os.environ.get("TEST_SYNC_PAUSE_AT")
    if point:
        _install_pause(point, os.environ["TEST_SYNC_MARKER"])
    from core_assets.cli import main as cli_main
    from core_assets.definitions import defs

    defs()  # pay for loading the definitions before the start signal, not after
    ready = os.environ.get("TEST_SYNC_READY_FILE")
    if ready:
        Path(ready).write_text(str(os.getpid()))
    start = os.environ.get("TEST_SYNC_START_FILE")
    if start:
        while not Path(start).exists():
            time.sleep(0.01)
    return cli_main(["sync"])


def spawn_sync(env: Mapping[str, str], log: Path, **controls: str) -> subprocess.Popen:
    """Start a child sync with `env` (plus TEST_SYNC_* `controls`), its output going to `log`."""
    child_env = {**os.environ, **env, "PYTHONPATH": str(REPO)}
    child_env.update({f"TEST_SYNC_{name.upper()}": value for name, value in controls.items()})
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.support.sync_process"],
            cwd=log.parent,
            env=child_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def wait_for(path: Path, process: subprocess.Popen, log: Path, timeout: float = 90.0) -> None:
    """Wait until `path` exists; fail with the child's output if it exits or time runs out first."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            raise AssertionError(f"the sync exited ({process.returncode}) before {path.name}:\n{log.read_text()}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"no {path.name} after {timeout:.0f}s:\n{log.read_text()}")
        time.sleep(0.02)


if __name__ == "__main__":
    sys.exit(main())
