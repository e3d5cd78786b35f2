"""Flask extension for payhub (not built yet: see the issue on exactly-once payments)."""

__all__: list[str] = []
