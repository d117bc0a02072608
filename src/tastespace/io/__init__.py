"""Model bundles (save / load / export): safe formats only, atomic writes."""

from tastespace.io.bundle import BundleContents, read_bundle, write_bundle

__all__ = ["BundleContents", "read_bundle", "write_bundle"]
