"""Real Gradio apps the tests serve on loopback: `python -m tests.gradio_apps.apps <app> <port>`.

echo: "translates" text (upper case, with the languages it was given); image: draws a PNG with
Pillow; raises: its function raises; sleeps: its function never finishes within a test's deadline.
"""

import sys
import time

import gradio as gr
from PIL import Image, ImageDraw


def echo(text, source_language, target_language):
    return f"{text.upper()} [{source_language}->{target_language}]"


def draw(text, seed, width, height):
    image = Image.new("RGB", (int(width or 64), int(height or 48)), (int(seed or 0) % 256, 80, 160))
    ImageDraw.Draw(image).text((4, 4), text[:8], fill=(255, 255, 255))
    return image


def raises(text, source_language, target_language):
    raise ValueError("the model is broken")


def sleeps(text):
    time.sleep(60)
    return text


def build(name: str) -> gr.Interface:
    if name == "echo":
        return gr.Interface(echo, ["text", "text", "text"], "text", api_name="translate")
    if name == "image":
        return gr.Interface(draw, ["text", "number", "number", "number"], gr.Image(format="png"), api_name="draw")
    if name == "raises":
        return gr.Interface(raises, ["text", "text", "text"], "text", api_name="translate")
    if name == "sleeps":
        return gr.Interface(sleeps, "text", "text", api_name="complete")
    raise SystemExit(f"unknown app {name}")


if __name__ == "__main__":
    app_name, port = sys.argv[1], int(sys.argv[2])
    build(app_name).launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, share=False)
    print("READY", flush=True)
    while True:
        time.sleep(3600)
