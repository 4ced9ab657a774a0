"""Tiny Shakespeare: 1,115,394 characters of plain text, for character-level models."""

from __future__ import annotations

from mmcourse.data.registry import read_verified


def tiny_shakespeare() -> str:
    """The whole text (verified against its published SHA-256)."""
    (data,) = read_verified("tinyshakespeare")
    return data.decode("utf-8")
