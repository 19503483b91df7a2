"""Campaigns on an in-process LocalCluster with a fake run command: exit codes, JUnit XML
validated against the JUnit schema, the summary, resume, files sent through Dask, pages."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from splitbrain.campaign.ci import junit_xml, summary_markdown
from splitbrain.campaign.command import run_campaign
from splitbrain.campaign.directory import Plan, create_campaign
from splitbrain.campaign.driver import Options
from splitbrain.campaign.matrix import Matrix
from splitbrain.campaign.task import Place, execute
from tests.campaign.fakes import HARNESS, INVALID, UNKNOWN, USAGE, VALID, fake_launch

# The JUnit schema of Jenkins' xunit plugin, as pytest 9.0.3 ships it in its sdist
# (testing/example_scripts/junit-10.xsd, MIT licence in the file): the one pytest validates its
# own --junitxml against, and what CI servers read.
JUNIT_XSD = Path(__file__).with_name("junit-10.xsd")


def campaign(tmp_path: Path, seeds: tuple[int, ...], **options):
    matrix = Matrix(name="t", seeds=seeds, axes=(("nemesis", ("partition", "kill")),),
                    time_limit=2)
    cdir = create_campaign(tmp_path / "campaigns", "t")
    cdir.write_plan(Plan("t", matrix.expand(), {}, "2026-11-27T06:00:00+00:00"))
    lines: list[str] = []
    doc = run_campaign(cdir, Options(workers=2, **options), launcher=fake_launch,
                       say=lines.append)
    return cdir, doc, lines


@pytest.mark.parametrize(("seeds", "code"), [
    ((VALID,), 0),
    ((VALID, HARNESS), 3),
    ((VALID, USAGE), 3),
    ((VALID, HARNESS, UNKNOWN), 2),
    ((VALID, UNKNOWN, HARNESS, INVALID), 1),
])
def test_exit_code_ranks_invalid_then_unknown_then_could_not_run(tmp_path, seeds, code):
    cdir, doc, _ = campaign(tmp_path, seeds)
    assert doc["exit_code"] == code
    assert len(doc["runs"]) == 2 * len(seeds)
    assert json.loads(cdir.json.read_text())["exit_code"] == code


def test_junit_has_one_valid_testcase_per_run_with_verdict_explanation_and_report(tmp_path):
    xmlschema = pytest.importorskip("xmlschema")
    cdir, doc, _ = campaign(tmp_path, (VALID, INVALID, UNKNOWN, HARNESS))
    xml = junit_xml(doc, cdir)
    schema = xmlschema.XMLSchema(str(JUNIT_XSD))
    schema.validate(xml)  # raises with the element and the rule broken
    tree = schema.to_dict(xml)
    suites = {s["@name"]: s for s in tree["testsuite"]}
    assert set(suites) == {"nemesis=partition", "nemesis=kill"}
    cases = {c["@name"]: c for c in suites["nemesis=kill"]["testcase"]}
    assert set(cases) == {"seed 1", "seed 2", "seed 3", "seed 4"}
    assert "failure" not in cases["seed 1"] and "error" not in cases["seed 1"]
    failure = cases["seed 2"]["failure"][0]
    assert failure["@type"] == "invalid"
    assert "can't read 999999" in failure["@message"]
    run = next(r for r in doc["runs"] if r["id"] == "kill-s2")
    report = cdir.path / run["report"]
    assert report.is_file() and f"report: {report}" in failure["$"]
    assert "reproduce: splitbrain run --seed 2 --nemesis kill" in failure["$"]
    assert "<- cannot be linearized" in failure["$"]  # the explanation's steps
    assert cases["seed 3"]["error"][0]["@type"] == "unknown"
    assert "time limit" in cases["seed 3"]["error"][0]["@message"]
    assert cases["seed 4"]["error"][0]["@type"] == "could not run"
    assert "NodeError: n1 did not start" in cases["seed 4"]["error"][0]["@message"]
    assert tree["@tests"] == "8" and tree["@failures"] == "2" and tree["@errors"] == "4"


@pytest.mark.parametrize(("mode", "axes", "message"), [
    ("campaign", (), "mode 'campaign' is not a kind of run"),
    ("run", (("nemesis", ("kill:frob",)),), "nemesis=kill:frob: --nemesis: "),
    ("run", (("workload", ("queue",)),),
     "workload=queue: splitbrain run: error: argument --workload: invalid choice"),
])
def test_run_arguments_are_checked_by_the_run_command_before_anything_starts(mode, axes,
                                                                                message):
    from splitbrain.campaign.command import check_runs
    from splitbrain.exitcodes import UsageError

    specs = Matrix(axes=axes, modes=(mode,)).expand()
    with pytest.raises(UsageError, match=re.escape(message)):
        check_runs(specs)


def test_the_local_cluster_listens_on_loopback_only():
    import psutil

    from splitbrain.campaign.driver import dask_client

    me = psutil.Process()
    with dask_client(Options(workers=2)) as client:
        assert client.submit(abs, -1).result() == 1
        listening = {c.laddr.ip for c in me.net_connections() if c.status == psutil.CONN_LISTEN}
    assert listening <= {"127.0.0.1"}


def test_junit_survives_characters_xml_cannot_carry(tmp_path):
    xmlschema = pytest.importorskip("xmlschema")
    cdir, doc, _ = campaign(tmp_path, (INVALID,))
    doc["runs"][0]["cause"] = "can't read \x00\x1b[31m</failure><x> from register"
    xmlschema.XMLSchema(str(JUNIT_XSD)).validate(junit_xml(doc, cdir))


def test_summary_lists_rates_and_failing_runs(tmp_path):
    cdir, doc, _ = campaign(tmp_path, (VALID, INVALID))
    md = summary_markdown(doc, cdir)
    assert md.startswith("## splitbrain campaign t: exit 1")
    assert "| nemesis=partition | 2 | 1 | 0 | 0 | 50% (9%–91%) |" in md
    assert "| partition-s2 | invalid | key k" in md and "999999" in md
    assert "partition-s1 |" not in md  # valid runs are not listed


def test_valid_runs_lose_their_node_files_failures_keep_them(tmp_path):
    cdir, doc, _ = campaign(tmp_path, (VALID, INVALID))
    runs = {r["id"]: cdir.path / r["run_dir"] for r in doc["runs"]}
    assert not (runs["kill-s1"] / "nodes").exists()
    assert (runs["kill-s2"] / "nodes" / "n1" / "node.log").is_file()
    assert "nodes/n1" not in (runs["kill-s1"] / "report.html").read_text()  # re-rendered


def test_files_sent_through_dask_land_as_if_written_in_place(tmp_path):
    cdir, doc, _ = campaign(tmp_path, (VALID, INVALID), transfer="dask")
    for run in doc["runs"]:
        assert (cdir.path / run["run_dir"] / "history.jsonl").is_file()
        assert (cdir.path / "runs" / run["id"] / "console.log").is_file()
    invalid = next(r for r in doc["runs"] if r["verdict"] == "invalid")
    assert (cdir.path / invalid["report"]).is_file()
    assert (cdir.path / invalid["run_dir"] / "nodes" / "n1" / "events.jsonl").is_file()


def test_a_worker_that_does_not_share_the_filesystem_sends_the_run_back(tmp_path):
    matrix = Matrix(seeds=(INVALID,), time_limit=1)
    (spec,) = matrix.expand()
    elsewhere = Place(str(tmp_path / "not-here"), token="abc")  # no token there: remote
    delivery = execute(spec, elsewhere, fake_launch)
    assert delivery.files is not None and delivery.outcome.verdict == "invalid"
    assert delivery.outcome.run_dir.startswith(f"runs/{spec.id}/run/")
    assert not (tmp_path / "not-here").exists()


def test_resume_runs_only_what_did_not_finish(tmp_path):
    cdir, doc, lines = campaign(tmp_path, (VALID, HARNESS))
    assert doc["counts"]["could not run"] == 2
    first = {r["id"]: r for r in doc["runs"]}
    stamp = (cdir.path / first["kill-s1"]["run_dir"] / "history.jsonl").stat().st_mtime_ns
    again = run_campaign(cdir, Options(workers=1), launcher=fake_launch, say=lines.append)
    assert any("4 runs, 2 to go" in line for line in lines)
    # the valid runs were not repeated; the ones that could not run were tried again
    assert (cdir.path / first["kill-s1"]["run_dir"] / "history.jsonl").stat().st_mtime_ns == stamp
    assert again["counts"]["could not run"] == 2 and len(again["runs"]) == 4
    recorded = [json.loads(x)["id"] for x in cdir.outcomes.read_text().splitlines()]
    assert sorted(recorded) == sorted(["partition-s1", "kill-s1", *["partition-s4", "kill-s4"] * 2])


def test_an_interrupted_plan_shows_not_run_and_exit_3(tmp_path):
    matrix = Matrix(seeds=(VALID,), axes=(("nemesis", ("partition", "kill")),), time_limit=2)
    cdir = create_campaign(tmp_path, "t")
    specs = matrix.expand()
    cdir.write_plan(Plan("t", specs, {}, "now"))
    outcome = execute(specs[0], Place(str(cdir.path), cdir.token()), fake_launch).outcome
    cdir.record(outcome)
    with cdir.outcomes.open("a") as f:
        f.write('{"id": "kill-s1", "verd')  # torn by a SIGKILL mid-write
    from splitbrain.campaign.summary import campaign_json, rows

    doc = campaign_json("t", rows(specs, cdir.read_outcomes()), started="", finished=None,
                        where="local")
    assert [r["verdict"] for r in doc["runs"]] == ["valid", "not run"]
    assert doc["exit_code"] == 3
    assert doc["configurations"][1]["flake_rate"]["rate"] == 1.0
