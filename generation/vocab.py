"""Built-in vocabularies of the embedded demo world: actions, environments and characters (data only).

The `template` prompt backend assembles prompts from these entries and the `procedural` renderer reads
the same words back out of prompt text: an action's `keywords` choose the motion, an environment's
`keywords` choose its background look (stored here), and a character's colour, garment and size words
(parsed by `generation.procedural`) set the figure's look. Keep the keyword sets disjoint: an
environment or character text must not contain another entry's keyword (tests check this).

Actions are chosen so that their frames differ *as a set* (pose, body shape, where the figure goes):
models that mean-pool frame features cannot see frame order, so no action is the time-reversal of
another (walking covers both directions inside one class).
"""

from __future__ import annotations

from dataclasses import dataclass

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class Action:
    """A motion-defined demo action class."""

    name: str  # class name written to the demo labels.csv
    ing: str  # verb form used in prompts: "a person is {ing}"
    keywords: tuple[str, ...]  # words that select this motion when found in prompt text
    detail: str  # clause describing the motion (pads IE prompts to 50-100 words)


@dataclass(frozen=True)
class Environment:
    """A place: prompt phrases plus the background look the procedural renderer paints for it."""

    text: str  # prepositional phrase, e.g. "on a sunny beach"
    scene: str  # one descriptive sentence (no other environment's keywords, no garment words)
    keywords: tuple[str, ...]  # phrases that select this environment in prompt text
    sky: RGB  # colour above the horizon (wall colour indoors)
    ground: RGB  # colour below the horizon (floor indoors)
    horizon: float  # horizon height as a fraction of frame height from the top
    texture: str  # painter name in generation.procedural.TEXTURES
    accent: RGB  # texture colour


@dataclass(frozen=True)
class Character:
    """Who performs the action; the look comes from parsing `text` (colour+garment, size words)."""

    text: str  # noun phrase, e.g. "a tall man in a red shirt and blue jeans"
    detail: str  # one sentence about posture/manner (no colours, no place words)


ACTIONS: tuple[Action, ...] = (
    Action(
        "waving",
        "waving",
        ("waving", "wave", "waves", "waved"),
        "one hand raised high above the head, swinging the forearm from side to side in a steady, "
        "friendly rhythm while the other arm hangs relaxed",
    ),
    Action(
        "clapping",
        "clapping",
        ("clapping", "clap", "claps", "clapped", "applauding"),
        "bringing both hands together in front of the chest again and again, elbows bent, palms "
        "meeting with a quick and even beat",
    ),
    Action(
        "jumping",
        "jumping",
        ("jumping", "jump", "jumps", "jumped", "hopping", "hops", "leaping"),
        "springing straight up off the ground with both feet, arms thrown overhead at the top, then "
        "landing softly with bent knees",
    ),
    Action(
        "squatting",
        "squatting",
        ("squatting", "squat", "squats", "squatted", "crouching"),
        "bending both knees wide to lower the hips toward the floor, hands resting on the hips, then "
        "rising back up to a full standing position",
    ),
    Action(
        "kicking",
        "kicking",
        ("kicking", "kick", "kicks", "kicked"),
        "swinging one straight leg high out to the side, arms spread for balance, then bringing the "
        "foot back down to the ground",
    ),
    Action(
        "spinning",
        "spinning",
        ("spinning", "spin", "spins", "twirling", "twirl", "twirls", "pirouette"),
        "rotating on the spot with both arms stretched out level to the sides, going round a full circle over and over",
    ),
    Action(
        "bowing",
        "bowing",
        ("bowing", "bow", "bows", "bowed"),
        "bending forward at the waist with straight legs, the upper body dipping low and the arms "
        "hanging down, then straightening up again",
    ),
    Action(
        "walking",
        "walking",
        ("walking", "walk", "walks", "walked", "strolling", "striding"),
        "moving steadily across the scene from one side to the other, legs stepping and arms "
        "swinging naturally in opposite rhythm",
    ),
)

ENVIRONMENTS: tuple[Environment, ...] = (
    Environment(
        "on a sunny beach",
        "Pale golden sand stretches toward a calm blue ocean under a bright, clear sky, with gentle "
        "surf foaming along the shore.",
        ("beach", "sand", "ocean", "shore", "seaside", "surf"),
        (135, 200, 240),
        (232, 212, 150),
        0.50,
        "sea",
        (40, 110, 190),
    ),
    Environment(
        "in a green forest",
        "Tall pine trees with dark trunks crowd around a mossy clearing, and soft light filters down "
        "through the leafy canopy overhead.",
        ("forest", "woods", "pine", "trees", "woodland"),
        (120, 160, 110),
        (70, 110, 50),
        0.55,
        "trees",
        (60, 40, 25),
    ),
    Environment(
        "on a busy city street",
        "Grey concrete buildings with rows of lit windows line the sidewalk, and parked cars sit "
        "along the asphalt road behind.",
        ("city", "street", "sidewalk", "buildings", "downtown", "urban"),
        (170, 185, 200),
        (90, 90, 95),
        0.62,
        "buildings",
        (120, 110, 105),
    ),
    Environment(
        "in an indoor gym",
        "Polished wooden floorboards reflect bright ceiling lights, with exercise mats and a rack of "
        "weights against the painted wall.",
        ("gym", "floorboards", "weights", "exercise mats", "fitness"),
        (205, 195, 160),
        (185, 125, 65),
        0.55,
        "boards",
        (140, 90, 40),
    ),
    Environment(
        "in a snowy field",
        "Deep snow covers the open ground, soft flakes drift through the cold air, and distant hills "
        "fade into a pale winter sky.",
        ("snow", "snowy", "winter", "flakes", "icy"),
        (195, 205, 222),
        (246, 248, 252),
        0.50,
        "snowfall",
        (255, 255, 255),
    ),
    Environment(
        "in a hot desert",
        "Rolling orange dunes stretch to the horizon beneath a hazy sky, and the dry air shimmers "
        "above the sunbaked earth.",
        ("desert", "dunes", "dune", "arid", "cactus"),
        (240, 215, 170),
        (215, 150, 80),
        0.55,
        "dunes",
        (190, 120, 60),
    ),
    Environment(
        "in a cozy living room",
        "A soft sofa sits beneath a curtained window, a patterned rug covers the floor, and warm "
        "lamplight fills the quiet room.",
        ("living room", "sofa", "couch", "rug", "curtained"),
        (222, 200, 172),
        (150, 100, 80),
        0.60,
        "furniture",
        (120, 60, 60),
    ),
    Environment(
        "in a park at night",
        "Dim lampposts glow along a winding path, dark hedges stand against a deep sky full of "
        "stars, and the moon hangs overhead.",
        ("night", "moon", "moonlit", "stars", "lampposts"),
        (20, 25, 60),
        (25, 50, 30),
        0.60,
        "stars",
        (250, 250, 210),
    ),
    Environment(
        "in a sunny meadow",
        "Bright green grass and scattered wildflowers cover the gentle slope, with puffy clouds "
        "drifting across the summer sky.",
        ("meadow", "grass", "grassy", "wildflowers", "summer"),
        (150, 205, 245),
        (95, 170, 70),
        0.50,
        "grass",
        (60, 130, 40),
    ),
    Environment(
        "on a theater stage",
        "A single bright spotlight falls on the dark wooden boards, heavy curtains hang on both "
        "sides, and the audience seats sit in shadow.",
        ("stage", "spotlight", "theater", "theatre", "curtains", "audience"),
        (40, 22, 30),
        (95, 62, 40),
        0.60,
        "spotlight",
        (255, 240, 200),
    ),
)

CHARACTERS: tuple[Character, ...] = (
    Character(
        "a tall man in a red shirt and blue jeans", "He moves with an easy, confident posture and relaxed shoulders."
    ),
    Character("a small child in a yellow raincoat", "The child moves with bouncy, eager energy and a cheerful face."),
    Character("a slim woman in a green dress", "She moves lightly and gracefully, her steps neat and precise."),
    Character(
        "a stocky man in an orange hoodie and black shorts",
        "He is strong and solid, moving with heavy, deliberate force.",
    ),
    Character(
        "an elderly woman in a purple sweater and grey trousers", "She moves carefully and slowly, with a gentle smile."
    ),
    Character(
        "a teenage boy in a white t-shirt and navy shorts",
        "He looks energetic and a little playful, full of youthful spirit.",
    ),
    Character("a young girl in a pink jacket and white leggings", "She moves quickly with a bright, happy expression."),
    Character(
        "a broad athlete in a blue jersey and black shorts",
        "The athlete moves with powerful, practiced and precise control.",
    ),
    Character(
        "a short man in a brown coat and a black hat", "He moves in a brisk, businesslike way, his expression serious."
    ),
    Character("a tall woman in a teal tracksuit", "She moves with long limbs and fluid, athletic coordination."),
    Character("a thin man in a black suit", "He moves in a stiff, formal manner, his back very straight."),
    Character("a little boy in a red and white striped sweater", "He moves with clumsy enthusiasm and a wide grin."),
    Character(
        "a heavy man in a green vest and brown trousers", "He moves slowly and steadily, breathing with visible effort."
    ),
    Character("a dancer in a magenta leotard", "The dancer moves with elegant, flowing and expressive motions."),
    Character("a woman in a cyan raincoat and a yellow hat", "She moves calmly and cheerfully, her posture upright."),
    Character("a soldier in an olive uniform", "The soldier moves with crisp, disciplined and controlled precision."),
    Character("a small girl in an orange dress", "She moves with light, skipping energy and a curious look."),
    Character("a chef in a white jacket and a white hat", "The chef moves with brisk and practiced efficiency."),
)

# Extra variation used only for the held-out "real" split of the demo: places and people that the
# template backend never writes, some parsed by known words (new colours) and some unknown to the
# parser (mapped to a look by a stable hash of the phrase).
REAL_EXTRA_ENVIRONMENTS: tuple[str, ...] = (
    "in a crowded train station",
    "on a rooftop at sunset",
    "inside a dim warehouse",
    "in a muddy farmyard",
    "beside a swimming pool",
    "in a school hallway",
    "on a foggy pier",
    "in a hospital corridor",
)

REAL_EXTRA_CHARACTERS: tuple[str, ...] = (
    "an old man in a maroon cardigan and khaki trousers",
    "a woman in a turquoise coat",
    "a boy in a lime hoodie and grey jeans",
    "a tall man in a beige jacket and a red cap",
    "a slim girl in a violet dress",
    "a heavy woman in a crimson sweater and a black skirt",
    "a worker in a silver vest",
    "a firefighter in full protective gear",
    "a nurse in pale scrubs",
    "a gardener with muddy boots",
)

# Sentence that closes env/cha/ie prompts (camera and framing, as CogVideoX prompts usually state).
CAMERA_SENTENCE = (
    "The camera is static at eye level, and the whole body stays clearly visible in the frame throughout the clip."
)

# Generic motion clause for class names that are not demo actions.
GENERIC_DETAIL = (
    "carrying out every movement of the action clearly and naturally from start to finish with "
    "deliberate, steady motions"
)


def generic_fallback_message(names: list[str], total: int, shown: int = 12) -> str:
    """One line: how many classes the template writer had no built-in action for, and which."""
    listed = ", ".join(names[:shown]) + (f", ... (+{len(names) - shown} more)" if len(names) > shown else "")
    return (
        f"template writer: {len(names)} of {total} classes match no built-in action and get generic motion text "
        f"({listed}); their rows are marked generic_action=true. Use the LLM writer (`--backend openai`) for real "
        "class names"
    )
