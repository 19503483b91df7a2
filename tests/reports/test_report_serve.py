import urllib.request

import pytest

from splitbrain.reports import write_report
from tests.reports.conftest import serving


@pytest.fixture
def server(valid_run):
    write_report(valid_run)
    with serving(valid_run.path.parent.parent) as srv:
        yield srv, valid_run


def get(srv, path: str) -> tuple[int, str, str]:
    host, port = srv.server_address[:2]
    with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=10) as r:
        return r.status, r.headers["Content-Type"], r.read().decode()


def test_serves_the_index_reports_and_raw_files_on_loopback(server):
    srv, run = server
    assert srv.server_address[0] == "127.0.0.1"
    rel = run.path.relative_to(run.path.parent.parent).as_posix()
    status, _, index = get(srv, "/")
    assert status == 200 and f'href="./{rel}/report.html"' in index
    assert "splitbrain runs" in get(srv, "/index.html")[2]
    status, _, report = get(srv, f"/{rel}/report.html")
    assert status == 200 and "VALID" in report
    status, ctype, log = get(srv, f"/{rel}/nodes/n1/node.log")
    assert ctype.startswith("text/plain") and "became" in log
    assert get(srv, f"/{rel}/history.jsonl")[1].startswith("text/plain")


def refused(srv, path: str) -> int:
    with pytest.raises(urllib.error.HTTPError) as err:
        get(srv, path)
    err.value.close()
    return err.value.code


def test_paths_outside_the_runs_directory_are_not_served(server):
    srv, _ = server
    assert refused(srv, "/../../../../etc/passwd") == 404


def test_a_symbolic_link_out_of_the_runs_directory_is_not_followed(server):
    """Issue 10 item 10: a link inside runs/ to / served /etc/passwd."""
    srv, run = server
    runs = run.path.parent.parent
    (runs / "escape").symlink_to("/")
    (runs / "passwd").symlink_to("/etc/passwd")
    assert refused(srv, "/escape/etc/passwd") == 404
    assert refused(srv, "/passwd") == 404
    (runs / "latest").symlink_to(run.path.relative_to(runs))  # a link that stays inside: fine
    assert get(srv, "/latest/report.html")[0] == 200


def test_a_runs_cluster_secret_is_never_served(server):
    srv, run = server
    (run.path / "cluster.secret").write_text("0123456789abcdef" * 4)
    rel = run.path.relative_to(run.path.parent.parent).as_posix()
    assert refused(srv, f"/{rel}/cluster.secret") == 404
