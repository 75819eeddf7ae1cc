"""The environment of a gunicorn process that talks only to the loopback upstream."""

from harness.upstream import LoopbackUpstream

TOKEN = "hf_integration-not-a-real-token-0123456789"

# The shipped configuration's first choices, answered with recorded exchanges of the same task.
REPLAY_ALIASES = {
    "/hf-inference/models/google/madlad400-3b-mt": "/hf-inference/models/t5-base",
    "/hf-inference/models/Helsinki-NLP/opus-mt-zh-en": "/hf-inference/models/t5-base",
    "/hf-inference/models/stabilityai/stable-diffusion-3-medium-diffusers": "/hf-inference/models/CompVis/stable-diffusion-v1-4",
}


def service_env(upstream: LoopbackUpstream, **overrides) -> dict:
    """Environment for a gunicorn process that talks only to the loopback upstream."""
    env = {
        "HF_API_TOKEN": TOKEN,
        "HF_API_BASE": f"{upstream.url}/hf-inference/models",
        "HF_ROUTER_BASE": f"{upstream.url}/v1",
        "HF_HUB_API_BASE": f"{upstream.url}/api",  # the model API (liveness, a model's task)
        "TEXT_DEADLINE_SECONDS": "4",
        "IMAGE_DEADLINE_SECONDS": "6",
        "WEB_CONCURRENCY": "2",
        "GUNICORN_THREADS": "8",
        "API_KEYS": None,
        "API_KEYS_FILE": None,
        "MODELS_CONFIG": None,
        "STORE": "sqlite",
        "REDIS_URL": None,
        # Tests share one service: answers kept or breakers opened by one would change the next.
        # The tests of the cache and the breakers turn them on for their own services.
        "CACHE_TTL_SECONDS": "0",
        "BREAKER_FAILURES": "1000000",
    }
    env.update(overrides)
    return env
