"""`train --backend darknet` with the REAL Debian darknet (pjreddie 2018): a kill and a resume
past the checkpoint at iteration 100, a NaN run, a missing label, and `estimate`."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import pytest
from runkit import cli, events, processes_with, sigkill, start, state, toy_configs, wait_for

from pipeline.darknet.values import max_batches_rule
from pipeline.dataset.labels import label_path_beside

pytestmark = [
    pytest.mark.slow,
    pytest.mark.darknet,
    pytest.mark.skipif(shutil.which("darknet") is None, reason="darknet not installed"),
]
ITERATION = re.compile(r"^(\d+): (\S+), (\S+) avg,", re.M)


def iterations(log: Path) -> list[tuple[int, float]]:
    return [(int(m[0]), float(m[2])) for m in ITERATION.findall(log.read_text(errors="replace"))]


@pytest.fixture(scope="module")
def killed_and_resumed(tmp_path_factory):
    """A 140-iteration run SIGKILLed after its checkpoint at 100, then resumed to the end."""
    root = tmp_path_factory.mktemp("dkrun")
    cfg = toy_configs(root, extra=("--max-batches", 140))
    run = root / "run"
    proc = start("train", cfg, "--out", run, "--backend", "darknet")
    wait_for(lambda: state(run).get("checkpoint_done") == 100 and state(run).get("done", 0) >= 105,
             240, "iteration 105 with the checkpoint of iteration 100 kept")
    darknet_pids = processes_with(str(run / "darknet"))
    assert darknet_pids, "darknet should be running"
    sigkill(proc)
    # the trainer never outlives its supervisor (PR_SET_PDEATHSIG)
    wait_for(lambda: not processes_with(str(run / "darknet")), 10, "darknet to die with its supervisor")
    killed = cli("status", run, "--json")
    resumed = cli("resume", run, "--json")
    again = cli("resume", run)
    return run, killed, resumed, again


def test_sigkill_then_resume_continues_from_the_checkpoint(killed_and_resumed):
    run, killed, resumed, again = killed_and_resumed
    assert json.loads(killed.stdout)["status"] == "killed"
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    logs = sorted((run / "logs").glob("attempt-*.log"))
    assert len(logs) == 2
    first, second = iterations(logs[0]), iterations(logs[1])
    assert first[0][0] == 1 and first[-1][0] >= 105
    assert second[0][0] == 101, second[:3]  # the checkpoint's iteration + 1, not 1
    assert [i for i, _ in second] == list(range(101, 141))
    assert (run / "darknet" / "backup" / "toy_final.weights").stat().st_size > 1_000_000
    status = json.loads(resumed.stdout)
    assert status["status"] == "finished" and status["done"] == status["total"] == 140
    kinds = [e["kind"] for e in events(run)]
    assert kinds.count("attempt") == 2 and "resume" in kinds and kinds[-1] == "finished"
    assert "resumes from" in [e for e in events(run) if e["kind"] == "attempt"][1]["detail"]
    assert again.returncode == 0 and "already finished" in again.stdout


def test_healthy_region_nan_lines_are_never_flagged(killed_and_resumed):
    run = killed_and_resumed[0]
    text = "".join(p.read_text(errors="replace") for p in (run / "logs").glob("*.log"))
    assert re.search(r"Region \d+ Avg IOU: -?nan", text), "the toy run prints Region -nan lines"
    assert not any(e["kind"] in ("nan", "explosion") for e in events(run))


def test_estimate_projects_the_measured_speed(killed_and_resumed):
    run = killed_and_resumed[0]
    measured = json.loads(cli("status", run, "--json").stdout)
    result = cli("estimate", run, "--classes", 1000, "--images", 500_000, "--no-probe", "--json")
    assert result.returncode == 0, result.stderr
    est = json.loads(result.stdout)
    assert est["units"] == max_batches_rule(1000, 500_000) == 2_000_000
    per = 1 / measured["speed"]
    assert est["per_unit_seconds"] == pytest.approx(per, rel=0.05)
    assert est["seconds"] == pytest.approx(2_000_000 * per, rel=0.05)
    # the figure rests on this run's own iterations: the log's seconds are of the same order
    logged = [float(m) for m in re.findall(r"avg, \S+ rate, ([\d.]+) seconds",
                                           (run / "logs" / "attempt-02.log").read_text())]
    assert 0.5 * min(logged) < per < 5 * max(logged)


def test_nan_is_caught_within_a_line_restarted_then_given_up(tmp_path):
    cfg = toy_configs(tmp_path, extra=("--max-batches", 60, "--learning-rate", 1000, "--burn-in", 0))
    run = tmp_path / "run"
    done = cli("train", cfg, "--out", run, "--backend", "darknet", "--max-restarts", 1,
               "--explode-factor", 1e30, timeout=300)
    assert done.returncode == 1, done.stdout + done.stderr
    st = json.loads(cli("status", run, "--json").stdout)
    assert st["status"] == "failed" and "gave up after 1 restart" in st["reason"]
    kinds = [e["kind"] for e in st["events"]]
    assert kinds.count("nan") == 2 and kinds.count("restart") == 1 and "gave-up" in kinds
    in_state = [e["kind"] for e in json.loads((run / "state.json").read_text())["events"]]
    assert in_state == kinds  # the events are in state.json too
    for log in sorted((run / "logs").glob("attempt-*.log")):
        lines = iterations(log)
        first_bad = next(k for k, (_, avg) in enumerate(lines) if not math.isfinite(avg))
        assert len(lines) - first_bad <= 2, f"{log.name}: {len(lines) - first_bad - 1} lines after NaN"
    nan_event = next(e for e in st["events"] if e["kind"] == "nan")
    assert re.search(r"\[\d+: \S+, (-?nan|inf) avg", nan_event["detail"]), nan_event


def test_missing_label_is_refused_before_the_start(tmp_path):
    cfg = toy_configs(tmp_path, annotated=2, extra=("--max-batches", 30))
    missing = label_path_beside((cfg / "train.txt").read_text().split()[0])
    Path(missing).unlink()
    refused = cli("train", cfg, "--out", tmp_path / "run", "--backend", "darknet")
    assert refused.returncode == 2 and missing in refused.stderr and "[missing_label]" in refused.stderr
    assert not (tmp_path / "run").exists()


def test_label_lost_during_the_run_is_a_failed_run_naming_the_file(tmp_path):
    """darknet's "Couldn't open file" ends it with exit code 0 (or SIGSEGV): reported as failed."""
    cfg = toy_configs(tmp_path, annotated=2, extra=("--max-batches", 400))
    missing = label_path_beside((cfg / "train.txt").read_text().split()[0])
    run = tmp_path / "run"
    proc = start("train", cfg, "--out", run, "--backend", "darknet")
    wait_for(lambda: state(run).get("done", 0) >= 2, 120, "the first iterations")
    Path(missing).unlink()
    assert proc.wait(timeout=240) == 1, proc.stdout.read()
    st = json.loads(cli("status", run, "--json").stdout)
    assert st["status"] == "failed" and missing in st["reason"], st["reason"]
    assert st["restarts"] == 0  # a missing file is not cured by a restart
    assert st["done"] < 400


def test_cfg_errors_refuse_to_start_but_a_short_run_does_not(tmp_path):
    cfg = toy_configs(tmp_path, extra=("--max-batches", 20))
    text = (cfg / "toy.cfg").read_text()
    (cfg / "toy.cfg").write_text(text.replace("filters=21", "filters=18", 1))
    refused = cli("train", cfg, "--out", tmp_path / "bad", "--backend", "darknet")
    assert refused.returncode == 2 and "filters=18" in refused.stderr, refused.stderr
    assert not (tmp_path / "bad").exists()
    (cfg / "toy.cfg").write_text(text)
    ok = cli("-q", "train", cfg, "--out", tmp_path / "ok", "--backend", "darknet")
    assert ok.returncode == 0, ok.stdout + ok.stderr


def test_dry_run_prints_command_work_and_probe_estimate_writes_nothing(tmp_path):
    cfg = toy_configs(tmp_path, extra=("--max-batches", 50))
    run = tmp_path / "run"
    plan = cli("train", cfg, "--out", run, "--backend", "darknet", "--dry-run", "--json")
    assert plan.returncode == 0, plan.stderr
    result = json.loads(plan.stdout)
    assert result["command"].endswith(f"darknet detector train {run}/darknet/toy.data {run}/darknet/toy.cfg")
    assert result["total"] == 50 and result["unit"] == "iteration" and result["images"] == 8
    per = result["probe"]["per_iteration_seconds"]
    assert 0 < per < 30 and result["probe"]["seconds"] == pytest.approx(50 * per)
    assert not run.exists() and not list(cfg.glob("backup/*"))


def test_summarize_reads_the_run_folder_with_its_events_and_eta_checks(killed_and_resumed, tmp_path):
    run = killed_and_resumed[0]
    done = cli("summarize", run, "--out", tmp_path / "sum", "--json")
    assert done.returncode == 0, done.stderr
    s = json.loads(done.stdout)["runs"][0]
    assert s["format"].startswith("darknet") and s["last_step"] == 140 and s["max_steps"] == 140
    assert s["restarts"] >= 1  # the log continues at 101 after the kill
    kinds = [e["kind"] for e in s["run_events"]]
    assert kinds[0] == "start" and "resume" in kinds and kinds[-1] == "finished"
    assert [e["step"] for e in s["run_events"] if e["kind"] == "resume"][0] >= 100
    checks = {c["percent"]: c for c in s["eta_checks"]}
    assert {5, 25, 50, 75} <= set(checks)
    assert all(c["actual_finish"] and c["error_seconds"] is not None for c in checks.values())
    report = (tmp_path / "sum" / "report.md").read_text()
    assert "## Run events" in report and "## How good were the ETAs" in report
    assert (tmp_path / "sum" / "chart.png").stat().st_size > 10_000
    assert not list((tmp_path / "sum").glob(".*tmp"))  # the joined log is not left behind
