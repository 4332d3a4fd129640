"""Refresh the README's pictures of the Dagster UI: the asset graph and a model_registry materialization.

    .venv/bin/python scripts/screenshots.py            # writes docs/images/*.png

Syncs the bundled demo data into a throwaway registry and DAGSTER_HOME, starts dagster-webserver on a
free loopback port, and photographs two pages with headless Chromium (Debian's `chromium` package:
`apt-get install chromium`; Playwright's own browser download does not work offline). Nothing outside
the temporary folder and the output folder is touched, and the webserver is stopped at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import httpx

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
GROUPS = ["providers", "references", "enrichment", "registry", "custom_tables", "routing"]
# The UI's query parameter for expanded groups; `global@global:` is its id prefix for a group.
GRAPH_PATH = "/asset-groups?expanded=" + quote(",".join(f"global@global:{g}" for g in GROUPS))
PAGES = {
    "asset_graph.png": (GRAPH_PATH, "2000,1500"),
    "model_registry_metadata.png": ("/assets/model_registry?view=events", "1600,1800"),
}
# Chromium as root on a closed network: no sandbox, no GPU, and none of its background connections.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    # Virtual time runs fast while the page is idle and waits for its data and graph layout.
    "--virtual-time-budget=20000",
]
INSTANCE_YAML = "telemetry:\n  enabled: false\nnux:\n  enabled: false\n"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_webserver(url: str, process: subprocess.Popen, timeout: float = 120) -> None:
    """Until the webserver answers and its code location has loaded."""
    query = {"query": "{ workspaceOrError { ... on Workspace { locationEntries { loadStatus } } } }"}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("dagster-webserver exited; see its log above")
        try:
            entries = httpx.post(f"{url}/graphql", json=query, timeout=5).json()["data"]["workspaceOrError"]
            if entries["locationEntries"] and all(
                e["loadStatus"] == "LOADED" for e in entries["locationEntries"]
            ):
                return
        except (httpx.HTTPError, KeyError, TypeError, ValueError):
            pass
        time.sleep(0.5)
    raise SystemExit(f"dagster-webserver did not come up within {timeout:.0f}s")


def screenshot(chromium: str, url: str, size: str, target: Path, profile: Path) -> None:
    subprocess.run(
        [
            chromium,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            f"--window-size={size}",
            f"--screenshot={target}",
            url,
        ],
        check=True,
        timeout=120,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    if not target.exists() or target.stat().st_size < 10_000:
        raise SystemExit(f"Chromium wrote no usable screenshot of {url}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images", help="output folder")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = parser.parse_args(argv)
    if not Path(args.chromium).exists():
        raise SystemExit(f"no Chromium at {args.chromium}: apt-get install chromium")
    args.out.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory(prefix="core-screenshots-") as tmp:
        work = Path(tmp)
        home = work / "dagster_home"
        home.mkdir()
        (home / "dagster.yaml").write_text(INSTANCE_YAML)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("CORE_", "DAGSTER_"))},
            "DAGSTER_HOME": str(home),
            "CORE_DATABASE_URL": f"sqlite:///{work / 'registry.db'}",
            "CORE_DEMO": "1",
        }
        print("syncing the demo data …", flush=True)
        subprocess.run([str(BIN / "core-registry"), "sync", "--demo"], cwd=work, env=env, check=True)

        port = free_port()
        url = f"http://127.0.0.1:{port}"
        webserver = subprocess.Popen(
            [
                str(BIN / "dagster-webserver"),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-w",
                str(ROOT / "workspace.yaml"),
            ],
            cwd=ROOT,
            env=env,
            stdout=(work / "webserver.log").open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its code server goes down with it
        )
        try:
            wait_for_webserver(url, webserver)
            for name, (path, size) in PAGES.items():
                screenshot(args.chromium, url + path, size, args.out / name, work / "chromium")
                print(f"wrote {args.out / name}", flush=True)
        except BaseException:
            print((work / "webserver.log").read_text()[-4000:], file=sys.stderr)
            raise
        finally:
            os.killpg(webserver.pid, signal.SIGTERM)
            try:
                webserver.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(webserver.pid, signal.SIGKILL)
    return 0


if __name__ == "__main__":
    sys.exit(main())
