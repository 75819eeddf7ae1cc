"""hf-infer batch's progress: a bar on a terminal, plain lines every so often anywhere else
(cron, a log file), and a resumed run counting from the lines an earlier run wrote."""

import io

from service.cli.batch import PlainProgress, make_progress


class FakeClock:
    def __init__(self):
        self.now = 500.0

    def __call__(self):
        return self.now


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_off_a_terminal_a_plain_line_every_interval_with_rate_failures_and_eta():
    stream, clock = io.StringIO(), FakeClock()
    progress = make_progress(total=100, skipped=0, stream=stream, interval=30, clock=clock)
    assert isinstance(progress, PlainProgress)
    with progress:
        for number in range(10):
            clock.now += 2
            progress.line_done({"id": number, "error": {}} if number == 3 else {"id": number, "result": []})
        assert stream.getvalue() == ""  # 20 s: not yet
        for number in range(10, 20):
            clock.now += 2
            progress.line_done({"id": number, "result": []})
    lines = stream.getvalue().splitlines()
    assert lines == ["hf-infer: 15/100 lines, 1 failed, 0.5 lines/s, about 2m50s left"]


def test_a_resumed_run_counts_from_the_lines_already_written():
    stream, clock = io.StringIO(), FakeClock()
    with make_progress(total=100, skipped=60, stream=stream, interval=10, clock=clock) as progress:
        for number in range(10):
            clock.now += 1
            progress.line_done({"id": number, "result": []})
    # 70 of 100, the rate of this run's lines only, and the ETA of the 30 left.
    assert stream.getvalue().splitlines() == ["hf-infer: 70/100 lines, 0 failed, 1.0 lines/s, about 30s left"]


def test_on_a_terminal_the_bar_starts_at_the_lines_already_written():
    terminal = Terminal()
    with make_progress(total=10, skipped=4, stream=terminal, interval=30, clock=FakeClock()) as progress:
        progress.line_done({"id": 5, "result": []})
        assert progress.bar.n == 5 and progress.bar.total == 10
    assert "5/10" in terminal.getvalue()
