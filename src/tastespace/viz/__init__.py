"""See the space: 2-D projections, static PNG maps, the interactive HTML map, the genre plane
and k-NN genre purity. Engines (matplotlib, openTSNE, umap-learn) are imported only when used.
"""

from tastespace.viz.maps import item_coordinates, write_genre_plane, write_item_map
from tastespace.viz.projection import cached_project, project
from tastespace.viz.purity import knn_purity, purity_report

__all__ = [
    "cached_project",
    "item_coordinates",
    "knn_purity",
    "project",
    "purity_report",
    "write_genre_plane",
    "write_item_map",
]
