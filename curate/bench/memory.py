"""Peak resident memory of a process and its children, sampled while a benchmark runs."""

from __future__ import annotations

import threading
import time
from contextlib import suppress

import psutil


class MemorySampler:
    """Polls resident memory of this process, of its largest child (a Ray worker, on the Ray
    executor) and of its whole process tree while running."""

    def __init__(self, interval: float = 0.1):
        self.interval = interval
        self.driver_peak = 0
        self.child_peak = 0
        self.tree_peak = 0
        self.timeline: list[tuple[float, int, int]] = []  # (perf_counter, driver, largest child) per poll
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> "MemorySampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _poll(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            driver = me.memory_info().rss
            tree, largest = driver, 0
            for child in me.children(recursive=True):
                with suppress(psutil.Error):  # a child that just ended
                    rss = child.memory_info().rss
                    tree += rss
                    largest = max(largest, rss)
            self.child_peak = max(self.child_peak, largest)
            self.timeline.append((time.perf_counter(), driver, largest))
            self.driver_peak = max(self.driver_peak, driver)
            self.tree_peak = max(self.tree_peak, tree)
            self._stop.wait(self.interval)
