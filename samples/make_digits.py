"""Draws the sample digits in samples/digits/ (the predict stage's default input): each digit 0-9
as pen strokes, twice, once thin and dark on white paper (PNG) and once bold and white on a dark
board (JPEG), at different sizes, so `dvc repro` shows the model reading digits that never came
from MNIST. Deterministic: rerunning rewrites the same pictures.

    python samples/make_digits.py
"""

import math
from pathlib import Path

from PIL import Image, ImageDraw

OUT = Path(__file__).with_name("digits")


def arc(cx, cy, rx, ry, start, end, steps=24):
    """Points on an ellipse from `start` to `end` degrees (0 = right, clockwise on screen)."""
    return [(cx + rx * math.cos(math.radians(a)), cy + ry * math.sin(math.radians(a)))
            for a in (start + (end - start) * i / steps for i in range(steps + 1))]


# Strokes in a unit box (x right, y down); each digit is a list of polylines.
STROKES = {
    0: [arc(0.5, 0.5, 0.28, 0.42, 0, 360)],
    1: [[(0.35, 0.25), (0.55, 0.08), (0.55, 0.92)]],
    2: [arc(0.5, 0.32, 0.27, 0.24, 200, 360) + [(0.22, 0.9), (0.8, 0.9)]],
    3: [arc(0.48, 0.3, 0.26, 0.21, 210, 450), arc(0.48, 0.7, 0.3, 0.22, 270, 510)],
    4: [[(0.62, 0.92), (0.62, 0.08), (0.18, 0.66), (0.82, 0.66)]],
    5: [[(0.76, 0.1), (0.3, 0.1), (0.26, 0.45)] + arc(0.48, 0.65, 0.3, 0.26, 220, 500)],
    6: [[(0.68, 0.08), (0.3, 0.5)] + arc(0.5, 0.68, 0.25, 0.23, 180, 540)],
    7: [[(0.2, 0.1), (0.8, 0.1), (0.4, 0.92)]],
    8: [arc(0.5, 0.28, 0.22, 0.2, 0, 360), arc(0.5, 0.7, 0.28, 0.22, 0, 360)],
    9: [arc(0.5, 0.32, 0.25, 0.23, 0, 360) + [(0.75, 0.32), (0.68, 0.92)]],
}
STYLES = [  # name, picture side, pen width as a share of the side, paper grey, ink grey, format
    ("thin-dark-on-white", 240, 0.035, 245, 20, "PNG"),
    ("bold-white-on-board", 420, 0.09, 40, 235, "JPEG"),
]


def draw(digit: int, side: int, pen: float, paper: int, ink: int) -> Image.Image:
    picture = Image.new("L", (side, side), paper)
    pencil = ImageDraw.Draw(picture)
    width = max(1, round(pen * side))
    for line in STROKES[digit]:
        points = [(x * side, y * side) for x, y in line]
        pencil.line(points, fill=ink, width=width, joint="curve")
        for x, y in (points[0], points[-1]):  # round pen ends
            pencil.ellipse((x - width / 2, y - width / 2, x + width / 2, y + width / 2), fill=ink)
    return picture


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for digit in STROKES:
        for name, side, pen, paper, ink, fmt in STYLES:
            suffix = ".png" if fmt == "PNG" else ".jpg"
            draw(digit, side, pen, paper, ink).save(OUT / f"{digit}-{name}{suffix}", format=fmt)


if __name__ == "__main__":
    main()
