"""Run the ComfyUI test double as its own process (a test tool only), for tests that kill
or restart the backend for real while the "ComfyUI" lives on:

    python -m tests.comfyui_double --port 8188 --dir /tmp/double --step-delay 0.1

It serves until SIGTERM / SIGINT.
"""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path

from tests.comfyui_double.server import ComfyUIDouble


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.comfyui_double",
                                     description="The ComfyUI test double as a process.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", type=Path, required=True, help="input/output/temp folders")
    parser.add_argument("--step-delay", type=float, default=0.0,
                        help="seconds per node and per sampler step (default 0)")
    args = parser.parse_args()
    double = ComfyUIDouble(args.dir, port=args.port)
    double.step_delay = args.step_delay
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    double.start()
    print(f"ComfyUI double on {double.url}", flush=True)
    stop.wait()
    double.stop()


if __name__ == "__main__":
    main()
