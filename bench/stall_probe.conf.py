"""gunicorn.conf.py, plus a probe of how long any greenlet runs without giving the others a turn.

Used by `python -m bench` only. Each worker measures the CPU time (not wall time: a worker
preempted by the other processes of the machine is not stalling its requests) between two
greenlet switches, and writes the longest, and the stack it happened in, to $STALL_REPORT
when it exits.
"""

import json
import os
import runpy
import time
import traceback

globals().update(
    runpy.run_path(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "gunicorn.conf.py"))
)


service_post_worker_init = post_worker_init  # noqa: F821  (from gunicorn.conf.py)


def post_worker_init(worker):
    """Start timing the stretches between greenlet switches."""
    import greenlet

    service_post_worker_init(worker)
    state = worker.stall_probe = {"since": time.thread_time(), "stretches": [], "resumed": ""}

    def on_switch(event, args):
        if event in ("switch", "throw"):
            now = time.thread_time()
            ran, state["since"] = now - state["since"], now
            origin, target = args
            if ran > 0.002:  # worth recording: where the greenlet that ran this long resumed, and yielded
                frame = getattr(origin, "gr_frame", None)
                yielded = "".join(traceback.format_stack(frame)[-4:]) if frame is not None else repr(origin)
                state["stretches"].append((ran, f"resumed at:\n{state['resumed']}yielded at:\n{yielded}"))
            frame = getattr(target, "gr_frame", None)
            state["resumed"] = "".join(traceback.format_stack(frame)[-4:]) if frame is not None else repr(target)

    greenlet.settrace(on_switch)


def worker_exit(server, worker):
    """Write the longest stretches this worker saw."""
    stretches = sorted(getattr(worker, "stall_probe", {"stretches": []})["stretches"], reverse=True)
    with open(f"{os.environ['STALL_REPORT']}.{worker.pid}", "w", encoding="utf-8") as report:
        json.dump(
            {"longest_ms": [round(ran * 1000, 2) for ran, _ in stretches[:20]], "where": [w for _, w in stretches[:5]]},
            report,
        )
