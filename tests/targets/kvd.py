"""kvd: a tiny HTTP key-value store for testing TOML targets (standard library only).

    python3 kvd.py --id n2 --host 127.0.0.1 --client-port 8002 --peer-port 7002 \
                   --peers n1=127.0.0.1:7101,n2=127.0.0.1:7002 --data-dir D --lifeline-fd 3

The first node of --peers is the primary: it holds the data (data-dir/state.json, replaced
atomically on every write, so kill -9 loses nothing acknowledged) and applies every operation
under one lock. Every other node forwards each request to the primary's peer address (through
splitbrain's link proxy, or straight to it in netns mode) and relays the reply, so the store is
linearizable whatever the nemesis does. `--reads local` is the broken variant: a non-primary
node answers reads from what it has itself forwarded, which goes stale as soon as another node
writes. It speaks splitbrain's generic protocol (POST /: {"id","f","key","value"} -> {"type",
"value"|"error"}), answers GET /health, and {"f": "role"}: the primary leads term 1.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

FORWARD_TIMEOUT = 0.8


class Store:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()
        self.data = json.loads(path.read_text()) if path.is_file() else {}

    def apply(self, req: dict) -> dict:
        f, key, value = req.get("f"), str(req.get("key")), req.get("value")
        with self.lock:
            current = self.data.get(key)
            if f in ("read", "get"):
                return {"type": "ok", "value": current}
            if f == "cas":
                if current != value[0]:
                    return {"type": "fail", "error": "cas-mismatch"}
                self.data[key] = value[1]
            elif f in ("write", "put"):
                self.data[key] = value
            elif f == "append":
                self.data[key] = (current or "") + value
            else:
                return {"type": "fail", "error": f"unknown f {f!r}"}
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.data))
            os.replace(tmp, self.path)
            return {"type": "ok"}


def serve(address: tuple[str, int], handle) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.reply(200, json.dumps(handle(json.loads(body))).encode())

        def do_GET(self) -> None:
            self.reply(200 if self.path == "/health" else 404, b"{}")

        def reply(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(address, Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> None:
    p = argparse.ArgumentParser()
    for name in ("--id", "--host", "--peers", "--data-dir"):
        p.add_argument(name, required=True)
    for name in ("--client-port", "--peer-port", "--lifeline-fd"):
        p.add_argument(name, type=int, required=True)
    p.add_argument("--reads", choices=("primary", "local"), default="primary")
    args = p.parse_args()
    peers = {}
    for entry in args.peers.split(","):
        name, _, addr = entry.partition("=")
        host, _, port = addr.rpartition(":")
        peers[name] = (host, int(port))
    primary = next(iter(peers))
    store = Store(Path(args.data_dir) / "state.json")
    seen: dict[str, object] = {}  # what a non-primary forwarded (for --reads local)

    def forward(req: dict) -> dict:
        conn = http.client.HTTPConnection(*peers[primary], timeout=FORWARD_TIMEOUT)
        body = json.dumps(req).encode()
        try:
            conn.connect()
        except OSError:
            return {"type": "fail", "error": "primary-unreachable"}  # nothing was sent
        try:
            conn.request("POST", "/", body, {"Content-Type": "application/json"})
            reply = json.loads(conn.getresponse().read())
        except (TimeoutError, OSError, ValueError, http.client.HTTPException):
            return {"type": "info", "error": "primary-lost"}
        finally:
            conn.close()
        if reply.get("type") == "ok" and req.get("f") in ("write", "put"):
            seen[str(req.get("key"))] = req.get("value")
        return reply

    def on_client(req: dict) -> dict:
        if req.get("f") == "role":
            return {"type": "ok", "value": {"leader": args.id == primary, "term": 1}}
        if args.id == primary:
            return store.apply(req)
        if args.reads == "local" and req.get("f") in ("read", "get"):
            return {"type": "ok", "value": seen.get(str(req.get("key")))}
        return forward(req)

    serve((args.host, args.peer_port), store.apply)
    serve((args.host, args.client_port), on_client)
    try:  # the lifeline: EOF when the driver dies
        while os.read(args.lifeline_fd, 1):
            pass
    except OSError:
        pass
    os._exit(0)


if __name__ == "__main__":
    main()
