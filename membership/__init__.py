"""Stores, members, households, consent, the catalogue, purchases, imports and product lifetimes."""
