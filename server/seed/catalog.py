"""The real-world vocabulary of seeded data: metropolitan areas, task categories, trades."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Metro:
    name: str
    state: str
    lat: float
    lng: float
    radius_km: float
    weight: float  # share of users and tasks (roughly the metro population, millions)


METROS = (
    Metro("New York", "NY", 40.7128, -74.0060, 35, 19.5),
    Metro("Los Angeles", "CA", 34.0522, -118.2437, 40, 13.2),
    Metro("Chicago", "IL", 41.8781, -87.6298, 35, 9.5),
    Metro("Dallas", "TX", 32.7767, -96.7970, 40, 7.6),
    Metro("Houston", "TX", 29.7604, -95.3698, 40, 7.1),
    Metro("Washington", "DC", 38.9072, -77.0369, 30, 6.3),
    Metro("Philadelphia", "PA", 39.9526, -75.1652, 30, 6.2),
    Metro("Miami", "FL", 25.7617, -80.1918, 35, 6.1),
    Metro("Atlanta", "GA", 33.7490, -84.3880, 35, 6.1),
    Metro("Boston", "MA", 42.3601, -71.0589, 30, 4.9),
    Metro("Phoenix", "AZ", 33.4484, -112.0740, 35, 4.9),
    Metro("San Francisco", "CA", 37.7749, -122.4194, 30, 4.7),
    Metro("Detroit", "MI", 42.3314, -83.0458, 30, 4.4),
    Metro("Seattle", "WA", 47.6062, -122.3321, 30, 4.0),
    Metro("Minneapolis", "MN", 44.9778, -93.2650, 30, 3.7),
    Metro("San Diego", "CA", 32.7157, -117.1611, 25, 3.3),
    Metro("Tampa", "FL", 27.9506, -82.4572, 30, 3.2),
    Metro("Denver", "CO", 39.7392, -104.9903, 30, 3.0),
    Metro("Baltimore", "MD", 39.2904, -76.6122, 25, 2.8),
    Metro("St. Louis", "MO", 38.6270, -90.1994, 25, 2.8),
    Metro("Charlotte", "NC", 35.2271, -80.8431, 25, 2.7),
    Metro("San Antonio", "TX", 29.4241, -98.4936, 25, 2.6),
    Metro("Portland", "OR", 45.5152, -122.6784, 25, 2.5),
    Metro("Austin", "TX", 30.2672, -97.7431, 25, 2.4),
    Metro("Las Vegas", "NV", 36.1699, -115.1398, 25, 2.3),
    Metro("Nashville", "TN", 36.1627, -86.7816, 25, 2.0),
    Metro("Salt Lake City", "UT", 40.7608, -111.8910, 20, 1.3),
)

TRADES = ("electrician", "plumber", "hvac_technician", "carpenter", "locksmith")


@dataclass(frozen=True, slots=True)
class Category:
    name: str
    median_dollars: float
    titles: tuple[str, ...]
    trade: str | None = None  # the licence most such tasks require
    trade_share: float = 0.0


CATEGORIES = (
    Category(
        "CLEANING",
        90,
        ("Deep clean a 2-bedroom apartment", "Move-out cleaning", "Clean the garage"),
    ),
    Category(
        "MOVING",
        150,
        ("Help load a moving truck", "Move a couch to the 3rd floor", "Carry boxes to storage"),
    ),
    Category(
        "HANDYMAN", 110, ("Hang shelves and a TV", "Fix a sticking door", "Patch drywall holes")
    ),
    Category(
        "ELECTRICAL",
        180,
        ("Install a ceiling fan", "Replace light switches", "Add an outdoor outlet"),
        "electrician",
        0.8,
    ),
    Category(
        "PLUMBING",
        160,
        ("Fix a leaking kitchen sink", "Replace a toilet", "Unclog a shower drain"),
        "plumber",
        0.8,
    ),
    Category(
        "HVAC",
        250,
        ("Service the AC unit", "Replace a thermostat", "Clean furnace ducts"),
        "hvac_technician",
        0.9,
    ),
    Category("YARD_WORK", 70, ("Mow and edge the lawn", "Rake leaves", "Trim hedges")),
    Category(
        "DELIVERY",
        35,
        ("Pick up groceries", "Deliver a package across town", "Collect a furniture order"),
    ),
    Category(
        "ASSEMBLY", 75, ("Assemble an IKEA wardrobe", "Build a bed frame", "Put together a desk")
    ),
    Category(
        "PET_CARE",
        45,
        ("Walk a dog twice today", "Feed cats for the weekend", "Take a dog to the vet"),
    ),
    Category("PAINTING", 220, ("Paint a bedroom", "Paint a fence", "Touch up kitchen cabinets")),
    Category(
        "ERRANDS",
        30,
        ("Return items to a store", "Wait in line for a permit", "Drop off dry cleaning"),
    ),
)


def select_metros(region: str | None) -> tuple[Metro, ...]:
    """The metros a --region names: a state code ('CA') or a metro name ('Los Angeles')."""
    if not region:
        return METROS
    wanted = {part.strip().lower() for part in region.split(",") if part.strip()}
    chosen = tuple(m for m in METROS if m.state.lower() in wanted or m.name.lower() in wanted)
    if not chosen:
        names = ", ".join(sorted({m.state for m in METROS}))
        raise ValueError(
            f"no metro matches --region {region!r}; use a state ({names}) or a metro name"
        )
    return chosen


# fmt: off
FIRST_NAMES = ("Ava", "Liam", "Mia", "Noah", "Zoe", "Omar", "Ines", "Kai", "Lena", "Ravi", "Sofia",
               "Mateo", "Hana", "Eli", "Nora", "Jin", "Amara", "Diego", "Priya", "Theo")
LAST_NAMES = ("Garcia", "Smith", "Nguyen", "Johnson", "Patel", "Kim", "Brown", "Lopez", "Khan",
              "Williams", "Chen", "Davis", "Rossi", "Okafor", "Silva", "Müller", "Haddad", "Cohen")
STREETS = ("Main", "Oak", "Maple", "Cedar", "Pine", "Elm", "Washington", "Lake", "Hill", "Park",
           "Sunset", "Lincoln", "Jackson", "Franklin", "Highland", "Mission", "River", "Union")
STREET_SUFFIXES = ("St", "Ave", "Blvd", "Rd", "Ln", "Dr", "Way", "Ct")

# Task states by share of all tasks (an established marketplace: most work is done).
TASK_STATE_SHARES = (("OPEN", 0.30), ("ACCEPTED", 0.07), ("PROOF_SUBMITTED", 0.04),
                     ("DISPUTED", 0.01), ("COMPLETED", 0.46), ("CANCELLED", 0.07),
                     ("EXPIRED", 0.05))
TRUST_TIER_SHARES = ((1, 0.55), (2, 0.28), (3, 0.12), (4, 0.05))
# fmt: on

# Task messaging: what posters and workers say to each other (no contact details: HX812).
POSTER_LINES = ("Hi! Thanks for taking this.", "The gate code is at the front desk.",
                "Is tomorrow morning still good for you?", "Parking is on the street, sorry.",
                "The dog is friendly, don't worry.", "Great, see you then.",
                "Could you bring a ladder?", "Thanks, that looks perfect!")  # fmt: skip
WORKER_LINES = ("On my way, about 20 minutes out.", "I have all the tools I need.",
                "Running a little late, traffic is bad.", "All done, photos are in the proof.",
                "Which entrance should I use?", "Tomorrow at 9 works for me.",
                "I'll need about two hours.", "Thanks for the clear instructions!")  # fmt: skip
