"""Exercise rule modules, one per exercise, and their registry."""
