"""Long work that shows it is alive: a phase line under ``--quiet``, a moving bar otherwise.

Every phase that can take more than a few seconds (loading data, embedding captions, fitting a probe) runs
inside :func:`phase`: it says what starts and, when it took a while, how long it took; and :func:`ticking`
keeps a progress bar's elapsed time moving while one long item (a single SVM fit) runs, so a bar never looks
frozen. No torch here: the CLI may use it before anything heavy loads.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Callable, Iterator


@contextlib.contextmanager
def phase(what: str, log: Callable[[str], None], quiet_below: float = 2.0) -> Iterator[None]:
    """Say ``what…`` now and ``what: N s`` when the block took ``quiet_below`` seconds or more."""
    log(f"{what}...")
    start = time.perf_counter()
    yield
    seconds = time.perf_counter() - start
    if seconds >= quiet_below:
        log(f"{what}: done in {seconds:.0f} s")


@contextlib.contextmanager
def ticking(bar, every: float = 1.0) -> Iterator[None]:
    """Refresh a tqdm ``bar`` every ``every`` seconds while the block runs (its elapsed time keeps moving)."""
    if getattr(bar, "disable", True):
        yield
        return
    stop = threading.Event()

    def refresh() -> None:
        while not stop.wait(every):
            bar.refresh()

    thread = threading.Thread(target=refresh, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
