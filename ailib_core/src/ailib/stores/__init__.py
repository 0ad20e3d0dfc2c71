"""Stores that ship with ailib-core."""
