"""Drives the current Python SDK (5.x) through media: a trace whose input holds a PNG as a base64
data URI and a WAV recording as a `LangfuseMedia` object, and whose output holds a PDF as a
`LangfuseMedia` object. The SDK cuts the three files out, leaves reference strings in their place and
uploads each file in the background (`POST /api/public/media`, `PUT` to the upload URL, `PATCH`).
Then the SDK's own media client asks again for the PNG's bytes, which the project already has.

The files are written to OUT_DIR (image.png, recording.wav, report.pdf) so the caller can compare
what it downloads with what was sent. Prints one JSON object: the SDK's media ids, the hashes, and
the upload URL the second request got.

Environment: HOST, PK, SK, TRACE_ID (32 hex digits), OUT_DIR.
"""
import base64
import hashlib
import io
import json
import os
import struct
import wave
import zlib

from langfuse import Langfuse
from langfuse.media import LangfuseMedia


def png(width, height):
    """A real PNG: a red-to-blue gradient, so a browser can decode and size it."""
    rows = b""
    for y in range(height):
        rows += b"\x00" + b"".join(
            bytes((255 - x * 255 // width, 40, x * 255 // width)) for x in range(width)
        )

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))


def wav(seconds=0.5, rate=8000):
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(1)
        out.setframerate(rate)
        out.writeframes(bytes(128 + int(100 * ((i // 10) % 2)) for i in range(int(seconds * rate))))
    return buffer.getvalue()


PDF = (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj 2 0 obj<</Type/Pages/Count 0/Kids[]>>"
       b"endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n")

out_dir = os.environ["OUT_DIR"]
image, recording = png(48, 32), wav()
for name, data in (("image.png", image), ("recording.wav", recording), ("report.pdf", PDF)):
    with open(os.path.join(out_dir, name), "wb") as f:
        f.write(data)

langfuse = Langfuse(public_key=os.environ["PK"], secret_key=os.environ["SK"], host=os.environ["HOST"])
audio = LangfuseMedia(content_bytes=recording, content_type="audio/wav")
report = LangfuseMedia(content_bytes=PDF, content_type="application/pdf")
data_uri = "data:image/png;base64," + base64.b64encode(image).decode()

with langfuse.start_as_current_observation(
    name="describe-media", trace_context={"trace_id": os.environ["TRACE_ID"]},
    input={"question": "What is in this picture?", "image": data_uri, "recording": audio},
) as root:
    root.update(output={"answer": "A gradient.", "report": report})
langfuse.flush()


def sha(data):
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


again = langfuse.api.media.get_upload_url(
    trace_id=os.environ["TRACE_ID"], content_type="image/png", content_length=len(image),
    sha256hash=sha(image), field="input",
)
media_id = LangfuseMedia(base64_data_uri=data_uri)._media_id
print(json.dumps({
    "observation": root.id,
    "image_id": media_id,
    "audio_id": audio._media_id,
    "report_id": report._media_id,
    "image_sha": sha(image),
    "again_media_id": again.media_id,
    "again_upload_url": again.upload_url,
}))
