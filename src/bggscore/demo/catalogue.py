"""Synthetic BoardGameGeek-like catalogue for ``bggscore demo`` and the benchmarks.

``generate_catalogue`` builds a frame with exactly the columns and dtypes of the warehouse table
``analytics.games_features`` (``GAMES_FEATURES_SCHEMA``). Games come from a small generative model:
an archetype (party, euro, wargame, ...) picks real BGG category and mechanic names; a latent
complexity follows from them and drives playtime, minimum age and the description; the rating
depends on complexity, year, mechanics and designers; users_rated on rating and age. So a model
trained on the demo data has real signal to find. People, publishers and game series are invented
names with a heavy-tailed (Zipf-like) popularity, so frequency-filtered one-hot columns keep some.

``refresh_catalogue`` simulates one daily warehouse refresh of such a frame: some games change
features, some only statistics, a few new games appear, and array order moves for free.

Everything is vectorised (numpy + polars): list columns are built from flat code arrays and
offsets, text by filling templates column-wise, so a million games take seconds. No row, name or
description of a real game is used; only the shape of the real sample was studied.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
import polars as pl

from bggscore.errors import InputError

GAMES_FEATURES_SCHEMA: dict[str, pl.DataType] = {
    "game_id": pl.Int64(),
    "name": pl.String(),
    "year_published": pl.Float64(),
    "bayes_average": pl.Float64(),
    "average_rating": pl.Float64(),
    "average_weight": pl.Float64(),
    "users_rated": pl.Int64(),
    "hurdle": pl.Int64(),
    "geek_rating": pl.Float64(),
    "complexity": pl.Float64(),
    "rating": pl.Float64(),
    "log_users_rated": pl.Float64(),
    "num_weights": pl.Int64(),
    "min_players": pl.Int64(),
    "max_players": pl.Int64(),
    "min_playtime": pl.Int64(),
    "max_playtime": pl.Int64(),
    "min_age": pl.Int64(),
    "image": pl.String(),
    "thumbnail": pl.String(),
    "description": pl.String(),
    "categories": pl.List(pl.String()),
    "mechanics": pl.List(pl.String()),
    "publishers": pl.List(pl.String()),
    "designers": pl.List(pl.String()),
    "artists": pl.List(pl.String()),
    "families": pl.List(pl.String()),
    "last_updated": pl.Datetime("us", "UTC"),
}
LIST_COLUMNS = ("categories", "mechanics", "publishers", "designers", "artists", "families")

UTC = timezone.utc  # datetime.UTC needs Python 3.11

# Fixed clocks, not the wall clock, so the same arguments always give the same frame.
DEFAULT_NOW = datetime(2026, 1, 1, tzinfo=UTC)
DEFAULT_REFRESH_NOW = datetime(2026, 1, 2, tzinfo=UTC)

# BGG-like geek rating: shrink toward 5.5 with 2000 dummy votes (the defaults of the bayesian
# geek-rating model in the domain notes; the real sample implies ~2,400); unranked below 30 votes.
BAYES_PRIOR_RATING = 5.5
BAYES_PRIOR_VOTES = 2000
BAYES_MIN_VOTES = 30
HURDLE_VOTES = 25

ID_SPAN = 500_000  # BGG ids run to ~475k; larger catalogues stretch the range
IMAGE_URL = "https://cf.geekdo-images.com/demo/"
UNCREDITED = "(Uncredited)"
PUBLISHER_SPECIALS = ("(Self-Published)", "(Web published)", "(Unknown)")
DESCRIPTION_CHUNK = 200_000  # rows of text built at once; bounds peak memory

# ---------------------------------------------------------------------------------------------
# Archetypes: the hidden kind of game that ties features and outcomes together.

MIN_PLAYER_VALUES = np.array([1, 2, 3, 4, 5, 6])
MAX_PLAYER_VALUES = np.array([1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 15, 20, 30, 99])


@dataclass(frozen=True)
class Archetype:
    """A kind of game; the numbers shift the latent traits of its games."""

    name: str
    share: float
    weight: float  # base complexity, 1-5
    rating: float  # shift of the true rating
    users: float  # shift of log users_rated
    playtime: float  # shift of log playtime
    age: float  # shift of min_age
    mechanic_spread: float  # negative binomial p for the mechanic count: lower means more
    min_players: tuple[float, ...]  # weights over MIN_PLAYER_VALUES
    max_players: tuple[float, ...]  # weights over MAX_PLAYER_VALUES


# fmt: off
ARCHETYPES = (
    Archetype("party", 0.10, 1.00, -0.25, 0.2, -0.45, 0.5, 0.55,
              (1, 20, 45, 25, 6, 3), (0, 0, 0, 3, 4, 18, 5, 25, 18, 10, 5, 6, 3, 3)),
    Archetype("family", 0.20, 1.35, -0.15, 0.2, -0.10, 0.0, 0.50,
              (18, 72, 8, 2, 0, 0), (0, 4, 2, 40, 22, 22, 3, 5, 1, 1, 0, 0, 0, 0)),
    Archetype("children", 0.10, 1.00, -0.60, -0.3, -0.30, -2.5, 0.60,
              (12, 78, 8, 2, 0, 0), (0, 3, 2, 45, 8, 32, 2, 6, 1, 1, 0, 0, 0, 0)),
    Archetype("abstract", 0.08, 1.65, -0.20, -0.4, 0.00, 0.0, 0.55,
              (5, 93, 2, 0, 0, 0), (1, 78, 2, 14, 1, 3, 0, 1, 0, 0, 0, 0, 0, 0)),
    Archetype("card", 0.20, 1.35, -0.05, 0.0, -0.20, 0.0, 0.50,
              (15, 70, 12, 3, 0, 0), (0, 14, 3, 25, 18, 22, 5, 8, 3, 2, 0, 0, 0, 0)),
    Archetype("euro", 0.12, 2.35, 0.15, 0.3, 0.10, 0.5, 0.36,
              (40, 50, 9, 1, 0, 0), (1, 6, 3, 45, 27, 12, 2, 4, 0, 0, 0, 0, 0, 0)),
    Archetype("thematic", 0.12, 2.05, 0.25, 0.3, 0.15, 1.0, 0.36,
              (40, 50, 8, 2, 0, 0), (2, 10, 2, 38, 20, 20, 2, 5, 1, 1, 0, 0, 0, 0)),
    Archetype("wargame", 0.08, 2.55, 0.20, -0.3, 0.45, 1.0, 0.40,
              (18, 80, 2, 0, 0, 0), (4, 72, 2, 12, 2, 6, 1, 2, 0, 0, 0, 0, 0, 0)),
)
# fmt: on
ARCHETYPE_CODE = {a.name: i for i, a in enumerate(ARCHETYPES)}

# ---------------------------------------------------------------------------------------------
# Real BGG vocabularies: (name, popularity, complexity effect, rating effect, favoured by).

# fmt: off
MECHANICS: tuple[tuple[str, float, float, float, str], ...] = (
    ("Dice Rolling", 27, -0.10, 0.00, "family thematic wargame children"),
    ("Hand Management", 26, 0.15, 0.05, "card euro family"),
    ("Set Collection", 18, -0.10, 0.00, "card family children"),
    ("Variable Player Powers", 16, 0.25, 0.15, "thematic euro"),
    ("Open Drafting", 11, 0.10, 0.05, "euro card"),
    ("Grid Movement", 10, 0.10, 0.00, "abstract thematic wargame"),
    ("Tile Placement", 10, 0.00, 0.05, "family euro abstract"),
    ("Solo / Solitaire Game", 10, 0.30, 0.15, "euro thematic wargame"),
    ("Cooperative Game", 10, 0.10, 0.15, "thematic family"),
    ("Simulation", 10, 0.80, 0.00, "wargame"),
    ("Hexagon Grid", 9, 0.70, 0.00, "wargame"),
    ("Area Majority / Influence", 8, 0.40, 0.10, "euro wargame"),
    ("Modular Board", 8, 0.10, 0.00, "thematic family"),
    ("Team-Based Game", 6, -0.20, 0.00, "party wargame"),
    ("Action Points", 6, 0.40, 0.10, "euro thematic"),
    ("Simultaneous Action Selection", 6, 0.10, 0.00, "euro party"),
    ("Take That", 6, -0.40, -0.15, "card party"),
    ("Worker Placement", 6, 0.70, 0.20, "euro"),
    ("Auction / Bidding", 5, 0.30, 0.00, "euro"),
    ("Area Movement", 5, 0.30, 0.00, "wargame"),
    ("Push Your Luck", 5, -0.40, 0.00, "family party"),
    ("Point to Point Movement", 5, 0.10, 0.00, "thematic wargame"),
    ("Roll / Spin and Move", 5, -0.70, -0.80, "children family"),
    ("Variable Set-up", 5, 0.30, 0.10, "euro thematic"),
    ("Memory", 4, -0.60, -0.40, "children"),
    ("Player Elimination", 4, -0.20, -0.20, "party card"),
    ("Network and Route Building", 4, 0.30, 0.10, "euro family"),
    ("Deck, Bag, and Pool Building", 4, 0.30, 0.15, "card euro"),
    ("Scenario / Mission / Campaign Game", 4, 0.50, 0.30, "thematic wargame"),
    ("Storytelling", 4, -0.30, 0.00, "party thematic"),
    ("Trading", 4, 0.10, 0.00, "family euro"),
    ("Pattern Building", 4, 0.00, 0.05, "abstract euro"),
    ("End Game Bonuses", 3.5, 0.50, 0.15, "euro"),
    ("Pick-up and Deliver", 3, 0.40, 0.05, "euro"),
    ("Square Grid", 3, 0.00, 0.00, "abstract"),
    ("Action Queue", 3, 0.50, 0.10, "euro"),
    ("Movement Points", 3, 0.50, 0.00, "wargame"),
    ("Paper-and-Pencil", 3, -0.40, 0.00, "party family"),
    ("Secret Unit Deployment", 3, 0.50, 0.00, "wargame"),
    ("Pattern Recognition", 3, -0.50, -0.10, "children party abstract"),
    ("Contracts", 2.6, 0.60, 0.10, "euro"),
    ("Voting", 2.6, -0.50, -0.10, "party"),
    ("Race", 2.4, -0.30, -0.10, "family children"),
    ("Campaign / Battle Card Driven", 2.3, 0.80, 0.20, "wargame"),
    ("Betting and Bluffing", 2.3, -0.40, 0.00, "party card"),
    ("Market", 2.3, 0.40, 0.05, "euro"),
    ("Income", 2.0, 0.50, 0.05, "euro"),
    ("Trick-taking", 2.0, -0.10, 0.00, "card"),
    ("Ratio / Combat Results Table", 2.0, 0.80, 0.00, "wargame"),
    ("Events", 1.8, 0.30, 0.00, "wargame thematic"),
    ("Deduction", 1.8, -0.20, 0.00, "party family"),
    ("Role Playing", 1.8, 0.30, 0.10, "thematic"),
    ("Real-Time", 1.8, -0.60, -0.10, "party children"),
    ("Line of Sight", 1.7, 0.60, 0.05, "wargame thematic"),
    ("Zone of Control", 1.6, 0.80, 0.00, "wargame"),
    ("Variable Phase Order", 1.4, 0.50, 0.10, "euro"),
    ("Track Movement", 1.4, 0.00, 0.00, "family"),
    ("Multi-Use Cards", 1.4, 0.40, 0.10, "card euro"),
    ("Tech Trees / Tech Tracks", 1.4, 0.70, 0.20, "euro thematic"),
    ("Traitor Game", 1.3, -0.10, 0.00, "party thematic"),
    ("Layering", 1.3, 0.00, 0.05, "abstract family"),
    ("Communication Limits", 1.2, -0.30, 0.10, "party family"),
    ("Connections", 1.2, 0.00, 0.00, "abstract"),
    ("Commodity Speculation", 1.2, 0.60, 0.05, "euro"),
    ("Hidden Roles", 1.2, -0.30, 0.05, "party"),
    ("Closed Drafting", 1.5, 0.20, 0.10, "card euro"),
    ("Card Play Conflict Resolution", 1.1, 0.20, 0.00, "card thematic"),
    ("Stacking and Balancing", 1.1, -0.70, -0.20, "children"),
    ("Chit-Pull System", 1.1, 0.60, 0.00, "wargame"),
    ("Die Icon Resolution", 1.0, 0.00, 0.00, "thematic"),
    ("Acting", 1.0, -0.80, -0.20, "party"),
    ("Rondel", 1.0, 0.70, 0.10, "euro"),
    ("Line Drawing", 1.0, -0.30, 0.00, "abstract party"),
    ("Turn Order: Stat-Based", 1.0, 0.50, 0.00, "euro"),
    ("Map Addition", 1.0, 0.10, 0.00, "thematic"),
    ("Deck Construction", 0.9, 0.40, 0.10, "card"),
    ("Hidden Movement", 0.9, 0.20, 0.05, "thematic"),
    ("Investment", 0.9, 0.60, 0.05, "euro"),
    ("Worker Placement, Different Worker Types", 0.9, 0.90, 0.20, "euro"),
    ("Victory Points as a Resource", 0.9, 0.40, 0.00, "euro"),
    ("Stock Holding", 0.9, 0.70, 0.05, "euro"),
    ("Semi-Cooperative Game", 0.8, 0.40, 0.00, "thematic"),
    ("Negotiation", 0.8, 0.00, 0.00, "party wargame"),
    ("Worker Placement with Dice Workers", 0.8, 0.50, 0.10, "euro"),
    ("Re-rolling and Locking", 0.6, -0.30, 0.00, "family"),
    ("Speed Matching", 0.6, -0.80, -0.10, "children party"),
    ("Programmed Movement", 0.6, 0.30, 0.00, "thematic"),
    ("Melding and Splaying", 0.6, 0.10, 0.00, "card"),
    ("Bingo", 0.7, -0.80, -0.30, "children"),
    ("Legacy Game", 0.4, 0.50, 0.40, "thematic euro"),
)

CATEGORIES: tuple[tuple[str, float, float, float, str], ...] = (
    ("Card Game", 34, -0.20, 0.00, "card party family"),
    ("Fantasy", 14, 0.20, 0.10, "thematic"),
    ("Wargame", 14, 0.90, 0.10, "wargame"),
    ("Dice", 10, -0.20, -0.05, "family"),
    ("Economic", 9, 0.70, 0.10, "euro"),
    ("Party Game", 9, -0.90, -0.10, "party"),
    ("Science Fiction", 8, 0.30, 0.10, "thematic"),
    ("Animals", 8, -0.40, 0.00, "family children"),
    ("Fighting", 7, 0.20, 0.00, "thematic"),
    ("Abstract Strategy", 6, 0.00, 0.00, "abstract"),
    ("Deduction", 6, -0.10, 0.00, "party family"),
    ("Bluffing", 6, -0.30, 0.00, "party card"),
    ("Adventure", 6, 0.20, 0.10, "thematic"),
    ("Miniatures", 6, 0.40, 0.15, "thematic wargame"),
    ("Children's Game", 6, -1.00, -0.40, "children"),
    ("Exploration", 5, 0.20, 0.05, "thematic"),
    ("World War II", 5, 0.60, 0.00, "wargame"),
    ("Humor", 5, -0.60, -0.10, "party"),
    ("Medieval", 5, 0.30, 0.00, "euro"),
    ("Action / Dexterity", 5, -0.80, -0.10, "children party"),
    ("Movies / TV / Radio theme", 5, -0.30, -0.20, "family"),
    ("City Building", 4, 0.40, 0.10, "euro"),
    ("Puzzle", 4, -0.20, 0.00, "abstract"),
    ("Horror", 4, 0.10, 0.05, "thematic"),
    ("Real-time", 4, -0.50, 0.00, "party"),
    ("Negotiation", 4, 0.20, 0.00, "euro"),
    ("Ancient", 3.4, 0.40, 0.00, "euro wargame"),
    ("Nautical", 3, 0.30, 0.00, "euro"),
    ("Industry / Manufacturing", 3, 0.70, 0.10, "euro"),
    ("Territory Building", 3, 0.30, 0.05, "euro"),
    ("Racing", 3, -0.40, 0.00, "family"),
    ("Print & Play", 3, -0.20, -0.10, "card"),
    ("Political", 2.7, 0.60, 0.05, "wargame"),
    ("Murder / Mystery", 2.6, -0.10, 0.00, "party"),
    ("Transportation", 2.5, 0.50, 0.05, "euro"),
    ("Sports", 2.5, -0.20, -0.10, "family"),
    ("Trains", 2.2, 0.60, 0.10, "euro"),
    ("Mythology", 2.1, 0.20, 0.05, "thematic"),
    ("Collectible Components", 1.9, 0.20, 0.00, "card"),
    ("Civilization", 1.9, 0.90, 0.20, "euro thematic"),
    ("Novel-based", 1.8, 0.10, 0.00, "thematic"),
    ("Aviation / Flight", 1.8, 0.40, 0.00, "wargame"),
    ("Educational", 1.8, -0.70, -0.30, "children"),
    ("Environmental", 1.7, 0.10, 0.05, "euro"),
    ("Comic Book / Strip", 1.7, -0.10, 0.00, "thematic"),
    ("Farming", 1.6, 0.40, 0.10, "euro"),
    ("Trivia", 1.5, -0.90, -0.40, "party"),
    ("Video Game Theme", 1.5, 0.00, 0.00, "thematic"),
    ("Travel", 1.4, -0.20, 0.00, "family"),
    ("Modern Warfare", 1.4, 0.70, 0.00, "wargame"),
    ("Pirates", 1.3, 0.00, 0.00, "family thematic"),
    ("Memory", 1.3, -0.90, -0.30, "children"),
    ("Space Exploration", 1.2, 0.60, 0.15, "thematic euro"),
    ("Napoleonic", 1.1, 0.90, 0.05, "wargame"),
    ("Spies / Secret Agents", 1.1, -0.10, 0.00, "party"),
    ("Renaissance", 1.1, 0.70, 0.10, "euro"),
    ("Word Game", 1.1, -0.80, -0.10, "party"),
    ("Number", 1.0, -0.50, -0.10, "card children"),
    ("Electronic", 0.9, -0.60, -0.20, "children"),
    ("Math", 0.8, -0.60, -0.20, "children"),
    ("American West", 0.8, 0.00, 0.00, "family"),
    ("Music", 0.8, -0.60, 0.00, "party"),
    ("Zombies", 0.7, 0.00, 0.00, "thematic"),
    ("Prehistoric", 0.7, 0.10, 0.00, "family"),
    ("World War I", 0.7, 0.80, 0.00, "wargame"),
    ("Mature / Adult", 0.5, -0.60, -0.20, "party"),
    ("Medical", 0.5, 0.20, 0.00, "euro"),
    ("American Civil War", 0.5, 0.80, 0.00, "wargame"),
    ("Maze", 0.5, -0.50, -0.10, "children"),
    ("Mafia", 0.5, 0.00, 0.00, "party"),
    ("Religious", 0.3, 0.00, -0.10, "family"),
    ("Vietnam War", 0.3, 0.80, 0.00, "wargame"),
)
# fmt: on

# Settings that category words turn into in descriptions, so text carries the same signal.
CATEGORY_SETTINGS = {
    "Fantasy": "a realm of dragons, wizards and ancient magic",
    "Wargame": "a hard-fought military campaign",
    "Economic": "a booming market economy",
    "Party Game": "a lively evening with friends",
    "Science Fiction": "a distant future among the stars",
    "Animals": "a forest full of animals",
    "Fighting": "an arena where champions clash",
    "Abstract Strategy": "a clean board of pure strategy",
    "Deduction": "a web of clues and suspects",
    "Bluffing": "a table full of bluffs and lies",
    "Adventure": "a perilous adventure",
    "Miniatures": "a battlefield of detailed miniatures",
    "Children's Game": "a colorful world for young players",
    "Exploration": "uncharted lands waiting to be explored",
    "World War II": "the European theater of the Second World War",
    "Humor": "a silly world where nothing goes as planned",
    "Medieval": "a medieval kingdom of lords and peasants",
    "City Building": "a growing city",
    "Horror": "a haunted town where something lurks in the dark",
    "Ancient": "the ancient Mediterranean",
    "Nautical": "the open sea",
    "Industry / Manufacturing": "the age of factories and steam",
    "Racing": "a race to the finish line",
    "Political": "the corridors of political power",
    "Murder / Mystery": "a country house with a murder to solve",
    "Trains": "the golden age of railways",
    "Mythology": "a world of gods and legends",
    "Civilization": "the rise of a civilization through the ages",
    "Farming": "a small family farm",
    "Space Exploration": "the race to explore the solar system",
    "Pirates": "the Caribbean in the age of pirates",
    "Zombies": "a city overrun by zombies",
    "Napoleonic": "the battlefields of the Napoleonic wars",
    "Sports": "a stadium on match day",
    "Trivia": "a quiz night",
    "World War I": "the trenches of the First World War",
    "American West": "a dusty frontier town in the American West",
    "American Civil War": "the campaigns of the American Civil War",
    "Vietnam War": "the jungles of the Vietnam War",
    "Modern Warfare": "a modern battlefield of tanks and drones",
    "Renaissance": "a Renaissance city of artists and bankers",
    "Aviation / Flight": "the skies above the clouds",
    "Prehistoric": "a prehistoric valley",
    "Travel": "a journey around the world",
    "Transportation": "a growing network of roads and rails",
    "Novel-based": "the pages of a classic novel",
    "Spies / Secret Agents": "a world of spies and secret agents",
    "Medical": "a busy hospital",
    "Music": "a concert hall",
    "Environmental": "a fragile ecosystem",
    "Comic Book / Strip": "the pages of a comic book",
    "Movies / TV / Radio theme": "a famous film studio",
    "Video Game Theme": "a retro video game",
    "Mafia": "the gangster underworld",
}

# ---------------------------------------------------------------------------------------------
# Families, with BGG's prefixes; Admin: and Misc: are the leakage families a model must drop.

PLAYER_FAMILIES = {
    "solo_only": "Players: Solitaire Only Games",
    "solo_rules": "Players: Games with Solitaire Rules",
    "two_only": "Players: Two-Player Only Games",
    "wargame_two": "Players: Wargames with Rules Supporting Only Two Players",
}
CROWDFUNDING = (
    "Crowdfunding: Kickstarter",
    "Crowdfunding: Gamefound",
    "Crowdfunding: BackerKit",
    "Crowdfunding: Spieleschmiede",
    "Crowdfunding: Ulule",
)
ADMIN_FAMILIES = (
    "Admin: Better Description Needed!",
    "Admin: Upcoming Releases",
    "Admin: Game System Entries",
)
MISC_FAMILIES = (
    "Misc: LongPack Games",
    "Misc: Watch It Played How To Videos",
    "Misc: Dice Tower Hall of Fame",
    "Misc: Limited Replayability",
    "Misc: No Table Needed",
    "Misc: Lowest Score Wins",
)
DIGITAL_FAMILIES = (
    "Digital Implementations: Tabletopia",
    "Digital Implementations: Board Game Arena",
    "Digital Implementations: TableTop Simulator Mod (TTS)",
    "Digital Implementations: VASSAL",
    "Digital Implementations: Steam",
    "Digital Implementations: Yucata",
)
THEME_FAMILIES = tuple(
    "Theme: " + t
    for t in (
        "Food / Cooking", "Anthropomorphic Animals", "Post-Apocalyptic", "Construction",
        "Superheroes", "Anime / Manga", "Tropical", "Time Travel", "Colonial", "Nature",
        "Pirates", "Dinosaurs", "Cats", "Robots", "Vikings", "Samurai", "Cthulhu Mythos",
        "Steampunk", "Cyberpunk", "Archaeology", "Gardening", "Witches", "Dragons", "Circus",
    )
)  # fmt: skip
COMPONENT_FAMILIES = tuple(
    "Components: " + c
    for c in (
        "Miniatures", "Wooden pieces & boards", "Dice with Icons",
        "Map (Continental / National scale)", "3-Dimensional (3D)", "Multi-Use Cards",
        "Hexagonal Tiles", "Sand Timers", "Polyhedral (not D6) dice",
        "Meeples (Animal) / Animeeples", "Polyominoes", "Standees", "Metal Coins",
    )
)  # fmt: skip
MECHANISM_FAMILIES = tuple(
    "Mechanism: " + m
    for m in (
        "Tableau Building", "Campaign Games", "Flip-and-Write", "Dice Drafting",
        "Tower Stacking", "Judging Games", "4X", "Legacy", "Engine Building", "Roll-and-Write",
    )
)  # fmt: skip
COUNTRY_FAMILIES = tuple(
    "Country: " + c
    for c in (
        "USA", "France", "Germany", "Japan", "Italy", "United Kingdom", "China", "Spain",
        "Russia", "Poland", "India", "Egypt", "Greece", "Netherlands", "Canada", "Brazil",
        "Mexico", "Australia", "Korea", "Scotland",
    )
)  # fmt: skip
ANIMAL_FAMILIES = tuple(
    "Animals: " + a
    for a in ("Cats", "Dogs", "Birds", "Bears", "Foxes", "Horses", "Frogs", "Bees", "Owls")
)
STATIC_FAMILIES: tuple[str, ...] = (
    tuple(PLAYER_FAMILIES.values())
    + CROWDFUNDING
    + ADMIN_FAMILIES
    + MISC_FAMILIES
    + DIGITAL_FAMILIES
    + THEME_FAMILIES
    + COMPONENT_FAMILIES
    + MECHANISM_FAMILIES
    + COUNTRY_FAMILIES
    + ANIMAL_FAMILIES
)
FAMILY_CODE = {name: i for i, name in enumerate(STATIC_FAMILIES)}
SERIES_PREFIX = "Game: "

# ---------------------------------------------------------------------------------------------
# Word pools for invented names (games, people, publishers).

# fmt: off
NAME_ADJECTIVES = (
    "Lost", "Crimson", "Hidden", "Iron", "Golden", "Silent", "Broken", "Forgotten", "Ancient",
    "Wild", "Burning", "Frozen", "Sunken", "Shattered", "Eternal", "Savage", "Clockwork",
    "Emerald", "Obsidian", "Little", "Grand", "Secret", "Cursed", "Radiant", "Rising", "Fallen",
    "Hollow", "Gilded", "Stormy", "Twisted", "Merry", "Brave", "Tiny", "Mighty", "Scarlet",
    "Silver", "Copper", "Midnight", "Distant", "Endless", "Sacred", "Rusty", "Velvet", "Quiet",
    "Hungry", "Lucky", "Wandering", "Stolen", "Northern", "Southern",
)
NAME_NOUNS = (
    "Cities", "Kingdoms", "Empires", "Harbors", "Dice", "Dragons", "Crowns", "Towers", "Gardens",
    "Islands", "Rivers", "Legends", "Heroes", "Merchants", "Lanterns", "Castles", "Tides",
    "Forges", "Caravans", "Orchards", "Relics", "Shadows", "Storms", "Wolves", "Foxes", "Bees",
    "Monks", "Pirates", "Knights", "Robots", "Stars", "Planets", "Rockets", "Trains", "Canals",
    "Bridges", "Markets", "Spices", "Potions", "Runes", "Tombs", "Temples", "Villages", "Farms",
    "Vineyards", "Mines", "Galleons", "Airships", "Colonies", "Dynasties", "Outposts",
    "Frontiers", "Expeditions", "Guilds", "Alchemists", "Mushrooms", "Cats", "Owls", "Beasts",
    "Giants", "Spirits", "Ghosts", "Witches", "Clans", "Tribes", "Riders", "Sails", "Lighthouses",
    "Quarries", "Bazaars",
)
NAME_PLACES = (
    "Azure", "Valdoria", "Kestrel Bay", "Mornhold", "Sablecrest", "Ostmark", "Velmora",
    "Thornwick", "Eldervale", "Brightwater", "Cinderfell", "Marrowdeep", "Halcyon",
    "Drakemoor", "Ironhaven", "Lunaris", "Pellucid", "Quillshire", "Ravenmere", "Saltmarsh",
    "Tarnholm", "Umberlee Coast", "Vantor", "Wyrmfall", "Zephyria", "Amberfield", "Blackreach",
    "Coral Reach", "Duskwood", "Everfrost", "Foxglove", "Greyhaven", "Hearthmoor", "Isenport",
    "Jadefall", "Kingsbridge", "Larkspur", "Mistral", "Northwatch", "Oakenshade",
)
NAME_SUBTITLES = (
    "Expansion", "Second Edition", "The Card Game", "The Dice Game", "Big Box", "Legacy",
    "Deluxe Edition", "Duel", "Revised Edition", "Anniversary Edition", "Junior", "Kids",
    "Rise of the Guilds", "The Lost Expedition", "Origins", "Tales", "Beyond the Sea",
)
FIRST_NAMES = (
    "Anna", "Ben", "Carla", "David", "Elena", "Felix", "Greta", "Hugo", "Ines", "Jonas", "Klara",
    "Lukas", "Maria", "Noah", "Olga", "Paul", "Rosa", "Simon", "Tara", "Ulrich", "Vera", "Walter",
    "Yuki", "Zoe", "Adam", "Bruno", "Chloe", "Daniel", "Emma", "Frank", "Gabriel", "Hannah",
    "Igor", "Julia", "Kenji", "Laura", "Marco", "Nina", "Oscar", "Petra", "Quentin", "Rafael",
    "Sofia", "Thomas", "Ursula", "Victor", "Wendy", "Xavier", "Yara", "Zack", "Alice", "Bernd",
    "Camille", "Dmitri", "Eva", "Fabio", "Gustav", "Helga", "Ivan", "Jana", "Karl", "Lea",
    "Martin", "Nadia", "Otto", "Pierre", "Rita", "Stefan", "Tomas", "Uwe", "Valentina", "Wilhelm",
    "Aiko", "Bjorn", "Carmen", "Diego", "Esther", "Finn", "Giulia", "Henrik", "Ingrid", "Jorge",
    "Kaito", "Lena", "Mateo", "Nils", "Olivia", "Pablo", "Renata", "Sven", "Teresa", "Umar",
    "Vincent", "Wei", "Yusuf", "Zofia", "Amir", "Beatrice", "Cyril", "Dora", "Emil", "Freya",
    "Gregor", "Hana", "Isaac", "Jakob", "Kasia", "Leon", "Mila", "Nathan", "Ola", "Priya",
    "Raj", "Sara", "Theo", "Una", "Viktor", "Wanda",
)
LAST_NAMES = (
    "Adler", "Baker", "Castell", "Dorn", "Eberhardt", "Fischer", "Gallo", "Hartmann", "Ivanov",
    "Jensen", "Keller", "Lange", "Moreau", "Novak", "Ortega", "Petrov", "Quint", "Rossi",
    "Schmidt", "Tanaka", "Ulmer", "Vogel", "Wagner", "Young", "Zeller", "Albrecht", "Bauer",
    "Costa", "Duval", "Engel", "Ferrari", "Gruber", "Hoffmann", "Ito", "Jovanovic", "Kowalski",
    "Lindqvist", "Martens", "Nakamura", "Olsen", "Pereira", "Richter", "Sato", "Torres",
    "Urban", "Varga", "Weber", "Yilmaz", "Ziegler", "Arnold", "Berger", "Carter", "Dietrich",
    "Evans", "Fuchs", "Garcia", "Horvath", "Ishikawa", "Jung", "Kraus", "Lambert", "Meyer",
    "Nilsson", "Oliveira", "Park", "Romano", "Schulz", "Thompson", "Unger", "Vidal", "Walsh",
    "Xu", "Yamada", "Zimmer", "Andersen", "Brandt", "Conti", "Dubois", "Eriksson", "Frey",
    "Giordano", "Hansen", "Iglesias", "Janssen", "Koch", "Lorenz", "Marino", "Neumann",
    "Orlov", "Pavlov", "Reyes", "Sorensen", "Takahashi", "Ulrich", "Vasquez", "Winter",
    "Yoshida", "Zanetti", "Abbott", "Blanc", "Carlsson", "Dekker", "Esposito", "Fontaine",
    "Gomez", "Holm", "Ivanova", "Kaiser", "Lehmann", "Molnar", "Nowak", "Otto", "Price",
    "Ramos", "Stein", "Tran", "Vos", "Wolff", "Brooks", "Chen", "Diaz", "Eder", "Fox", "Grant",
    "Haas", "Kim", "Lopez", "Mayer", "Nguyen", "Petersen", "Reed", "Silva", "Thorne", "Vance",
    "Ward", "Zhang", "Bishop", "Cole", "Drake", "Ellis", "Flores", "Graves", "Hale", "Kerr",
    "Lund", "Marsh", "Nash", "Pike", "Quinn", "Rowe", "Shaw", "Tate", "Voss", "Webb", "Moss",
)
PUBLISHER_WORDS = (
    "Red", "Blue", "Fox", "Owl", "Lucky", "Golden", "Meeple", "Pawn", "Dice", "Tower", "Castle",
    "Thunder", "Maple", "Cedar", "Raven", "Lantern", "Anchor", "Comet", "Pixel", "Tabletop",
    "Hearth", "Compass", "Beacon", "Cobalt", "Badger", "Otter", "Falcon", "Orchard", "Quill",
    "Harbor", "Summit", "Pine", "Willow", "Ember", "Nova", "Atlas", "Sparrow", "Marble", "Crown",
    "Tinker", "Puzzle", "Zephyr", "Oak", "Iron", "Silver", "Hex", "Token", "Card", "Board",
    "Rook", "Bishop", "Knight", "Dragon", "Griffin", "Unicorn", "Phoenix", "Kraken", "Wizard",
    "Rocket", "Lotus", "Tiger", "Panda", "Koala", "Bear", "Wolf", "Lynx", "Moose", "Stag", "Yak",
    "Sun", "Moon", "Star", "Cloud", "Rain", "Storm", "River", "Stone", "Forest", "Meadow",
)
PUBLISHER_SUFFIXES = (
    "Games", "Spiele", "Editions", "Studio", "Press", "Publishing", "Games Ltd.", "Verlag",
    "Jeux", "Board Games", "Entertainment", "Workshop", "Toys", "Giochi", "Juegos", "Hobby",
    "Interactive", "Design", "House", "Company",
)
# fmt: on

# ---------------------------------------------------------------------------------------------
# Description templates. Placeholders are filled column-wise; each appears once per template.

INTRO_TEMPLATES = (
    "{name} is {cat} game for {players}.",
    "In {name}, players compete in {theme}.",
    "{name} takes {players} into {theme}.",
    "&quot;{name}&quot; is {cat} game set in {theme}.",
    "Game description from the publisher:\n\n{name} is {cat} game for {players}.",
    "Welcome to {theme} - in {name}, it's up to {players} to make their mark.",
)
MECHANIC_TWO_TEMPLATES = (
    "Players rely on {mech1} and {mech2} to outscore their opponents.",
    "The core of the game combines {mech1} with {mech2}.",
    "Each turn you use {mech1}, while {mech2} shapes the long-term plan.",
    "It's a game of {mech1} and {mech2}, with a twist in every round.",
)
MECHANIC_ONE_TEMPLATES = (
    "At its heart this is a game of {mech1}.",
    "The game revolves around {mech1}.",
)
NO_MECHANIC_TEMPLATE = "There are no complicated rules to learn."
# Bins of latent complexity: below 1.8, 1.8-3.0, above 3.0.
WEIGHT_TEMPLATES = (
    (
        "The rules can be explained in a few minutes and a game takes about {time} minutes.",
        "It's quick, light and easy to teach, perfect for families and casual players.",
        "Simple rules and fast turns keep everyone involved.",
    ),
    (
        "Games last around {time} minutes and reward careful planning.",
        "Meaningful choices and a moderate rule set make it a good step up from gateway games.",
        "There's enough depth to reward repeated plays without overwhelming new players.",
    ),
    (
        "This is a demanding strategy game with deep decisions; a full game takes {time} minutes.",
        "Expect a thick rulebook, long-term planning and intricate interactions between systems.",
        "Veteran gamers will find a rich engine to build and many paths to victory.",
    ),
)
FLAVOR_TEMPLATES = {
    "party": (
        "Laughter is guaranteed as players bluff, guess and shout out their answers.",
        "The bigger the group, the better the game gets.",
        "Teams race against the sand timer to score as many points as possible.",
        "Nobody is ever out - everyone plays until the very last round.",
    ),
    "family": (
        "Beautiful components and a colorful board invite the whole family to play.",
        "Younger players can compete on an equal footing with adults.",
        "A gentle dose of luck keeps every game close until the end.",
        "Each game plays differently thanks to the variable setup.",
    ),
    "children": (
        "Children practise counting, colors and memory while they play.",
        "Chunky wooden pieces are easy for little hands to grab.",
        "Parents can join in, but the kids will often win.",
        "A short playing time fits young attention spans.",
    ),
    "abstract": (
        "There is no luck involved: every move is visible to both players.",
        "Simple rules hide a surprising depth of strategy.",
        "Pieces capture and block each other on a grid of squares.",
        "Perfect information rewards careful calculation.",
    ),
    "card": (
        "The deck holds cards in several suits, many with special abilities.",
        "Players draw, play and discard cards, trying to build the best hand.",
        "Clever card combinations can turn the game around in a single turn.",
        "A compact box makes it a great travel game.",
    ),
    "euro": (
        "Players collect resources, build production chains and turn goods into victory points.",
        "Timing matters: the best actions go to whoever claims them first.",
        "Buildings grant bonuses that combine into an efficient engine.",
        "Scoring happens at the end of each era, and the player with the most points wins.",
    ),
    "thematic": (
        "Heroes explore dungeons, fight monsters and find powerful treasure.",
        "A branching story unfolds over many sessions.",
        "Dice decide every fight, so fortune favours the bold.",
        "Detailed miniatures bring each battle to life on the table.",
    ),
    "wargame": (
        "The game covers the campaign at the operational level; each turn represents one week.",
        "Units are rated for attack, defense and movement, and combat uses a results table.",
        "Supply lines, terrain and weather all matter.",
        "Historical scenarios let players refight the major battles of the war.",
    ),
}
ENDING_TEMPLATES = (
    "The player with the most victory points at the end of the game wins.",
    "The game ends when the last card is drawn; the highest score wins.",
    "The first player to reach the goal wins the game.",
    "After the final round, players add up their points and the richest player wins.",
)
COOPERATIVE_ENDING = "Players win or lose together against the game."
DESCRIPTION_EDITS = (
    "The second printing includes revised rules and a solo mode.",
    "This edition adds new artwork and an expanded rulebook.",
    "The latest printing corrects errata and adds a promo card.",
    "Updated: the rulebook now includes a quick-start guide.",
)

MECHANIC_TEMPLATES = (*MECHANIC_TWO_TEMPLATES, *MECHANIC_ONE_TEMPLATES, NO_MECHANIC_TEMPLATE)
WEIGHT_SENTENCES = tuple(t for group in WEIGHT_TEMPLATES for t in group)
FLAVORS = tuple(t for a in ARCHETYPES for t in FLAVOR_TEMPLATES[a.name])  # 4 per archetype
ENDINGS = (*ENDING_TEMPLATES, COOPERATIVE_ENDING)

# fmt: off
PLAYTIME_GRID = np.array([
    1, 2, 3, 5, 10, 15, 20, 25, 30, 40, 45, 50, 60, 75, 90, 100, 120, 150, 180, 200, 240, 300,
    360, 420, 480, 600, 720, 900, 1200, 1440, 2400, 3000, 6000, 12000,
])
# fmt: on


# ---------------------------------------------------------------------------------------------
# Public API


def generate_catalogue(n_games: int, seed: int = 0, *, now: datetime | None = None) -> pl.DataFrame:
    """Return ``n_games`` synthetic games shaped like ``analytics.games_features``.

    Deterministic for a given (n_games, seed, now); ``now`` (default 2026-01-01 UTC) anchors
    the years and ``last_updated``. Rows are sorted by unique ``game_id``. Warehouse conventions
    hold: 0 in players, playtimes and min_age means unknown; average_rating and average_weight
    are 0 when nobody voted; bayes_average is 0 under 30 ratings; ~1% of descriptions are ''
    or NULL; unlike the real sample, games with fewer than 100 ratings are included.
    """
    if isinstance(n_games, bool) or not isinstance(n_games, int | np.integer) or n_games < 0:
        raise InputError(f"n_games must be a whole number >= 0, got {n_games!r}")
    n = int(n_games)
    clock = _utc(now, DEFAULT_NOW)
    rng = np.random.default_rng(seed)
    ids = _draw_ids(rng, n)
    years = _draw_years(rng, n, clock.year)
    pools = _synthetic_pools(rng, n)
    return _build(rng, ids, years, clock, pools)


def refresh_catalogue(
    frame: pl.DataFrame, fraction: float, seed: int = 1, *, now: datetime | None = None
) -> pl.DataFrame:
    """Return the whole catalogue after a simulated daily warehouse refresh.

    ``round(fraction * n)`` games change: the first half (rounded down) get one feature change
    (a mechanic added or removed, a category swapped, the description edited, the playtime
    changed, or a year set where it was NULL) with their stats untouched; the rest only get new
    stats (more ratings, moved averages, derived columns recomputed). About ``fraction / 10 * n``
    new games (at least one) are appended above the current maximum id. Changed and new rows get
    ``last_updated = now`` (default 2026-01-02 UTC). Some untouched games have their arrays
    reversed, which changes order but not content, as the warehouse does not keep array order.
    """
    if (
        isinstance(fraction, bool)
        or not isinstance(fraction, numbers.Real)
        or math.isnan(fraction)
        or not 0 < fraction <= 1
    ):
        raise InputError(f"--fraction must be in (0, 1], got {fraction}")
    _check_frame(frame)
    clock = _utc(now, DEFAULT_REFRESH_NOW)
    rng = np.random.default_rng(seed)
    frame = frame.select(list(GAMES_FEATURES_SCHEMA))
    n = frame.height
    n_changed = round(fraction * n)
    order = rng.permutation(n)
    feature_rows = np.sort(order[: n_changed // 2])
    stats_rows = np.sort(order[n_changed // 2 : n_changed])
    n_shuffled = min(n - n_changed, max(1, n_changed // 2))
    shuffled_rows = np.sort(order[n_changed : n_changed + n_shuffled])
    untouched = np.ones(n, dtype=bool)
    untouched[order[: n_changed + n_shuffled]] = False

    n_new = max(1, round(fraction / 10 * n))
    parts = [
        frame.filter(pl.Series(untouched)),
        _change_features(_take(frame, feature_rows), rng, clock),
        _change_stats(_take(frame, stats_rows), rng, clock),
        _reverse_arrays(_take(frame, shuffled_rows)),
        _new_games(frame, rng, n_new, clock),
    ]
    return _conform(pl.concat(parts).sort("game_id"))


# ---------------------------------------------------------------------------------------------
# Catalogue model


@dataclass(frozen=True)
class Pool:
    """Names to draw from and how likely each is (heavy-tailed)."""

    names: pl.Series
    p: np.ndarray


@dataclass(frozen=True)
class Pools:
    """The invented people, publishers and game series a catalogue draws from."""

    designers: Pool
    designer_talent: np.ndarray  # shifts the true rating of their games
    artists: Pool
    publishers: Pool
    series: Pool


@dataclass(frozen=True)
class Items:
    """A list column as flat (row, code) pairs, sorted by row then code, codes unique per row."""

    rows: np.ndarray
    codes: np.ndarray

    def counts(self, n: int) -> np.ndarray:
        return np.bincount(self.rows, minlength=n)

    def has(self, n: int, codes: list[int]) -> np.ndarray:
        mask = np.zeros(n, dtype=bool)
        mask[self.rows[np.isin(self.codes, codes)]] = True
        return mask


@dataclass(frozen=True)
class Traits:
    """Drawn traits of a batch of games that families and descriptions depend on."""

    arch: np.ndarray
    years: np.ndarray  # NaN = unknown
    this_year: int
    complexity: np.ndarray
    min_players: np.ndarray
    max_players: np.ndarray
    max_playtime: np.ndarray
    users: np.ndarray
    kickstarter: np.ndarray
    categories: Items
    mechanics: Items
    series: np.ndarray  # index into the series pool, -1 = none
    empty_text: np.ndarray
    short_text: np.ndarray


def _build(
    rng: np.random.Generator, ids: np.ndarray, years: np.ndarray, now: datetime, pools: Pools
) -> pl.DataFrame:
    """Draw every trait of the games with ``ids`` and published in ``years`` (NaN = unknown)."""
    n = len(ids)
    arch = rng.choice(len(ARCHETYPES), size=n, p=_normalise([a.share for a in ARCHETYPES]))
    categories = _draw_categories(rng, arch)
    mechanics = _draw_mechanics(rng, arch)
    complexity = _latent_complexity(rng, arch, categories, mechanics)
    min_players, max_players = _players(rng, arch)
    min_playtime, max_playtime = _playtimes(rng, arch, complexity)
    min_age = _min_age(rng, arch, complexity)
    kickstarter = _kickstarter(rng, arch, years)
    designers, talent, star = _draw_designers(rng, n, pools)

    true_rating = _true_rating(rng, arch, complexity, years, now.year, categories, mechanics)
    true_rating += talent + 0.3 * kickstarter
    users = _users_rated(rng, arch, true_rating, complexity, years, now.year, kickstarter, star)
    average_rating = _observed_rating(rng, true_rating, users)
    num_weights = rng.binomial(users, np.clip(np.exp(rng.normal(np.log(0.05), 0.55, n)), 0, 0.6))
    average_weight = _observed_weight(rng, complexity, num_weights)

    artists = _draw_artists(rng, n, pools)
    publishers = _draw_publishers(rng, users, pools)
    series = np.where(
        rng.random(n) < 0.12, rng.choice(len(pools.series.p), n, p=pools.series.p), -1
    )
    names = _game_names(rng, series, pools.series.names)

    # A few games have no description, a few only a stub (and then an admin family).
    text_u = rng.random(n)
    traits = Traits(
        arch=arch,
        years=years,
        this_year=now.year,
        complexity=complexity,
        min_players=min_players,
        max_players=max_players,
        max_playtime=max_playtime,
        users=users,
        kickstarter=kickstarter,
        categories=categories,
        mechanics=mechanics,
        series=series,
        empty_text=text_u < 0.01,
        short_text=(text_u >= 0.01) & (text_u < 0.05),
    )
    families = _draw_families(rng, traits)
    descriptions = _descriptions(rng, traits, names)

    frame = pl.DataFrame(
        {
            "game_id": pl.Series(ids, dtype=pl.Int64),
            "name": names,
            "year_published": pl.Series(years, dtype=pl.Float64, nan_to_null=True),
            "average_rating": average_rating,
            "average_weight": average_weight,
            "users_rated": users.astype(np.int64),
            "num_weights": num_weights.astype(np.int64),
            "min_players": min_players,
            "max_players": max_players,
            "min_playtime": min_playtime,
            "max_playtime": max_playtime,
            "min_age": min_age,
            "description": descriptions,
            "categories": _list_column(n, categories, _names(CATEGORIES)),
            "mechanics": _list_column(n, mechanics, _names(MECHANICS)),
            "publishers": _list_column(
                n, publishers, _with_first(PUBLISHER_SPECIALS, pools.publishers)
            ),
            "designers": _list_column(n, designers, _with_first((UNCREDITED,), pools.designers)),
            "artists": _list_column(n, artists, _with_first((UNCREDITED,), pools.artists)),
            "families": _list_column(n, families, _family_vocabulary(pools.series.names)),
            "last_updated": _last_updated(rng, n, now),
        }
    )
    no_image = pl.Series(rng.random(n) < 0.005)
    frame = frame.with_columns(
        image=pl.when(no_image)
        .then(None)
        .otherwise(IMAGE_URL + pl.col("game_id").cast(pl.String) + ".jpg"),
        thumbnail=pl.when(no_image)
        .then(None)
        .otherwise(IMAGE_URL + pl.col("game_id").cast(pl.String) + "_thumb.jpg"),
    )
    return _conform(_with_derived(frame))


def _with_derived(frame: pl.DataFrame) -> pl.DataFrame:
    """Recompute the columns that follow from users_rated, average_rating and average_weight."""
    users = pl.col("users_rated")
    bayes = (pl.col("average_rating") * users + BAYES_PRIOR_RATING * BAYES_PRIOR_VOTES) / (
        users + BAYES_PRIOR_VOTES
    )
    return frame.with_columns(
        bayes_average=pl.when(users >= BAYES_MIN_VOTES).then(bayes.round(5)).otherwise(0.0),
        hurdle=(users >= HURDLE_VOTES).cast(pl.Int64),
        log_users_rated=users.cast(pl.Float64).log1p(),
        complexity=pl.col("average_weight"),
        rating=pl.col("average_rating"),
    ).with_columns(geek_rating=pl.col("bayes_average"))


def _conform(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.select(pl.col(name).cast(dtype) for name, dtype in GAMES_FEATURES_SCHEMA.items())


def _draw_ids(rng: np.random.Generator, n: int) -> np.ndarray:
    span = max(ID_SPAN, math.ceil(n * 1.25))
    return np.sort(rng.choice(span, size=n, replace=False) + 1).astype(np.int64)


def _draw_years(rng: np.random.Generator, n: int, this_year: int) -> np.ndarray:
    """Years by quantile, mostly 1990 onward, with a tail back to antiquity; ~2.5% unknown.

    Ids are sorted, and BGG's newer entries are mostly newer games, so the rank of the id
    drives the year, blurred with noise.
    """
    probs = [0.0, 0.002, 0.006, 0.015, 0.04, 0.08, 0.14, 0.25, 0.45, 0.65, 0.85, 0.975, 0.997, 1.0]
    anchors = [-3000, 1000, 1850, 1930, 1965, 1982]
    modern = [-31, -18, -10, -5, -2, 0, 1, 1.999]  # relative to this year
    years_at = np.array(anchors + [this_year + y for y in modern], dtype=float)
    score = 0.8 * (np.arange(n) + 0.5) / max(n, 1) + 0.2 * rng.random(n)
    quantile = (np.argsort(np.argsort(score)) + 0.5) / max(n, 1)
    years = np.floor(np.interp(quantile, probs, years_at))
    years[rng.random(n) < 0.025] = np.nan
    return years


def _draw_categories(rng: np.random.Generator, arch: np.ndarray) -> Items:
    n = len(arch)
    counts = np.where(rng.random(n) < 0.015, 0, np.minimum(1 + rng.poisson(2.0, n), 8))
    return _draw_items(rng, arch, counts, _affinity(CATEGORIES))


def _draw_mechanics(rng: np.random.Generator, arch: np.ndarray) -> Items:
    n = len(arch)
    spread = np.array([a.mechanic_spread for a in ARCHETYPES])[arch]
    counts = np.where(rng.random(n) < 0.06, 0, np.minimum(1 + rng.negative_binomial(2, spread), 20))
    return _draw_items(rng, arch, counts, _affinity(MECHANICS))


def _affinity(vocabulary: tuple[tuple[str, float, float, float, str], ...]) -> np.ndarray:
    """Draw probabilities per archetype: popularity, boosted 8x for the archetypes it suits."""
    probs = np.array(
        [
            [pop * (8.0 if a.name in tags.split() else 1.0) for _, pop, _, _, tags in vocabulary]
            for a in ARCHETYPES
        ]
    )
    return probs / probs.sum(axis=1, keepdims=True)


def _draw_items(
    rng: np.random.Generator, groups: np.ndarray, counts: np.ndarray, probs: np.ndarray
) -> Items:
    """Draw ``counts[i]`` items for row i from ``probs[groups[i]]``; repeats collapse."""
    rows, codes = [], []
    for group in range(probs.shape[0]):
        members = np.flatnonzero(groups == group)
        k = counts[members]
        rows.append(np.repeat(members, k))
        codes.append(rng.choice(probs.shape[1], size=int(k.sum()), p=probs[group]))
    return _items(np.concatenate(rows), np.concatenate(codes), probs.shape[1])


def _items(rows: np.ndarray, codes: np.ndarray, width: int) -> Items:
    # Sort + drop repeats: much faster than np.unique's hashing on millions of keys.
    key = np.sort(rows.astype(np.int64) * width + codes.astype(np.int64))
    key = key[np.concatenate(([True], key[1:] != key[:-1]))] if len(key) else key
    return Items(rows=key // width, codes=key % width)


def _latent_complexity(
    rng: np.random.Generator, arch: np.ndarray, categories: Items, mechanics: Items
) -> np.ndarray:
    n = len(arch)
    mech_effect = _row_mean(n, mechanics, np.array([m[2] for m in MECHANICS]))
    cat_effect = _row_mean(n, categories, np.array([c[2] for c in CATEGORIES]))
    base = np.array([a.weight for a in ARCHETYPES])[arch]
    value = base + 0.8 * mech_effect + 0.5 * cat_effect + 0.06 * (mechanics.counts(n) - 3)
    return np.clip(value + rng.normal(0, 0.3, n), 1.0, 5.0)


def _players(rng: np.random.Generator, arch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    low = MIN_PLAYER_VALUES[_choice_by_group(rng, arch, [a.min_players for a in ARCHETYPES])]
    high = MAX_PLAYER_VALUES[_choice_by_group(rng, arch, [a.max_players for a in ARCHETYPES])]
    high = np.maximum(high, low)
    missing = rng.random(len(arch)) < 0.01  # zeros mean unknown, as in the warehouse
    return np.where(missing, 0, low), np.where(missing, 0, high)


def _playtimes(
    rng: np.random.Generator, arch: np.ndarray, complexity: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    n = len(arch)
    shift = np.array([a.playtime for a in ARCHETYPES])[arch]
    high = _snap_playtime(np.exp(2.35 + 0.7 * complexity + shift + rng.normal(0, 0.5, n)))
    low = np.where(rng.random(n) < 0.45, high, _snap_playtime(high * rng.uniform(0.25, 0.8, n)))
    missing = rng.random(n) < 0.015
    return np.where(missing, 0, low), np.where(missing, 0, high)


def _snap_playtime(minutes: np.ndarray) -> np.ndarray:
    """Nearest value of the usual box playtimes, in log space."""
    grid = np.log(PLAYTIME_GRID)
    edges = (grid[1:] + grid[:-1]) / 2
    return PLAYTIME_GRID[np.searchsorted(edges, np.log(np.maximum(minutes, 1)))]


def _min_age(rng: np.random.Generator, arch: np.ndarray, complexity: np.ndarray) -> np.ndarray:
    n = len(arch)
    shift = np.array([a.age for a in ARCHETYPES])[arch]
    raw = 5.0 + 2.0 * complexity + shift + rng.normal(0, 1.8, n)
    # Boxes mostly print even ages (8+, 10+, 12+, 14+).
    age = np.where(rng.random(n) < 0.8, np.round(raw / 2) * 2, np.round(raw))
    age = np.clip(age, 3, 18).astype(np.int64)
    return np.where(rng.random(n) < 0.04, 0, age)


def _kickstarter(rng: np.random.Generator, arch: np.ndarray, years: np.ndarray) -> np.ndarray:
    hobby = np.isin(arch, [ARCHETYPE_CODE["euro"], ARCHETYPE_CODE["thematic"]])
    chance = np.where(np.nan_to_num(years) >= 2012, np.where(hobby, 0.22, 0.07), 0.0)
    return (rng.random(len(arch)) < chance).astype(float)


def _draw_designers(
    rng: np.random.Generator, n: int, pools: Pools
) -> tuple[Items, np.ndarray, np.ndarray]:
    """Designers (code 0 = uncredited), the mean talent of each game's designers, and stars."""
    counts = rng.choice(7, size=n, p=[0.02, 0.68, 0.21, 0.06, 0.02, 0.007, 0.003])
    items = _draw_people(rng, counts, rng.random(n) < 0.03, pools.designers)
    talent = _row_mean(n, items, np.concatenate([[0.0], pools.designer_talent]))
    top = max(5, len(pools.designers.p) // 200)  # the few most prolific designers
    star = items.has(n, list(range(1, top + 1))).astype(float)
    return items, talent, star


def _draw_artists(rng: np.random.Generator, n: int, pools: Pools) -> Items:
    counts = np.where(rng.random(n) < 0.17, 0, np.minimum(rng.zipf(2.6, n), 30))
    return _draw_people(rng, counts, rng.random(n) < 0.01, pools.artists)


def _draw_people(
    rng: np.random.Generator, counts: np.ndarray, uncredited: np.ndarray, pool: Pool
) -> Items:
    """``counts[i]`` people from the pool (codes from 1), or only "(Uncredited)" (code 0)."""
    rows = np.repeat(np.arange(len(counts)), np.where(uncredited, 0, counts))
    codes = rng.choice(len(pool.p), size=len(rows), p=pool.p) + 1
    return _items(
        np.concatenate([rows, np.flatnonzero(uncredited)]),
        np.concatenate([codes, np.zeros(int(uncredited.sum()), np.int64)]),
        len(pool.p) + 1,
    )


def _draw_publishers(rng: np.random.Generator, users: np.ndarray, pools: Pools) -> Items:
    """Every game has a publisher; popular games have many (localised editions)."""
    n = len(users)
    special = rng.choice(4, size=n, p=[0.03, 0.02, 0.01, 0.94])  # 3 = a real publisher
    lam = np.exp(-1.5 + 0.4 * np.log1p(users)) * rng.lognormal(0, 0.7, n)
    counts = np.where(special < 3, 0, np.minimum(1 + rng.poisson(lam), 120))
    rows = np.repeat(np.arange(n), counts)
    pool, first = pools.publishers, len(PUBLISHER_SPECIALS)  # pool codes follow the specials
    codes = first + rng.choice(len(pool.p), size=len(rows), p=pool.p)
    marked = np.flatnonzero(special < 3)
    return _items(
        np.concatenate([rows, marked]),
        np.concatenate([codes, special[marked]]),
        first + len(pool.p),
    )


def _true_rating(
    rng: np.random.Generator,
    arch: np.ndarray,
    complexity: np.ndarray,
    years: np.ndarray,
    this_year: int,
    categories: Items,
    mechanics: Items,
) -> np.ndarray:
    n = len(arch)
    year_effect = np.where(
        np.isnan(years), -0.3, 0.035 * (np.clip(np.nan_to_num(years), 1960, this_year) - 2012)
    )
    mech_effect = _row_mean(n, mechanics, np.array([m[3] for m in MECHANICS]))
    cat_effect = _row_mean(n, categories, np.array([c[3] for c in CATEGORIES]))
    shift = np.array([a.rating for a in ARCHETYPES])[arch]
    value = 6.1 + 0.5 * (complexity - 2.0) + year_effect + shift + mech_effect + 0.5 * cat_effect
    return value + rng.normal(0, 0.5, n)


def _users_rated(
    rng: np.random.Generator,
    arch: np.ndarray,
    true_rating: np.ndarray,
    complexity: np.ndarray,
    years: np.ndarray,
    this_year: int,
    kickstarter: np.ndarray,
    star: np.ndarray,
) -> np.ndarray:
    """Lognormal counts: better, older (but not ancient), crowdfunded games get more ratings."""
    n = len(arch)
    age = this_year - np.nan_to_num(years, nan=this_year)
    age_effect = np.select(
        [np.isnan(years), age <= 0, age == 1, age == 2, age > 15],
        [-1.2, -1.8, -0.6, -0.2, np.maximum(0.6 - 0.02 * (age - 15), -0.5)],
        0.04 * age,  # ratings accumulate over the years
    )
    shift = np.array([a.users for a in ARCHETYPES])[arch]
    log_users = (
        1.6 + 0.7 * (true_rating - 6.1) + shift + age_effect + 0.1 * (complexity - 2)
        + 0.5 * kickstarter + 0.4 * star + rng.normal(0, 2.0, n)
    )  # fmt: skip
    return np.floor(np.expm1(np.clip(log_users, 0, 13))).astype(np.int64)


def _observed_rating(
    rng: np.random.Generator, true_rating: np.ndarray, users: np.ndarray
) -> np.ndarray:
    """Noisy for few votes, with the friends-and-family boost of tiny games; 0 when unrated."""
    noise = rng.normal(0, 1.4, len(users)) / np.sqrt(users + 1)
    value = np.clip(true_rating + noise + 0.6 * np.exp(-users / 15), 1, 10)
    return np.where(users > 0, np.round(value, 5), 0.0)


def _observed_weight(
    rng: np.random.Generator, complexity: np.ndarray, num_weights: np.ndarray
) -> np.ndarray:
    """Mean of integer votes 1-5; BGG reports 0 when nobody voted."""
    votes = np.maximum(num_weights, 1)
    value = complexity + rng.normal(0, 0.7, len(votes)) / np.sqrt(votes)
    value = np.clip(np.round(value * votes) / votes, 1, 5)
    return np.where(num_weights > 0, np.round(value, 4), 0.0)


def _draw_families(rng: np.random.Generator, t: Traits) -> Items:
    """Families from rules on the game's traits, plus its series ("Game: ...") if any."""
    n = len(t.arch)
    min_players, max_players, users = t.min_players, t.max_players, t.users
    year = np.nan_to_num(t.years)
    wargame = t.arch == ARCHETYPE_CODE["wargame"]
    category = {name: i for i, name in enumerate(_names(CATEGORIES).to_list())}
    mechanic = {name: i for i, name in enumerate(_names(MECHANICS).to_list())}
    everyone = np.ones(n, dtype=bool)
    # (which games, chance, options): one option per hit, the first options most often.
    rules: list[tuple[np.ndarray, float | np.ndarray, tuple[str, ...]]] = [
        ((min_players == 1) & (max_players == 1), 0.85, (PLAYER_FAMILIES["solo_only"],)),
        ((min_players == 1) & (max_players > 1), 0.55, (PLAYER_FAMILIES["solo_rules"],)),
        ((min_players == 2) & (max_players == 2), 0.75, (PLAYER_FAMILIES["two_only"],)),
        (wargame & (max_players == 2), 0.4, (PLAYER_FAMILIES["wargame_two"],)),
        (t.kickstarter > 0, 1.0, CROWDFUNDING[:1]),
        (year >= 2019, 0.03, CROWDFUNDING[1:]),
        (t.short_text, 0.7, ADMIN_FAMILIES[:1]),
        (year >= t.this_year, 0.5, ADMIN_FAMILIES[1:2]),
        (everyone, 0.005, ADMIN_FAMILIES[2:]),
        (everyone, 0.04, MISC_FAMILIES[:1]),
        (users >= 500, 0.25, MISC_FAMILIES[1:2]),
        (users >= 5000, 0.05, MISC_FAMILIES[2:3]),
        (everyone, 0.01, MISC_FAMILIES[3:]),
        (everyone, np.minimum(0.7, 0.015 * np.log1p(users) ** 1.5), DIGITAL_FAMILIES),
        (wargame, 0.15, DIGITAL_FAMILIES[3:4]),
        (everyone, 0.25, THEME_FAMILIES),
        (everyone, 0.25, COMPONENT_FAMILIES),
        # Popular games are catalogued more thoroughly.
        (users >= 100, 0.4, THEME_FAMILIES),
        (users >= 100, 0.4, COMPONENT_FAMILIES),
        (users >= 100, 0.25, COUNTRY_FAMILIES),
        (users >= 1000, 0.4, MECHANISM_FAMILIES),
        (t.categories.has(n, [category["Miniatures"]]), 0.6, COMPONENT_FAMILIES[:1]),
        (everyone, 0.08, MECHANISM_FAMILIES),
        (t.mechanics.has(n, [mechanic["Paper-and-Pencil"]]), 0.5, ("Mechanism: Roll-and-Write",)),
        (everyone, 0.12, COUNTRY_FAMILIES),
        (t.categories.has(n, [category["Animals"]]), 0.6, ANIMAL_FAMILIES),
    ]
    rows, codes = [], []
    for mask, chance, options in rules:
        hits = np.flatnonzero(mask & (rng.random(n) < chance))
        option_codes = np.array([FAMILY_CODE[o] for o in options])
        picks = rng.choice(len(options), size=len(hits), p=_zipf(len(options), 1.0, 1.0))
        rows.append(hits)
        codes.append(option_codes[picks])
    in_series = np.flatnonzero(t.series >= 0)
    rows.append(in_series)
    codes.append(len(STATIC_FAMILIES) + t.series[in_series])  # "Game: <series>" after the rest
    width = len(STATIC_FAMILIES) + int(t.series.max(initial=0)) + 1
    return _items(np.concatenate(rows), np.concatenate(codes), width)


def _family_vocabulary(series: pl.Series) -> pl.Series:
    return pl.concat([pl.Series(list(STATIC_FAMILIES), dtype=pl.String), SERIES_PREFIX + series])


# ---------------------------------------------------------------------------------------------
# Text


def _game_names(rng: np.random.Generator, series: np.ndarray, series_names: pl.Series) -> pl.Series:
    """Names from a small grammar; games of a series are '<series>: <subtitle>'."""
    n = len(series)
    templates = [
        "{adj} {noun}",
        "{noun} of {place}",
        "{adj} {noun} of {place}",
        "{place}",
        "{noun} & {other}",
        "The {adj} {noun}",
        "{place}: {subtitle}",
        "{adj} {noun}: {subtitle}",
        "{series}: {subtitle}",
    ]
    pattern = rng.choice(8, size=n, p=_normalise([30, 20, 10, 10, 8, 10, 6, 6]))
    pattern = np.where(series >= 0, 8, pattern)
    noun = rng.integers(0, len(NAME_NOUNS), n)
    fields = {
        "adj": _pick(NAME_ADJECTIVES, rng.integers(0, len(NAME_ADJECTIVES), n)),
        "noun": _pick(NAME_NOUNS, noun),
        "other": _pick(NAME_NOUNS, (noun + rng.integers(1, len(NAME_NOUNS), n)) % len(NAME_NOUNS)),
        "place": _pick(NAME_PLACES, rng.integers(0, len(NAME_PLACES), n)),
        "subtitle": _pick(NAME_SUBTITLES, rng.integers(0, len(NAME_SUBTITLES), n)),
        "series": _pick(series_names, np.maximum(series, 0)),
    }
    return _fill(templates, pattern, fields)


def _descriptions(rng: np.random.Generator, t: Traits, names: pl.Series) -> pl.Series:
    """English-like text from templates that name the game's category and mechanics.

    Heavier games get longer texts and heavier words; most texts carry BGG's HTML entities.
    """
    arch, complexity, mechanics = t.arch, t.complexity, t.mechanics
    n = len(arch)
    category_names = _names(CATEGORIES).to_list()
    mechanic_names = _names(MECHANICS).str.to_lowercase().to_list()
    cat, _ = _pick_two(rng, n, t.categories, len(CATEGORIES))
    mech1, mech2 = _pick_two(rng, n, mechanics, len(MECHANICS))
    cat_words = [_with_article(c.lower().removesuffix(" game")) for c in category_names]
    cat_words.append("a board")
    settings = [
        CATEGORY_SETTINGS.get(c, _with_article(c.lower()) + " setting") for c in category_names
    ]
    settings.append("a world of its own")
    mech_count = mechanics.counts(n)
    n_two, n_one = len(MECHANIC_TWO_TEMPLATES), len(MECHANIC_ONE_TEMPLATES)
    slots = {
        "intro": rng.integers(0, len(INTRO_TEMPLATES), n),
        "mech": np.select(
            [mech_count >= 2, mech_count == 1],
            [rng.integers(0, n_two, n), n_two + rng.integers(0, n_one, n)],
            n_two + n_one,
        ),
        "weight": np.digitize(complexity, [1.8, 3.0]) * 3 + rng.integers(0, 3, n),
        "flavor": arch * 4 + rng.integers(0, 4, n),
        "ending": np.where(
            mechanics.has(n, [_names(MECHANICS).to_list().index("Cooperative Game")]),
            len(ENDING_TEMPLATES),
            rng.integers(0, len(ENDING_TEMPLATES), n),
        ),
    }
    n_flavor = np.clip(np.round(1 + 0.8 * complexity + rng.normal(0, 1, n)), 0, 4)
    html = rng.random(n) < 0.6
    null_text = t.empty_text & (rng.random(n) < 0.4)  # missing text is '' or NULL in the warehouse

    parts: list[pl.Series] = []
    for start in range(0, n, DESCRIPTION_CHUNK):
        rows = slice(start, min(n, start + DESCRIPTION_CHUNK))
        fields = {
            "name": names[rows],
            "cat": _pick(cat_words, cat[rows]),
            "theme": _pick(settings, cat[rows]),
            "players": _players_text(t.min_players[rows], t.max_players[rows]),
            "mech1": _pick([*mechanic_names, ""], mech1[rows]),
            "mech2": _pick([*mechanic_names, ""], mech2[rows]),
            "time": pl.Series(np.where(t.max_playtime[rows] > 0, t.max_playtime[rows], 45)),
        }
        fields["time"] = fields["time"].cast(pl.String)
        flavor = slots["flavor"][rows]
        chunk = pl.DataFrame(
            {
                "intro": _fill(INTRO_TEMPLATES, slots["intro"][rows], fields),
                "mech": _fill(MECHANIC_TEMPLATES, slots["mech"][rows], fields),
                "weight": _fill(WEIGHT_SENTENCES, slots["weight"][rows], fields),
                "ending": _pick(ENDINGS, slots["ending"][rows]),
                **{
                    f"flavor{j}": _pick(FLAVORS, flavor - flavor % 4 + (flavor + j) % 4)
                    for j in range(4)
                },
                "n_flavor": n_flavor[rows],
                "short": t.short_text[rows],
                "html": html[rows],
                "empty": t.empty_text[rows],
                "null": null_text[rows],
            }
        )
        parts.append(chunk.select(_description_expr()).to_series())
    return pl.concat(parts) if parts else pl.Series("description", [], dtype=pl.String)


def _description_expr() -> pl.Expr:
    """Three paragraphs: intro and mechanics; flavor and weight; ending. Then BGG escaping."""
    flavors = [pl.when(pl.col("n_flavor") > j).then(pl.col(f"flavor{j}")) for j in range(4)]
    text = pl.concat_str(
        [
            pl.concat_str([pl.col("intro"), pl.col("mech")], separator=" "),
            pl.concat_str([*flavors, pl.col("weight")], separator=" ", ignore_nulls=True),
            pl.col("ending"),
        ],
        separator="\n\n",
    )
    text = pl.when(pl.col("short")).then(pl.col("intro")).otherwise(text)
    escaped = (
        text.str.replace_all("\n", "&#10;", literal=True)
        .str.replace_all("'", "&rsquo;", literal=True)
        .str.replace_all(" - ", " &mdash; ", literal=True)
    )
    text = pl.when(pl.col("html")).then(escaped).otherwise(text)
    text = pl.when(pl.col("empty")).then(pl.lit("")).otherwise(text)
    return (
        pl.when(pl.col("null"))
        .then(pl.lit(None, dtype=pl.String))
        .otherwise(text)
        .alias("description")
    )


def _players_text(low: np.ndarray, high: np.ndarray) -> pl.Series:
    """'2 to 4 players', '2 players', '1 player', or 'any number of players' when unknown."""
    frame = pl.DataFrame({"low": low, "high": high})
    low_text, high_text = pl.col("low").cast(pl.String), pl.col("high").cast(pl.String)
    return frame.select(
        pl.when(pl.col("low") == 0)
        .then(pl.lit("any number of players"))
        .when(pl.col("high") == 1)
        .then(pl.lit("1 player"))
        .when(pl.col("low") == pl.col("high"))
        .then(low_text + " players")
        .otherwise(low_text + " to " + high_text + " players")
    ).to_series()


def _with_article(word: str) -> str:
    return ("an " if word[0] in "aeiou" else "a ") + word


def _fill(
    templates: tuple[str, ...] | list[str], which: np.ndarray, fields: dict[str, pl.Series]
) -> pl.Series:
    """Row i gets ``templates[which[i]]`` with its ``{field}`` placeholders filled in."""
    used = [key for key in fields if any("{" + key + "}" in t for t in templates)]
    frame = pl.DataFrame({"t": _pick(templates, which), **{key: fields[key] for key in used}})
    expr = pl.col("t")
    for key in used:
        expr = expr.str.replace("{" + key + "}", pl.col(key), literal=True)
    return frame.select(expr).to_series()


# ---------------------------------------------------------------------------------------------
# Pools of invented names


def _synthetic_pools(rng: np.random.Generator, n: int) -> Pools:
    """Pools sized to the catalogue: most people have a game or two, a few have hundreds."""
    n_people, n_publishers, n_series = max(60, n // 2), max(30, n // 6), max(10, n // 80)
    talent = rng.normal(0, 0.3, n_people)
    talent[: max(5, n_people // 100)] += 0.25  # prolific designers tend to be good ones
    return Pools(
        designers=Pool(_person_names(rng, n_people), _zipf(n_people, 30, 1.0)),
        designer_talent=talent,
        artists=Pool(_person_names(rng, n_people), _zipf(n_people, 30, 1.0)),
        publishers=Pool(_publisher_names(rng, n_publishers), _zipf(n_publishers, 20, 1.05)),
        series=Pool(_series_names(rng, n_series), _zipf(n_series, 3, 1.0)),
    )


def _pools_from_frame(rng: np.random.Generator, frame: pl.DataFrame) -> Pools:
    """Reuse the people, publishers and series of an existing catalogue, as often as there."""
    designers = _pool_of(frame, "designers", (UNCREDITED,)) or Pool(
        _person_names(rng, 60), _zipf(60, 10, 1.0)
    )
    artists = _pool_of(frame, "artists", (UNCREDITED,)) or Pool(
        _person_names(rng, 60), _zipf(60, 10, 1.0)
    )
    publishers = _pool_of(frame, "publishers", PUBLISHER_SPECIALS) or Pool(
        _publisher_names(rng, 30), _zipf(30, 5, 1.05)
    )
    series = _pool_of(frame, "families", (), prefix=SERIES_PREFIX) or Pool(
        _series_names(rng, 10), _zipf(10, 3, 1.0)
    )
    return Pools(designers, rng.normal(0, 0.3, len(designers.p)), artists, publishers, series)


def _pool_of(
    frame: pl.DataFrame, column: str, skip: tuple[str, ...], prefix: str = ""
) -> Pool | None:
    values = frame.get_column(column).explode().drop_nulls()
    if prefix:
        values = values.filter(values.str.starts_with(prefix)).str.strip_prefix(prefix)
    if skip:
        values = values.filter(~values.is_in(list(skip)))
    counts = values.value_counts(name="count").sort(["count", column], descending=[True, False])
    if counts.height == 0:
        return None
    return Pool(counts.get_column(column), _normalise(counts.get_column("count").to_numpy()))


def _person_names(rng: np.random.Generator, size: int) -> pl.Series:
    """Unique invented names; the most popular are plain 'First Last', the rest get an initial."""
    plain_space = len(FIRST_NAMES) * len(LAST_NAMES)
    n_plain = min(size, int(plain_space * 0.7))
    (first, last), suffix = _unique_combos(rng, n_plain, [len(FIRST_NAMES), len(LAST_NAMES)])
    plain = _pick(FIRST_NAMES, first) + " " + _pick(LAST_NAMES, last) + suffix
    dims = [len(FIRST_NAMES), 26, len(LAST_NAMES)]
    (first, letter, last), suffix = _unique_combos(rng, size - n_plain, dims)
    letters = [chr(ord("A") + i) + "." for i in range(26)]
    initialed = _pick(FIRST_NAMES, first) + " " + _pick(letters, letter) + " "
    return pl.concat([plain, initialed + _pick(LAST_NAMES, last) + suffix])


def _publisher_names(rng: np.random.Generator, size: int) -> pl.Series:
    short_space = len(PUBLISHER_WORDS) * len(PUBLISHER_SUFFIXES)
    n_short = min(size, int(short_space * 0.7))
    (word, kind), suffix = _unique_combos(
        rng, n_short, [len(PUBLISHER_WORDS), len(PUBLISHER_SUFFIXES)]
    )
    short = _pick(PUBLISHER_WORDS, word) + " " + _pick(PUBLISHER_SUFFIXES, kind) + suffix
    dims = [len(PUBLISHER_WORDS), len(PUBLISHER_WORDS), len(PUBLISHER_SUFFIXES)]
    (word, second, kind), suffix = _unique_combos(rng, size - n_short, dims)
    # "Red Fox Games": the second word lower-cased reads like a compound name.
    long = _pick(PUBLISHER_WORDS, word) + " " + _pick(PUBLISHER_WORDS, second).str.to_lowercase()
    return pl.concat([short, long + " " + _pick(PUBLISHER_SUFFIXES, kind) + suffix])


def _series_names(rng: np.random.Generator, size: int) -> pl.Series:
    (adjective, noun), suffix = _unique_combos(rng, size, [len(NAME_ADJECTIVES), len(NAME_NOUNS)])
    return _pick(NAME_ADJECTIVES, adjective) + " " + _pick(NAME_NOUNS, noun) + suffix


def _unique_combos(
    rng: np.random.Generator, size: int, dims: list[int]
) -> tuple[list[np.ndarray], pl.Series]:
    """``size`` distinct index tuples over ``dims`` (one array per dim) and a name suffix.

    Past the size of the space, tuples repeat with a BGG-style disambiguation suffix " (2)".
    """
    space = math.prod(dims)
    laps = -(-size // space)
    flat = np.concatenate([rng.permutation(space) for _ in range(laps)] + [np.zeros(0, np.int64)])
    flat = flat[:size]
    lap = np.arange(size) // space
    suffix = pl.Series(
        ["" if k == 0 else f" ({k + 1})" for k in range(laps)] or [""], dtype=pl.String
    )
    return list(np.unravel_index(flat, dims)), suffix.gather(pl.Series(lap, dtype=pl.Int64))


# ---------------------------------------------------------------------------------------------
# Refresh


def _take(frame: pl.DataFrame, rows: np.ndarray) -> pl.DataFrame:
    return frame.select(pl.all().gather(pl.Series(rows, dtype=pl.Int64)))


def _change_features(sub: pl.DataFrame, rng: np.random.Generator, now: datetime) -> pl.DataFrame:
    """One feature change per game; stats stay as they are."""
    m = sub.height
    kind = rng.integers(0, 4, m)  # 0 mechanic, 1 category, 2 description, 3 playtime, 4 year
    no_year = sub.get_column("year_published").is_null().to_numpy()
    kind = np.where(no_year & (rng.random(m) < 0.5), 4, kind)
    new_max = _other_playtime(rng, sub.get_column("max_playtime").to_numpy())
    sub = sub.with_columns(
        _kind=pl.Series(kind),
        _mech=_pick(_names(MECHANICS).to_list(), rng.integers(0, len(MECHANICS), m)),
        _cat=_pick(_names(CATEGORIES).to_list(), rng.integers(0, len(CATEGORIES), m)),
        _pos=pl.Series(rng.integers(0, 1 << 30, m)),
        _edit=_pick(DESCRIPTION_EDITS, rng.integers(0, len(DESCRIPTION_EDITS), m)),
        _max=pl.Series(new_max, dtype=pl.Int64),
        _year=pl.Series(now.year - rng.integers(0, 4, m), dtype=pl.Float64),
    )

    def kind_is(code: int) -> pl.Expr:
        return pl.col("_kind") == code

    mech, cat, desc = pl.col("mechanics"), pl.col("categories"), pl.col("description")
    toggled = (
        pl.when(mech.list.contains(pl.col("_mech")))
        .then(mech.list.set_difference(pl.concat_list("_mech")))
        .otherwise(mech.list.concat(pl.concat_list("_mech")))
    )
    dropped = cat.list.get(pl.col("_pos") % cat.list.len().clip(lower_bound=1), null_on_oob=True)
    swapped = (
        pl.when(cat.list.contains(pl.col("_cat")))
        .then(cat.list.set_difference(pl.concat_list("_cat")))
        .otherwise(
            cat.list.set_difference(pl.concat_list(dropped)).list.concat(pl.concat_list("_cat"))
        )
    )
    edited = (
        pl.when(desc.is_null() | (desc == ""))
        .then(pl.col("_edit"))
        .otherwise(pl.concat_str([desc, pl.lit("&#10;&#10;"), pl.col("_edit")]))
    )
    changed = sub.with_columns(
        mechanics=pl.when(kind_is(0)).then(toggled).otherwise(mech),
        categories=pl.when(kind_is(1)).then(swapped).otherwise(cat),
        description=pl.when(kind_is(2)).then(edited).otherwise(desc),
        max_playtime=pl.when(kind_is(3)).then(pl.col("_max")).otherwise(pl.col("max_playtime")),
        min_playtime=pl.when(
            kind_is(3) & ((pl.col("min_playtime") <= 0) | (pl.col("min_playtime") > pl.col("_max")))
        )
        .then(pl.col("_max"))
        .otherwise(pl.col("min_playtime")),
        year_published=pl.when(kind_is(4))
        .then(pl.col("_year"))
        .otherwise(pl.col("year_published")),
        last_updated=pl.lit(now),
    )
    return _conform(changed)


def _other_playtime(rng: np.random.Generator, old: np.ndarray) -> np.ndarray:
    """A different usual playtime: scaled, else the next one up (or down at the top)."""
    new = _snap_playtime(old * rng.choice([0.5, 0.75, 1.5, 2.0], len(old)))
    above = np.searchsorted(PLAYTIME_GRID, old, side="right")
    bump = np.where(
        above < len(PLAYTIME_GRID),
        PLAYTIME_GRID[np.minimum(above, len(PLAYTIME_GRID) - 1)],
        PLAYTIME_GRID[-2],
    )
    new = np.where(new == old, bump, new)
    return np.where(old <= 0, 30, new)


def _change_stats(sub: pl.DataFrame, rng: np.random.Generator, now: datetime) -> pl.DataFrame:
    """More ratings and weight votes; averages drift toward the new votes."""
    m = sub.height
    users = sub.get_column("users_rated").to_numpy()
    average = sub.get_column("average_rating").to_numpy()
    votes = sub.get_column("num_weights").to_numpy()
    weight = sub.get_column("average_weight").to_numpy()
    new_users = 1 + rng.poisson(np.maximum(users * rng.uniform(0.002, 0.03, m), 1.0))
    new_mean = np.clip(np.where(users > 0, average, 6.0) + rng.normal(0, 0.6, m), 1, 10)
    average = np.round(
        np.clip((average * users + new_mean * new_users) / (users + new_users), 1, 10), 5
    )
    new_votes = rng.binomial(new_users, 0.06)
    new_weight = np.clip(np.where(votes > 0, weight, 2.0) + rng.normal(0, 0.5, m), 1, 5)
    total = votes + new_votes
    weight = np.where(
        total > 0,
        np.round(
            np.clip((weight * votes + new_weight * new_votes) / np.maximum(total, 1), 1, 5), 4
        ),
        0.0,
    )
    changed = sub.with_columns(
        users_rated=pl.Series(users + new_users, dtype=pl.Int64),
        average_rating=pl.Series(average, dtype=pl.Float64),
        num_weights=pl.Series(total, dtype=pl.Int64),
        average_weight=pl.Series(weight, dtype=pl.Float64),
        last_updated=pl.lit(now),
    )
    return _conform(_with_derived(changed))


def _reverse_arrays(sub: pl.DataFrame) -> pl.DataFrame:
    return sub.with_columns(pl.col(c).list.reverse() for c in LIST_COLUMNS)


def _new_games(
    frame: pl.DataFrame, rng: np.random.Generator, n_new: int, now: datetime
) -> pl.DataFrame:
    """Fresh games above the current max id, published this year or next."""
    top: int = frame.select(pl.col("game_id").max().fill_null(0)).item()
    ids = top + np.cumsum(rng.integers(1, 40, n_new))
    years = (now.year + (rng.random(n_new) < 0.35)).astype(float)
    pools = _pools_from_frame(rng, frame)
    return _build(rng, ids, years, now, pools).with_columns(
        last_updated=pl.lit(now).cast(pl.Datetime("us", "UTC"))
    )


def _check_frame(frame: pl.DataFrame) -> None:
    missing = [c for c in GAMES_FEATURES_SCHEMA if c not in frame.columns]
    if missing:
        raise InputError(f"catalogue frame lacks columns: {', '.join(missing)}")


# ---------------------------------------------------------------------------------------------
# Small helpers


def _utc(moment: datetime | None, default: datetime) -> datetime:
    if moment is None:
        return default
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _last_updated(rng: np.random.Generator, n: int, now: datetime) -> pl.Series:
    """``now`` minus an age of mostly weeks, up to three years."""
    age_us = np.minimum(rng.exponential(120 * 86400, n), 3 * 365 * 86400) * 1e6
    stamps = np.datetime64(now.replace(tzinfo=None), "us") - age_us.astype("timedelta64[us]")
    return pl.Series(stamps).dt.replace_time_zone("UTC")


def _names(vocabulary: tuple[tuple[str, float, float, float, str], ...]) -> pl.Series:
    return pl.Series([entry[0] for entry in vocabulary], dtype=pl.String)


def _with_first(specials: tuple[str, ...], pool: Pool) -> pl.Series:
    return pl.concat([pl.Series(list(specials), dtype=pl.String), pool.names])


def _pick(words: list[str] | tuple[str, ...] | pl.Series, codes: np.ndarray) -> pl.Series:
    return pl.Series(words, dtype=pl.String).gather(pl.Series(codes, dtype=pl.Int64))


def _pick_two(
    rng: np.random.Generator, n: int, items: Items, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """Two distinct random codes per row; ``width`` (a sentinel) where the row has fewer.

    Look them up with ``_pick(vocabulary + [fallback], codes)``.
    """
    counts = items.counts(n)
    starts = np.cumsum(counts) - counts
    size = np.maximum(counts, 1)
    first = rng.integers(0, 1 << 30, n) % size
    second = (first + 1) % size
    codes = np.append(items.codes, 0)  # keeps the index in range for empty trailing rows
    return (
        np.where(counts >= 1, codes[starts + first], width),
        np.where(counts >= 2, codes[starts + second], width),
    )


def _list_column(n: int, items: Items, vocabulary: pl.Series) -> pl.Series:
    """Build a List(String) column from flat codes: slice per row, then look the codes up."""
    if n == 0:  # a length-1 literal does not broadcast to zero rows
        return pl.Series([], dtype=pl.List(pl.String))
    counts = items.counts(n)
    starts = np.cumsum(counts) - counts
    flat = pl.Series(items.codes, dtype=pl.UInt32).implode()
    frame = pl.DataFrame({"start": starts, "count": counts})
    return frame.select(
        pl.lit(vocabulary.implode()).list.gather(
            pl.lit(flat).list.slice(pl.col("start"), pl.col("count"))
        )
    ).to_series()


def _row_mean(n: int, items: Items, values: np.ndarray) -> np.ndarray:
    total = np.bincount(items.rows, weights=values[items.codes], minlength=n)
    counts = items.counts(n)
    return np.divide(total, counts, out=np.zeros(n), where=counts > 0)


def _choice_by_group(
    rng: np.random.Generator, groups: np.ndarray, weights: list[tuple[float, ...]]
) -> np.ndarray:
    """Row i draws an index from ``weights[groups[i]]``."""
    cdf = np.cumsum([_normalise(w) for w in weights], axis=1)
    u = rng.random(len(groups))
    out = np.zeros(len(groups), dtype=np.int64)
    for group in range(len(weights)):
        members = groups == group
        out[members] = np.searchsorted(cdf[group], u[members], side="right")
    return np.minimum(out, cdf.shape[1] - 1)


def _zipf(size: int, offset: float, exponent: float) -> np.ndarray:
    return _normalise((np.arange(size) + offset) ** -exponent)


def _normalise(weights: object) -> np.ndarray:
    values = np.asarray(weights, dtype=float)
    return values / values.sum()
