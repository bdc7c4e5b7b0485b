"""The `procedural` renderer of the embedded demo world: prompt text -> a short clip of a stick figure.

`render_clip` reads three things out of free prompt text: the action (demo action keywords from
`generation.vocab`), the environment (vocabulary keywords, else a location phrase such as "in a
crowded train station" mapped to a look by a stable hash) and the character (colour+garment and size
words, else the character phrase hashed to a palette). A prompt with neither ("A person is waving.")
renders the default look: a plain neutral background and the default figure. The seed varies the
figure's position, scale, speed, phase, facing and which arm/leg leads.

`style="synthetic"` draws clean flat colours. `style="real"` is the held-out look: shifted palettes,
mottled textured backgrounds, random lighting and tint, camera jitter, blur and sensor noise.
Drawing is PIL.ImageDraw at 2x supersampling, then a box downsample: ~5 ms per 16-frame 64x64 clip.
"""

from __future__ import annotations

import colorsys
import math
import re
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image, ImageDraw

from generation import vocab
from generation.prompts import stable_hash

RGB = tuple[int, int, int]
STYLES = ("synthetic", "real")
SS = 2  # supersampling factor for anti-aliased drawing

DEFAULT_BACKGROUND: RGB = (200, 200, 200)
FIGURE_HEIGHT = 0.72  # standing height of the default figure, as a fraction of the frame side (large enough to
# see at the demo nets' 32 px: at 0.55 limbs are 1 px wide and no demo model learned)
LIMB_SCALE = 1.4  # limb and torso thickness factor
JUMP_LIFT = 0.18  # height of a jump, as a fraction of the figure's height
# The "real" camera's nuisance ranges (uniform draws per clip): overall gain, blur tap weight, noise std.
REAL_GAIN, REAL_BLUR, REAL_NOISE = (0.6, 1.3), (0.12, 0.3), (3.0, 9.0)

COLOURS: dict[str, RGB] = {
    "red": (200, 40, 40),
    "crimson": (170, 20, 50),
    "maroon": (120, 30, 40),
    "pink": (240, 130, 170),
    "magenta": (200, 40, 160),
    "purple": (120, 60, 160),
    "violet": (150, 100, 220),
    "blue": (40, 80, 200),
    "navy": (30, 40, 100),
    "cyan": (40, 200, 220),
    "teal": (30, 140, 140),
    "turquoise": (60, 210, 190),
    "green": (40, 150, 60),
    "lime": (150, 220, 50),
    "olive": (110, 120, 50),
    "yellow": (240, 210, 40),
    "gold": (215, 170, 40),
    "orange": (240, 130, 30),
    "brown": (120, 75, 40),
    "beige": (215, 195, 160),
    "khaki": (190, 175, 120),
    "tan": (200, 160, 110),
    "black": (30, 30, 30),
    "white": (240, 240, 240),
    "grey": (130, 130, 130),
    "gray": (130, 130, 130),
    "silver": (185, 190, 200),
}
UPPER_GARMENTS = (
    "shirt",
    "t-shirt",
    "tshirt",
    "jacket",
    "coat",
    "raincoat",
    "hoodie",
    "sweater",
    "jersey",
    "top",
    "blouse",
    "cardigan",
    "parka",
    "tank top",
    "vest",
)
FULL_GARMENTS = ("dress", "tracksuit", "uniform", "suit", "robe", "leotard", "overalls", "jumpsuit")
LOWER_GARMENTS = ("jeans", "pants", "trousers", "shorts", "skirt", "leggings", "tights")
HEADWEAR = ("hat", "cap", "beanie", "helmet")
PERSON_NOUNS = (
    "man",
    "woman",
    "child",
    "kid",
    "boy",
    "girl",
    "teenager",
    "teen",
    "athlete",
    "dancer",
    "soldier",
    "chef",
    "worker",
    "nurse",
    "firefighter",
    "gardener",
    "runner",
    "player",
    "student",
    "lady",
    "gentleman",
    "toddler",
    "grandmother",
    "grandfather",
    "person",
)
GENERIC_NOUNS = ("person",)  # "a person" alone is the default figure
HEIGHT_WORDS = {
    "tall": 1.15,
    "giant": 1.25,
    "short": 0.86,
    "small": 0.8,
    "little": 0.76,
    "tiny": 0.7,
    "elderly": 0.95,
    "old": 0.95,
}
WIDTH_WORDS = {
    "thin": 0.72,
    "slim": 0.75,
    "skinny": 0.7,
    "slender": 0.75,
    "broad": 1.35,
    "stocky": 1.35,
    "heavy": 1.45,
    "large": 1.3,
    "big": 1.3,
    "muscular": 1.3,
    "chubby": 1.4,
    "burly": 1.4,
}
CHILD_NOUNS = ("child", "kid", "boy", "girl", "toddler")
SKIN_TONES: tuple[RGB, ...] = ((240, 200, 170), (225, 180, 140), (190, 140, 100), (140, 95, 65), (95, 65, 45))
TIME_WORDS = {
    "night": "night",
    "dark": "night",
    "dim": "night",
    "sunset": "sunset",
    "dusk": "sunset",
    "foggy": "fog",
    "misty": "fog",
    "fog": "fog",
}
NON_PLACE_WORDS = (
    set(PERSON_NOUNS)
    | set(UPPER_GARMENTS)
    | set(FULL_GARMENTS)
    | set(LOWER_GARMENTS)
    | set(HEADWEAR)
    | {
        "air",
        "hand",
        "hands",
        "arm",
        "arms",
        "leg",
        "legs",
        "head",
        "front",
        "knee",
        "knees",
        "foot",
        "feet",
        "body",
        "place",
        "circle",
        "side",
        "sides",
        "waist",
        "chest",
        "hips",
        "hip",
        "frame",
        "rhythm",
        "spot",
        "ground",
        "floor",
        "way",
        "manner",
        "clip",
        "camera",
        "time",
    }
)


@dataclass(frozen=True)
class SceneLook:
    """Background: two colours split at a horizon plus a texture painter."""

    sky: RGB
    ground: RGB
    horizon: float  # fraction of frame height; <= 0 means one flat colour
    texture: str  # key of TEXTURES
    accent: RGB


@dataclass(frozen=True)
class FigureLook:
    """The figure: colours and body proportions."""

    torso: RGB = (70, 90, 130)
    legs: RGB = (55, 55, 70)
    skin: RGB = (225, 185, 150)
    hat: RGB | None = None
    height: float = 1.0  # relative stature
    width: float = 1.0  # relative limb/torso thickness
    child: bool = False  # bigger head relative to the body


DEFAULT_SCENE = SceneLook(DEFAULT_BACKGROUND, DEFAULT_BACKGROUND, 0.0, "none", DEFAULT_BACKGROUND)
DEFAULT_FIGURE = FigureLook()


# ------------------------------------------------------------------------------------ prompt parsing


def _words_re(words) -> str:
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


def _hsv(h: float, s: float, v: float) -> RGB:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, min(max(s, 0), 1), min(max(v, 0), 1))
    return (int(r * 255), int(g * 255), int(b * 255))


def _hashed_colour(text: str, salt: str, s=(0.35, 0.9), v=(0.3, 0.95)) -> RGB:
    h = stable_hash(f"{salt}/{text}")
    return _hsv(
        (h % 1000) / 1000,
        s[0] + (s[1] - s[0]) * ((h >> 10) % 1000) / 1000,
        v[0] + (v[1] - v[0]) * ((h >> 20) % 1000) / 1000,
    )


def parse_action(text: str) -> int | None:
    """Index into `vocab.ACTIONS` named in `text` (most keyword hits, then earliest), or None."""
    low = text.lower()
    best: tuple[int, int, int] | None = None  # (-hits, first position, index)
    for i, action in enumerate(vocab.ACTIONS):
        hits = [m.start() for m in re.finditer(rf"\b(?:{_words_re(action.keywords)})\b", low)]
        if hits:
            key = (-len(hits), hits[0], i)
            best = key if best is None or key < best else best
    return None if best is None else best[2]


def action_for(prompt: str, hint: str | None = None) -> int:
    """Action index for a prompt: its own keywords, else the hint's (a class name), else a stable hash.

    Hashing the hint (not the prompt) keeps every clip of an unknown class on the same motion.
    """
    found = parse_action(prompt)
    if found is None and hint:
        found = parse_action(hint)
        if found is None:
            found = stable_hash(f"action/{hint.lower()}") % len(vocab.ACTIONS)
    if found is None:
        found = stable_hash(f"action/{prompt.lower()}") % len(vocab.ACTIONS)
    return found


def parse_scene(text: str) -> tuple[SceneLook, int | None]:
    """Background look for `text` and the vocab environment index it matched (None if not one).

    Known environment keywords win (most hits, then earliest); else a location phrase after a
    preposition ("in a crowded train station") is hashed to a look; else the plain default.
    Time-of-day words (night, sunset, foggy, ...) tint a hashed look.
    """
    low = text.lower()
    best: tuple[int, int, int] | None = None
    for i, env in enumerate(vocab.ENVIRONMENTS):
        hits = [m.start() for m in re.finditer(rf"\b(?:{_words_re(env.keywords)})\b", low)]
        if hits:
            key = (-len(hits), hits[0], i)
            best = key if best is None or key < best else best
    if best is not None:
        e = vocab.ENVIRONMENTS[best[2]]
        return SceneLook(e.sky, e.ground, e.horizon, e.texture, e.accent), best[2]
    place = None
    for m in re.finditer(
        r"\b(?:in|on|at|inside|beside|near|across|through|along|under|by)\s+(?:a|an|the)\s+"
        r"([a-z][a-z' -]{1,40}?)(?=\s*[,.;:!?]|\s+(?:where|while|as|with|and|during|under|at|near|is)\b|$)",
        low,
    ):
        words = set(re.findall(r"[a-z]+", m.group(1)))
        if not words & NON_PLACE_WORDS:
            place = m.group(1).strip()
            break
    if place is None:
        return DEFAULT_SCENE, None
    h = stable_hash(f"scene/{place}")
    textures = [t for t in TEXTURES if t != "none"]
    look = SceneLook(
        sky=_hashed_colour(place, "sky", v=(0.55, 0.95)),
        ground=_hashed_colour(place, "ground", v=(0.25, 0.8)),
        horizon=0.42 + 0.25 * ((h >> 30) % 100) / 100,
        texture=textures[h % len(textures)],
        accent=_hashed_colour(place, "accent"),
    )
    for word, mood in TIME_WORDS.items():
        if re.search(rf"\b{word}\b", low):
            tint = {"night": (0.35, 0.4, 0.7), "sunset": (1.1, 0.75, 0.55), "fog": (0.9, 0.9, 0.9)}[mood]
            blend = 0.5 if mood == "fog" else 0.0

            def shade(c: RGB, tint=tint, blend=blend) -> RGB:
                return tuple(int(min(255, (1 - blend) * x * t + blend * 190)) for x, t in zip(c, tint))

            look = replace(look, sky=shade(look.sky), ground=shade(look.ground), accent=shade(look.accent))
            break
    return look, None


def parse_figure(text: str) -> FigureLook:
    """Figure look from character words in `text`; the default figure if there are none.

    Colours count only next to a garment ("red shirt", "red and white striped sweater"), sizes only
    in front of a person noun ("tall man"), so scene words ("tall pine trees", "blue ocean") don't
    leak into the figure. Unspecified colours of a described character come from a stable hash of
    the character phrase.
    """
    low = text.lower()
    colour_re = _words_re(COLOURS)

    def garment_colour(garments) -> RGB | None:
        m = re.search(rf"\b({colour_re})\b(?:[\s-]+[a-z]+){{0,2}}?[\s-]+(?:{_words_re(garments)})\b", low)
        return COLOURS[m.group(1)] if m else None

    upper, full = garment_colour(UPPER_GARMENTS), garment_colour(FULL_GARMENTS)
    lower, hat = garment_colour(LOWER_GARMENTS), garment_colour(HEADWEAR)
    noun_m = re.search(
        rf"\b(?:a|an|the)\s+((?:[a-z-]+,?\s+){{0,3}}?({_words_re(PERSON_NOUNS)}))\b"
        r"(?:\s+(?:in|wearing|with)\s+(?:(?!\s(?:is|are|was|who|while|stands|moves)\b)[^,.;])*)?",
        low,
    )
    noun = noun_m.group(2) if noun_m else None
    height = width = 1.0
    if noun_m:
        for w in re.findall(r"[a-z]+", noun_m.group(1)):
            height *= HEIGHT_WORDS.get(w, 1.0)
            width *= WIDTH_WORDS.get(w, 1.0)
    child = noun in CHILD_NOUNS
    if child:
        height *= 0.8
    described = (noun is not None and (noun not in GENERIC_NOUNS or height != 1.0 or width != 1.0)) or any(
        c is not None for c in (upper, full, lower, hat)
    )
    if not described:
        return DEFAULT_FIGURE
    phrase = noun_m.group(0) if noun_m else low
    torso = upper or full or _hashed_colour(phrase, "torso")
    legs = lower or full or _hashed_colour(phrase, "legs", v=(0.2, 0.7))
    skin = SKIN_TONES[stable_hash(f"skin/{phrase}") % len(SKIN_TONES)]
    return FigureLook(torso, legs, skin, hat, height, width, child)


# -------------------------------------------------------------------------------------- backgrounds


def _tex_none(d, w, h, hy, look, rng):
    pass


def _tex_sea(d, w, h, hy, look, rng):
    top = hy - int(0.12 * h)
    d.rectangle([0, top, w, hy], fill=look.accent)
    for k in range(3):
        y = top + (k + 1) * (hy - top) // 4 + int(rng.integers(-1, 2))
        d.line([0, y, w, y], fill=tuple(min(255, c + 70) for c in look.accent), width=max(1, h // 90))


def _tex_trees(d, w, h, hy, look, rng):
    crown = tuple(max(0, c - 40) for c in look.ground)
    for x in np.sort(rng.uniform(0, w, 7)):
        tw, th = w * 0.03, h * rng.uniform(0.25, 0.4)
        d.rectangle([x - tw, hy - th, x + tw, hy + h * 0.02], fill=look.accent)
        d.ellipse([x - w * 0.09, hy - th - h * 0.12, x + w * 0.09, hy - th + h * 0.08], fill=crown)


def _tex_buildings(d, w, h, hy, look, rng):
    x = -rng.uniform(0, w * 0.1)
    while x < w:
        bw, bh = w * rng.uniform(0.12, 0.22), h * rng.uniform(0.2, 0.5)
        shade = tuple(int(c * rng.uniform(0.8, 1.15)) for c in look.accent)
        d.rectangle([x, hy - bh, x + bw - 2, hy], fill=shade)
        for wy in np.arange(hy - bh + h * 0.04, hy - h * 0.04, h * 0.07):
            for wx in np.arange(x + w * 0.02, x + bw - w * 0.04, w * 0.05):
                d.rectangle([wx, wy, wx + w * 0.02, wy + h * 0.025], fill=(250, 230, 150))
        x += bw


def _tex_boards(d, w, h, hy, look, rng):
    for x in np.arange(rng.uniform(0, w * 0.08), w, w * 0.08):
        d.line([x, hy, x - (x - w / 2) * 0.4, h], fill=look.accent, width=max(1, w // 120))
    d.rectangle([0, hy - h * 0.06, w, hy - h * 0.045], fill=(120, 120, 120))


def _tex_snowfall(d, w, h, hy, look, rng):
    r = max(1, w // 90)
    for x, y in zip(rng.uniform(0, w, 60), rng.uniform(0, hy, 60)):
        d.ellipse([x - r, y - r, x + r, y + r], fill=look.accent)


def _tex_dunes(d, w, h, hy, look, rng):
    phase = rng.uniform(0, 6.3)
    pts = [(x, hy - h * 0.06 * (1 + math.sin(x / w * 7 + phase))) for x in np.linspace(0, w, 24)]
    d.polygon(pts + [(w, hy + 1), (0, hy + 1)], fill=look.accent)


def _tex_furniture(d, w, h, hy, look, rng):
    x0 = w * rng.uniform(0.05, 0.55)
    d.rectangle([x0, hy - h * 0.13, x0 + w * 0.38, hy + h * 0.02], fill=look.accent)
    d.rectangle([x0, hy - h * 0.2, x0 + w * 0.06, hy], fill=look.accent)
    wx = w * rng.uniform(0.1, 0.6)
    d.rectangle([wx, h * 0.1, wx + w * 0.25, h * 0.32], fill=(170, 200, 230), outline=(240, 240, 240), width=2)
    d.rectangle([0, hy + (h - hy) * 0.4, w, hy + (h - hy) * 0.7], fill=(170, 80, 60))


def _tex_stars(d, w, h, hy, look, rng):
    for x, y in zip(rng.uniform(0, w, 25), rng.uniform(0, hy * 0.9, 25)):
        d.point([(x, y)], fill=look.accent)
    mx = w * rng.uniform(0.1, 0.9)
    d.ellipse([mx - w * 0.06, h * 0.06, mx + w * 0.06, h * 0.06 + w * 0.12], fill=look.accent)


def _tex_grass(d, w, h, hy, look, rng):
    for x, y in zip(rng.uniform(0, w, 70), rng.uniform(hy, h, 70)):
        d.line([x, y, x + rng.uniform(-2, 2), y - h * 0.03], fill=look.accent, width=max(1, w // 100))
    for x, y in zip(rng.uniform(0, w, 10), rng.uniform(hy, h, 10)):
        d.ellipse([x - 2, y - 2, x + 2, y + 2], fill=(240, 220, 60))


def _tex_spotlight(d, w, h, hy, look, rng):
    cx = w * rng.uniform(0.35, 0.65)
    d.ellipse([cx - w * 0.3, hy + (h - hy) * 0.1, cx + w * 0.3, h * 1.05], fill=tuple(c // 2 + 60 for c in look.accent))
    d.rectangle([0, 0, w * 0.12, hy], fill=(150, 20, 30))
    d.rectangle([w * 0.88, 0, w, hy], fill=(150, 20, 30))


def _tex_stripes(d, w, h, hy, look, rng):
    step = h * rng.uniform(0.06, 0.12)
    for y in np.arange(rng.uniform(0, step), h, step):
        d.rectangle([0, y, w, y + step / 3], fill=look.accent)


def _tex_checker(d, w, h, hy, look, rng):
    s = w * rng.uniform(0.08, 0.14)
    for i, y in enumerate(np.arange(hy, h, s)):
        for j, x in enumerate(np.arange(0, w, s)):
            if (i + j) % 2:
                d.rectangle([x, y, x + s, y + s], fill=look.accent)


TEXTURES = {
    "none": _tex_none,
    "sea": _tex_sea,
    "trees": _tex_trees,
    "buildings": _tex_buildings,
    "boards": _tex_boards,
    "snowfall": _tex_snowfall,
    "dunes": _tex_dunes,
    "furniture": _tex_furniture,
    "stars": _tex_stars,
    "grass": _tex_grass,
    "spotlight": _tex_spotlight,
    "stripes": _tex_stripes,
    "checker": _tex_checker,
}


def _background(look: SceneLook, w: int, h: int, rng: np.random.Generator) -> Image.Image:
    img = Image.new("RGB", (w, h), look.sky)
    d = ImageDraw.Draw(img)
    hy = int(look.horizon * h)
    if look.horizon > 0:
        d.rectangle([0, hy, w, h], fill=look.ground)
    TEXTURES[look.texture](d, w, h, hy, look, rng)
    return img


# ------------------------------------------------------------------------------------------- motion


def _dir(a: float) -> np.ndarray:
    """Unit vector for angle `a` measured from straight down (image y grows downward)."""
    return np.array([math.sin(a), math.cos(a)])


@dataclass
class _Motion:
    """Seed-drawn motion parameters."""

    x0: float  # centre x as a fraction of width
    scale: float
    cycles: float  # action repetitions per clip
    phase: float
    facing: int  # +1 right, -1 left
    lead: int  # which arm/leg performs one-sided actions


def _pose(action: str, t: float, m: _Motion, fig: FigureLook, hf: float) -> dict:
    """Joint positions (local coords, hip centre at origin, y down) for `action` at clip time t in [0, 1).

    Returns dict with keys neck, head, r_head, shoulders (2), elbows, hands, hips, knees, feet,
    back (True if facing away), lift (airborne height), dx (horizontal travel).
    """
    th, sh = 0.23 * hf, 0.23 * hf  # thigh, shin
    ua, fa = 0.17 * hf, 0.16 * hf  # upper arm, forearm
    torso, neck_len = 0.30 * hf, 0.03 * hf
    r_head = (0.11 if fig.child else 0.085) * hf
    sw, hw = 0.10 * hf * fig.width**0.5, 0.055 * hf * fig.width**0.5  # half shoulder / hip width
    w = 2 * math.pi * (m.cycles * t + m.phase)
    s_, c_ = math.sin(w), math.cos(w)
    tilt, lift, dx, back = 0.0, 0.0, 0.0, False
    arm = {-1: (0.12, 0.05), 1: (0.12, 0.05)}  # side -> (upper angle out, forearm angle out)
    leg = {-1: (0.05, 0.03), 1: (0.05, 0.03)}
    proj = 1.0  # horizontal projection of shoulders/hips/arms (spin)
    if action == "waving":
        arm[m.lead] = (2.2 + 0.25 * s_, math.pi - 0.05 + 0.8 * s_)
    elif action == "clapping":
        o = (1 + s_) / 2  # 0 = hands together, 1 = open
        arm = {k: (0.45 + 0.35 * o, 0.45 + 0.35 * o - 1.9 + 0.9 * o) for k in (-1, 1)}
    elif action == "jumping":
        up = max(0.0, s_)
        lift = JUMP_LIFT * hf * up
        crouch = 0.9 * max(0.0, -s_)
        leg = {k: (0.12 + 0.35 * crouch + 0.2 * up, -0.15 * crouch + 0.2 * up) for k in (-1, 1)}
        arm = {k: (0.3 + 2.4 * up, 0.3 + 2.6 * up) for k in (-1, 1)}
    elif action == "squatting":
        k_ = (1 - c_) / 2
        leg = {k: (0.06 + 1.25 * k_, 0.03 - 0.25 * k_) for k in (-1, 1)}
        arm = {k: (0.5, -0.9) for k in (-1, 1)}  # hands on hips
    elif action == "kicking":
        kick = max(0.0, s_) ** 2
        leg[m.lead] = (0.05 + 1.35 * kick, 0.05 + 1.4 * kick)
        arm = {k: (0.9, 1.0) for k in (-1, 1)}
    elif action == "spinning":
        ang = 2 * math.pi * (m.cycles * t + m.phase)
        proj, back = math.cos(ang), math.cos(ang) < 0
        arm = {k: (math.pi / 2, math.pi / 2) for k in (-1, 1)}
    elif action == "bowing":
        b = (1 - c_) / 2
        tilt = m.facing * 1.25 * b
        arm = {k: (k * -tilt, k * -tilt) for k in (-1, 1)}  # hang straight down
    elif action == "walking":
        dx = m.facing * (t - 0.5) * 0.55  # fraction of width; applied by caller
        swing = 0.45 * s_
        leg = {-1: (-swing, -swing - 0.2 * max(0, -s_)), 1: (swing, swing - 0.2 * max(0, s_))}
        arm = {-1: (0.1 + 0.35 * s_, 0.2 + 0.35 * s_), 1: (0.1 - 0.35 * s_, 0.2 - 0.35 * s_)}

    hip = np.zeros(2)
    up_dir = _dir(math.pi + tilt)
    neck = hip + torso * up_dir
    head = neck + (neck_len + r_head) * up_dir
    across = np.array([-up_dir[1], up_dir[0]]) * -1  # perpendicular to the torso (points image-right)
    ps = max(abs(proj), 0.3) * (1 if proj >= 0 else -1)
    shoulders, elbows, hands, hips, knees, feet = {}, {}, {}, {}, {}, {}
    for k in (-1, 1):
        shoulders[k] = neck + k * ps * sw * across
        hips[k] = hip + k * ps * hw * across
        a1, a2 = arm[k]
        e = _dir(k * a1) * ua
        hnd = _dir(k * a2) * fa
        if action == "spinning":  # arms stretched level; foreshortened by the rotation
            e, hnd = np.array([k * proj * ua, 0.0]), np.array([k * proj * fa, 0.0])
        elbows[k] = shoulders[k] + e
        hands[k] = elbows[k] + hnd
        l1, l2 = leg[k]
        knees[k] = hips[k] + _dir(k * l1) * th
        feet[k] = knees[k] + _dir(k * l2) * sh
    return dict(
        neck=neck,
        head=head,
        r_head=r_head,
        shoulders=shoulders,
        elbows=elbows,
        hands=hands,
        hips=hips,
        knees=knees,
        feet=feet,
        back=back,
        lift=lift,
        dx=dx,
    )


def _draw_figure(d: ImageDraw.ImageDraw, p: dict, origin: np.ndarray, fig: FigureLook, hf: float) -> None:
    def pt(v):
        q = v + origin
        return (float(q[0]), float(q[1]))

    def limb(a, b, colour, width):
        d.line([pt(a), pt(b)], fill=colour, width=max(1, int(width)))
        r = width / 2
        for v in (a, b):
            x, y = pt(v)
            d.ellipse([x - r, y - r, x + r, y + r], fill=colour)

    lw, aw = 0.075 * hf * fig.width * LIMB_SCALE, 0.06 * hf * fig.width * LIMB_SCALE
    torso_colour = tuple(int(c * 0.7) for c in fig.torso) if p["back"] else fig.torso
    for k in (-1, 1):
        limb(p["hips"][k], p["knees"][k], fig.legs, lw)
        limb(p["knees"][k], p["feet"][k], fig.legs, lw)
    sh, hp = p["shoulders"], p["hips"]
    pad = 0.045 * hf * fig.width * LIMB_SCALE
    poly = [sh[-1], sh[1], hp[1], hp[-1]]
    d.polygon([pt(v) for v in poly], fill=torso_colour)
    limb(sh[-1], hp[-1], torso_colour, 2 * pad)
    limb(sh[1], hp[1], torso_colour, 2 * pad)
    limb(p["neck"], p["neck"], fig.skin, 0.06 * hf)
    for k in (-1, 1):
        limb(sh[k], p["elbows"][k], torso_colour, aw)
        limb(p["elbows"][k], p["hands"][k], fig.skin, aw * 0.85)
    x, y = pt(p["head"])
    r = p["r_head"]
    head_colour = (60, 40, 30) if p["back"] else fig.skin
    d.ellipse([x - r, y - r, x + r, y + r], fill=head_colour)
    if fig.hat is not None:
        d.rectangle([x - r * 1.1, y - r * 1.35, x + r * 1.1, y - r * 0.45], fill=fig.hat)


# -------------------------------------------------------------------------------------- real style


def _shift_colour(c: RGB, rng: np.random.Generator, hue: float, sat: float, val: float) -> RGB:
    h, s, v = colorsys.rgb_to_hsv(*(x / 255 for x in c))
    return _hsv(h + hue + rng.normal(0, 0.02), s * sat, v * val * rng.uniform(0.9, 1.1))


def _real_looks(scene: SceneLook, fig: FigureLook, rng: np.random.Generator) -> tuple[SceneLook, FigureLook]:
    hue, sat, val = rng.normal(0, 0.06), rng.uniform(0.6, 1.3), rng.uniform(0.75, 1.1)
    sh = lambda c: _shift_colour(c, rng, hue, sat, val)  # noqa: E731
    if scene.horizon <= 0:  # plain backgrounds still get a floor and a texture in the "real" world
        scene = replace(
            scene,
            horizon=rng.uniform(0.45, 0.7),
            ground=tuple(int(c * 0.75) for c in scene.sky),
            texture=str(rng.choice(["stripes", "checker", "boards"])),
            accent=(150, 150, 150),
        )
    scene = SceneLook(
        sh(scene.sky), sh(scene.ground), scene.horizon + rng.uniform(-0.05, 0.05), scene.texture, sh(scene.accent)
    )
    fig = replace(
        fig,
        torso=sh(fig.torso),
        legs=sh(fig.legs),
        hat=sh(fig.hat) if fig.hat else None,
        height=fig.height * rng.uniform(0.92, 1.08),
        width=fig.width * rng.uniform(0.85, 1.2),
    )
    return scene, fig


def _blur(x: np.ndarray, wgt: float) -> np.ndarray:
    """Separable 3-tap blur [w, 1-2w, w] over H and W of (T, H, W, C) float frames."""
    for axis in (1, 2):
        pad = np.pad(x, [(0, 0)] * axis + [(1, 1)] + [(0, 0)] * (3 - axis), mode="edge")
        lo = np.take(pad, range(0, x.shape[axis]), axis=axis)
        hi = np.take(pad, range(2, x.shape[axis] + 2), axis=axis)
        x = (1 - 2 * wgt) * x + wgt * (lo + hi)
    return x


# -------------------------------------------------------------------------------------------- public


def render_clip(
    prompt: str,
    seed: int,
    *,
    num_frames: int = 16,
    size: int = 64,
    style: str = "synthetic",
    action_hint: str | None = None,
    unreliable: bool = False,
) -> np.ndarray:
    """Render a clip of the demo world described by `prompt`.

    Args:
        prompt: free text; action, environment and character words are read from it.
        seed: varies position, scale, speed, phase, facing (and the real style's nuisances).
        num_frames: frames T.
        size: frame height and width in pixels (even for yuv420p video).
        style: "synthetic" (clean, flat) or "real" (held-out look: palettes, texture, lighting,
            jitter, blur, noise).
        action_hint: class name used when the prompt names no known action (a stable hash of it
            picks the motion, so all clips of a class share one).
        unreliable: render a failed generation instead: the scene and figure the prompt asks for, but
            incoherent motion: every frame a pose of another action at a random phase (the seed picks them).

    Returns:
        uint8 array (T, H, W, 3).
    """
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; choose one of {', '.join(STYLES)}")
    if num_frames < 1 or size < 8:
        raise ValueError(f"need num_frames >= 1 and size >= 8, got num_frames={num_frames}, size={size}")
    rng = np.random.default_rng([seed & 0xFFFFFFFF, 0 if style == "synthetic" else 1])
    action = vocab.ACTIONS[action_for(prompt, action_hint)].name
    motions = [action]
    garbled = None
    if unreliable:  # a failed generation: incoherent motion, each frame a random pose of another action (own RNG)
        others = [a.name for a in vocab.ACTIONS if a.name != action]
        g = np.random.default_rng([seed & 0xFFFFFFFF, 2])
        motions = [others[i] for i in g.integers(len(others), size=num_frames)]
        garbled = g.uniform(0, 1, num_frames)
    scene, _ = parse_scene(prompt)
    fig = parse_figure(prompt)
    real = style == "real"
    if real:
        scene, fig = _real_looks(scene, fig, rng)

    margin = max(2, size // 16)  # room for camera jitter
    canvas = size + 2 * margin
    cw = canvas * SS
    speed_range = (1.5, 3.0) if action in ("waving", "clapping") else (0.8, 1.6)
    m = _Motion(
        x0=rng.uniform(0.38, 0.62) if action != "walking" else 0.5 + rng.uniform(-0.06, 0.06),
        scale=rng.uniform(0.85, 1.1),
        cycles=rng.uniform(*speed_range),
        phase=rng.uniform(0, 1),
        facing=int(rng.choice([-1, 1])),
        lead=int(rng.choice([-1, 1])),
    )
    hf = FIGURE_HEIGHT * size * SS * m.scale * fig.height  # standing height in supersampled pixels
    ground = (margin + size * rng.uniform(0.86, 0.93)) * SS
    bg = _background(scene, cw, cw, rng)
    if real:  # mottled texture: low-frequency multiplicative noise baked into the background
        low = rng.normal(0.0, 0.08, (6, 6, 1)) + rng.normal(0.0, 0.03, (6, 6, 3))  # mostly luminance
        field = np.asarray(
            Image.fromarray((128 + 400 * low).clip(0, 255).astype(np.uint8)).resize((cw, cw), Image.BILINEAR),
            dtype=np.float32,
        ) / 400 + (1 - 128 / 400)
        bg = Image.fromarray((np.asarray(bg, dtype=np.float32) * field).clip(0, 255).astype(np.uint8))

    frames = np.empty((num_frames, canvas, canvas, 3), dtype=np.uint8)
    for i in range(num_frames):
        t = i / num_frames
        p = _pose(motions[i * len(motions) // num_frames], t if garbled is None else garbled[i], m, fig, hf)
        feet_y = max(p["feet"][-1][1], p["feet"][1][1])
        x = (m.x0 + p["dx"]) * size * SS + margin * SS
        origin = np.array([x, ground - feet_y - p["lift"]])
        img = bg.copy()
        _draw_figure(ImageDraw.Draw(img), p, origin, fig, hf)
        frames[i] = np.asarray(img.reduce(SS))

    if not real:
        return frames[:, margin : margin + size, margin : margin + size].copy()

    # "Real" camera: jitter (random walk crop), lighting (gain, tint, gradient, flicker), blur, noise.
    offs = np.clip(np.cumsum(rng.integers(-1, 2, (num_frames, 2)), axis=0) + margin, 0, 2 * margin)
    x = np.stack([frames[i, oy : oy + size, ox : ox + size] for i, (oy, ox) in enumerate(offs)]).astype(np.float32)
    gain = rng.uniform(*REAL_GAIN) * rng.uniform(0.85, 1.15, 3)
    ramp_dir = rng.uniform(0, 2 * math.pi)
    yy, xx = np.mgrid[0:size, 0:size] / size - 0.5
    ramp = 1 + rng.uniform(0.1, 0.45) * (math.cos(ramp_dir) * xx + math.sin(ramp_dir) * yy)
    flicker = rng.normal(1.0, 0.03, (num_frames, 1, 1, 1))
    x = x * gain * ramp[None, :, :, None] * flicker
    x = _blur(x, rng.uniform(*REAL_BLUR))
    x = x + rng.normal(0, rng.uniform(*REAL_NOISE), x.shape)
    return x.clip(0, 255).astype(np.uint8)
