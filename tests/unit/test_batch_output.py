"""hf-infer batch: ordered writing of results and resuming from an earlier output."""

import io
import json
import random

import pytest

from service.batch.inputs import InputError, id_key
from service.batch.output import OrderedWriter, read_finished


class FlushCountingStream(io.StringIO):
    def __init__(self):
        super().__init__()
        self.flushed_text = []

    def flush(self):
        self.flushed_text.append(self.getvalue())


def lines_of(stream):
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_results_in_any_order_are_written_in_input_order():
    stream = io.StringIO()
    writer = OrderedWriter(stream)
    positions = list(range(50))
    random.Random(4).shuffle(positions)
    for position in positions:
        writer.add(position, {"id": position, "result": [str(position)]})
    assert [line["id"] for line in lines_of(stream)] == list(range(50))
    assert (writer.written, writer.succeeded, writer.failed, writer.waiting) == (50, 50, 0, 0)


def test_an_early_result_waits_for_the_ones_before_it():
    stream = FlushCountingStream()
    writer = OrderedWriter(stream)
    writer.add(2, {"id": "c", "result": []})
    writer.add(1, {"id": "b", "error": {"status": 422}})
    assert stream.getvalue() == "" and writer.waiting == 2
    writer.add(0, {"id": "a", "result": []})
    assert [line["id"] for line in lines_of(stream)] == ["a", "b", "c"]
    assert len(stream.flushed_text) == 3  # each line flushed as soon as it is written
    assert (writer.succeeded, writer.failed) == (2, 1)


def test_lines_are_compact_utf8_json():
    stream = io.StringIO()
    OrderedWriter(stream).add(0, {"id": 1, "result": ["连衣裙"]})
    assert stream.getvalue() == '{"id": 1, "result": ["连衣裙"]}\n'


def test_resume_reads_the_ids_and_failures_of_an_earlier_run(tmp_path):
    output = tmp_path / "out.jsonl"
    output.write_text('{"id": 1, "result": ["a"]}\n{"id": "x", "error": {"status": 422}}\n\n{"id": 3, "result": []}\n')
    finished = read_finished(output)
    assert finished.ids == {id_key(1), id_key("x"), id_key(3)}
    assert finished.failed_ids == {id_key("x")}


def test_resume_without_an_output_file_starts_from_nothing(tmp_path):
    finished = read_finished(tmp_path / "missing.jsonl")
    assert finished.ids == set() and finished.failed_ids == set()


def test_resume_cuts_a_line_left_half_written(tmp_path):
    output = tmp_path / "out.jsonl"
    output.write_text('{"id": 1, "result": ["a"]}\n{"id": 2, "resu')
    assert read_finished(output).ids == {id_key(1)}
    assert output.read_text() == '{"id": 1, "result": ["a"]}\n'  # so the next line starts cleanly


@pytest.mark.parametrize("text", ["not json\n", '{"id": 1}\n', '{"result": []}\n', "[1]\n"])
def test_resume_refuses_to_append_to_a_file_that_is_not_results(tmp_path, text):
    output = tmp_path / "out.jsonl"
    output.write_text('{"id": 1, "result": []}\n' + text)
    with pytest.raises(InputError, match="output line 2 is not a result line"):
        read_finished(output)
    assert output.read_text().endswith(text)  # left untouched
