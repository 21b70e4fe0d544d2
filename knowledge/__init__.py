"""Knowledge files: an uploaded file's bytes to passages a GPT can retrieve and cite.

Pure and platform-neutral: no database, no network, nothing from bot/. `extract` turns bytes into
sections (text under a heading, on a page), `split` turns sections into overlapping passages.
Storage, retrieval and the builder's upload flow are built on these two calls.
"""

from knowledge.extract import KINDS, REASONS, Section, Unreadable, extract, kind_of
from knowledge.split import Passage, split

__all__ = ["KINDS", "REASONS", "Passage", "Section", "Unreadable", "extract", "kind_of", "split"]
