"""Pictures a visitor would upload, drawn for the tests."""

from __future__ import annotations

import io

from PIL import Image, ImageDraw


def drawn_seven(ink: str = "black", paper: str = "white") -> bytes:
    """A 7 drawn large and off-centre on a wide page, as a PNG."""
    image = Image.new("RGB", (400, 300), paper)
    draw = ImageDraw.Draw(image)
    draw.line([(150, 60), (260, 60)], fill=ink, width=14)
    draw.line([(260, 60), (190, 250)], fill=ink, width=14)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()
