"""The train stage: supervised Ultralytics or darknet runs that can be left alone for days.

    start_training(opts)      a new run in opts.out (foreground, or detach=True)
    resume_training(run)      continue a stopped, crashed or killed run from its last good checkpoint
    stop_run(run)             ask a running run to stop at its next safe point and wait
    run_status(run)           what state.json and events.jsonl say, as one dict

Nothing here imports torch: the Ultralytics engine runs in a worker process.
"""

from pipeline.train.api import resume_training, run_status, start_training, stop_run
from pipeline.train.options import BACKENDS, TrainOptions

__all__ = ["BACKENDS", "TrainOptions", "resume_training", "run_status", "start_training", "stop_run"]
