"""Look at the built documentation site in headless Chromium: pages render, search works, nothing is broken.

Usage: ``python scripts/check_site.py [SITE_DIR] [--chromium PATH] [--query WORD]`` (default ``site/``).

The site is served over HTTP on a free loopback port (the search runs in a web worker, which ``file://``
does not allow), and Chromium is driven through the DevTools protocol over its WebSocket (the ``websockets``
package, a dependency of hatchway). For every page: the page loads, has a title and a heading, every image
has decoded, and no request for the site's own files failed (CSS, JavaScript, images, the search index).
Then, on the home page: the search index loads and a query typed into the search box lists results.
Every wait is bounded. Exit status 0 when all is well, 1 with one line per problem otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import itertools
import json
import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect

TIMEOUT = 20.0  # seconds for any one step


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def serve(directory: Path) -> Iterator[str]:
    handler = functools.partial(Quiet, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        thread.join(TIMEOUT)
        server.server_close()


def find_chromium(given: str | None) -> str:
    for name in (given, os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and (path := shutil.which(name)):
            return path
    raise SystemExit("Chromium not found: apt-get install -y chromium, or pass --chromium")


@contextlib.contextmanager
def chromium(binary: str) -> Iterator[str]:
    """Start headless Chromium; yields the WebSocket URL of its first page."""
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        proc = subprocess.Popen(
            [
                binary,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--remote-debugging-port=0",
                f"--user-data-dir={profile}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        lines: queue.Queue[str] = queue.Queue()
        assert proc.stderr is not None
        stderr = proc.stderr

        def pump() -> None:
            for line in stderr:
                lines.put(line)

        threading.Thread(target=pump, daemon=True).start()
        try:
            deadline = time.monotonic() + TIMEOUT
            while True:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
                match = re.search(r"DevTools listening on (ws://[^/]+)/", line)
                if match:
                    break
            yield first_page(match.group(1).replace("ws://", "http://"))
        finally:
            proc.terminate()
            try:
                proc.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(TIMEOUT)


def first_page(endpoint: str) -> str:
    import urllib.request

    deadline = time.monotonic() + TIMEOUT
    while True:
        with urllib.request.urlopen(endpoint + "/json/list", timeout=TIMEOUT) as response:
            targets = json.load(response)
        pages = [t for t in targets if t.get("type") == "page"]
        if pages:
            return str(pages[0]["webSocketDebuggerUrl"])
        if time.monotonic() > deadline:
            raise TimeoutError("Chromium opened no page")
        time.sleep(0.05)


class Page:
    """The DevTools protocol for one page: commands, and the events that arrived in between."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        ident = next(self.ids)
        self.ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        deadline = time.monotonic() + TIMEOUT
        while True:
            message = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if message.get("id") == ident:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result
            self.events.append(message)

    def wait_for(self, method: str) -> dict[str, Any]:
        """The first event ``method`` since the events were last cleared; the others stay in ``events``."""
        deadline = time.monotonic() + TIMEOUT
        seen = 0
        while True:
            for event in self.events[seen:]:
                if event.get("method") == method:
                    return event
            seen = len(self.events)
            message = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            self.events.append(message)

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:60]}...: {result['exceptionDetails']}")
        return result["result"].get("value")

    def open(self, url: str) -> list[str]:
        """Navigate and wait for the load event; returns the site's requests that failed on the way."""
        self.events.clear()
        self.call("Page.navigate", url=url)
        self.wait_for("Page.loadEventFired")
        failed = []
        for event in self.events:
            params = event.get("params", {})
            if event.get("method") == "Network.loadingFailed" and not params.get("canceled"):
                failed.append(f"{params.get('errorText')} ({params.get('type')})")
            if event.get("method") == "Network.responseReceived":
                response = params["response"]
                if response["status"] >= 400 and response["url"].startswith(url.split("/", 3)[0]):
                    failed.append(f"{response['status']} {response['url']}")
        return failed


CHECK_PAGE = """
(() => {
  const broken = Array.from(document.images)
    .filter((img) => !img.complete || img.naturalWidth === 0)
    .map((img) => img.getAttribute("src"));
  const h1 = document.querySelector("article h1, .md-content h1");
  return {title: document.title, h1: h1 ? h1.textContent.trim() : "", broken,
          images: document.images.length, text: (document.querySelector("article") || {}).innerText?.length || 0};
})()
"""

SEARCH = """
(async (query) => {
  const index = await fetch("search/search_index.json").then((r) => r.json());
  const input = document.querySelector("input[data-md-component=search-query]");
  if (!input) return {documents: index.docs.length, results: -1};
  document.querySelector("label[for=__search]")?.click();
  input.focus();
  input.value = query;
  for (const type of ["focus", "input", "keyup", "change"]) input.dispatchEvent(new Event(type, {bubbles: true}));
  const deadline = Date.now() + 15000;
  while (Date.now() < deadline) {
    const items = document.querySelectorAll(".md-search-result__item");
    if (items.length) return {documents: index.docs.length, results: items.length,
                              first: items[0].innerText.split("\\n")[0]};
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {documents: index.docs.length, results: 0};
})(%s)
"""


def check(site: Path, binary: str, query: str) -> list[str]:
    pages = sorted(p.relative_to(site).as_posix() for p in site.rglob("index.html"))
    problems: list[str] = []
    with serve(site) as base, chromium(binary) as debugger, connect(debugger, max_size=None) as ws:
        page = Page(ws)
        page.call("Page.enable")
        page.call("Network.enable")
        page.call("Runtime.enable")
        for relative in pages:
            url = base + relative.removesuffix("index.html")
            failed = page.open(url)
            info = page.evaluate(CHECK_PAGE)
            problems += [f"{relative}: request failed: {f}" for f in failed]
            problems += [f"{relative}: broken image {src}" for src in info["broken"]]
            if not info["title"] or not info["h1"] or info["text"] < 100:
                problems.append(f"{relative}: did not render (title {info['title']!r}, h1 {info['h1']!r})")
        print(f"{len(pages)} pages rendered; {sum(1 for p in problems if 'broken image' in p)} broken images")
        page.open(base)
        found = page.evaluate(SEARCH % json.dumps(query))
        print(f"search index: {found['documents']} entries; {query!r}: {found['results']} results", end="")
        print(f", first: {found.get('first')!r}" if found.get("first") else "")
        if found["documents"] < len(pages):
            problems.append(f"search index has {found['documents']} entries for {len(pages)} pages")
        if found["results"] <= 0:
            problems.append(f"search for {query!r} listed no results")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("site", nargs="?", default="site", type=Path)
    parser.add_argument("--chromium", help="the Chromium binary (default: $CHROMIUM, chromium, ...)")
    parser.add_argument("--query", default="graceful shutdown")
    args = parser.parse_args(argv)
    if not (args.site / "index.html").is_file():
        raise SystemExit(f"{args.site}/index.html not found: run mkdocs build first")
    problems = check(args.site.resolve(), find_chromium(args.chromium), args.query)
    for problem in problems:
        print(f"PROBLEM: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
