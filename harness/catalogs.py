"""Model catalogs for tests and the benchmark: the four tasks' routes, to which each adds the
models it needs (`task_routes(...) + MODELS`)."""

LANGUAGES = """
[languages]
zh = "Simplified Chinese"
en = "English"
"""


def task_routes(
    zh2en: tuple[str, ...] = ("Helsinki-NLP/opus-mt-zh-en",),
    completion: tuple[str, ...] = ("openai-community/gpt2",),
    text_to_text: tuple[str, ...] = ("google/flan-t5-large",),
    text_to_image: tuple[str, ...] = ("CompVis/stable-diffusion-v1-4",),
) -> str:
    """The [tasks.*] tables: one zh2en translation pair and one chain per other task."""

    def chain(names: tuple[str, ...]) -> str:
        return "[" + ", ".join(f'"{name}"' for name in names) + "]"

    return f"""
[tasks.text-translation]
default_pair = "zh2en"
[tasks.text-translation.pairs]
zh2en = {chain(zh2en)}
[tasks.text-completion]
targets = {chain(completion)}
[tasks.text-to-text]
targets = {chain(text_to_text)}
[tasks.text-to-image]
targets = {chain(text_to_image)}
"""
