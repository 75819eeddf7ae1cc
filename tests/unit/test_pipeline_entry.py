"""The pipeline's one call, made as any surface makes it: an `Ask` and the request's context, with
no Flask request or app context around it."""

import pytest

from harness import recordings
from service.api.gateway import gateway_of
from service.api.schemas import ARGS_SCHEMAS
from service.catalog.tasks import TEXT_TO_IMAGE, TRANSLATION
from service.errors import InvalidRequest, ModelNotFound
from service.keys.keyring import OPEN_ACCESS
from service.pipeline.context import RequestContext
from service.pipeline.entry import Ask
from tests.support.app import API

TRANSLATION_ARGS = ARGS_SCHEMAS[TRANSLATION.name].load({"do_sample": False})


def caller_context() -> RequestContext:
    context = RequestContext("pipeline-test")
    context.client_key = OPEN_ACCESS
    return context


def test_a_translation_outside_any_request(app, mock_hub):
    mock_hub.post(f"{API}/Helsinki-NLP/opus-mt-zh-en", json=[{"translation_text": "Dress"}])
    context = caller_context()
    outcome = gateway_of(app).pipeline.infer(Ask(TRANSLATION, "连衣裙", TRANSLATION_ARGS, model_type="zh2en"), context)
    assert (outcome.model, outcome.results) == ("Helsinki-NLP/opus-mt-zh-en", ["Dress"])
    assert (context.task, context.model, context.results, context.input_chars) == (TRANSLATION, outcome.model, 1, 3)
    assert context.usage.attempts == 1 and context.ticket is not None


def test_the_route_falls_back_along_its_chain(app, mock_hub):
    mock_hub.post(f"{API}/missing/image-model", json={"error": "Model missing/image-model does not exist"}, status=404)
    jpeg = recordings.recorded_body("CompVis/stable-diffusion-v1-4")
    mock_hub.post(f"{API}/CompVis/stable-diffusion-v1-4", body=jpeg, content_type="image/jpeg")
    ask = Ask(TEXT_TO_IMAGE, "a dress", ARGS_SCHEMAS[TEXT_TO_IMAGE.name].load({}))
    outcome = gateway_of(app).pipeline.infer(ask, caller_context())
    assert outcome.model == "CompVis/stable-diffusion-v1-4" and len(outcome.results) == 1


def test_an_error_comes_back_as_one_of_the_hierarchy(app, mock_hub):
    mock_hub.post(f"{API}/Helsinki-NLP/opus-mt-zh-en", json={"error": "Model not found"}, status=404)
    with pytest.raises(ModelNotFound):
        gateway_of(app).pipeline.infer(
            Ask(TRANSLATION, "连衣裙", TRANSLATION_ARGS, model_type="zh2en"), caller_context()
        )


def test_a_streamed_answer_is_refused_before_any_call(app, mock_hub):
    context = caller_context()
    with pytest.raises(InvalidRequest, match="stream"):
        gateway_of(app).pipeline.infer(Ask(TRANSLATION, "连衣裙", TRANSLATION_ARGS, stream=True), context)
    assert len(mock_hub.calls) == 0 and context.ticket is None
