"""The shared database layer: declarative base, engines, sessions, dialect helpers, migrations."""
