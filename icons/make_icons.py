#!/usr/bin/env python3
"""Draws Ferry's app icon and the tray pictures (one per state) as RGBA PNGs.

Run from anywhere: `python3 icons/make_icons.py` (needs Pillow). The output is
committed, so building the app never needs Python; rerun only to change them.
Each tray state has its own colour *and* its own glyph so it reads at 22 px and
for colour-blind users.
"""
import math
import os

from PIL import Image, ImageDraw

HERE = os.path.dirname(os.path.abspath(__file__))
SS = 4  # supersampling factor for smooth edges


def canvas(size):
    return Image.new("RGBA", (size * SS, size * SS), (0, 0, 0, 0))


def finish(img, size):
    return img.resize((size, size), Image.LANCZOS)


def disc(d, s, fill):
    m = s * 0.06
    d.ellipse([m, m, s - m, s - m], fill=fill)


def boat(d, s, fill):
    # A small ferry hull with a cabin: the app's mark.
    w = s
    hull = [(0.18 * w, 0.56 * w), (0.82 * w, 0.56 * w), (0.70 * w, 0.72 * w), (0.30 * w, 0.72 * w)]
    d.polygon(hull, fill=fill)
    d.rectangle([0.36 * w, 0.40 * w, 0.62 * w, 0.54 * w], fill=fill)
    d.rectangle([0.46 * w, 0.30 * w, 0.52 * w, 0.40 * w], fill=fill)
    # water line
    lw = max(1, int(0.05 * w))
    d.arc([0.16 * w, 0.70 * w, 0.50 * w, 0.86 * w], 200, 340, fill=fill, width=lw)
    d.arc([0.50 * w, 0.70 * w, 0.84 * w, 0.86 * w], 200, 340, fill=fill, width=lw)


def check(d, s, fill):
    lw = int(0.11 * s)
    d.line([(0.28 * s, 0.52 * s), (0.44 * s, 0.68 * s), (0.73 * s, 0.35 * s)], fill=fill, width=lw, joint="curve")


def arrows(d, s, fill):
    lw = int(0.09 * s)
    box = [0.26 * s, 0.26 * s, 0.74 * s, 0.74 * s]
    d.arc(box, 200, 340, fill=fill, width=lw)
    d.arc(box, 20, 160, fill=fill, width=lw)
    for ang, sign in ((340, 1), (160, 1)):
        a = math.radians(ang)
        cx, cy = 0.5 * s + 0.24 * s * math.cos(a), 0.5 * s + 0.24 * s * math.sin(a)
        t = a + math.pi / 2 * sign
        h = 0.13 * s
        p1 = (cx + h * math.cos(t), cy + h * math.sin(t))
        p2 = (cx + h * 0.9 * math.cos(a), cy + h * 0.9 * math.sin(a))
        p3 = (cx - h * 0.9 * math.cos(a), cy - h * 0.9 * math.sin(a))
        d.polygon([p1, p2, p3], fill=fill)


def pause(d, s, fill):
    d.rectangle([0.34 * s, 0.28 * s, 0.45 * s, 0.72 * s], fill=fill)
    d.rectangle([0.55 * s, 0.28 * s, 0.66 * s, 0.72 * s], fill=fill)


def bang(d, s, fill):
    d.rounded_rectangle([0.44 * s, 0.22 * s, 0.56 * s, 0.60 * s], radius=0.05 * s, fill=fill)
    d.ellipse([0.43 * s, 0.66 * s, 0.57 * s, 0.80 * s], fill=fill)


def offline(d, s, fill):
    lw = int(0.08 * s)
    # cloud-ish outline with a slash
    d.ellipse([0.24 * s, 0.38 * s, 0.50 * s, 0.64 * s], outline=fill, width=lw)
    d.ellipse([0.42 * s, 0.30 * s, 0.76 * s, 0.64 * s], outline=fill, width=lw)
    d.line([(0.22 * s, 0.78 * s), (0.78 * s, 0.22 * s)], fill=fill, width=lw)


STATES = {
    "synced": ((46, 160, 67, 255), check),
    "syncing": ((33, 118, 210, 255), arrows),
    "offline": ((120, 124, 130, 255), offline),
    "paused": ((214, 140, 16, 255), pause),
    "attention": ((206, 44, 44, 255), bang),
}


def tray(name, size=64):
    colour, glyph = STATES[name]
    img = canvas(size)
    d = ImageDraw.Draw(img)
    s = size * SS
    disc(d, s, colour)
    glyph(d, s, (255, 255, 255, 255))
    return finish(img, size)


def app_icon(size):
    img = canvas(size)
    d = ImageDraw.Draw(img)
    s = size * SS
    d.rounded_rectangle([0, 0, s - 1, s - 1], radius=0.22 * s, fill=(24, 92, 160, 255))
    boat(d, s, (255, 255, 255, 255))
    return finish(img, size)


def main():
    os.makedirs(os.path.join(HERE, "tray"), exist_ok=True)
    for name in STATES:
        tray(name).save(os.path.join(HERE, "tray", f"{name}.png"))
    for size, fname in ((32, "32x32.png"), (128, "128x128.png"), (256, "128x128@2x.png"), (512, "icon.png")):
        app_icon(size).save(os.path.join(HERE, fname))


if __name__ == "__main__":
    main()
