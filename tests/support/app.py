"""The app on the Flask test client, wired to a fake upstream host mocked with `responses`:
settings, a catalog and a fake clock for unit tests."""

import json
import time
import tomllib

from service import create_app
from service.catalog import Catalog
from service.clock import Clock
from service.settings import Settings

TOKEN = "hf_unit-test-not-a-real-token-0123456789"
# What every host name resolves to in unit tests: a public address, so downloads may go there.
PUBLIC_ADDRESS = "93.184.215.14"
API = "https://hub.test/hf-inference/models"
ROUTER = "https://hub.test/v1"

TEST_CATALOG = """
[languages]
zh = "Simplified Chinese"
en = "English"

[aliases]
opus = "Helsinki-NLP/opus-mt-zh-en"

[tasks.text-translation]
default_pair = "zh2en"
[tasks.text-translation.pairs]
zh2en = ["Helsinki-NLP/opus-mt-zh-en"]
en2zh = ["madlad400"]
zh2de = ["missing/model", "chat-model"]

[tasks.text-completion]
targets = ["openai-community/gpt2"]

[tasks.text-to-text]
targets = ["google/flan-t5-large"]

[tasks.text-to-image]
targets = ["missing/image-model", "CompVis/stable-diffusion-v1-4"]

[models.madlad400]
id = "google/madlad400-3b-mt"
input_template = "<2{tgt}> {text}"

[models.completions-model]
id = "org/vllm-model"
protocol = "openai-completions"

[models.tgi-server]
id = "my-tgi"
url = "https://tgi.internal.test"

[models.chat-model]
id = "org/chat-model"
protocol = "openai-chat"
provider = "novita"
[models.chat-model.prompts.text-translation]
system = "Translate from {source_language} to {target_language}. Answer with the translation only."
user = "{text}"
"""


class FakeClock:
    """A monotonic clock that only moves when the code under test sleeps."""

    def __init__(self):
        self.now = 1000.0
        self.sleeps = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def resolve_publicly(host, port, type=0, **kwargs):
    """A getaddrinfo stand-in: every name is one public address; nothing leaves the machine."""
    return [(2, 1, 6, "", (PUBLIC_ADDRESS, port))]


def make_settings(**overrides) -> Settings:
    """Settings pointing at the mocked upstream, short deadlines."""
    values = dict(
        hf_api_token=TOKEN,
        hf_api_base=API,
        hf_router_base=ROUTER,
        text_deadline=30.0,
        image_deadline=60.0,
        max_image_bytes=1024 * 1024,
        store="off",  # tests of limits and the ledger give their own store and data directory
    )
    values.update(overrides)
    return Settings(**values)


def make_app(settings: Settings, catalog_toml: str, clock: FakeClock, wall=time.time):
    """An app on the fake clock (and the `wall` clock, the real one unless a test moves its own),
    whose downloads resolve every name to a public address."""
    on_the_fake_clock = Clock(time=wall, monotonic=clock.monotonic, sleep=clock.sleep)
    catalog = Catalog(tomllib.loads(catalog_toml))
    return create_app(settings, catalog, clock=on_the_fake_clock, resolver=resolve_publicly)


def post(client, task, body, query="", **kwargs):
    """POST a JSON body to one task endpoint, read the whole answer and close it, as a server does
    (what runs once the answer has gone, such as confirming the ledger, has run on return)."""
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    kwargs.setdefault("buffered", True)
    return client.post(f"/api/infer/{task}{query}", data=data, **kwargs)
