"""Screenshot a page served in the background: hatchway.background() + headless Chromium.

    apt-get install -y chromium        # Debian; or set $CHROMIUM to another Chromium/Chrome binary
    python examples/screenshot.py out.png

The server runs in a thread on a free port for exactly as long as the browser needs it; no sleep, no
polling, no port picked by hand, and the server is stopped (thread joined, socket closed) afterwards.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from typing import Any

import hatchway

PAGE = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>hatchway</title>
<style>
  body { margin: 0; font-family: sans-serif; background: linear-gradient(135deg, #1d3557, #457b9d); color: #f1faee;
         height: 100vh; display: flex; flex-direction: column; align-items: center; justify-content: center; }
  h1 { font-size: 64px; margin: 0 0 16px; }
  p { font-size: 24px; margin: 4px; }
  code { background: rgba(0,0,0,.3); padding: 2px 8px; border-radius: 4px; }
</style></head>
<body>
  <h1>Served by hatchway</h1>
  <p>in a background thread, on <code>%(url)s</code></p>
  <p>captured by headless Chromium</p>
</body></html>
"""


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    if scope["path"] != "/":
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    host = dict(scope["headers"]).get(b"host", b"?").decode()
    body = PAGE % {b"url": f"http://{host}/".encode()}
    headers = [(b"content-type", b"text/html; charset=utf-8")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def find_chromium() -> str:
    for name in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and (path := shutil.which(name)):
            return path
    sys.exit("Chromium not found: apt-get install -y chromium, or set $CHROMIUM")


def screenshot(url: str, output: str, chromium: str) -> None:
    with tempfile.TemporaryDirectory() as profile:
        command = [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            f"--screenshot={os.path.abspath(output)}",
            "--window-size=800,600",
            url,
        ]
        subprocess.run(command, check=True, capture_output=True, timeout=60)


def main() -> None:
    output = sys.argv[1] if len(sys.argv) > 1 else "out.png"
    chromium = find_chromium()
    with hatchway.background(app) as server:
        screenshot(server.url + "/", output, chromium)
    print(f"saved {output} ({os.path.getsize(output)} bytes) from {server.url}/")


if __name__ == "__main__":
    main()
