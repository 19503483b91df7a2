"""Fixtures for report tests: synthetic runs; a headless Chromium cut off from the network."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from splitbrain.reports.serve import make_server
from splitbrain.store import RunDir
from splitbrain.testing.runs import build_run

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture
def valid_run(tmp_path: Path) -> RunDir:
    return build_run(tmp_path / "runs", name="valid", seed=3)


@pytest.fixture
def invalid_run(tmp_path: Path) -> RunDir:
    return build_run(tmp_path / "runs", name="invalid", seed=4, failure="linearizability")


@pytest.fixture
def divergent_run(tmp_path: Path) -> RunDir:
    return build_run(tmp_path / "runs", name="divergent", seed=5, failure="divergence")


@contextmanager
def serving(runs: Path) -> Iterator[ThreadingHTTPServer]:
    """`splitbrain serve`'s server for runs on a free loopback port, in a thread, while open."""
    srv = make_server(runs, 0)  # port 0: the OS picks a free one
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=10)


@dataclass
class Page:
    """A loaded page and everything it tried to do that a report must not."""

    page: object
    console_errors: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)  # requests that tried to leave file://


@pytest.fixture(scope="module")  # alive only while browser tests run: other tests use asyncio
def browser() -> Iterator[object]:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (.ci/run installs it)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=30_000)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def open_page(browser) -> Iterator:
    """open_page(path, wait_ready=True) -> Page, loaded over file:// with the network cut."""
    contexts = []

    def load(path: Path, wait_ready: bool = True) -> Page:
        ctx = browser.new_context(viewport={"width": 1300, "height": 900})
        contexts.append(ctx)
        page = ctx.new_page()
        page.set_default_timeout(20_000)
        result = Page(page)

        def route(r) -> None:
            if r.request.url.startswith("file://"):
                r.continue_()
            else:
                result.blocked.append(r.request.url)
                r.abort()

        page.route("**/*", route)
        page.on("console", lambda m: m.type == "error" and result.console_errors.append(m.text))
        page.on("pageerror", lambda e: result.console_errors.append(f"page error: {e}"))
        page.goto(path.resolve().as_uri())
        if wait_ready:
            page.wait_for_selector("html[data-ready=true]", state="attached")
        return result

    try:
        yield load
    finally:
        for ctx in contexts:
            ctx.close()


def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.page.screenshot(path=str(path), full_page=True)
    return path
