"""The embedded default dataset: a seeded synthetic spatio-temporal commerce world.

`generate(config)` returns `RawTables` (events, items, users) that the README's
demo and the main test-suite run on. The same `SyntheticConfig` always yields
identical frames; everything is drawn from one `np.random.default_rng(seed)`.

The world (the generative story; what a model should be able to learn)
----------------------------------------------------------------------
Place and time. A fictional metro area laid out around Bogotá (4.65 N, 74.09 W;
America/Bogota is UTC-5 all year, so every event has `utc_offset_minutes=-300`).
`num_regions` neighbourhood centres sit on a sunflower spiral ~6 km apart. The
log covers `SPAN_DAYS` = 120 days ending at local midnight 2024-07-01
(`END_TIMESTAMP`).

Users. Each user has a home region (regions differ in population), a home point
near its centre, and with probability 0.6 a work region and a work point. Each
has a daily rhythm: personal morning and evening peak hours and personal
weights over morning / lunch / office hours / evening on weekdays and late
morning / afternoon / evening on weekends (weekends get 1.25x the sessions).
Each has a segment ("gamer", "parent", ...) that boosts a few top-level
categories in a sparse personal preference over subcategories, an age and an
activity level (log-normal: a few heavy users).

Items. Up to thirty subcategories ("grocery|coffee", "electronics|audio", ...;
small catalogues use fewer, ~25 items each), each with its own nouns, features,
materials, price level and complements (coffee <-> kitchen gear, phones ->
accessories, pet food <-> pet gear, ...). An item is
brand + feature + noun (+ series title and volume for books, building sets and
video games), has a price (subcategory level x brand tier x noise) and a store
in one region. Its English text names the category, the complement it pairs
with and the store's neighbourhood, so text similarity reflects category,
complement behaviour and place: a text tower can place a brand-new item. 20% of
items launch late in the span (later series volumes launch after earlier ones)
and get a novelty boost; no event touches an item before its launch, so late
launches are cold items at test time.

Sessions. A session starts at a time drawn from the user's rhythm. Where the
user is depends on it: at the work point on weekdays 09-17 local (if employed),
otherwise at home, 8% of the time elsewhere in the metro. Event latitude /
longitude is that place plus GPS jitter, not the item's store
(`event_location_is_item_location=False`). Sessions of a user run in time order
and each picks a goal, a Markov chain over the user's history:
  1. restock: a consumable bought before (coffee, pet food, shampoo, ...) is due
     again after its subcategory's period -> the same item (p=0.8 once due);
  2. series: after buying volume k, volume k+1 once launched (p=0.75);
  3. complement: right after a purchase, a complementary subcategory (p=0.7);
  4. continue: after a session without purchase, the same subcategory (p=0.5);
  5. otherwise a fresh subcategory from the user's preference reweighted by
     time of day and weekend (coffee in the morning, games at night, garden on
     weekends).
The goal item (for 3-5 drawn from the goal subcategory) is taken, like every
browsed item, from stores in the user's current region with p=0.8 (else from the
whole metro), by popularity, among items already launched. The session views
other items of the goal's subcategory (15% from a complementary one), near the
user too, and clicks some; the goal item goes view -> click -> add_to_cart ->
purchase as far as the session converts (restock 0.85, series 0.6,
complement/continue 0.3, fresh 0.18; never a second purchase of a durable).
`value` is the price paid on purchases, NaN otherwise. The number of browsed
items is set so that the total is within ~1% of `num_events` (for
num_events >> num_users).

So a sequence model can learn what popularity cannot: the complement / series
next step after a purchase, the browse-similar structure within a session,
restock timing, place (home region in the evening, work region in office
hours) and time-of-day category shifts.

Shapes below: U users, I items, R regions, K subcategories, S sessions,
E events.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import NamedTuple

import numpy as np
import pandas as pd

from trainer.config import SyntheticConfig
from trainer.data import schema

NAME = "synthetic"
SOURCE_FILE = "synthetic"
UTC_OFFSET_MINUTES = -300  # America/Bogota: UTC-5 all year, no daylight saving.
END_TIMESTAMP = 1_719_810_000  # 2024-07-01T00:00:00-05:00, local midnight.
SPAN_DAYS = 120
START_TIMESTAMP = END_TIMESTAMP - SPAN_DAYS * 86_400
EVENT_TYPES = ("view", "click", "add_to_cart", "purchase")  # index = funnel depth - 1
MAX_EVENTS = 50_000_000  # the world is built in memory (~100 bytes per event)

_METRO_LAT, _METRO_LON = 4.65, -74.09
_REGION_SPACING_DEG = 0.03  # sunflower scale; neighbouring centres ~0.05 deg (~6 km) apart
_PLACE_JITTER_DEG = 0.006  # homes, work points and stores around their region centre
_EVENT_JITTER_DEG = 0.0015  # GPS noise around where the user is
_EVENTS_PER_SESSION = 6.0  # sizing only: browse slots are then added to hit num_events
_P_EMPLOYED = 0.6
_P_AT_WORK = 0.9  # on weekdays 09-17 local, employed users are at work this often
_P_AWAY = 0.08  # elsewhere in the metro rather than at home / work
_P_LOCAL = 0.8  # an item is drawn from stores in the user's current region
_P_REPURCHASE, _P_SERIES, _P_COMPLEMENT, _P_CONTINUE = 0.8, 0.75, 0.7, 0.5
_LATE_ITEM_SHARE = 0.2
_LATE_ITEM_BOOST = 2.5  # novelty: a new item is more popular than an old one of equal appeal
_P_EXTRA_CLICK = 0.25  # a browsed (non-goal) item is clicked
_P_BROWSE_COMPLEMENT = 0.15  # a browsed item is from a complementary subcategory
_MAX_REJECTION_ROUNDS = 8

# Session goal kinds; conversion probability per kind.
_FRESH, _CONTINUE, _COMPLEMENT, _SERIES, _RESTOCK = range(5)
_P_CONVERT = np.array([0.18, 0.3, 0.3, 0.6, 0.85])
# Seconds before an event of each funnel step: minimum + exponential(mean).
_GAP_MIN = np.array([3.0, 2.0, 5.0, 20.0])
_GAP_MEAN = np.array([45.0, 20.0, 30.0, 90.0])


class _Subcategory(NamedTuple):
    name: str  # "top|sub", the item's category string
    nouns: tuple[str, ...]
    features: tuple[str, ...]
    materials: tuple[str, ...]
    price: float  # typical price, before brand tier and noise
    restock_days: int  # 0 = durable; else consumable, bought again after about this long
    series: str  # "" = no series; else the volume word ("Book", "Set", "Part")
    complements: tuple[str, ...]  # subcategories people move to after buying here


# Complements sit next to each other, so the prefix a small catalogue uses keeps most pairs.
_SUBCATEGORIES = (
    _Subcategory("grocery|coffee", ("coffee beans", "ground coffee", "espresso pods", "cold brew concentrate"),
                 ("single-origin", "dark roast", "decaf", "organic"), ("250 g bag", "1 kg bag", "10-pack"),
                 12.0, 14, "", ("home|kitchen",)),
    _Subcategory("home|kitchen", ("coffee grinder", "french press", "electric kettle", "frying pan", "chef knife"),
                 ("stainless", "non-stick", "compact", "cast-iron"), ("steel", "ceramic", "glass"),
                 45.0, 0, "", ("grocery|coffee", "grocery|pantry")),
    _Subcategory("electronics|phones", ("smartphone", "flip phone", "rugged phone"),
                 ("5G", "dual-camera", "long-battery", "compact"), ("glass", "titanium", "recycled aluminium"),
                 450.0, 0, "", ("electronics|accessories", "electronics|audio")),
    _Subcategory("electronics|accessories", ("phone charger", "usb-c cable", "power bank", "phone case",
                                             "screen protector"),
                 ("fast-charging", "braided", "slim", "magnetic"), ("silicone", "nylon", "tempered glass"),
                 18.0, 0, "", ("electronics|audio",)),
    _Subcategory("pets|food", ("dry dog food", "wet cat food", "dog treats", "cat litter"),
                 ("grain-free", "senior", "puppy", "salmon"), ("2 kg bag", "12-can box", "resealable pouch"),
                 30.0, 18, "", ("pets|gear",)),
    _Subcategory("pets|gear", ("dog leash", "chew toy", "pet bed", "cat scratcher"),
                 ("durable", "reflective", "washable", "cozy"), ("rope", "fleece", "cardboard"),
                 25.0, 0, "", ("pets|food",)),
    _Subcategory("books|fiction", ("novel",), ("mystery", "fantasy", "science fiction", "romance"),
                 ("paperback", "hardcover"), 15.0, 0, "Book", ("home|decor",)),
    _Subcategory("home|decor", ("table lamp", "reading lamp", "throw pillow", "picture frame", "scented candle"),
                 ("minimalist", "rustic", "warm-light", "handmade"), ("linen", "oak", "brass"),
                 30.0, 0, "", ("books|fiction",)),
    _Subcategory("games|video", ("video game",), ("open-world", "co-op", "racing", "strategy"),
                 ("console edition", "digital code"), 55.0, 0, "Part", ("games|accessories",)),
    _Subcategory("games|accessories", ("game controller", "gaming headset", "charging dock", "gaming chair"),
                 ("wireless", "pro", "rgb", "ergonomic"), ("matte plastic", "mesh", "leatherette"),
                 45.0, 0, "", ("games|video",)),
    _Subcategory("fashion|shoes", ("running shoes", "sneakers", "leather boots", "sandals"),
                 ("lightweight", "waterproof", "cushioned", "classic"), ("mesh", "suede", "leather"),
                 85.0, 0, "", ("fashion|apparel", "sports|running")),
    _Subcategory("sports|running", ("running shorts", "water bottle", "hydration vest", "headlamp"),
                 ("breathable", "reflective", "insulated", "ultralight"), ("polyester", "stainless steel", "nylon"),
                 30.0, 0, "", ("sports|nutrition", "fashion|shoes")),
    _Subcategory("sports|nutrition", ("protein powder", "energy gels", "electrolyte tablets", "protein bars"),
                 ("vanilla", "chocolate", "citrus", "unflavoured"), ("1 kg tub", "12-pack", "tube of 20"),
                 25.0, 20, "", ("sports|running",)),
    _Subcategory("beauty|skincare", ("moisturizer", "cleanser", "vitamin c serum", "sunscreen"),
                 ("hydrating", "fragrance-free", "spf 50", "gentle"), ("50 ml bottle", "pump bottle", "tube"),
                 22.0, 30, "", ("beauty|haircare",)),
    _Subcategory("beauty|haircare", ("shampoo", "conditioner", "hair oil", "hair mask"),
                 ("argan", "volumizing", "sulfate-free", "repairing"), ("400 ml bottle", "travel size", "refill pack"),
                 12.0, 28, "", ("beauty|skincare",)),
    _Subcategory("grocery|pantry", ("olive oil", "pasta", "basmati rice", "tomato sauce"),
                 ("extra virgin", "whole wheat", "organic", "family size"), ("glass jar", "1 kg bag", "tin"),
                 6.0, 21, "", ("books|cookbooks", "home|kitchen")),
    _Subcategory("books|cookbooks", ("cookbook",), ("vegetarian", "baking", "quick dinners", "italian"),
                 ("paperback", "hardcover"), 25.0, 0, "", ("home|kitchen", "grocery|pantry")),
    _Subcategory("toys|building", ("building set",), ("space", "castle", "city", "dinosaur"),
                 ("plastic bricks", "wooden blocks"), 40.0, 0, "Set", ("games|board", "books|kids")),
    _Subcategory("games|board", ("board game", "card game", "jigsaw puzzle"),
                 ("family", "party", "strategy", "cooperative"), ("cardboard", "wooden pieces"),
                 30.0, 0, "", ("toys|building",)),
    _Subcategory("books|kids", ("picture book",), ("bedtime", "animal", "alphabet", "adventure"),
                 ("board book", "hardcover"), 12.0, 0, "Book", ("toys|building",)),
    _Subcategory("grocery|snacks", ("granola bars", "trail mix", "dark chocolate", "rice crackers"),
                 ("salted", "honey", "gluten-free", "high-protein"), ("6-pack", "sharing bag", "snack box"),
                 5.0, 10, "", ("grocery|beverages",)),
    _Subcategory("grocery|beverages", ("sparkling water", "green tea", "kombucha", "orange juice"),
                 ("unsweetened", "ginger", "cold-pressed", "lime"), ("1 l bottle", "12-can pack", "tea tin"),
                 4.0, 7, "", ("grocery|snacks",)),
    _Subcategory("fashion|apparel", ("t-shirt", "hoodie", "rain jacket", "jeans"),
                 ("relaxed-fit", "organic", "slim-fit", "oversized"), ("cotton", "denim", "recycled polyester"),
                 40.0, 0, "", ("fashion|accessories", "fashion|shoes")),
    _Subcategory("fashion|accessories", ("backpack", "leather belt", "baseball cap", "sunglasses", "wristwatch"),
                 ("everyday", "polarized", "vintage", "water-resistant"), ("canvas", "leather", "acetate"),
                 35.0, 0, "", ("fashion|apparel",)),
    _Subcategory("electronics|audio", ("headphones", "earbuds", "bluetooth speaker", "soundbar"),
                 ("wireless", "noise-cancelling", "waterproof", "studio"), ("aluminium", "fabric", "matte black"),
                 90.0, 0, "", ("electronics|accessories",)),
    _Subcategory("electronics|computers", ("laptop", "tablet", "monitor", "mechanical keyboard", "wireless mouse"),
                 ("ultralight", "4k", "ergonomic", "backlit"), ("aluminium", "carbon fibre", "plastic"),
                 520.0, 0, "", ("electronics|accessories", "games|video")),
    _Subcategory("home|cleaning", ("dish soap", "laundry detergent", "sponges", "surface spray"),
                 ("lemon", "eco", "unscented", "concentrated"), ("refill pouch", "1 l bottle", "pack of 6"),
                 7.0, 25, "", ("home|kitchen",)),
    _Subcategory("sports|cycling", ("bike helmet", "bike light", "cycling gloves", "bike lock"),
                 ("aero", "rechargeable", "padded", "heavy-duty"), ("polycarbonate", "aluminium", "hardened steel"),
                 45.0, 0, "", ("sports|nutrition", "sports|running")),
    _Subcategory("garden|plants", ("herb seeds", "potted basil", "succulent", "flower bulbs"),
                 ("heirloom", "indoor", "drought-tolerant", "fast-growing"), ("seed packet", "clay pot", "bulb bag"),
                 10.0, 0, "", ("garden|tools",)),
    _Subcategory("garden|tools", ("watering can", "garden gloves", "pruning shears", "plant pot"),
                 ("ergonomic", "rust-proof", "self-watering", "heavy-duty"), ("galvanized steel", "terracotta",
                                                                                   "recycled plastic"),
                 20.0, 0, "", ("garden|plants",)),
)

# Relative interest by local time of day (morning 05-10, midday 10-16, evening
# 16-21, night 21-05) and the weekend multiplier, per top-level category.
_DAYPART_WEIGHTS = {
    "electronics": (1.0, 1.0, 1.5, 1.5, 1.2),
    "games": (0.3, 0.6, 1.5, 3.0, 1.5),
    "toys": (0.6, 1.0, 1.5, 0.5, 1.8),
    "books": (1.0, 0.8, 1.0, 2.0, 1.3),
    "grocery": (2.5, 1.2, 1.5, 0.4, 1.0),
    "home": (0.8, 1.0, 1.2, 0.8, 1.6),
    "fashion": (0.6, 1.6, 1.2, 0.8, 1.4),
    "sports": (2.0, 0.8, 1.2, 0.4, 1.5),
    "beauty": (1.3, 0.8, 1.2, 1.2, 1.0),
    "pets": (1.5, 1.0, 1.2, 0.6, 1.0),
    "garden": (1.2, 1.2, 0.8, 0.3, 2.0),
}
_USES = {
    "electronics": "everyday use at home or on the go",
    "games": "game nights and long weekends",
    "toys": "creative play at any age",
    "books": "quiet evenings of reading",
    "grocery": "a well-stocked kitchen",
    "home": "a cosy, practical home",
    "fashion": "city days and weekends out",
    "sports": "training, commuting and weekend outings",
    "beauty": "a simple daily routine",
    "pets": "happy, healthy pets",
    "garden": "balconies, patios and small gardens",
}
# Five fictional brands per top-level category; the tier sets price and wording.
_BRANDS = {
    "electronics": ("Voltix", "Auralis", "Northbeam", "Kinetica", "Sonora"),
    "games": ("Pixelforge", "Meeple & Co", "Questline", "Playfield", "Arcadia"),
    "toys": ("Brickly", "Tinker Bay", "Funforge", "Little Atlas", "Starblock"),
    "books": ("Inkwell Press", "Harbor House", "Lantern Books", "Greyfeather", "Paper Fox"),
    "grocery": ("Daily Harvest", "Andes Roast", "Green Valley", "Sol de Oro", "Pantry Lane"),
    "home": ("Hearthstone", "Casa Viva", "Nordhem", "Ember & Oak", "Tidy Nest"),
    "fashion": ("Urbano", "Threadline", "North Loop", "Calle", "Veranda"),
    "sports": ("Stride", "Peakform", "Trailhead", "Flowfit", "Velo Norte"),
    "beauty": ("Lumina", "Pure Leaf", "Botanica", "Dewdrop", "Solara"),
    "pets": ("Happy Paws", "Whisker Co", "Pawfect", "Fetch", "Nordic Tail"),
    "garden": ("Greenthumb", "Bloomfield", "Sprout & Co", "Terra", "Wild Patch"),
}
_BRAND_TIER = (0, 1, 1, 2, 0)  # per brand position: 0 budget, 1 standard, 2 premium
_TIER_PRICE = np.array([0.7, 1.0, 1.6])
_TIER_WORDS = ("Budget-friendly", "Dependable", "Premium")
_SERIES_FIRST = ("Ember", "Silver", "Hollow", "Northern", "Glass", "Iron", "Midnight", "Crimson", "Quiet", "Wandering")
_SERIES_SECOND = {"Book": ("Chronicles", "Saga", "Cycle", "Mysteries"),
                  "Set": ("Expedition", "Outpost", "Harbor", "Citadel"),
                  "Part": ("Legends", "Frontier", "Odyssey", "Tactics")}
_REGION_NAMES = ("Northgate", "Riverside", "Old Town", "Hillcrest", "Lakeview", "Market District", "Eastfield",
                 "Westbrook", "Parkside", "Southbank", "University Quarter", "Airport Park", "Chapel Hill",
                 "Garden City", "Harbor Point", "Stone Bridge")
# Segment -> boosted top-level categories, and the segment's typical age.
_SEGMENTS = {
    "commuter": (("electronics", "grocery", "fashion"), 34.0),
    "foodie": (("grocery", "home", "books"), 38.0),
    "athlete": (("sports", "fashion", "grocery"), 30.0),
    "gamer": (("games", "electronics", "toys"), 26.0),
    "parent": (("toys", "books", "pets", "grocery"), 39.0),
    "homebody": (("home", "garden", "books", "pets"), 47.0),
    "trendsetter": (("fashion", "beauty", "electronics"), 29.0),
}
_SEGMENT_BOOST = 6.0


@dataclasses.dataclass(frozen=True)
class SyntheticWorld:
    """The generated tables plus the latent truth behind them (for tests and analysis).

    Array index i is row i of the users / items table (user "u{i:05d}", item
    "i{i:05d}"; wider when there are more than 99,999).

    Attributes:
      tables: what `generate` returns.
      region_names: [R] neighbourhood names, as in `users.home_region`.
      region_centres: [R, 2] float64 (latitude, longitude) of the region centres.
      user_home_region: [U] int64 region index.
      user_work_region: [U] int64 region index, -1 for users without a work place.
      item_region: [I] int64 region of the item's store.
      item_launch: [I] int64 unix seconds from which the item can have events;
        `START_TIMESTAMP` for the launch catalogue.
      item_next_in_series: [I] int64 index of the next volume, -1 when none.
    """

    tables: schema.RawTables
    region_names: tuple[str, ...]
    region_centres: np.ndarray
    user_home_region: np.ndarray
    user_work_region: np.ndarray
    item_region: np.ndarray
    item_launch: np.ndarray
    item_next_in_series: np.ndarray


def generate(config: SyntheticConfig) -> schema.RawTables:
    """Generates the synthetic world's tables (see the module docstring).

    Args:
      config: sizes and seed; the same config always gives identical frames.

    Returns:
      `RawTables` named "synthetic" with
        events: E ~= num_events rows (within ~1%), unsorted by user; user_id,
          item_id (str), timestamp (int64 unix s), event_type (str), value
          (float64, price on purchases, NaN otherwise), latitude / longitude
          (float64, where the user is), utc_offset_minutes (int32, -300),
          _source_file ("synthetic"), _source_row (int64, 1-based).
        items: num_items rows; item_id, text, category, latitude, longitude,
          price, plus provenance.
        users: num_users rows; user_id, age (float64), segment, home_region,
          work_region ("" for none), plus provenance.
    """
    return generate_world(config).tables


def generate_world(config: SyntheticConfig) -> SyntheticWorld:
    """Like `generate`, also returning the latent truth (regions, launches, series)."""
    if not isinstance(config, SyntheticConfig):
        raise ValueError(f"`config` must be a SyntheticConfig. Received: config={config!r}")
    if config.num_events > MAX_EVENTS:
        raise ValueError(
            f"`num_events` must be <= {MAX_EVENTS} (the world is built in memory). "
            f"Received: num_events={config.num_events}"
        )
    rng = np.random.default_rng(config.seed)
    region_names, centres, region_weights = _regions(config.num_regions, rng)
    # ~25+ items per subcategory, so that most (subcategory, region) pairs have a store.
    subcats = _SUBCATEGORIES[: int(np.clip(config.num_items // 25, 4, len(_SUBCATEGORIES)))]
    users = _make_users(config.num_users, subcats, centres, region_weights, rng)
    items = _make_items(config.num_items, subcats, region_names, centres, region_weights, rng)
    sessions = _make_sessions(config.num_events, users, centres, rng)
    goals = _choose_goals(sessions, users, items, subcats, config.num_regions, rng)
    events = _expand_events(config.num_events, sessions, goals, items, rng)

    user_ids = _ids("u", config.num_users)
    item_ids = _ids("i", config.num_items)
    events_frame = pd.DataFrame(
        {
            schema.USER_ID: user_ids[events.user],
            schema.ITEM_ID: item_ids[events.item],
            schema.TIMESTAMP: events.timestamp,
            schema.EVENT_TYPE: np.asarray(EVENT_TYPES, dtype=object)[events.kind],
            schema.VALUE: np.where(events.kind == 3, items.price[events.item], np.nan),
            schema.LATITUDE: events.latitude,
            schema.LONGITUDE: events.longitude,
            schema.UTC_OFFSET: np.full(events.item.size, UTC_OFFSET_MINUTES, dtype=np.int32),
        }
    )
    items_frame = pd.DataFrame(
        {
            schema.ITEM_ID: item_ids,
            schema.TEXT: items.text,
            schema.CATEGORY: np.asarray([s.name for s in subcats], dtype=object)[items.subcat],
            schema.LATITUDE: items.latitude,
            schema.LONGITUDE: items.longitude,
            schema.PRICE: items.price,
        }
    )
    names = np.asarray(region_names + ("",), dtype=object)  # index -1 -> "" (no work place)
    users_frame = pd.DataFrame(
        {
            schema.USER_ID: user_ids,
            "age": users.age,
            "segment": np.asarray(list(_SEGMENTS), dtype=object)[users.segment],
            "home_region": names[users.home],
            "work_region": names[users.work],
        }
    )
    for frame in (events_frame, items_frame, users_frame):
        frame[schema.SOURCE_FILE] = SOURCE_FILE
        frame[schema.SOURCE_ROW] = np.arange(1, len(frame) + 1, dtype=np.int64)

    late = int(np.count_nonzero(items.launch > START_TIMESTAMP))
    notes = [
        f"synthetic world: {config.num_users} users, {config.num_items} items ({late} launched late), "
        f"{config.num_regions} regions around Bogotá (UTC-5), {len(events_frame)} events over "
        f"{SPAN_DAYS} days ending 2024-07-01 local, seed {config.seed}"
    ]
    logging.getLogger(__name__).info(notes[0])
    tables = schema.RawTables(
        name=NAME,
        events=events_frame,
        items=items_frame,
        users=users_frame,
        event_location_is_item_location=False,
        notes=notes,
    )
    return SyntheticWorld(
        tables=tables,
        region_names=region_names,
        region_centres=centres,
        user_home_region=users.home,
        user_work_region=users.work,
        item_region=items.region,
        item_launch=items.launch,
        item_next_in_series=items.next_in_series,
    )


# ----------------------------------------------------------------------------- world


def _ids(prefix: str, n: int) -> np.ndarray:
    """[n] object array of ids like "u00042"; at least 5 digits."""
    width = max(5, len(str(n - 1)))
    return np.asarray([f"{prefix}{i:0{width}d}" for i in range(n)], dtype=object)


def _regions(num_regions: int, rng: np.random.Generator) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """Names [R], centres [R, 2] (lat, lon) on a sunflower spiral, population shares [R]."""
    k = np.arange(num_regions)
    radius = _REGION_SPACING_DEG * np.sqrt(k + 0.5)
    angle = k * np.pi * (3.0 - np.sqrt(5.0))  # golden angle: evenly spread, no two close
    lat = _METRO_LAT + radius * np.sin(angle)
    # Longitude degrees are shorter away from the equator; keep spacing isotropic in km.
    lon = _METRO_LON + radius * np.cos(angle) / np.cos(np.radians(_METRO_LAT))
    names = tuple(
        _REGION_NAMES[i % len(_REGION_NAMES)] + ("" if i < len(_REGION_NAMES) else f" {i // len(_REGION_NAMES) + 1}")
        for i in range(num_regions)
    )
    weights = rng.dirichlet(np.full(num_regions, 4.0))
    return names, np.stack([lat, lon], axis=1), weights


def _top(subcat: _Subcategory) -> str:
    return subcat.name.split(schema.CATEGORY_SEPARATOR)[0]


def _around(centres: np.ndarray, sd: float, rng: np.random.Generator) -> np.ndarray:
    """[N, 2] points normally scattered (sd degrees of latitude) around `centres` [N, 2]."""
    noise = rng.normal(0.0, sd, size=centres.shape)
    noise[:, 1] /= np.cos(np.radians(_METRO_LAT))
    return centres + noise


class _Users(NamedTuple):
    segment: np.ndarray  # [U] int64
    age: np.ndarray  # [U] float64
    home: np.ndarray  # [U] int64 region
    work: np.ndarray  # [U] int64 region, -1 none
    home_xy: np.ndarray  # [U, 2] float64
    work_xy: np.ndarray  # [U, 2] float64 (home_xy for users without work)
    activity: np.ndarray  # [U] float64 relative session rate
    morning_peak: np.ndarray  # [U] float64 local hour
    evening_peak: np.ndarray  # [U] float64 local hour
    weekday_mix: np.ndarray  # [U, 4] morning / lunch / office hours / evening weights
    weekend_mix: np.ndarray  # [U, 3] late morning / afternoon / evening weights
    preference: np.ndarray  # [U, K] float64, rows sum to 1


def _make_users(
    num_users: int,
    subcats: tuple[_Subcategory, ...],
    centres: np.ndarray,
    region_weights: np.ndarray,
    rng: np.random.Generator,
) -> _Users:
    num_regions = len(centres)
    segment = rng.integers(len(_SEGMENTS), size=num_users)
    segment_age = np.array([age for _, age in _SEGMENTS.values()])
    age = np.clip(np.round(rng.normal(segment_age[segment], 8.0)), 18, 80).astype(np.float64)
    home = rng.choice(num_regions, size=num_users, p=region_weights)
    employed = rng.random(num_users) < _P_EMPLOYED
    work = np.where(employed, rng.choice(num_regions, size=num_users, p=region_weights), -1)
    home_xy = _around(centres[home], _PLACE_JITTER_DEG, rng)
    work_xy = np.where(employed[:, None], _around(centres[np.maximum(work, 0)], _PLACE_JITTER_DEG, rng), home_xy)

    boosted = np.array([[_top(s) in tops for s in subcats] for tops, _ in _SEGMENTS.values()])  # [7, K]
    # Sparse personal taste (Gamma 0.5) on top of the segment's categories.
    preference = rng.gamma(0.5, size=(num_users, len(subcats))) * np.where(boosted[segment], _SEGMENT_BOOST, 1.0)
    preference += 1e-9  # no all-zero rows
    preference /= preference.sum(axis=1, keepdims=True)
    return _Users(
        segment=segment,
        age=age,
        home=home,
        work=work,
        home_xy=home_xy,
        work_xy=work_xy,
        activity=rng.lognormal(0.0, 0.9, size=num_users),
        morning_peak=rng.uniform(6.5, 9.0, size=num_users),
        evening_peak=rng.uniform(18.5, 22.5, size=num_users),
        weekday_mix=rng.dirichlet([0.4, 0.4, 0.4, 1.0], size=num_users),
        weekend_mix=rng.dirichlet([0.5, 0.5, 0.7], size=num_users),
        preference=preference,
    )


class _Items(NamedTuple):
    subcat: np.ndarray  # [I] int64
    region: np.ndarray  # [I] int64 store region
    latitude: np.ndarray  # [I] float64
    longitude: np.ndarray  # [I] float64
    price: np.ndarray  # [I] float64
    popularity: np.ndarray  # [I] float64 relative appeal (late items boosted)
    launch: np.ndarray  # [I] int64 unix seconds
    next_in_series: np.ndarray  # [I] int64, -1 none
    text: np.ndarray  # [I] object str


def _make_items(
    num_items: int,
    subcats: tuple[_Subcategory, ...],
    region_names: tuple[str, ...],
    centres: np.ndarray,
    region_weights: np.ndarray,
    rng: np.random.Generator,
) -> _Items:
    num_subcats, num_regions = len(subcats), len(centres)
    # The first K items cover every subcategory and launch at the start, so every
    # subcategory always has something to sell.
    subcat = np.concatenate(
        [np.arange(num_subcats), rng.choice(num_subcats, size=num_items - num_subcats,
                                             p=rng.dirichlet(np.full(num_subcats, 10.0)))]
    )
    brand = rng.integers(len(_BRAND_TIER), size=num_items)
    feature = rng.integers(4, size=num_items)
    store_weights = 0.5 / num_regions + 0.5 * region_weights  # stores follow people, loosely
    region = rng.choice(num_regions, size=num_items, p=store_weights)
    xy = _around(centres[region], _PLACE_JITTER_DEG, rng)
    popularity = rng.lognormal(0.0, 1.0, size=num_items)
    late = rng.random(num_items) < _LATE_ITEM_SHARE
    late[:num_subcats] = False
    # Late launches spread over the last three quarters of the span, denser towards
    # the end (density ~ linear), so a temporal test split holds never-seen items.
    first_launch, last_launch = START_TIMESTAMP + SPAN_DAYS * 86_400 // 4, END_TIMESTAMP - 86_400
    late_launch = first_launch + (last_launch - first_launch) * np.sqrt(rng.random(num_items))
    launch = np.where(late, late_launch, START_TIMESTAMP).astype(np.int64)
    popularity = np.where(late, popularity * _LATE_ITEM_BOOST, popularity)

    # Series: a subcategory's items, in index order, form runs of 3-5 volumes of
    # one brand and genre; launch times are reordered so that volume k+1 never
    # launches before volume k.
    next_in_series = np.full(num_items, -1, dtype=np.int64)
    series_title = np.full(num_items, "", dtype=object)
    volume = np.zeros(num_items, dtype=np.int64)
    for k, sub in enumerate(subcats):
        if not sub.series:
            continue
        members = np.flatnonzero(subcat == k)
        start = 0
        while start < len(members):
            run = members[start : start + int(rng.integers(3, 6))]
            start += len(run)
            title = f"The {_SERIES_FIRST[rng.integers(len(_SERIES_FIRST))]} " + str(
                _SERIES_SECOND[sub.series][rng.integers(4)]
            )
            launch[run] = np.sort(launch[run])
            brand[run], feature[run] = brand[run[0]], feature[run[0]]
            next_in_series[run[:-1]] = run[1:]
            series_title[run] = title
            volume[run] = np.arange(1, len(run) + 1)

    tier = np.asarray(_BRAND_TIER)[brand]
    base_price = np.array([s.price for s in subcats])[subcat]
    price = np.floor(base_price * _TIER_PRICE[tier] * rng.lognormal(0.0, 0.25, size=num_items)) + 0.99
    material = rng.integers(3, size=num_items)
    noun = rng.integers(5, size=num_items)
    complement = rng.integers(2, size=num_items)
    by_name = {s.name: s for s in _SUBCATEGORIES}
    text = np.empty(num_items, dtype=object)
    for i in range(num_items):
        sub = subcats[subcat[i]]
        top = _top(sub)
        brand_name = _BRANDS[top][brand[i]]
        feat = sub.features[feature[i] % len(sub.features)]
        noun_word = sub.nouns[noun[i] % len(sub.nouns)]
        comp = by_name[sub.complements[complement[i] % len(sub.complements)]]
        comp_noun = comp.nouns[noun[i] % len(comp.nouns)]
        title = f"{brand_name} {feat} {noun_word}"
        if series_title[i]:
            title = f"{series_title[i]}, {sub.series} {volume[i]}: {brand_name} {feat} {noun_word}"
        text[i] = (
            f"{title}. {_TIER_WORDS[tier[i]]} {noun_word}, {sub.materials[material[i] % len(sub.materials)]}, "
            f"for {_USES[top]}. Pairs well with our {comp_noun}. "
            f"Category: {sub.name.replace(schema.CATEGORY_SEPARATOR, ' > ')}. "
            f"Pickup at our {region_names[region[i]]} store."
        )
    return _Items(
        subcat=subcat,
        region=region,
        latitude=xy[:, 0],
        longitude=xy[:, 1],
        price=price,
        popularity=popularity,
        launch=launch,
        next_in_series=next_in_series,
        text=text,
    )


# ----------------------------------------------------------------------------- sessions


class _Sessions(NamedTuple):
    """Sorted by (user, start); `first[u]` and `per_user[u]` index user u's sessions."""

    user: np.ndarray  # [S] int64
    start: np.ndarray  # [S] int64 unix seconds
    context: np.ndarray  # [S] int64 daypart * 2 + weekend
    region: np.ndarray  # [S] int64 where the user is
    latitude: np.ndarray  # [S] float64
    longitude: np.ndarray  # [S] float64
    first: np.ndarray  # [U] int64
    per_user: np.ndarray  # [U] int64


def _make_sessions(num_events: int, users: _Users, centres: np.ndarray, rng: np.random.Generator) -> _Sessions:
    num_users = len(users.activity)
    num_sessions = max(1, round(num_events / _EVENTS_PER_SESSION))
    share = users.activity / users.activity.sum()
    if num_sessions >= num_users:  # everybody shows up at least once
        count = 1 + rng.multinomial(num_sessions - num_users, share)
    else:
        count = rng.multinomial(num_sessions, share)
    user = np.repeat(np.arange(num_users), count)

    local_midnight = START_TIMESTAMP + UTC_OFFSET_MINUTES * 60  # as local seconds since epoch
    weekday_of_day = (local_midnight // 86_400 + np.arange(SPAN_DAYS) + 3) % 7  # 1970-01-01 was a Thursday
    day_weight = np.where(weekday_of_day >= 5, 1.25, 1.0)
    day = rng.choice(SPAN_DAYS, size=num_sessions, p=day_weight / day_weight.sum())
    weekend = weekday_of_day[day] >= 5

    # Local hour from the user's rhythm: pick a mixture component, then the hour.
    pick = rng.random(num_sessions)[:, None]
    weekday_comp = (pick > np.cumsum(users.weekday_mix, axis=1)[user]).sum(axis=1)
    weekend_comp = (pick > np.cumsum(users.weekend_mix, axis=1)[user]).sum(axis=1)
    noise = rng.standard_normal(num_sessions)
    weekday_hour = np.choose(
        np.minimum(weekday_comp, 3),
        [users.morning_peak[user] + 0.6 * noise, 12.5 + 0.6 * noise, rng.uniform(9.0, 17.0, num_sessions),
         users.evening_peak[user] + 1.0 * noise],
    )
    weekend_hour = np.choose(
        np.minimum(weekend_comp, 2),
        [10.5 + 1.2 * noise, 15.0 + 1.8 * noise, users.evening_peak[user] + 0.5 + 1.2 * noise],
    )
    hour = np.mod(np.where(weekend, weekend_hour, weekday_hour), 24.0)
    start = START_TIMESTAMP + day * 86_400 + (hour * 3600).astype(np.int64)
    daypart = np.select([(hour >= 5) & (hour < 10), (hour >= 10) & (hour < 16), (hour >= 16) & (hour < 21)],
                        [0, 1, 2], default=3)

    at_work = (users.work[user] >= 0) & ~weekend & (hour >= 9) & (hour < 17) & (rng.random(num_sessions) < _P_AT_WORK)
    away = ~at_work & (rng.random(num_sessions) < _P_AWAY)
    away_region = rng.integers(len(centres), size=num_sessions)
    region = np.where(at_work, users.work[user], np.where(away, away_region, users.home[user]))
    xy = np.where(at_work[:, None], users.work_xy[user], users.home_xy[user])
    xy = np.where(away[:, None], _around(centres[away_region], _PLACE_JITTER_DEG, rng), xy)

    order = np.lexsort((start, user))
    return _Sessions(
        user=user[order],
        start=start[order],
        context=(daypart * 2 + weekend)[order],
        region=region[order],
        latitude=xy[order, 0],
        longitude=xy[order, 1],
        first=np.cumsum(count) - count,
        per_user=count,
    )


class _ItemSampler:
    """Draws launched items of a subcategory by popularity, preferring a region.

    Items are sorted by (subcategory, region), so a subcategory's items and each
    (subcategory, region) group are contiguous runs of one cumulative-weight
    array; a draw is one `searchsorted`. Items not launched at the draw's time
    are redrawn; after `_MAX_REJECTION_ROUNDS` the draw falls back to the
    subcategory's launch catalogue (never empty).
    """

    def __init__(self, items: _Items, num_subcats: int, num_regions: int, rng: np.random.Generator):
        self._items, self._rng, self._num_regions = items, rng, num_regions
        group = items.subcat * num_regions + items.region
        self._order = np.argsort(group, kind="stable")
        self._cum = np.cumsum(items.popularity[self._order])
        self._cum_before = np.concatenate([[0.0], self._cum])
        counts = np.bincount(group, minlength=num_subcats * num_regions)
        self._group_end = np.cumsum(counts)
        self._group_start = self._group_end - counts
        base = np.flatnonzero(items.launch <= START_TIMESTAMP)
        self._base_order = base[np.argsort(items.subcat[base], kind="stable")]
        self._base_cum = np.cumsum(items.popularity[self._base_order])
        base_counts = np.bincount(items.subcat[base], minlength=num_subcats)
        self._base_end = np.cumsum(base_counts)
        self._base_start = self._base_end - base_counts

    def sample(self, subcat: np.ndarray, region: np.ndarray, time: np.ndarray) -> np.ndarray:
        """Item indices [N] int64 for subcat [N], current region [N], unix time [N]."""
        rng, r = self._rng, self._num_regions
        group = subcat * r + region
        local = (rng.random(len(subcat)) < _P_LOCAL) & (self._group_end[group] > self._group_start[group])
        lo = np.where(local, self._group_start[group], self._group_start[subcat * r])
        hi = np.where(local, self._group_end[group], self._group_end[subcat * r + r - 1])
        out = np.full(len(subcat), -1, dtype=np.int64)
        pending = np.arange(len(subcat))
        for _ in range(_MAX_REJECTION_ROUNDS):
            p_lo, p_hi = lo[pending], hi[pending]
            w_lo, w_hi = self._cum_before[p_lo], self._cum_before[p_hi]
            value = w_lo + rng.random(len(pending)) * (w_hi - w_lo)
            pos = np.clip(np.searchsorted(self._cum, value, side="right"), p_lo, p_hi - 1)
            item = self._order[pos]
            ok = self._items.launch[item] <= time[pending]
            out[pending[ok]] = item[ok]
            pending = pending[~ok]
            if not len(pending):
                return out
        b_lo, b_hi = self._base_start[subcat[pending]], self._base_end[subcat[pending]]
        before = np.where(b_lo > 0, self._base_cum[np.maximum(b_lo - 1, 0)], 0.0)
        value = before + rng.random(len(pending)) * (self._base_cum[b_hi - 1] - before)
        pos = np.clip(np.searchsorted(self._base_cum, value, side="right"), b_lo, b_hi - 1)
        out[pending] = self._base_order[pos]
        return out


class _Goals(NamedTuple):
    kind: np.ndarray  # [S] int64 _FRESH ... _RESTOCK
    subcat: np.ndarray  # [S] int64 the session's subcategory
    item: np.ndarray  # [S] int64 the goal item
    depth: np.ndarray  # [S] int64 funnel depth reached on the goal item, 1 (view) .. 4 (purchase)
    sampler: _ItemSampler
    complement_table: np.ndarray  # [K, C] int64 complements of each subcategory, padded by repetition
    complement_count: np.ndarray  # [K] int64 number of distinct complements


def _choose_goals(
    sessions: _Sessions,
    users: _Users,
    items: _Items,
    subcats: tuple[_Subcategory, ...],
    num_regions: int,
    rng: np.random.Generator,
) -> _Goals:
    """Runs the per-user Markov chain of session goals (module docstring, steps 1-5).

    The chain is sequential per user, so the loop runs over a user's k-th
    session, vectorised across all users that have one.
    """
    num_sessions, num_users, num_subcats = len(sessions.user), len(users.activity), len(subcats)
    num_items = len(items.subcat)
    sampler = _ItemSampler(items, num_subcats, num_regions, rng)

    # Fresh goals do not depend on history: draw them all at once from the
    # preference reweighted by time of day.
    context_weight = np.array(
        [[w[d] * (w[4] if weekend else 1.0) for d in range(4) for weekend in (0, 1)]
         for w in (_DAYPART_WEIGHTS[_top(s)] for s in subcats)]
    )  # [K, 8]
    fresh = np.empty(num_sessions, dtype=np.int64)
    for lo in range(0, num_sessions, 65_536):  # bounded [chunk, K] temporaries
        sl = slice(lo, lo + 65_536)
        weight = np.cumsum(users.preference[sessions.user[sl]] * context_weight[:, sessions.context[sl]].T, axis=1)
        fresh[sl] = (rng.random(len(weight))[:, None] * weight[:, -1:] > weight).sum(axis=1)
    fresh = np.minimum(fresh, num_subcats - 1)

    active = {s.name: k for k, s in enumerate(subcats)}
    complements = [[active[c] for c in s.complements if c in active] or [k] for k, s in enumerate(subcats)]
    width = max(len(c) for c in complements)
    complement_table = np.array([c + c[:1] * (width - len(c)) for c in complements])  # [K, width]
    complement_count = np.array([len(c) for c in complements])
    restock_seconds = np.array([s.restock_days * 86_400 for s in subcats], dtype=np.float64)

    restock_item = np.full(num_users, -1, dtype=np.int64)
    restock_due = np.zeros(num_users, dtype=np.int64)
    series_next = np.full(num_users, -1, dtype=np.int64)
    bought_subcat = np.full(num_users, -1, dtype=np.int64)  # last session's purchase, -1 none
    last_subcat = np.full(num_users, -1, dtype=np.int64)
    owned: set[int] = set()  # user * num_items + item of durables bought

    kind = np.empty(num_sessions, dtype=np.int64)
    goal_subcat = np.empty(num_sessions, dtype=np.int64)
    goal_item = np.empty(num_sessions, dtype=np.int64)
    converted = np.empty(num_sessions, dtype=bool)
    draws = rng.random((num_sessions, 6))
    by_count = np.argsort(-sessions.per_user, kind="stable")
    for k in range(int(sessions.per_user.max(initial=0))):
        u = by_count[: np.count_nonzero(sessions.per_user > k)]  # users with a k-th session
        s = sessions.first[u] + k
        t, d = sessions.start[s], draws[s]
        restock = (restock_item[u] >= 0) & (t >= restock_due[u]) & (d[:, 0] < _P_REPURCHASE)
        nxt = series_next[u]
        series = ~restock & (nxt >= 0) & (items.launch[np.maximum(nxt, 0)] <= t) & (d[:, 1] < _P_SERIES)
        free = ~restock & ~series
        complement = free & (bought_subcat[u] >= 0) & (d[:, 2] < _P_COMPLEMENT)
        cont = free & ~complement & (bought_subcat[u] < 0) & (last_subcat[u] >= 0) & (d[:, 3] < _P_CONTINUE)
        k_kind = np.select([restock, series, complement, cont], [_RESTOCK, _SERIES, _COMPLEMENT, _CONTINUE], _FRESH)

        from_subcat = np.maximum(bought_subcat[u], 0)
        pick = (d[:, 4] * complement_count[from_subcat]).astype(np.int64)
        sub = np.select([complement, cont], [complement_table[from_subcat, pick], last_subcat[u]], fresh[s])
        item = np.where(restock, restock_item[u], np.where(series, nxt, -1))
        fixed = item >= 0
        sub = np.where(fixed, items.subcat[np.maximum(item, 0)], sub)
        free_idx = np.flatnonzero(~fixed)
        item[free_idx] = sampler.sample(sub[free_idx], sessions.region[s[free_idx]], t[free_idx])
        conv = d[:, 5] < _P_CONVERT[k_kind]
        # Nobody buys the same durable twice: such a session browses but does not buy.
        durable = np.flatnonzero(conv & (restock_seconds[sub] == 0))
        keys = u[durable] * num_items + item[durable]
        owns = np.zeros(len(u), dtype=bool)
        owns[durable] = np.fromiter((key in owned for key in keys.tolist()), dtype=bool, count=len(keys))
        conv &= ~owns
        owned.update(keys[conv[durable]].tolist())

        kind[s], goal_subcat[s], goal_item[s], converted[s] = k_kind, sub, item, conv
        last_subcat[u] = sub
        bought_subcat[u] = np.where(conv, sub, -1)
        item_next = items.next_in_series[item]
        # Buying (or already owning) the pending volume moves on to the one after it.
        series_next[u] = np.where(
            (conv | owns) & (item == nxt), item_next, np.where(conv & (item_next >= 0), item_next, nxt)
        )
        consumable = conv & (restock_seconds[sub] > 0)
        restock_item[u] = np.where(consumable, item, restock_item[u])
        period = restock_seconds[sub] * rng.uniform(0.7, 1.3, size=len(u))
        restock_due[u] = np.where(consumable, t + period.astype(np.int64), restock_due[u])

    # Sessions that do not convert stop at view, click or add_to_cart.
    stop = rng.random(num_sessions)
    depth = np.where(converted, 4, np.select([stop < 0.2, stop < 0.55], [3, 2], 1))
    return _Goals(
        kind=kind,
        subcat=goal_subcat,
        item=goal_item,
        depth=depth,
        sampler=sampler,
        complement_table=complement_table,
        complement_count=complement_count,
    )


class _Events(NamedTuple):
    user: np.ndarray  # [E] int64
    item: np.ndarray  # [E] int64
    kind: np.ndarray  # [E] int64 index into EVENT_TYPES
    timestamp: np.ndarray  # [E] int64 unix seconds
    latitude: np.ndarray  # [E] float64
    longitude: np.ndarray  # [E] float64


def _expand_events(
    num_events: int, sessions: _Sessions, goals: _Goals, items: _Items, rng: np.random.Generator
) -> _Events:
    """Turns goals into funnel events, adding browse slots to reach `num_events`."""
    num_sessions = len(sessions.user)
    # Browsing: other items of the goal's subcategory, each a view and maybe a
    # click (1 + _P_EXTRA_CLICK events on average). Restocks barely browse.
    budget = max(0, num_events - int(goals.depth.sum()))
    weight = np.where(goals.kind == _RESTOCK, 0.15, 1.0) * rng.lognormal(0.0, 0.5, size=num_sessions)
    extra = rng.multinomial(round(budget / (1.0 + _P_EXTRA_CLICK)), weight / weight.sum())
    slots = 1 + extra
    goal_pos = (rng.random(num_sessions) * slots).astype(np.int64)
    slot_session = np.repeat(np.arange(num_sessions), slots)
    slot_rank = np.arange(len(slot_session)) - np.repeat(np.cumsum(slots) - slots, slots)
    is_goal = slot_rank == goal_pos[slot_session]
    slot_item = np.where(is_goal, goals.item[slot_session], -1)
    browse = np.flatnonzero(~is_goal)
    browse_session = slot_session[browse]
    browse_subcat = goals.subcat[browse_session]
    # A few browsed items come from a complementary subcategory ("goes well with").
    pick = (rng.random(len(browse)) * goals.complement_count[browse_subcat]).astype(np.int64)
    browse_subcat = np.where(
        rng.random(len(browse)) < _P_BROWSE_COMPLEMENT, goals.complement_table[browse_subcat, pick], browse_subcat
    )
    slot_item[browse] = goals.sampler.sample(
        browse_subcat, sessions.region[browse_session], sessions.start[browse_session]
    )
    slot_depth = np.where(is_goal, goals.depth[slot_session], 1 + (rng.random(len(slot_session)) < _P_EXTRA_CLICK))

    event_slot = np.repeat(np.arange(len(slot_session)), slot_depth)
    kind = np.arange(len(event_slot)) - np.repeat(np.cumsum(slot_depth) - slot_depth, slot_depth)
    session = slot_session[event_slot]
    per_session = np.bincount(session, minlength=num_sessions)
    session_first = np.cumsum(per_session) - per_session
    gap = np.floor(_GAP_MIN[kind] + rng.exponential(_GAP_MEAN[kind])).astype(np.int64)
    gap[session_first] = 0  # every session has >= 1 event
    elapsed = np.cumsum(gap)
    elapsed -= elapsed[session_first][session]
    timestamp = sessions.start[session] + elapsed
    # A session running past the end of the log is moved earlier as a whole.
    overrun = np.maximum(0, timestamp[session_first + per_session - 1] - (END_TIMESTAMP - 1))
    timestamp -= overrun[session]

    xy = np.stack([sessions.latitude[session], sessions.longitude[session]], axis=1)
    xy = _around(xy, _EVENT_JITTER_DEG, rng)
    order = np.argsort(timestamp, kind="stable")  # a log in time order, like a real export
    return _Events(
        user=sessions.user[session][order],
        item=slot_item[event_slot][order],
        kind=kind[order],
        timestamp=timestamp[order],
        latitude=xy[order, 0],
        longitude=xy[order, 1],
    )
