"""A smoke run of the benchmark: it runs end to end and reports every figure (never their values)."""

import json
import math
import subprocess
import sys

import pytest

from bench.latency import percentile
from bench.report import FIGURES, Figure, medians
from harness.paths import REPO_ROOT

pytestmark = pytest.mark.integration


def test_quick_run_reports_every_figure_in_the_table_and_the_json(tmp_path):
    out = tmp_path / "bench.json"

    completed = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert completed.returncode == 0, completed.stderr[-3000:]
    document = json.loads(out.read_text(encoding="utf-8"))
    for figure in FIGURES:
        reported = document["figures"][figure.key]
        assert figure.label in completed.stdout
        if figure.full_only:  # a quick run sends smaller bursts, reported under their own sizes
            continue
        assert isinstance(reported["value"], float) and math.isfinite(reported["value"]), figure.key
        assert len(reported["runs"]) == 1
    bursts = [key for key in document["measurements"] if key.startswith("burst.") and key.endswith(".ratio")]
    assert len(bursts) == 2 and all(math.isfinite(document["measurements"][key]["median"]) for key in bursts)
    assert document["machine"]["cores"] >= 1
    assert document["quick"] is True


def test_percentile_interpolates_between_ranks():
    samples = [4.0, 1.0, 3.0, 2.0]

    assert percentile(samples, 0) == 1.0
    assert percentile(samples, 50) == 2.5
    assert percentile(samples, 100) == 4.0
    assert percentile(list(range(101)), 99) == 99


def test_percentile_of_nothing_is_an_error():
    with pytest.raises(ValueError):
        percentile([], 50)


def test_medians_keep_every_run():
    measured = medians([{"a": 3.0}, {"a": 1.0, "b": 5.0}, {"a": 2.0}])

    assert measured == {"a": {"median": 2.0, "runs": [3.0, 1.0, 2.0]}, "b": {"median": 5.0, "runs": [5.0]}}


@pytest.mark.parametrize(
    "figure, value, met",
    [
        (Figure("k", "ceiling", "ms", 1.0), 1.0, True),
        (Figure("k", "ceiling", "ms", 1.0), 1.01, False),
        (Figure("k", "floor", "", 0.9, at_least=True), 0.89, False),
        (Figure("k", "floor", "", 0.9, at_least=True), 0.95, True),
        (Figure("k", "no target", "ms"), 123.0, None),
    ],
)
def test_targets_are_ceilings_unless_marked_as_floors(figure, value, met):
    assert figure.met(value) is met
