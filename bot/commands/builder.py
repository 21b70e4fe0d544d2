"""The DM builder as an explicit state machine (diagram: builder.mmd beside this file).

`advance(state, data, text)` is pure: it returns the next state, the new draft data, notes for
the user and, where the step needs the outside world, an `Effect` for the driver (build.py) to
carry out: draft with the LLM, chat with the draft, publish, cancel. The driver saves the result
after every step, so a restart resumes exactly here.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from bot.i18n import N_
from store.models import Category, Visibility


class State(StrEnum):
    DESCRIBE = "describe"
    NAME = "name"
    DESCRIPTION = "description"
    INSTRUCTIONS = "instructions"
    STARTERS = "starters"
    CATEGORY = "category"
    MODEL = "model"
    VISIBILITY = "visibility"
    REVIEW = "review"
    PREVIEW = "preview"


class Effect(StrEnum):
    NONE = "none"
    DRAFT = "draft"
    PREVIEW = "preview"
    PUBLISH = "publish"
    CANCEL = "cancel"


FIELDS = (State.NAME, State.DESCRIPTION, State.INSTRUCTIONS, State.STARTERS, State.CATEGORY, State.MODEL, State.VISIBILITY)
REQUIRED = (State.NAME, State.DESCRIPTION, State.INSTRUCTIONS)
OPTIONAL_DEFAULTS: dict[State, Any] = {
    State.STARTERS: [],
    State.CATEGORY: Category.OTHER.value,
    State.VISIBILITY: Visibility.PUBLIC.value,
}
CATEGORIES = [c.value for c in Category]
VISIBILITIES = [v.value for v in Visibility]

NAME_MIN, NAME_MAX = 3, 40
DESCRIPTION_MAX = 300
INSTRUCTIONS_MAX = 8000
STARTERS_MAX, STARTER_MAX = 4, 120

# The words that work at any step, in every language we speak.
WORDS: dict[str, str] = {
    "back": "back", "retour": "back",
    "skip": "skip", "passer": "skip",
    "cancel": "cancel", "annuler": "cancel",
    "preview": "preview", "apercu": "preview", "essayer": "preview",
    "publish": "publish", "publier": "publish",
    "done": "done", "fini": "done", "termine": "done",
    "keep": "keep", "garder": "keep",
    "redraft": "redraft", "refaire": "redraft",
    "fields": "fields", "champ par champ": "fields",
}
FIELD_WORDS: dict[str, State] = {
    "name": State.NAME, "nom": State.NAME,
    "description": State.DESCRIPTION,
    "instructions": State.INSTRUCTIONS,
    "starters": State.STARTERS, "amorces": State.STARTERS,
    "category": State.CATEGORY, "categorie": State.CATEGORY,
    "model": State.MODEL, "modele": State.MODEL,
    "visibility": State.VISIBILITY, "visibilite": State.VISIBILITY,
}
CATEGORY_WORDS = {  # the French names the catalogue shows, folded
    "ecriture": "Writing", "productivite": "Productivity", "recherche et analyse": "Research & Analysis",
    "recherche": "Research & Analysis", "education": "Education", "programmation": "Programming",
    "style de vie": "Lifestyle", "divertissement": "Fun", "autre": "Other",
}
VISIBILITY_WORDS = {
    "public": "public", "publique": "public",
    "unlisted": "unlisted", "non liste": "unlisted", "non listé": "unlisted",
    "private": "private", "prive": "private", "privé": "private",
}


@dataclass(frozen=True, slots=True)
class Note:
    msgid: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Step:
    state: State
    data: dict[str, Any]
    notes: tuple[Note, ...] = ()
    effect: Effect = Effect.NONE
    text: str = ""


def _fold(text: str) -> str:
    stripped = unicodedata.normalize("NFKD", text.strip().casefold())
    return "".join(ch for ch in stripped if not unicodedata.combining(ch)).strip(" .!")


def missing(data: dict[str, Any]) -> list[str]:
    return [state.value for state in REQUIRED if not data.get(state.value)]


def next_field(state: State, models: list[str]) -> State:
    if state not in FIELDS:
        return FIELDS[0]
    index = FIELDS.index(state) + 1
    while index < len(FIELDS):
        candidate = FIELDS[index]
        if candidate is State.MODEL and len(models) <= 1:
            index += 1
            continue
        return candidate
    return State.REVIEW


def previous_field(state: State, models: list[str], *, llm: bool) -> State:
    if state is State.REVIEW or state is State.PREVIEW:
        return State.VISIBILITY
    if state not in FIELDS or state is State.NAME:
        return State.DESCRIBE
    index = FIELDS.index(state) - 1
    if FIELDS[index] is State.MODEL and len(models) <= 1:
        index -= 1
    return FIELDS[index]


def validate(state: State, text: str, models: list[str]) -> tuple[Any, Note | None]:
    """The value for a field, or a note saying what is wrong and what is accepted."""
    value = text.strip()
    if state is State.NAME:
        if not NAME_MIN <= len(value) <= NAME_MAX:
            return None, Note(N_("A name must be {low} to {high} characters; yours has {count}."),
                              {"low": NAME_MIN, "high": NAME_MAX, "count": len(value)})
        if any(ch in value for ch in "\n\r\t@#<>`*_~|"):
            return None, Note(N_("A name may not contain line breaks or the characters @ # < > ` * _ ~ |."))
        return value, None
    if state is State.DESCRIPTION:
        if not value or len(value) > DESCRIPTION_MAX:
            return None, Note(N_("A description must be 1 to {high} characters; yours has {count}."),
                              {"high": DESCRIPTION_MAX, "count": len(value)})
        return value, None
    if state is State.INSTRUCTIONS:
        if not value or len(value) > INSTRUCTIONS_MAX:
            return None, Note(N_("Instructions must be 1 to {high} characters; yours have {count}."),
                              {"high": INSTRUCTIONS_MAX, "count": len(value)})
        return value, None
    if state is State.STARTERS:
        lines = [line.strip(" -•\t") for line in value.replace("|", "\n").splitlines()]
        starters = [line for line in lines if line]
        if len(starters) > STARTERS_MAX:
            return None, Note(N_("At most {high} conversation starters, one per line; you gave {count}."),
                              {"high": STARTERS_MAX, "count": len(starters)})
        too_long = [s for s in starters if len(s) > STARTER_MAX]
        if too_long:
            return None, Note(N_("Each starter must be at most {high} characters."), {"high": STARTER_MAX})
        return starters, None
    if state is State.CATEGORY:
        folded = _fold(value)
        if folded.isdigit() and 1 <= int(folded) <= len(CATEGORIES):
            return CATEGORIES[int(folded) - 1], None
        for category in CATEGORIES:
            if _fold(category) == folded or _fold(category).split(" ")[0] == folded:
                return category, None
        if folded in CATEGORY_WORDS:
            return CATEGORY_WORDS[folded], None
        return None, Note(N_("Pick a category by number or name: {choices}."),
                          {"choices": ", ".join(f"{i}. {c}" for i, c in enumerate(CATEGORIES, 1))})
    if state is State.MODEL:
        folded = value.strip()
        if folded.isdigit() and 1 <= int(folded) <= len(models):
            return models[int(folded) - 1], None
        if folded in models:
            return folded, None
        return None, Note(N_("Pick a model by number or name: {choices}."),
                          {"choices": ", ".join(f"{i}. {m}" for i, m in enumerate(models, 1))})
    if state is State.VISIBILITY:
        folded = _fold(value)
        if folded.isdigit() and 1 <= int(folded) <= len(VISIBILITIES):
            return VISIBILITIES[int(folded) - 1], None
        for word, visibility in VISIBILITY_WORDS.items():
            if _fold(word) == folded:
                return visibility, None
        return None, Note(N_("Visibility is public, unlisted (only by its exact name) or private (only you)."))
    raise ValueError(state)


def advance(state: State, data: dict[str, Any], text: str, *, llm: bool, models: list[str]) -> Step:
    data = dict(data)
    word = WORDS.get(_fold(text), "")
    if word == "cancel":
        return Step(state, data, effect=Effect.CANCEL)

    if state is State.PREVIEW:
        if word in ("back", "done", "keep"):
            return Step(State.REVIEW, data)
        if word == "publish":
            return _publish(state, data)
        return Step(State.PREVIEW, data, effect=Effect.PREVIEW, text=text)

    if word == "publish":
        return _publish(state, data)
    if word == "preview":
        if not data.get("instructions"):
            return Step(state, data, (Note(N_("Give your GPT instructions first, then you can try it.")),))
        return Step(State.PREVIEW, data)
    if word == "back":
        data.pop("return_to_review", None)
        return Step(previous_field(state, models, llm=llm), data)
    if word == "fields" and state in (State.DESCRIBE, State.REVIEW):
        return Step(State.NAME, data)

    if state is State.DESCRIBE:
        if word == "skip":
            return Step(State.NAME, data)
        data["idea"] = text.strip()[:INSTRUCTIONS_MAX]
        if llm:
            return Step(State.REVIEW, data, effect=Effect.DRAFT, text=data["idea"])
        if not data.get("description") and len(data["idea"]) <= DESCRIPTION_MAX:
            data["suggested_description"] = data["idea"]
        return Step(State.NAME, data)

    if state is State.REVIEW:
        if word == "redraft" and llm and data.get("idea"):
            return Step(State.REVIEW, data, effect=Effect.DRAFT, text=data["idea"])
        if word == "keep":
            return Step(State.REVIEW, data, (Note(N_("Kept. Say publish when you are ready, or preview to try it first.")),))
        folded = _fold(text)
        if folded.startswith(("change ", "changer ", "modifier ")):
            folded = folded.split(" ", 1)[1]
        target = FIELD_WORDS.get(folded)
        if target is not None:
            data["return_to_review"] = True
            return Step(target, data)
        return Step(State.REVIEW, data, (Note(N_("Say publish, preview, change <field>, redraft or cancel.")),))

    if state in FIELDS:
        if word == "skip":
            if data.get(state.value) or state in OPTIONAL_DEFAULTS or state is State.MODEL:
                if state in OPTIONAL_DEFAULTS and state.value not in data:
                    data[state.value] = OPTIONAL_DEFAULTS[state]
                return _after_field(state, data, models)
            return Step(state, data, (Note(N_("This one is needed; it cannot be skipped.")),))
        value, problem = validate(state, text, models)
        if problem is not None:
            return Step(state, data, (problem,))
        data[state.value] = value
        return _after_field(state, data, models)

    raise ValueError(f"unknown builder state {state}")


def _after_field(state: State, data: dict[str, Any], models: list[str]) -> Step:
    if data.pop("return_to_review", False):
        return Step(State.REVIEW, data)
    return Step(next_field(state, models), data)


def _publish(state: State, data: dict[str, Any]) -> Step:
    gaps = missing(data)
    if gaps:
        first = State(gaps[0])
        return Step(first, data, (Note(N_("Still missing before publishing: {fields}."), {"fields": ", ".join(gaps)}),))
    return Step(state, data, effect=Effect.PUBLISH)


def complete_defaults(data: dict[str, Any], default_model: str) -> dict[str, Any]:
    """Fill the optional fields a creator skipped, just before publishing."""
    filled = dict(data)
    for state, default in OPTIONAL_DEFAULTS.items():
        filled.setdefault(state.value, default)
    filled.setdefault("model", default_model)
    return filled


def from_llm_draft(raw: dict[str, Any], models: list[str]) -> dict[str, Any]:
    """Keep what the model drafted that passes the same rules as typed input; drop the rest."""
    result: dict[str, Any] = {}
    for state in (State.NAME, State.DESCRIPTION, State.INSTRUCTIONS, State.CATEGORY):
        value = raw.get(state.value)
        if isinstance(value, str):
            if state is State.NAME:
                value = value.strip()[:NAME_MAX]
            if state is State.DESCRIPTION:
                value = value.strip()[:DESCRIPTION_MAX]
            checked, problem = validate(state, value, models)
            if problem is None:
                result[state.value] = checked
    starters = raw.get("starters")
    if isinstance(starters, list):
        cleaned = [str(s).strip()[:STARTER_MAX] for s in starters if str(s).strip()][:STARTERS_MAX]
        result["starters"] = cleaned
    return result
