"""Real-world sizes for exported 3D shapes: the words of a prompt -> a typical size in metres.

A generated mesh arrives in the unit cube; an export scales it (uniformly: proportions are kept) so
that one measure matches a typical size for its kind of object:
- **height** (the Y extent) for things people know by their height, which varies little between
  examples: seats, tables, storage, lamps, tableware, plants, buildings;
- **longest** (the largest side of the bounding box) for things that lie long or whose height depends
  on pose: sofas, beds, benches, vehicles, phones, books.
A prompt with none of these words gets 1 m on its longest side, and says so. An explicit size (the CLI's
`--size`, the 3D panel's Size box) is always the longest side.

The figures are the usual ones of furniture references and catalogues: Neufert, *Architects' Data*
(seat height 0.45 m, chair back 0.8-1.0 m, dining table 0.72-0.76 m, coffee table 0.4-0.45 m, kitchen
worktop and base cabinet 0.9 m, wardrobe 2.0 m, double bed 2.0 m long and about 0.5 m high at the
mattress); Panero & Zelnik, *Human Dimension and Interior Space* (1979) for seating and storage heights;
and common retail dimensions for the rest (a mug about 0.1 m, a wine bottle 0.3 m, a family car 4.5 m
long). They are typical values, not limits: set the size explicitly when the object is unusual.

Matching: lower-case words, plurals folded ("chairs" -> chair, "shelves" -> shelf); two-word names win
over one word ("table lamp" 0.5 m, not "table" 0.75 m); otherwise the last known word before the first
"with / of / on / for ..." is the object (English puts the noun last: "a glass vase" is a vase, "a tree
house" a house, "a chair with a cup holder" a chair). Qt-free and torch-free.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

MIN_SIZE_M = 0.001  # 1 mm
MAX_SIZE_M = 1000.0  # a large building; beyond it a DCC tool's grid and clip planes break down
UNKNOWN_M = 1.0

H, L = "height", "longest"

# (names, metres, measure). Names are singular; several names share one line.
TABLE: tuple[tuple[tuple[str, ...], float, str], ...] = (
    # seating
    (("chair", "dining chair", "kitchen chair", "side chair", "wooden chair", "folding chair"), 0.9, H),
    (("office chair", "desk chair", "gaming chair"), 1.05, H),
    (("armchair", "arm chair", "lounge chair", "easy chair", "club chair", "wingback"), 0.9, H),
    (("recliner", "rocking chair", "high chair", "highchair"), 1.0, H),
    (("stool",), 0.45, H),
    (("bar stool", "barstool", "high stool"), 0.75, H),
    (("footstool", "ottoman", "pouf", "pouffe"), 0.4, H),
    (("bench", "park bench"), 1.5, L),
    (("sofa", "couch", "settee"), 2.0, L),
    (("loveseat", "love seat"), 1.5, L),
    # tables and desks
    (("table", "dining table", "kitchen table", "desk", "writing desk", "workbench"), 0.75, H),
    (("coffee table",), 0.45, H),
    (("side table", "end table", "bedside table", "nightstand", "night stand"), 0.55, H),
    (("bar table", "high table", "counter"), 1.05, H),
    # beds
    (("bed", "double bed", "single bed", "bunk bed"), 2.0, L),
    (("crib", "cot", "cradle"), 1.3, L),
    # storage
    (("shelf", "bookshelf", "bookcase", "shelving", "shelving unit"), 1.8, H),
    (("cabinet", "cupboard", "sideboard", "kitchen cabinet"), 0.9, H),
    (("wardrobe", "closet", "armoire"), 2.0, H),
    (("dresser", "chest of drawers", "drawers"), 0.8, H),
    (("chest", "trunk", "toy box"), 0.5, H),
    (("box", "crate"), 0.4, L),
    (("barrel",), 0.9, H),
    # lights
    (("lamp", "table lamp", "desk lamp", "bedside lamp", "reading lamp"), 0.5, H),
    (("floor lamp", "standing lamp", "standard lamp"), 1.6, H),
    (("street lamp", "streetlight", "street light", "lamp post", "lamppost"), 4.0, H),
    (("chandelier", "ceiling light", "ceiling lamp", "pendant lamp"), 0.5, H),
    (("lantern",), 0.3, H),
    (("candle",), 0.15, H),
    (("candlestick", "candle holder"), 0.25, H),
    # tableware and kitchen
    (("cup", "mug", "coffee mug", "coffee cup", "tea cup"), 0.1, H),
    (("teacup", "espresso cup"), 0.07, H),
    (("glass", "tumbler", "drinking glass"), 0.12, H),
    (("wine glass", "goblet", "champagne glass"), 0.2, H),
    (("bottle", "wine bottle", "water bottle"), 0.3, H),
    (("vase",), 0.3, H),
    (("bowl",), 0.08, H),
    (("plate", "dish", "saucer"), 0.26, L),
    (("teapot",), 0.15, H),
    (("kettle", "jug", "pitcher"), 0.25, H),
    (("jar", "pot", "flowerpot", "flower pot", "plant pot", "saucepan"), 0.2, H),
    (("spoon", "fork", "knife"), 0.2, L),
    (("fridge", "refrigerator"), 1.8, H),
    (("oven", "stove", "cooker", "dishwasher"), 0.9, H),
    (("washing machine", "washer", "dryer"), 0.85, H),
    (("microwave", "toaster"), 0.45, L),
    (("sink", "basin"), 0.6, L),
    (("toilet",), 0.75, H),
    (("bathtub", "bath tub", "bath"), 1.7, L),
    # plants and nature
    (("plant", "houseplant", "house plant", "potted plant"), 0.6, H),
    (("flower", "tulip", "rose", "sunflower"), 0.4, H),
    (("cactus",), 0.4, H),
    (("bush", "shrub", "hedge"), 1.0, H),
    (("tree", "oak", "pine", "pine tree", "fir", "birch", "willow"), 4.0, H),
    (("palm", "palm tree"), 6.0, H),
    (("mushroom",), 0.1, H),
    (("rock", "stone"), 0.5, L),
    (("boulder",), 1.5, L),
    # vehicles
    (("car", "sedan", "taxi", "hatchback"), 4.5, L),
    (("van", "suv", "jeep", "pickup", "pickup truck"), 5.0, L),
    (("truck", "lorry", "tractor"), 7.0, L),
    (("bus",), 12.0, L),
    (("bicycle", "bike"), 1.0, H),
    (("motorcycle", "motorbike", "moped"), 2.1, L),
    (("scooter", "skateboard"), 0.8, L),
    (("boat", "canoe", "kayak", "rowboat"), 5.0, L),
    (("airplane", "aeroplane", "plane", "jet", "airliner"), 35.0, L),
    (("helicopter",), 12.0, L),
    (("wheel", "tyre", "tire"), 0.65, L),
    # buildings and parts
    (("house", "home", "tree house", "treehouse"), 6.0, H),
    (("cottage", "cabin", "hut", "shed"), 3.5, H),
    (("barn", "church", "building"), 10.0, H),
    (("tower", "castle", "lighthouse"), 20.0, H),
    (("tent",), 1.5, H),
    (("door", "doorway"), 2.1, H),
    (("window",), 1.2, H),
    (("fence", "gate", "railing"), 1.0, H),
    (("wall",), 2.5, H),
    (("column", "pillar", "arch", "archway"), 3.0, H),
    (("stairs", "staircase", "ladder"), 2.7, H),
    (("mailbox", "letterbox", "postbox"), 1.2, H),
    (("fire hydrant", "hydrant", "traffic cone", "cone"), 0.7, H),
    # electronics and household things
    (("tv", "television"), 1.2, L),
    (("monitor", "screen", "computer screen"), 0.6, L),
    (("laptop", "keyboard", "book", "notebook"), 0.3, L),
    (("computer", "desktop computer", "pc"), 0.45, H),
    (("phone", "smartphone", "mobile phone", "remote"), 0.15, L),
    (("speaker", "radio", "headphones"), 0.25, L),
    (("camera",), 0.13, L),
    (("clock", "wall clock"), 0.3, L),
    (("mirror", "painting", "picture frame", "frame"), 0.8, L),
    (("piano",), 1.2, H),
    (("guitar", "violin", "cello"), 1.0, L),
    (("backpack", "bag", "handbag", "suitcase", "luggage"), 0.55, H),
    (("umbrella", "sword", "broom"), 0.9, L),
    (("hat", "helmet", "cap"), 0.2, L),
    (("shoe", "boot", "sneaker"), 0.3, L),
    (("ball", "football", "basketball", "globe"), 0.22, L),
    (("basket", "bucket", "pail", "watering can"), 0.3, H),
    (("bin", "trash can", "waste bin", "dustbin"), 0.6, H),
    (("pistol", "gun", "revolver", "hammer", "axe"), 0.3, L),
    (("key",), 0.06, L),
    (("ring",), 0.02, L),
    (("potion", "flask"), 0.15, H),
    # people and animals
    (("person", "man", "woman", "human", "figure", "statue", "robot", "snowman"), 1.75, H),
    (("child", "kid"), 1.2, H),
    (("dog",), 0.6, H),
    (("cat", "rabbit", "bunny", "teddy bear", "teddy"), 0.3, H),
    (("horse", "cow"), 1.6, H),
    (("bird", "duck", "chicken"), 0.3, L),
    (("fish",), 0.3, L),
)

_STOP = {"with", "of", "on", "for", "in", "under", "beside", "next", "near", "and", "or", "made", "from", "at",
         "by", "without", "holding", "containing", "full", "behind", "above", "below", "inside", "against", "to"}


@dataclass(frozen=True)
class TypicalSize:
    """What an export is scaled to: `metres` on `measure` ("height" or "longest")."""
    metres: float
    measure: str = L
    name: str = ""  # the object it was found for ("" when explicit or unknown)
    explicit: bool = False

    @property
    def known(self) -> bool:
        return self.explicit or bool(self.name)

    def describe(self, extents=None) -> str:
        """A short phrase for the CLI output / the panel's status line."""
        what = "tall" if self.measure == H else "on its longest side"
        head = f"{self.metres:g} m {what}"
        if self.explicit:
            why = "the size asked for"
        elif self.name:
            why = f"a typical {self.name}"
        else:
            why = "no typical size is known for this object: set the size to change it"
        text = f"{head} ({why})"
        if extents is not None:
            w, h, d = (float(x) for x in extents)
            text += f", {w:.2f} x {h:.2f} x {d:.2f} m (width x height x depth)"
        return text


_ENTRY: dict[tuple[str, ...], tuple[str, float, str]] = {}
for _names, _m, _measure in TABLE:
    for _n in _names:
        _ENTRY[tuple(_n.split())] = (_n, _m, _measure)
_VOCAB = {w for key in _ENTRY for w in key}
_LONGEST_NAME = max(len(k) for k in _ENTRY)


def _singular(word: str) -> str:
    if word in _VOCAB:
        return word
    for tail, repl in (("ves", "f"), ("ies", "y"), ("es", ""), ("s", "")):
        if word.endswith(tail) and len(word) > len(tail) + 1 and word[: -len(tail)] + repl in _VOCAB:
            return word[: -len(tail)] + repl
    return word


def find_object(prompt: str) -> tuple[str, float, str] | None:
    """The object a prompt names -> (name, metres, measure), or None when no known word is in it."""
    words = [_singular(w) for w in re.findall(r"[a-z]+", (prompt or "").lower())]
    found = []  # (start, end, entry)
    for i in range(len(words)):
        for n in range(min(_LONGEST_NAME, len(words) - i), 0, -1):
            entry = _ENTRY.get(tuple(words[i:i + n]))
            if entry:
                found.append((i, i + n, entry))
    if not found:
        return None
    covered = {k for s, e, _ in found if e - s > 1 for k in range(s, e)}  # "chest of drawers" keeps its "of"
    cut = next((i for i, w in enumerate(words) if w in _STOP and i not in covered), len(words))
    head = [f for f in found if f[1] <= cut] or found
    return max(head, key=lambda f: (f[1], f[1] - f[0]))[2]


def size_for(prompt: str) -> TypicalSize:
    """A prompt (or a file name) -> the size to export at; unknown objects get 1 m on the longest side."""
    hit = find_object(prompt)
    if hit is None:
        return TypicalSize(UNKNOWN_M, L)
    name, metres, measure = hit
    return TypicalSize(metres, measure, name)


def check_size(value) -> float:
    """An explicit size in metres -> float; ValueError with one plain sentence when it is not usable."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"The size must be a number of metres, not '{value}'.") from None
    if not math.isfinite(x) or not MIN_SIZE_M <= x <= MAX_SIZE_M:
        raise ValueError(f"The size must be between {MIN_SIZE_M:g} and {MAX_SIZE_M:g} metres (got {value}).")
    return x


def explicit_size(value) -> TypicalSize:
    return TypicalSize(check_size(value), L, explicit=True)
