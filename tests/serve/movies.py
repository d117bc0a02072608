"""A tiny movie catalog with real-looking titles and planted co-watching, for the explorer tests.

Four taste clusters of six titles each (family animation, crime thrillers, romance, sci-fi);
every user watches mostly within one or two clusters, so a model learns that "Toy Story (1995)"
sits with "Aladdin (1992)" and "Heat (1995)" with "Casino (1995)".
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

CLUSTERS: dict[str, list[tuple[str, str]]] = {
    "family": [
        ("Toy Story (1995)", "Animation|Children|Comedy"),
        ("Aladdin (1992)", "Animation|Children|Musical"),
        ("Lion King, The (1994)", "Animation|Children|Drama"),
        ("Jumanji (1995)", "Adventure|Children|Fantasy"),
        ("Babe (1995)", "Children|Drama"),
        ("Beauty and the Beast (1991)", "Animation|Children|Romance"),
    ],
    "crime": [
        ("Heat (1995)", "Action|Crime|Thriller"),
        ("Casino (1995)", "Crime|Drama"),
        ("Usual Suspects, The (1995)", "Crime|Mystery|Thriller"),
        ("Seven (a.k.a. Se7en) (1995)", "Mystery|Thriller"),
        ("Pulp Fiction (1994)", "Comedy|Crime|Drama"),
        ("Reservoir Dogs (1992)", "Crime|Mystery|Thriller"),
    ],
    "romance": [
        ("Sense and Sensibility (1995)", "Drama|Romance"),
        ("Sabrina (1995)", "Comedy|Romance"),
        ("Before Sunrise (1995)", "Drama|Romance"),
        ("While You Were Sleeping (1995)", "Comedy|Romance"),
        ("Four Weddings and a Funeral (1994)", "Comedy|Romance"),
        ("Sleepless in Seattle (1993)", "Comedy|Drama|Romance"),
    ],
    "scifi": [
        ("Twelve Monkeys (1995)", "Mystery|Sci-Fi|Thriller"),
        ("Star Wars (1977)", "Action|Adventure|Sci-Fi"),
        ("Stargate (1994)", "Action|Adventure|Sci-Fi"),
        ("Jurassic Park (1993)", "Action|Adventure|Sci-Fi"),
        ("Terminator 2 (1991)", "Action|Sci-Fi"),
        ("Blade Runner (1982)", "Action|Sci-Fi|Thriller"),
    ],
}


def write_movies(folder: Path, n_users: int = 400, seed: int = 0) -> tuple[Path, Path]:
    """Write ``ratings.csv`` (user,item,rating) and ``movies.csv`` (id,title,genres)."""
    rng = np.random.default_rng(seed)
    titles = [(title, genres) for cluster in CLUSTERS.values() for title, genres in cluster]
    items = folder / "movies.csv"
    with items.open("w", encoding="utf-8") as handle:
        handle.write("id,title,genres\n")
        for k, (title, genres) in enumerate(titles, start=1):
            handle.write(f'{k},"{title}",{genres}\n')
    size = len(next(iter(CLUSTERS.values())))
    n_clusters = len(CLUSTERS)
    ratings = folder / "ratings.csv"
    with ratings.open("w", encoding="utf-8") as handle:
        handle.write("user,item,rating\n")
        for user in range(n_users):
            favourite = int(rng.integers(n_clusters))
            picks = set(rng.choice(size, size=int(rng.integers(3, size + 1)), replace=False))
            watched = {favourite * size + int(p) + 1 for p in picks}
            if rng.random() < 0.15:  # a little noise: one title from elsewhere
                watched.add(int(rng.integers(len(titles))) + 1)
            for item in sorted(watched):
                handle.write(f"u{user},{item},5\n")
    return ratings, items
