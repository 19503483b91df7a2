import re
from datetime import UTC, datetime

from splitbrain.reports import write_index, write_report
from splitbrain.reports.index import summarize, trend
from splitbrain.testing.runs import build_run


def when(day: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, 1, minute, tzinfo=UTC)


def test_index_lists_every_run_newest_first_with_links_to_reports(tmp_path):
    base = tmp_path / "runs"
    a = build_run(base, name="reg", when=when(20), calls=120)
    b = build_run(base, name="reg", when=when(21), failure="linearizability", calls=150, seed=2)
    c = build_run(base, name="other", when=when(21, 5))
    c.results.unlink()
    write_report(b)
    html = write_index(base).read_text()
    rows = re.findall(r'<tr class="run" data-verdict="([^"]+)">', html)
    assert rows == ["not checked", "invalid", "valid"]
    assert f'href="./reg/{b.path.name}/report.html"' in html
    assert f'href="./reg/{a.path.name}/"' in html  # no report yet: link to the files
    assert "<td>150</td>" in html and "<td>120</td>" in html
    assert "partition, kill, pause, net" in html


def test_summary_reads_counts_and_duration_without_parsing_the_history(tmp_path):
    run = build_run(tmp_path, calls=77, duration_s=3.0)
    s = summarize(run, tmp_path)
    assert (s.calls, s.verdict, s.workload) == (77, "valid", "register")
    assert 2.5 < s.duration_s <= 3.0
    with run.history.open("a") as f:
        f.write('{"index": 999, "time": 5')  # a torn last line is skipped
    assert summarize(run, tmp_path).duration_s == s.duration_s


def test_trend_counts_verdicts_per_day(tmp_path):
    runs = [build_run(tmp_path, when=when(d, m), failure=f, seed=m)
            for d, m, f in [(20, 0, None), (20, 1, "divergence"), (22, 0, None)]]
    days = trend([summarize(r, tmp_path) for r in runs])
    assert [(d, c["valid"], c["invalid"]) for d, c in days] == [
        ("2026-11-20", 1, 1), ("2026-11-22", 1, 0)]


def test_an_empty_runs_directory_gets_an_index(tmp_path):
    assert "No runs yet." in write_index(tmp_path / "runs").read_text()


def test_a_run_name_is_a_path_in_a_link_never_a_script(tmp_path):
    """Issue 10 item 10: a run named `javascript:alert(9)` became a link that ran script."""
    run = build_run(tmp_path / "runs", name="javascript:alert(9)")
    html = write_index(tmp_path / "runs").read_text()
    assert f'href="./javascript%3Aalert%289%29/{run.path.name}/"' in html
    assert 'href="javascript' not in html
