"""Entry point of a detached supervisor: `python -m pipeline.train.detached RUN [--resume]`."""

from __future__ import annotations

import sys
from pathlib import Path

from pipeline.train.api import supervise

if __name__ == "__main__":
    sys.exit(supervise(Path(sys.argv[1]), resuming="--resume" in sys.argv[2:]))
