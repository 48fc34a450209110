"""The built-in data set: the digits 0-9 rendered with the font Pillow ships, randomly deformed.

It exists so that ``python -m pyddpm.train`` needs no download and a small U-Net on 2 CPU cores learns it
in minutes, while a person can still read the samples at a glance. The images look like MNIST shrunk to
16x16: a white digit, 10-13 px tall, centred on a black background (so the background is -1 in model
range). Each image is one glyph under a random affine map (height, width, slant, rotation, shift) plus
a random bilinear warp, with a random stroke width; it is drawn at 4x the size and box-filtered down
so edges are anti-aliased.

Generation is deterministic: the same (n, seed, size) gives the same bytes on any machine with the same
Pillow (its font rasteriser and resampling) and NumPy (its PCG64 streams). Both splits together take
about 1.3 s on one core, so nothing is cached on disk.
"""

import functools
import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from .image_data import ImageData, check_split

TRAIN_SIZE, TEST_SIZE = 20_000, 2_000
TRAIN_SEED, TEST_SEED = 20200619, 20200620  # different seeds: test images are fresh draws

GLYPH_PX = 96  # font size the glyphs are drawn at before being mapped down; large, so rasterisation is fine
STROKES = (1, 2, 3)  # extra stroke widths in glyph pixels: thin to bold; wider fills the holes of 6, 8, 9
SUPERSAMPLE = 4  # draw at SUPERSAMPLE * size, then average SUPERSAMPLE x SUPERSAMPLE blocks


def make_digits(n, seed, size=16):
    """Draw ``n`` random digit images.

    Returns (images, labels): images uint8 (n, 1, size, size), white digit on black; labels int64 (n,)
    in 0..9, uniformly random. Same arguments, same bytes.
    """
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=n)
    strokes = rng.integers(0, len(STROKES), size=n)
    height = rng.uniform(10 / 16, 13 / 16, size=n) * size  # ink height in output pixels (MNIST: 20 of 28)
    aspect = rng.uniform(0.8, 1.15, size=n)  # width scale relative to height scale
    slant = rng.uniform(-0.25, 0.05, size=n)  # shear; mostly forward-leaning, as handwriting is
    angle = rng.uniform(-15, 15, size=n) * (math.pi / 180)
    shift = rng.uniform(-1, 1, size=(n, 2)) * size / 16  # in output pixels
    warp = rng.normal(0.0, 0.04, size=(n, 4, 2))  # corner jitter, as a fraction of the glyph height

    glyphs = _default_glyphs()
    canvas = SUPERSAMPLE * size
    corners = np.array([[0, 0], [0, canvas], [canvas, canvas], [canvas, 0]], dtype=np.float64)
    images = np.empty((n, 1, size, size), dtype=np.uint8)
    for i in range(n):
        glyph = glyphs[labels[i]][strokes[i]]
        gw, gh = glyph.size
        # Forward map, glyph -> canvas: p = centre + rotate @ shear @ scale @ (q - glyph centre), with
        # scale = diag(sx, sy), shear = [[1, k], [0, 1]]. Its inverse, written out in scalars rather than
        # through np.linalg, so every machine does the same float operations and gets the same bytes.
        sy = height[i] * SUPERSAMPLE / gh
        sx = sy * aspect[i]
        k = slant[i]
        c, s = math.cos(angle[i]), math.sin(angle[i])
        inverse = np.array([[(c + k * s) / sx, (s - k * c) / sx], [-s / sy, c / sy]])
        d = corners - (canvas / 2 + shift[i] * SUPERSAMPLE)
        # Pillow's QUAD transform wants, for the canvas corners, the glyph points they come from; moving
        # those points at random bends the digit a little, as a hand would, in the same one resampling.
        source = (np.array([gw / 2, gh / 2]) + d[:, :1] * inverse[:, 0] + d[:, 1:] * inverse[:, 1]
                  + warp[i] * gh)
        drawn = glyph.transform((canvas, canvas), Image.Transform.QUAD, tuple(source.ravel()),
                                resample=Image.Resampling.BILINEAR)
        images[i, 0] = np.asarray(drawn.reduce(SUPERSAMPLE))
    return images, labels.astype(np.int64)


@functools.lru_cache(maxsize=2)
def load_digits(split="train"):
    """The built-in set: 20,000 train or 2,000 test images, uint8 (N, 1, 16, 16), fixed seeds, with their
    digits as labels, int64 (N,) in 0..9.

    Made once per process and shared (read-only), since training, sampling and evaluation all ask for it.
    """
    check_split(split)
    n, seed = (TRAIN_SIZE, TRAIN_SEED) if split == "train" else (TEST_SIZE, TEST_SEED)
    images, labels = make_digits(n, seed)
    images.flags.writeable = False
    labels.flags.writeable = False
    return ImageData(images=images, name="digits", hflip=False, labels=labels)


@functools.lru_cache(maxsize=1)
def _default_glyphs():
    # Pillow >= 10.1 returns its built-in scalable Aileron font when FreeType is present, and otherwise
    # the old bitmap font; both work below.
    return render_glyphs(ImageFont.load_default(size=GLYPH_PX))


def render_glyphs(font):
    """Draw "0".."9" in white on black at every stroke width of STROKES, each cropped to its ink.

    Returns glyphs[digit][k], a mode "L" PIL image of ``digit`` with stroke width STROKES[k]. A scalable
    font is drawn at GLYPH_PX with Pillow's stroke; the fallback bitmap font (digits 7 px tall,
    1-2 px strokes) is enlarged to a comparable size and thinned with a min filter instead.
    """
    scalable = isinstance(font, ImageFont.FreeTypeFont)
    glyphs = []
    for digit in "0123456789":
        row = []
        for stroke in STROKES:
            pad = 2 * GLYPH_PX  # room for the stroke and for glyphs drawn above their origin
            im = Image.new("L", (pad * 2, pad * 2), 0)
            draw = ImageDraw.Draw(im)
            if scalable:
                draw.text((pad, pad), digit, fill=255, font=font, stroke_width=stroke, stroke_fill=255)
                row.append(im.crop(im.getbbox()))
            else:
                draw.text((pad, pad), digit, fill=255, font=font)
                small = im.crop(im.getbbox())
                k = 0.65 * GLYPH_PX / small.height  # the scalable glyphs' ink is about 0.65 GLYPH_PX tall
                big = small.resize((round(small.width * k), round(small.height * k)), Image.Resampling.BICUBIC)
                # Its strokes are 1-2 px of a 7 px digit, bold once enlarged: thin them, most for the
                # thinnest stroke width, by a min filter (erosion).
                thin = big.filter(ImageFilter.MinFilter(2 * (STROKES[-1] - stroke) + 3))
                row.append(thin.crop(thin.getbbox()))
        glyphs.append(row)
    return glyphs
