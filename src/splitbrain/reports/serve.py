"""`splitbrain serve [RUNS]`: the runs index, reports and raw files on a local web server.

Binds 127.0.0.1 only: reports contain whatever a history held, and this is a developer's
viewer, not a service. The index is rewritten whenever it is requested, so runs that finished
after the server started appear; so is /campaigns.html, the trends of every campaign under RUNS
(campaign/pages.py). Raw logs and histories are served as text to read in the browser. Nothing
that resolves outside RUNS is served (the standard handler confines the URL path, but would
follow a symbolic link inside RUNS to anywhere), nor a run's cluster secret.
"""

from __future__ import annotations

import argparse
import functools
import sys
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

from splitbrain.cluster.secret import FILE_NAME as SECRET_FILE
from splitbrain.exitcodes import COULD_NOT_RUN, VALID
from splitbrain.reports.index import write_index

HOST = "127.0.0.1"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="?", default="runs", metavar="RUNS",
                        help="the runs directory (default: runs)")
    parser.add_argument("--port", type=int, default=8642,
                        help="port on 127.0.0.1 (default 8642; 0 picks a free one)")


class Handler(SimpleHTTPRequestHandler):
    """Static files under the runs directory; the index is refreshed when asked for."""

    extensions_map: ClassVar[dict[str, str]] = {**SimpleHTTPRequestHandler.extensions_map,
        ".jsonl": "text/plain; charset=utf-8", ".log": "text/plain; charset=utf-8",
        ".json": "application/json; charset=utf-8"}

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        if path == "/favicon.ico":  # browsers ask for it beside raw text files; we have none
            self.send_response(204)
            self.end_headers()
            return
        if path in ("/", "/index.html"):
            try:
                write_index(self.directory)
            except Exception as exc:
                self.log_message("index not refreshed: %s", exc)
        if path == "/campaigns.html":
            from splitbrain.campaign.pages import write_campaigns_page

            try:
                write_campaigns_page(self.directory)
            except Exception as exc:
                self.log_message("campaigns page not refreshed: %s", exc)
        super().do_GET()

    def send_head(self):  # type: ignore[no-untyped-def]
        """The standard handler's, for what resolves inside the runs directory only."""
        root = Path(self.directory).resolve()
        try:
            real = Path(self.translate_path(self.path)).resolve()
        except (OSError, RuntimeError):  # a symlink loop
            real = None
        if real is None or not real.is_relative_to(root) or real.name == SECRET_FILE:
            self.send_error(404, "File not found")
            return None
        return super().send_head()

    def log_message(self, format: str, *args: object) -> None:
        sys.stderr.write(f"serve: {format % args}\n")


def make_server(runs: Path, port: int) -> ThreadingHTTPServer:
    """A server for runs on 127.0.0.1:port (0: any free port); the caller runs and closes it."""
    handler = functools.partial(Handler, directory=str(runs))
    return ThreadingHTTPServer((HOST, port), handler)


def run(args: argparse.Namespace) -> int:
    runs = Path(args.runs)
    if not runs.is_dir():
        print(f"splitbrain serve: {runs}: no such directory", file=sys.stderr)
        return COULD_NOT_RUN
    try:
        server = make_server(runs, args.port)
    except OSError as exc:
        print(f"splitbrain serve: cannot listen on {HOST}:{args.port}: {exc.strerror or exc}",
              file=sys.stderr)
        return COULD_NOT_RUN
    write_index(runs)
    url = f"http://{HOST}:{server.server_address[1]}/"
    print(f"serving {runs} at {url} (campaigns: {url}campaigns.html; Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return VALID
