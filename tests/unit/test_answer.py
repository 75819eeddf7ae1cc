"""The success answer's JSON writer: the same JSON as json.dumps, with base64 bytes spliced in."""

import base64
import json

from service.api.answer import SplicedString, json_chunks


def test_text_answer_is_one_chunk_of_the_same_json():
    document = {"code": 0, "message": "ok", "result": ['连衣裙 "quoted" \\ \n', None, 1.5, True], "nested": {"a": []}}

    chunks = json_chunks(document)

    assert len(chunks) == 1
    assert chunks[0].endswith(b"\n")
    assert json.loads(chunks[0]) == document


def test_image_pieces_are_their_own_chunks_and_decode_back():
    image = bytes(range(256)) * 10
    encoded = base64.b64encode(image)
    pieces = SplicedString((encoded[:400], encoded[400:]))
    document = {"code": 0, "result": [{"image_base64": pieces, "content_type": "image/png"}] * 2}

    chunks = json_chunks(document)

    assert sum(chunk is pieces[1] for chunk in chunks) == 2  # the very objects, not copies
    parsed = json.loads(b"".join(chunks))
    assert [base64.b64decode(item["image_base64"]) for item in parsed["result"]] == [image, image]
    assert parsed["result"][0]["content_type"] == "image/png"


def test_key_order_is_kept():
    chunks = json_chunks({"z": 1, "a": 2, "m": 3})

    assert chunks == [b'{"z":1,"a":2,"m":3}\n']
