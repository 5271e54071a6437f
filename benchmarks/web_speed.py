"""What gankit serve costs (issue 19): playground steps per second and the time of one view, each loss on
the ring after a fixed number of steps (modes captured, high-quality share), and the explorer's response
time per picture for a run folder.

    python benchmarks/web_speed.py [--steps 3000] [--run RUN]
"""

from __future__ import annotations

import argparse
import time

from gankit.web.app import build_app
from gankit.web.playground import LOSS_NAMES, Playground, PlaygroundOptions
from gankit.web.server import Request


def playground(steps: int) -> None:
    print(f"playground, ring of 8, default options but the loss, {steps} steps (200 per request, as Play asks):")
    print(f"{'loss':16s} {'steps/s':>8s} {'view ms':>8s} {'modes':>6s} {'high quality':>13s}")
    for loss in LOSS_NAMES:
        game = Playground(PlaygroundOptions(target="ring", loss=loss))
        start = time.perf_counter()
        for _ in range(steps // 200):
            game.step("both", 200)
        rate = steps / (time.perf_counter() - start)
        times = []
        for _ in range(5):  # the median of 5 views: the first can pay one-off costs
            start = time.perf_counter()
            view = game.view()
            times.append(1000 * (time.perf_counter() - start))
        view_ms = sorted(times)[2]
        modes = view["modes"]
        print(
            f"{loss:16s} {rate:8.0f} {view_ms:8.0f} {modes['modes_captured']:>3d}/{modes['modes_total']:<2d} "
            f"{100 * modes['high_quality']:12.1f}%",
            flush=True,
        )


def explorer(run: str) -> None:
    app = build_app([run])
    requests = {
        "image": ("/api/image.png", {"point": "3~0=1.5"}),
        "plane of 16": ("/api/plane.png", {"count": "16"}),
        "strip of 9": ("/api/interpolate.png", {"a": "1", "b": "2"}),
        "arithmetic": ("/api/arithmetic.png", {"A": "1,2,3", "B": "4", "C": "5"}),
    }
    print(f"\nexplorer on {run} (mean of 10 requests, after one warm-up):")
    for name, (path, query) in requests.items():
        app.handle(Request("GET", path, query))
        start = time.perf_counter()
        for _ in range(10):
            response = app.handle(Request("GET", path, query))
        assert response.status == 200, response.body
        print(f"  {name:14s} {100 * (time.perf_counter() - start):6.1f} ms", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--run", default="", help="a run folder to time the explorer on (skipped when empty)")
    args = parser.parse_args()
    playground(args.steps)
    if args.run:
        explorer(args.run)


if __name__ == "__main__":
    main()
