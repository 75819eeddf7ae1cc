"""How each upstream protocol builds its request and reads its answer."""

from service.hub.protocols.hf_inference import HfInferenceProtocol
from service.hub.protocols.image_providers import FalAiProtocol, OpenAIImagesProtocol, ReplicateProtocol
from service.hub.protocols.openai_chat import OpenAIChatProtocol
from service.hub.protocols.openai_completions import OpenAICompletionsProtocol

PROTOCOLS = {
    "hf-inference": HfInferenceProtocol(),
    "openai-completions": OpenAICompletionsProtocol(),
    "openai-chat": OpenAIChatProtocol(),
    "fal-ai": FalAiProtocol(),
    "replicate": ReplicateProtocol(),
    "openai-images": OpenAIImagesProtocol(),
}
