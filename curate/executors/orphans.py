"""Processes a run starts beside its driver (a local Ray instance's), recorded in the run
directory so that the next run there ends those a killed driver left behind: Ray's agent
processes outlive a driver killed with SIGKILL, and each holds about 90 MB."""

from __future__ import annotations

import json
from pathlib import Path

import psutil

from curate.run import write_json_atomic


def record_processes(path: Path, processes: list[psutil.Process]) -> None:
    """Write (pid, start time) of each process, or remove the record when there are none."""
    entries = []
    for process in processes:
        try:
            entries.append([process.pid, process.create_time()])
        except psutil.Error:
            continue
    if entries:
        write_json_atomic(path, entries)
    else:
        path.unlink(missing_ok=True)


def end_recorded_processes(path: Path) -> int:
    """Kill the recorded processes that still run (the same pid and start time) and every
    process they started since they were recorded (Ray starts a worker in place of one that
    died); return how many. Only call it holding the run's lock: then the run that recorded
    them is over."""
    try:
        entries = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return 0
    ended = 0
    for pid, started in entries:
        try:
            process = psutil.Process(pid)
            if abs(process.create_time() - started) < 0.01:
                ended += sum(_killed(child) for child in process.children(recursive=True)) + _killed(process)
        except psutil.Error:
            continue
    path.unlink(missing_ok=True)
    return ended


def _killed(process: psutil.Process) -> bool:
    """Kill one process; whether it was still there to kill."""
    try:
        process.kill()
        return True
    except psutil.Error:
        return False
