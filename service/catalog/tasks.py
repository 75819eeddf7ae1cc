"""The four tasks the service serves, declared once: every other place (views, schemas, the
OpenAPI document, the catalog, provider helpers, the batch command, the try-it page) reads them
from here.

Plain data, importing nothing: the batch command reads it without loading the service.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Task:
    """One task of the API: its name, what it returns, and how many results it may give."""

    name: str
    summary: str
    result: str  # "text" or "image": what each entry of `result` is
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
