"""Property tests: whatever a caller sends, never a 5xx, always the documented error shape."""

import json
import re
import sys
from urllib.parse import quote_from_bytes, urlencode, urlsplit

from hypothesis import given
from hypothesis import strategies as st

from tests.support.fuzzing import API_KEY, CASES, FUZZ, STATUSES, UPSTREAM_HOST

TASKS = ("text-translation", "text-completion", "text-to-text", "text-to-image")
ARG_NAMES = (
    "num_sentences",
    "do_sample",
    "top_k",
    "top_p",
    "temperature",
    "max_new_tokens",
    "return_full_text",
    "seed",
    "negative_prompt",
    "guidance_scale",
    "num_inference_steps",
    "width",
    "height",
    "num_sentence",
)
# The error types each status may carry, from the README's table.
DOCUMENTED_ERRORS = {
    400: {"invalid_request"},
    401: {"unauthorized"},
    404: {"unknown_task", "not_found"},
    405: {"method_not_allowed"},
    413: {"payload_too_large"},
    415: {"unsupported_media_type"},
}
ERROR_KEYS = {"code", "error_type", "message", "request_id"}
SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
UPSTREAM_PATHS = ("/hf-inference/models/", "/v1/", "/api/models/")

huge_integers = st.one_of(st.integers(), st.integers(min_value=2**63 - 10, max_value=2**70), st.just(10**400))
special_floats = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([1e308, -0.0, 5e-324]))
json_scalars = st.one_of(st.none(), st.booleans(), huge_integers, special_floats, st.text(max_size=50))
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5), st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=25,
)
args_objects = st.dictionaries(st.sampled_from(ARG_NAMES), json_values, max_size=6)
task_names = st.one_of(
    st.sampled_from(TASKS), st.text(alphabet=st.characters(blacklist_characters="/?#%"), min_size=1, max_size=20)
)


def dumps(value) -> str:
    """Encode as Python's json does by default: NaN and Infinity included, as callers may send."""
    return json.dumps(value, allow_nan=True)


def assert_documented(response, mocked_upstream=None) -> None:
    """Never a 5xx; a success has results, an error has the documented shape and type."""
    CASES[_caller()] += 1
    STATUSES[response.status_code] += 1
    assert response.status_code < 500, response.get_data(as_text=True)
    assert response.headers["X-Request-ID"]
    body = response.get_json(silent=True)
    assert isinstance(body, dict), response.get_data()[:300]
    if response.status_code == 200:
        assert body["code"] == 0 and isinstance(body["result"], list) and body["result"]
    else:
        assert response.status_code in DOCUMENTED_ERRORS, body
        assert ERROR_KEYS <= set(body) <= ERROR_KEYS | {"errors"}, body
        assert body["code"] == response.status_code
        assert body["error_type"] in DOCUMENTED_ERRORS[response.status_code], body
        assert isinstance(body["message"], str) and body["message"]
        assert body["request_id"] == response.headers["X-Request-ID"]
    if mocked_upstream is not None:
        assert_upstream_untouched_beyond_its_routes(mocked_upstream)


def assert_upstream_untouched_beyond_its_routes(mocked_upstream) -> None:
    """Every upstream call went to the configured host, under its model routes."""
    for call in mocked_upstream.calls:
        url = urlsplit(call.request.url)
        assert url.hostname == UPSTREAM_HOST, call.request.url
        assert url.path.startswith(UPSTREAM_PATHS) and "/../" not in url.path and "%" not in url.path, call.request.url
    mocked_upstream.calls.reset()


def _caller() -> str:
    """Name the property being run, for the case count."""
    frame = sys._getframe(2)
    while frame is not None and not frame.f_code.co_name.startswith("test_"):
        frame = frame.f_back
    return frame.f_code.co_name if frame is not None else "other"


def post(client, task, data, **kwargs):
    """POST to one task endpoint."""
    return client.post(f"/api/infer/{task}", data=data, **kwargs)


@FUZZ
@given(task=task_names, body=json_values)
def test_any_json_body(client, mocked_upstream, task, body):
    assert_documented(post(client, task, dumps(body)), mocked_upstream)


@FUZZ
@given(
    task=st.sampled_from(TASKS),
    inputs=st.one_of(st.text(max_size=200), json_values),
    args=st.one_of(args_objects, json_values),
    extra=st.dictionaries(st.text(max_size=10), json_values, max_size=2),
)
def test_structured_bodies_with_wrong_types(client, mocked_upstream, task, inputs, args, extra):
    body = {**extra, "inputs": inputs, "args": args}
    assert_documented(post(client, task, dumps(body)), mocked_upstream)


@FUZZ
@given(task=st.sampled_from(TASKS), args=args_objects, cut=st.integers(0, 200), noise=st.text(max_size=5))
def test_args_as_broken_json_strings(client, mocked_upstream, task, args, cut, noise):
    encoded = dumps(args)
    broken = encoded[:cut] + noise + encoded[cut:] if noise else encoded[:cut]
    assert_documented(post(client, task, dumps({"inputs": "连衣裙", "args": broken})), mocked_upstream)


@FUZZ
@given(
    task=st.sampled_from(TASKS),
    body=st.one_of(
        st.binary(max_size=300), st.text(max_size=300).map(lambda text: text.encode("utf-8", "surrogatepass"))
    ),
    content_type=st.one_of(
        st.none(),
        st.sampled_from(
            [
                "application/json",
                "application/json; charset=latin-1",
                "text/plain",
                "application/x-www-form-urlencoded",
                "multipart/form-data; boundary=x",
                "application/xml",
                "application/vnd.api+json",
                "image/png",
            ]
        ),
        st.text(max_size=30),
    ),
)
def test_raw_bytes_and_invalid_utf8(client, mocked_upstream, task, body, content_type):
    headers = {"Content-Type": _header_safe(content_type)} if content_type is not None else {}
    assert_documented(post(client, task, body, headers=headers), mocked_upstream)


@FUZZ
@given(
    task=st.sampled_from(TASKS),
    params=st.lists(
        st.tuples(
            st.sampled_from(["model_name", "model_type", "args", "inputs"]) | st.text(max_size=10),
            st.text(max_size=140),
        ),
        max_size=4,
    ),
    raw=st.binary(max_size=60),
)
def test_query_strings(client, mocked_upstream, task, params, raw):
    query = urlencode(params) + "&" + quote_from_bytes(raw, safe="=&")
    assert_documented(post(client, task, '{"inputs": "连衣裙"}', query_string=query), mocked_upstream)


@FUZZ
@given(
    task=st.sampled_from(TASKS),
    headers=st.dictionaries(
        st.sampled_from(
            [
                "X-Request-ID",
                "Authorization",
                "X-API-Key",
                "Content-Type",
                "Accept",
                "X-Forwarded-For",
                "Content-Encoding",
            ]
        ),
        st.one_of(st.text(max_size=200), st.sampled_from([f"Bearer {API_KEY}", API_KEY, "Bearer ", "a" * 129])),
        max_size=5,
    ),
)
def test_headers(keyed_client, mocked_upstream, task, headers):
    headers = {name: _header_safe(value) for name, value in headers.items()}
    response = post(keyed_client, task, '{"inputs": "连衣裙"}', headers=headers)
    assert_documented(response, mocked_upstream)
    offered = headers.get("X-Request-ID", "")
    expected = offered if SAFE_REQUEST_ID.fullmatch(offered) else None
    assert response.headers["X-Request-ID"] == (expected or response.headers["X-Request-ID"])
    assert SAFE_REQUEST_ID.fullmatch(response.headers["X-Request-ID"])


@FUZZ
@given(
    task=st.sampled_from(TASKS),
    depth=st.integers(1, 100_000),
    opener=st.sampled_from(["[", '{"a":', '{"inputs": "x", "args": ', '{"inputs": ']),
    in_args_string=st.booleans(),
)
def test_deeply_nested_json(client, mocked_upstream, task, depth, opener, in_args_string):
    nested = "[" * depth + "]" * depth
    if in_args_string:
        body = dumps({"inputs": "x", "args": '{"a": ' + nested + "}"})
    else:
        closer = "}" * opener.count("{")
        body = opener + nested + closer
    assert_documented(post(client, task, body), mocked_upstream)


@FUZZ
@given(
    task=st.sampled_from(TASKS),
    length=st.integers(0, 1_200_000),
    character=st.sampled_from(["x", "连", "\U0001f600", " ", "\\u0000"]),
    field=st.sampled_from(["inputs", "negative_prompt", "model_name"]),
)
def test_very_long_strings(client, mocked_upstream, task, length, character, field):
    text = character * (length // len(character.encode("utf-8")) or 0)
    if field == "inputs":
        response = post(client, task, dumps({"inputs": text}))
    elif field == "negative_prompt":
        response = post(client, task, dumps({"inputs": "x", "args": {"negative_prompt": text}}))
    else:
        response = post(client, task, '{"inputs": "x"}', query_string={"model_name": text[:20_000]})
    assert_documented(response, mocked_upstream)


def _header_safe(value: str) -> str:
    """Keep a header value sendable: latin-1, no line breaks or NUL."""
    return value.encode("latin-1", "replace").decode("latin-1").translate({10: None, 13: None, 0: None})
