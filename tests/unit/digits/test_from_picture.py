"""Pictures of digits become MNIST digits: any supported format and colour mode, either polarity, any
size and position give (nearly) the same 28x28, close to MNIST's own; bad files give one clear line.

"Nearly the same" is measured by `similarity`: the correlation of the two 28x28 digits blurred by a
Gaussian of one pixel, the best over shifts of up to one pixel. Sampling the same strokes at 28x28
from a different size lands them at a different sub-pixel phase: a stroke two pixels thin then
reads [159, 255, 16] in one and [245, 223] in the other, which takes the plain correlation of two
visually identical digits down to about 0.9; the blur, at the scale of a stroke's width, compares
the strokes rather than their sampling. The shift allows for MNIST's own centring, which is only
to the nearest whole pixel (its centres of mass lie anywhere within +-0.5 pixel of (14, 14)).
For scale: the first MNIST test digits of two different classes reach at most 0.64.
"""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageDraw
from scipy import ndimage

from mnist_dvc.digits.deskew import deskew
from mnist_dvc.digits.from_picture import MAX_PIXELS, TooManyPixels, image_files, mnist_layout, prepare_digit, read_grey
from mnist_dvc.errors import UserError
from mnist_dvc.io.idx import read_split

AS_DRAWN = {"deskew": False, "stroke_width": None}
DESKEWED = {"deskew": True, "stroke_width": None}
SAME = 0.95  # measured: 0.965 or more in every case below, most of them 0.99 or more


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Correlation of two digits blurred by one pixel, the best over shifts of b by up to one pixel each way."""
    a, b = (ndimage.gaussian_filter(digit.astype(np.float64), sigma=1.0) for digit in (a, b))
    return max(np.corrcoef(a.ravel(), np.roll(b, (dr, dc), axis=(0, 1)).ravel())[0, 1]
               for dr in (-1, 0, 1) for dc in (-1, 0, 1))


def encode(pixels: np.ndarray | Image.Image, fmt: str, **options) -> bytes:
    image = pixels if isinstance(pixels, Image.Image) else Image.fromarray(pixels)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def mnist_digits(mnist_mirror) -> np.ndarray:
    """The first test digit of each class 0-9, from the official MNIST test set."""
    images, labels = read_split(mnist_mirror / "t10k-images-idx3-ubyte.gz", mnist_mirror / "t10k-labels-idx1-ubyte.gz")
    return np.stack([images[np.argmax(labels == digit)] for digit in range(10)])


def render_mnist(digit: np.ndarray, size: int, position: tuple[int, int], dark_ink: bool) -> np.ndarray:
    """The MNIST digit enlarged to size x size (each pixel a block), pasted at `position` (x, y) on a
    700x600 sheet: light ink on black, or inverted to dark ink on white paper."""
    sheet = np.zeros((600, 700), dtype=np.uint8)
    large = np.asarray(Image.fromarray(digit).resize((size, size), Image.Resampling.NEAREST))
    x, y = position
    sheet[y : y + size, x : x + size] = large
    return 255 - sheet if dark_ink else sheet


def draw_four(scale: float, position: tuple[int, int], dark_ink: bool, pen: float = 0.09) -> Image.Image:
    """A '4' drawn with two thick pen strokes, about `scale` pixels tall, on a 1000x1000 sheet with the
    top left of its frame at `position` (the pen's width outside it still on the sheet)."""
    paper, ink = (255, 0) if dark_ink else (0, 255)
    sheet = Image.new("L", (1000, 1000), paper)
    draw = ImageDraw.Draw(sheet)
    x, y = position
    width = max(1, round(pen * scale))
    for stroke in ([(0.55, 0.0), (0.05, 0.65), (0.75, 0.65)], [(0.55, 0.2), (0.55, 1.0)]):
        draw.line([(x + u * scale, y + v * scale) for u, v in stroke], fill=ink, width=width, joint="curve")
    return sheet


@pytest.fixture(scope="module")
def four() -> np.ndarray:
    """The reference layout of the drawn '4': a mid-sized dark-ink PNG."""
    return prepare_digit(encode(draw_four(300, (100, 100), dark_ink=True), "PNG"), AS_DRAWN)


# --- What comes out ---------------------------------------------------------------------------


def test_output_is_an_mnist_style_digit(four):
    assert four.dtype == np.uint8 and four.shape == (28, 28)
    assert four.max() == 255 and four[0].max() == four[-1].max() == 0  # bright ink, black margins
    rows, cols = np.nonzero(four)
    assert max(rows.max() - rows.min(), cols.max() - cols.min()) + 1 == 20  # longer side 20 pixels
    mass = four.astype(np.float64) / four.sum()
    grid = np.arange(28)
    assert abs(mass.sum(axis=1) @ grid - 14) <= 0.5 and abs(mass.sum(axis=0) @ grid - 14) <= 0.5
    assert len(np.unique(four)) > 10  # anti-aliased edges, not a binary image


def test_mnist_digits_rendered_large_come_back_as_themselves(mnist_digits):
    """Each digit at three sizes (none a whole multiple of 28), two places, both polarities: twelve
    pictures that give nearly the same 28x28 as each other and close to the original."""
    for digit in mnist_digits:
        outs = [prepare_digit(encode(render_mnist(digit, size, position, dark), "PNG"), AS_DRAWN)
                for size in (97, 280, 503) for position in ((0, 0), (150, 60)) for dark in (False, True)]
        for out in outs:
            assert similarity(out, outs[0]) >= SAME
            assert similarity(out, digit) >= SAME


def test_drawn_digit_is_the_same_at_any_size_place_and_polarity(four):
    for scale in (60, 180, 700):
        for position in ((40, 40), (220, 150)):
            for dark in (True, False):
                out = prepare_digit(encode(draw_four(scale, position, dark), "PNG"), AS_DRAWN)
                assert similarity(out, four) >= SAME, (scale, position, dark)


def test_both_polarities_give_the_same_digit(four):
    light = draw_four(300, (100, 100), dark_ink=False)
    assert np.array_equal(prepare_digit(encode(light, "PNG"), AS_DRAWN), four)


# --- Formats and colour modes -----------------------------------------------------------------


@pytest.mark.parametrize("fmt, suffix", [("PNG", "png"), ("BMP", "bmp"), ("GIF", "gif")])
def test_lossless_formats_give_exactly_the_same_digit(tmp_path, four, fmt, suffix):
    path = tmp_path / f"four.{suffix}"
    path.write_bytes(encode(draw_four(300, (100, 100), dark_ink=True), fmt))
    assert np.array_equal(prepare_digit(path, AS_DRAWN), four)
    assert np.array_equal(prepare_digit(str(path), AS_DRAWN), four)


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP"])
def test_lossy_formats_give_nearly_the_same_digit(tmp_path, mnist_digits, fmt):
    """Small, grey-edged digits at quality 50, where compression artefacts are largest, in both
    polarities. (A black-and-white drawing comes out exactly as from PNG: its artefacts stay
    within the quarter of the contrast that the soft threshold takes for paper or for full ink.)"""
    for index, digit in enumerate(mnist_digits):
        dark = render_mnist(digit, 60, (50, 50), dark_ink=True)[:160, :160]
        lossless = prepare_digit(encode(dark, "PNG"), AS_DRAWN)
        for name, sheet in (("dark", dark), ("light", 255 - dark)):
            path = tmp_path / f"{index}-{name}.{fmt.lower()}"
            path.write_bytes(encode(sheet, fmt, quality=50))
            assert similarity(prepare_digit(path, AS_DRAWN), lossless) >= SAME, path.name


def test_gif_uses_its_first_frame(four):
    first = draw_four(300, (100, 100), dark_ink=True)
    second = Image.new("L", first.size, 255)
    ImageDraw.Draw(second).ellipse((200, 200, 600, 600), outline=0, width=30)
    animation = encode(first, "GIF", save_all=True, append_images=[second], duration=100)
    assert np.array_equal(prepare_digit(animation, AS_DRAWN), four)


def test_colour_modes(four):
    grey = draw_four(300, (100, 100), dark_ink=True)
    blue_ink_on_yellow = Image.merge("RGB", [grey.point(lambda v: 40 + v * 210 // 255),
                                             grey.point(lambda v: 30 + v * 200 // 255),
                                             grey.point(lambda v: 160 - v * 120 // 255)])
    for picture in (grey.convert("RGB"), blue_ink_on_yellow, grey.convert("P"), grey.convert("1")):
        assert similarity(prepare_digit(encode(picture, "PNG"), AS_DRAWN), four) >= SAME, picture.mode


@pytest.mark.parametrize("ink_colour", [(0, 0, 0), (255, 255, 255), (20, 40, 200)])
def test_ink_on_a_transparent_sheet(four, ink_colour):
    """Drawn on a see-through layer (as paint programs save): transparent pixels, whatever colour
    they carry (often black, like dark ink), are background."""
    coverage = 255 - np.asarray(draw_four(300, (100, 100), dark_ink=True))
    pixels = np.zeros(coverage.shape + (4,), dtype=np.uint8)
    pixels[..., :3] = ink_colour
    pixels[..., 3] = coverage
    assert similarity(prepare_digit(encode(pixels, "PNG"), AS_DRAWN), four) >= SAME
    palette = Image.fromarray(pixels).convert("P")  # Pillow keeps the transparency in the palette
    assert similarity(prepare_digit(encode(palette, "PNG"), AS_DRAWN), four) >= SAME


def test_camera_rotation_is_applied(four):
    """A phone stores a portrait photo sideways with an EXIF orientation tag; viewers turn it upright."""
    sideways = draw_four(300, (100, 100), dark_ink=True).rotate(90, expand=True)
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: turn 90 degrees clockwise to display
    assert similarity(prepare_digit(encode(sideways, "JPEG", exif=exif), AS_DRAWN), four) >= SAME
    assert similarity(prepare_digit(encode(sideways, "JPEG"), AS_DRAWN), four) < 0.8


def test_sixteen_bit_grey_png(four):
    deep = (np.asarray(draw_four(300, (100, 100), dark_ink=True), dtype=np.uint16) * 257)
    assert similarity(prepare_digit(encode(deep, "PNG"), AS_DRAWN), four) >= SAME


def test_deskew_option_straightens_like_the_pipeline(four):
    slanted = draw_four(300, (100, 100), dark_ink=True).transform(
        (900, 800), Image.Transform.AFFINE, (1, 0.3, -100, 0, 1, 0), fillcolor=255)
    upright = prepare_digit(encode(slanted, "PNG"), AS_DRAWN)
    straightened = prepare_digit(encode(slanted, "PNG"), DESKEWED)
    assert np.array_equal(straightened, deskew(upright[None])[0])
    assert similarity(straightened, four) > similarity(upright, four)


def test_layout_of_a_drawn_ink_map(four):
    """The core, for callers that already hold decoded pixels (a drawing canvas)."""
    ink = 1.0 - np.asarray(draw_four(300, (100, 100), dark_ink=True), dtype=np.float64) / 255
    assert similarity(mnist_layout(ink), four) >= SAME
    small = np.asarray(Image.fromarray(ink.astype(np.float32)).resize((90, 80), Image.Resampling.BOX))
    assert similarity(mnist_layout(small), four) >= SAME  # a digit smaller than 20 pixels is enlarged
    with pytest.raises(ValueError):
        mnist_layout(np.zeros((50, 50)))


# --- Bad pictures ------------------------------------------------------------------------------


def error_line(source, **kwargs) -> str:
    with pytest.raises(UserError) as caught:
        prepare_digit(source, AS_DRAWN, **kwargs)
    message = str(caught.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_blank_picture(tmp_path, fmt):
    path = tmp_path / f"blank.{fmt.lower()}"
    noise = np.random.default_rng(0).integers(235, 256, size=(300, 200), dtype=np.uint8)  # paper texture
    path.write_bytes(encode(noise, fmt))
    message = error_line(path)
    assert str(path) in message and "blank" in message


def test_fully_transparent_picture():
    assert "blank" in error_line(encode(np.zeros((50, 50, 4), dtype=np.uint8), "PNG"), name="drawing.png")


def test_not_a_picture(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("this is not a picture\n")
    assert str(path) in error_line(path)
    assert error_line(b"GIF89a but not really").startswith("upload: ")
    assert error_line(b"%PDF-1.4", name="scan.pdf").startswith("scan.pdf: ")


def test_unsupported_format(tmp_path):
    path = tmp_path / "four.tiff"
    path.write_bytes(encode(draw_four(300, (100, 100), dark_ink=True), "TIFF"))
    message = error_line(path)
    assert str(path) in message and "PNG, JPEG, BMP, GIF or WebP" in message


def test_empty_and_missing_files(tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    assert error_line(empty) == f"{empty}: empty file"
    assert error_line(b"", name="photo.jpg") == "photo.jpg: empty file"
    assert error_line(tmp_path / "gone.png") == f"{tmp_path / 'gone.png'}: not found"


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_picture(tmp_path, fmt):
    path = tmp_path / f"cut.{fmt.lower()}"
    data = encode(draw_four(300, (100, 100), dark_ink=True), fmt)
    path.write_bytes(data[: len(data) // 2])
    message = error_line(path)
    assert message.startswith(f"{path}: ") and "cut short" in message


def test_too_many_pixels_are_refused_from_the_header_and_the_limit_itself_is_read(tmp_path, four):
    """A plain sheet compresses to almost nothing, so a small file can hold a huge picture: its size
    is checked before it is decoded, also where Pillow's own decompression-bomb check comes first."""
    side = 4096
    assert MAX_PIXELS == side * side
    at_limit = Image.new("L", (side, side), 255)
    at_limit.paste(draw_four(300, (100, 100), dark_ink=True), (1500, 1500))
    assert similarity(prepare_digit(encode(at_limit, "PNG"), AS_DRAWN), four) >= SAME
    over = tmp_path / "huge.png"
    over.write_bytes(encode(Image.new("L", (side + 1, side), 255), "PNG"))
    assert len(over.read_bytes()) < 100_000
    assert error_line(over) == (f"{over}: too large: 4097x4096 pixels; the limit is 16,777,216 (4096x4096), "
                                "so scale the picture down")
    with pytest.raises(TooManyPixels):
        prepare_digit(over, AS_DRAWN)
    small = encode(Image.new("L", (1, 1)), "PNG")  # its header then made to declare 20,000x20,000 pixels,
    ihdr = b"IHDR" + struct.pack(">II", 20_000, 20_000) + small[24:29]  # past Pillow's own limit, checked on opening
    forged = small[:12] + ihdr + struct.pack(">I", zlib.crc32(ihdr)) + small[33:]
    with pytest.raises(TooManyPixels, match=r"^upload: too large: over 178,956,970 pixels; the limit is 16,777,216 "):
        prepare_digit(forged, AS_DRAWN)


def test_read_grey_is_the_picture_prepare_digit_sees_with_transparency_flattened():
    coverage = 255 - np.asarray(draw_four(300, (100, 100), dark_ink=True))
    pixels = np.zeros(coverage.shape + (4,), dtype=np.uint8)  # black ink on a see-through sheet
    pixels[..., 3] = coverage
    grey = read_grey(encode(pixels, "PNG"), "drawing.png")
    assert grey.dtype == np.float32 and grey.shape == coverage.shape
    assert np.allclose(grey, 1 - coverage / 255, atol=1 / 255)  # white paper behind dark ink, not black


# --- Folders ------------------------------------------------------------------------------------


def test_image_files_expands_folders_and_keeps_files(tmp_path):
    for name in ("b/two.PNG", "a.jpg", "b/c/three.webp", "notes.txt", "b/one.Jpeg", "b/c/.keep"):
        (tmp_path / "digits" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "digits" / name).write_bytes(b"")
    (tmp_path / "digits" / "fake.png").mkdir()  # a folder named like a picture is not a picture
    single = tmp_path / "single.gif"
    found = image_files([single, tmp_path / "digits"])
    assert found == [single] + [tmp_path / "digits" / name for name in ("a.jpg", "b/c/three.webp", "b/one.Jpeg", "b/two.PNG")]
