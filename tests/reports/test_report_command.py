import json

from splitbrain.cli import main
from splitbrain.reports import report


def test_report_rerenders_and_exits_with_the_verdict(valid_run, invalid_run, capsys):
    assert main(["report", str(invalid_run.path)]) == 1
    assert invalid_run.report.is_file()
    assert (invalid_run.path.parent.parent / "index.html").is_file()
    assert main(["report", str(valid_run.path), "--no-index"]) == 0


def test_report_of_an_unchecked_run_is_unknown_and_of_a_non_run_is_3(valid_run, tmp_path, capsys):
    valid_run.results.unlink()
    assert main(["report", str(valid_run.path)]) == 2
    assert valid_run.report.is_file()
    assert main(["report", str(tmp_path / "nowhere")]) == 3
    err = capsys.readouterr().err
    assert "nowhere: not a run directory (no history.jsonl)" in err
    valid_run.results.write_text("{not json")
    assert main(["report", str(valid_run.path)]) == 3
    assert "results.json: cannot be read" in capsys.readouterr().err


def test_a_rendering_error_is_recorded_and_keeps_the_exit_code(invalid_run, monkeypatch, capsys):
    def broken(*args):
        raise ValueError("boom")

    monkeypatch.setattr(report, "gather", broken)
    assert main(["report", str(invalid_run.path)]) == 1
    results = json.loads(invalid_run.results.read_text())
    assert results["valid"] is False
    assert results["warnings"][-1] == "report.html could not be rendered: ValueError: boom"
    assert "warning: report.html could not be rendered" in capsys.readouterr().err
