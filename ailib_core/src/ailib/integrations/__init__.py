"""Adapters that put ailib stores behind other libraries' session interfaces."""
