"""hf-infer batch: reading plain-text and JSONL inputs."""

import io

import pytest

from service.batch.inputs import BatchItem, InputError, parse_args_value, read_items


def items_of(text, input_format="auto", defaults=None):
    return read_items(io.StringIO(text), input_format, defaults)


def test_plain_text_lines_are_numbered_and_blank_lines_skipped():
    items = items_of("连衣裙\n\n  \nhello world\r\nlast line without newline")
    assert items == [BatchItem(1, "连衣裙"), BatchItem(4, "hello world"), BatchItem(5, "last line without newline")]


def test_plain_text_gets_the_default_args():
    items = items_of("a\nb\n", defaults={"num_sentences": 2})
    assert [item.args for item in items] == [{"num_sentences": 2}] * 2
    items[0].args["num_sentences"] = 9
    assert items[1].args == {"num_sentences": 2}  # each item has its own copy


def test_jsonl_is_detected_and_line_args_override_defaults_key_by_key():
    text = '{"id": "a", "inputs": "连衣裙", "args": {"num_sentences": 3}}\n{"inputs": "hello", "args": "{\\"seed\\": 7}"}\n'
    items = items_of(text, defaults={"num_sentences": 2, "top_k": 5})
    assert items == [
        BatchItem("a", "连衣裙", {"num_sentences": 3, "top_k": 5}),
        BatchItem(2, "hello", {"num_sentences": 2, "top_k": 5, "seed": 7}),  # no id: the line number
    ]


def test_text_format_keeps_a_json_looking_line_as_text():
    assert items_of('{"inputs": "x"}\n', input_format="text") == [BatchItem(1, '{"inputs": "x"}')]


def test_a_first_line_that_is_not_an_object_means_plain_text():
    assert items_of('[1, 2]\n"quoted"\n') == [BatchItem(1, "[1, 2]"), BatchItem(2, '"quoted"')]


def test_empty_input_has_no_items():
    assert items_of("\n\n") == []


@pytest.mark.parametrize(
    "text, message",
    [
        ('{"inputs": "a"}\nnot json\n', "line 2: not valid JSON"),
        ('{"inputs": "a"}\n[1]\n', "line 2: expected a JSON object"),
        ('{"input": "a"}\n', "line 1: unknown keys input"),
        ('{"id": 1}\n', 'line 1: "inputs" is missing'),
        ('{"id": true, "inputs": "a"}\n', "line 1: id must be"),
        ('{"id": 1.5, "inputs": "a"}\n', "line 1: id must be"),
        ('{"id": "", "inputs": "a"}\n', "line 1: id must be"),
        ('{"inputs": "a", "args": [1]}\n', "line 1: args must be a JSON object"),
        ('{"inputs": "a", "args": "{nope"}\n', "line 1: args is not valid JSON"),
        ('{"id": "x", "inputs": "a"}\n\n{"id": "x", "inputs": "b"}\n', 'line 3: id "x" repeats line 1'),
        ('{"inputs": "a"}\n{"id": 1, "inputs": "b"}\n', "line 2: id 1 repeats line 1"),
    ],
)
def test_bad_jsonl_lines_are_refused_with_their_line_number(text, message):
    with pytest.raises(InputError, match="^" + message.replace("[", r"\[")):
        items_of(text)


def test_ids_of_different_types_are_different_ids():
    items = items_of('{"id": 1, "inputs": "a"}\n{"id": "1", "inputs": "b"}\n')
    assert [item.id for item in items] == [1, "1"]


@pytest.mark.parametrize("value, expected", [("", {}), ('{"a": 1}', {"a": 1}), ({"b": 2}, {"b": 2})])
def test_args_value_forms(value, expected):
    assert parse_args_value(value, "--args") == expected


@pytest.mark.parametrize("value", ["3", "[]", "{bad", None])
def test_args_value_must_be_an_object(value):
    with pytest.raises(InputError, match="^--args: "):
        parse_args_value(value, "--args")
