"""Marketer-authored templates: a sandboxed Jinja environment, per-channel rendering, SMS segment maths."""
