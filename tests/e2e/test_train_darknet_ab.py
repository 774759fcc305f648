"""`train --backend darknet` with the REAL AlexeyAB build (`make darknet-ab`), yolov4-tiny at
64 px on the CPU, while pjreddie's Debian darknet is on PATH: the fork comes from --darknet,
-dont_show -map run, mAP reaches status and the summary, a NaN is remedied, a partial file
made by `partial` starts at iteration 1, a SIGKILL and resume keep the run's best weights,
and wrong weights are refused before darknet starts."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest
from runkit import ab_toy_configs, cli, events, sigkill, start, state, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.darknet]
ITERATION = re.compile(r"^ (\d+): (\S+), (\S+) avg loss,", re.M)


def iterations(log: Path) -> list[int]:
    return [int(m[0]) for m in ITERATION.findall(log.read_text(errors="replace"))]


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def toy(tmp_path_factory, ab_darknet) -> Path:
    """synth -> convert -> configs from AlexeyAB's yolov4-tiny template at 64 px, 120 iterations."""
    root = tmp_path_factory.mktemp("ab")
    ab_toy_configs(root, ab_darknet, annotated=6, max_batches=120)
    return root


@pytest.fixture(scope="module")
def remedied(toy, ab_darknet) -> Path:
    """A run at the template's learning rate (0.00261), which turns `nan` on this toy set."""
    run = toy / "run-remedy"
    done = cli("train", toy / "cfg", "--out", run, "--backend", "darknet", "--darknet", ab_darknet,
               "--max-restarts", 4, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    return run


def test_the_fork_comes_from_the_binary_not_from_path(remedied, ab_darknet):
    assert shutil.which("darknet") != ab_darknet  # pjreddie's (or none) on PATH
    info = json.loads((remedied / "run.json").read_text())
    assert info["engine"]["fork"] == "alexeyab" and ab_darknet in info["engine"]["fork_reason"]
    assert info["options"]["darknet"] == ab_darknet
    attempt = next(e for e in events(remedied) if e["kind"] == "attempt")
    assert "-dont_show -map" in attempt["detail"] and ab_darknet in attempt["detail"]
    # run.json keeps run-relative paths to its cfg and .data copies
    assert info["darknet_files"]["cfg"] == "darknet/toy.cfg"


def test_a_nan_is_remedied_and_the_run_finishes(remedied):
    kinds = [e["kind"] for e in events(remedied)]
    assert "nan" in kinds, "the toy run at lr 0.00261 turned nan in every measured run"
    assert kinds.index("remedy") == kinds.index("nan") + 1 and kinds[-1] == "finished"
    cfg = (remedied / "darknet" / "toy.cfg").read_text()
    rate = float(re.search(r"^learning_rate=(\S+)", cfg, re.M)[1])
    assert rate <= 0.00261 / 2 + 1e-9
    assert (remedied / "darknet" / "backup" / "toy_final.weights").is_file()


def test_map_is_in_status_and_summary(remedied):
    status = json.loads(cli("status", remedied, "--json").stdout)
    mAP = status["map"]
    assert mAP["last"]["done"] == 120 and 0 <= mAP["last"]["map"] <= 1
    assert mAP["best"]["map"] >= mAP["last"]["map"] and mAP["evaluations"] >= 2
    best = json.loads((remedied / "checkpoints" / "best.json").read_text())
    assert best["map"] == pytest.approx(mAP["best"]["map"]) and best["iteration"] == mAP["best"]["done"]
    assert (remedied / "checkpoints" / "best.weights").stat().st_size == \
        (remedied / "checkpoints" / "last_good.weights").stat().st_size


@pytest.fixture(scope="module")
def partial_file(remedied, toy, ab_darknet) -> Path:
    out = toy / "toy.conv.29"
    final = remedied / "darknet" / "backup" / "toy_final.weights"
    made = cli("partial", remedied / "darknet" / "toy.cfg", final, "--layers", 29, "--out", out,
               "--darknet", ab_darknet, "--json")
    assert made.returncode == 0, made.stdout + made.stderr
    assert json.loads(made.stdout)["kind"] == "partial"
    return out


def test_check_cfg_weights_right_and_wrong_pairs(partial_file, remedied, toy, ab_darknet):
    cfg = toy / "cfg" / "toy.cfg"
    full = cli("check-cfg", cfg, "--weights", remedied / "darknet" / "backup" / "toy_final.weights",
               "--darknet", ab_darknet)
    assert full.returncode == 0 and "all layers of toy.cfg" in full.stdout, full.stdout + full.stderr
    part = cli("check-cfg", cfg, "--weights", partial_file, "--darknet", ab_darknet)
    assert part.returncode == 0 and "layers 0..28 of toy.cfg" in part.stdout, part.stdout
    other = Path(ab_darknet).parent / "cfg" / "yolov3-tiny.cfg"
    wrong = cli("check-cfg", other, "--weights", remedied / "darknet" / "backup" / "toy_final.weights",
                "--fork", "alexeyab")
    assert wrong.returncode == 1 and re.search(r"layer \d+ expects [\d,]+ floats|longer than the cfg",
                                               wrong.stdout), wrong.stdout
    # train refuses the pair before anything runs
    refused = cli("train", toy / "cfg", "--out", toy / "run-wrong", "--backend", "darknet", "--darknet",
                  ab_darknet, "--weights", toy / "cfg" / "toy.names")
    assert refused.returncode == 2 and "does not match" in refused.stderr, refused.stderr
    assert not (toy / "run-wrong").exists()


@pytest.fixture(scope="module")
def killed_and_resumed(partial_file, toy, ab_darknet):
    """From the partial file; SIGKILLed after the checkpoint of 100; the run's best mAP made
    better than anything this toy reaches; resumed to the end."""
    run = toy / "run-partial"
    proc = start("train", toy / "cfg", "--out", run, "--backend", "darknet", "--darknet", ab_darknet,
                 "--weights", partial_file, "--max-restarts", 4)
    wait_for(lambda: state(run).get("checkpoint_done") == 100 and state(run).get("done", 0) >= 103,
             600, "iteration 103 with the checkpoint of iteration 100 kept")
    sigkill(proc)
    best_json = run / "checkpoints" / "best.json"
    wait_for(best_json.is_file, 10, "the best weights of the mAP at 100")
    best_json.write_text(json.dumps({**json.loads(best_json.read_text()), "map": 0.99}))
    kept = sha(run / "checkpoints" / "best.weights")
    resumed = cli("resume", run, "--json", timeout=600)
    return run, resumed, kept


def test_partial_start_loads_the_layers_and_starts_at_1(killed_and_resumed):
    run = killed_and_resumed[0]
    first_log = run / "logs" / "attempt-01.log"
    text = first_log.read_text(errors="replace")
    assert "Done! Loaded 29 layers from weights-file" in text
    assert iterations(first_log)[0] == 1
    info = json.loads((run / "run.json").read_text())
    assert info["start_weights"]["kind"] == "partial" and "weights" in info["digests"]
    assert "-clear" not in next(e for e in events(run) if e["kind"] == "attempt")["detail"]


def test_resume_continues_from_the_healthy_checkpoint_and_keeps_the_best(killed_and_resumed):
    run, resumed, kept = killed_and_resumed
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    logs = sorted((run / "logs").glob("attempt-*.log"))
    last = iterations(logs[-1])
    assert last[0] == 101 and last[-1] == 120
    # darknet evaluated after the resume and wrote its own _best.weights (its best restarts at -1) ...
    text = logs[-1].read_text(errors="replace")
    assert "New best mAP!" in text and (run / "darknet" / "backup" / "toy_best.weights").is_file()
    # ... but the run's best (0.99) was better: checkpoints/best.weights is untouched
    assert json.loads((run / "checkpoints" / "best.json").read_text())["map"] == 0.99
    assert sha(run / "checkpoints" / "best.weights") == kept
