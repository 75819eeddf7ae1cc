"""The four tasks the service serves, declared once: every other place (views, schemas, the
OpenAPI document, the catalog, provider helpers, the batch command, the try-it page) reads them
from here; and the Hub's other tasks, which only the Hub's API forwards.

Plain data, importing nothing: the batch command reads it without loading the service.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Task:
    """One task of the API: its name, what it returns, and how many results it may give."""

    name: str
    summary: str
    result: str  # "text" or "image": what each entry of `result` is ("as-answered": forwarded)
    max_results: int  # the most num_sentences allows
    language_pair: bool = False  # takes ?model_type=<src>2<tgt>

    @property
    def path(self) -> str:
        """Return the task's endpoint."""
        return f"/api/infer/{self.name}"

    @property
    def makes_images(self) -> bool:
        """Tell whether results are images."""
        return self.result == "image"


# The largest seed a caller may send; consecutive seeds of a fan-out wrap around after it.
MAX_SEED = 2**63 - 1

TRANSLATION = Task(
    "text-translation",
    "Translate text between the configured language pairs.",
    "text",
    10,
    language_pair=True,
)
COMPLETION = Task("text-completion", "Continue a text.", "text", 10)
TEXT_TO_TEXT = Task("text-to-text", "Answer an instruction or transform a text.", "text", 10)
TEXT_TO_IMAGE = Task("text-to-image", "Draw an image from a prompt, returned as base64.", "image", 4)

# A conversation, as OpenAI's chat completions take it: run by the pipeline for the OpenAI
# surface, never served by /api/infer (TASKS is what /api/infer serves).
CHAT_COMPLETION = Task("chat-completion", "Answer a conversation, as OpenAI's chat completions do.", "text", 10)

# Texts as vectors (OpenAI's embeddings): one result holds the vectors of every text sent.
FEATURE_EXTRACTION = Task("feature-extraction", "Embed texts as vectors, as OpenAI's embeddings do.", "vectors", 1)

TASKS = {task.name: task for task in (TRANSLATION, COMPLETION, TEXT_TO_TEXT, TEXT_TO_IMAGE)}
# Every task the pipeline runs, whatever surface asks for it.
PIPELINE_TASKS = {**TASKS, CHAT_COMPLETION.name: CHAT_COMPLETION, FEATURE_EXTRACTION.name: FEATURE_EXTRACTION}
TASK_TYPES = tuple(TASKS)
TEXT_TASKS = tuple(name for name, task in TASKS.items() if not task.makes_images)


# The Hub's other tasks, which the Hub's API (`/models/<id>`, `/pipeline/<task>/<id>`) forwards to
# the hosted route as they came, answering what came back. /api/infer never serves them.
@dataclass(frozen=True)
class ForwardedTask(Task):
    """One of the Hub's tasks passed through: its Hub name; whether the same body always gets the
    same answer (the answer cache keeps those); whether a file goes in or comes out (those run
    within IMAGE_DEADLINE_SECONDS, the others within TEXT_DEADLINE_SECONDS)."""

    hub_name: str = ""
    deterministic: bool = False
    files: bool = False


FORWARDED_PREFIX = "forwarded:"
# Same body, same answer: scores, labels, spans and vectors.
_DETERMINISTIC = (
    "feature-extraction",
    "sentence-similarity",
    "fill-mask",
    "text-classification",
    "token-classification",
    "question-answering",
    "table-question-answering",
    "zero-shot-classification",
    "tabular-classification",
    "tabular-regression",
)
_DETERMINISTIC_FILES = (
    "image-classification",
    "zero-shot-image-classification",
    "object-detection",
    "image-segmentation",
    "depth-estimation",
    "audio-classification",
    "document-question-answering",
    "visual-question-answering",
)
# Generated: each call may answer anew.
_GENERATED = ("summarization",)
_GENERATED_FILES = (
    "automatic-speech-recognition",
    "image-to-text",
    "image-to-image",
    "audio-to-audio",
    "text-to-speech",
    "text-to-audio",
    "text-to-video",
)


def _forwarded(hub_name: str, deterministic: bool, files: bool) -> ForwardedTask:
    return ForwardedTask(
        FORWARDED_PREFIX + hub_name,
        f"The Hub's {hub_name}, forwarded as it came.",
        "as-answered",
        1,
        hub_name=hub_name,
        deterministic=deterministic,
        files=files,
    )


# By the Hub's name: the tasks `/pipeline/<task>/` takes.
FORWARDED_HUB_TASKS = {
    name: _forwarded(name, deterministic, files)
    for names, deterministic, files in (
        (_DETERMINISTIC, True, False),
        (_DETERMINISTIC_FILES, True, True),
        (_GENERATED, False, False),
        (_GENERATED_FILES, False, True),
    )
    for name in names
}
# A pipeline tag the list above does not know, forwarded under one label (never the tag itself,
# which a model's author chose); what it takes or answers is unknown, so it gets the longer deadline.
FORWARDED_OTHER = ForwardedTask(
    FORWARDED_PREFIX + "other", "Another of the Hub's tasks, forwarded as it came.", "as-answered", 1, files=True
)
# By the pipeline's name (`forwarded:<hub task>`): what the pipeline looks them up by.
FORWARDED_TASKS = {task.name: task for task in (*FORWARDED_HUB_TASKS.values(), FORWARDED_OTHER)}


def forwarded_task(hub_name: str) -> ForwardedTask:
    """The forwarded task of a Hub task (a model's pipeline tag): its own, else `other`."""
    return FORWARDED_HUB_TASKS.get(hub_name, FORWARDED_OTHER)
