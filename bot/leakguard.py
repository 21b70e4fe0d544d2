"""The instruction leak guard: an answer may not quote a long run of its GPT's instructions.

Why: the system prompt already asks the model to keep its instructions private, but models can be
talked out of it. This is the check on what actually comes out. Text is compared after
normalising case and collapsing whitespace; a run of `threshold` characters that also appears in
the instructions is a leak (60 by default: about a dozen words; for instructions shorter than
that, the whole of them, if at least `MIN_RUN` characters long).

Answers stream, so the guard works on the stream: it holds back the tail of the answer that is
currently matching the instructions and releases it as soon as the match breaks below the
threshold. A leak is therefore caught before any of the quoted run is shown; what was shown
before it stays, the rest of the answer is dropped. A suffix automaton of the instructions makes
each character O(1) amortised, whatever the length of the instructions.
"""

from __future__ import annotations

from collections import OrderedDict, deque

LEAK_RUN = 60
MIN_RUN = 24


def normalize(text: str) -> str:
    """Case-folded, whitespace collapsed to single spaces, stripped: the form runs are compared in."""
    out: list[str] = []
    space = True
    for char in text:
        if char.isspace():
            if not space:
                out.append(" ")
            space = True
        else:
            out.append(char.casefold())
            space = False
    return "".join(out).rstrip(" ")


Automaton = tuple[list[dict[str, int]], list[int], list[int]]
CACHE_CHARS = 200_000
"""How many characters of instructions keep their automaton cached (most recently used first):
an automaton costs ~380 bytes and ~3 µs to build per character, so this bounds the cache near
75 MB however long the instructions are (a count of entries would not: 512 GPTs with instructions
of 8 000 characters would hold 1.5 GB), and holds the GPTs in use in most stores."""
_cache: OrderedDict[tuple[str, int], tuple[str, Automaton]] = OrderedDict()
_cached_chars = 0


def _prepared(instructions: str, min_run: int) -> tuple[str, Automaton]:
    """The instructions normalised and their automaton, from the cache when a recent answer
    guarded the same text: every answer of a GPT guards the same instructions, and guards only
    read the automaton. Instructions shorter than `min_run` are not guarded: no automaton."""
    global _cached_chars
    key = instructions, min_run
    found = _cache.get(key)
    if found is not None:
        _cache.move_to_end(key)
        return found
    protected = normalize(instructions)
    built = protected, _build(protected if len(protected) >= min_run else "")
    _cache[key] = built
    _cached_chars += len(instructions)
    while _cached_chars > CACHE_CHARS and len(_cache) > 1:
        (dropped, _), _ = _cache.popitem(last=False)
        _cached_chars -= len(dropped)
    return built


def _build(text: str) -> Automaton:
    """Suffix automaton of `text`: transitions, suffix links, longest length per state."""
    nxt: list[dict[str, int]] = [{}]
    link = [-1]
    length = [0]
    last = 0
    for char in text:
        cur = len(nxt)
        nxt.append({})
        length.append(length[last] + 1)
        link.append(0)
        p = last
        while p != -1 and char not in nxt[p]:
            nxt[p][char] = cur
            p = link[p]
        if p != -1:
            q = nxt[p][char]
            if length[p] + 1 == length[q]:
                link[cur] = q
            else:
                clone = len(nxt)
                nxt.append(dict(nxt[q]))
                length.append(length[p] + 1)
                link.append(link[q])
                while p != -1 and nxt[p].get(char) == q:
                    nxt[p][char] = clone
                    p = link[p]
                link[q] = clone
                link[cur] = clone
        last = cur
    return nxt, link, length


class LeakGuard:
    """Feed the answer chunk by chunk; each `feed` returns the text that is safe to show now."""

    def __init__(self, instructions: str, *, run: int = LEAK_RUN, min_run: int = MIN_RUN) -> None:
        protected, (self._nxt, self._link, self._len) = _prepared(instructions, min_run)
        self.active = len(protected) >= min_run
        self.threshold = min(run, len(protected))
        self.leaked = False
        self._out = ""
        self._shown = 0
        self._state = 0
        self._match = 0
        self._space = True
        # where each of the last characters fed came from in the answer: enough to find the start of
        # a run at the threshold, even when a character's case folding made it several (ß → ss)
        self._origins: deque[int] = deque(maxlen=max(self.threshold, 1) + 2)

    @property
    def shown(self) -> str:
        return self._out[: self._shown]

    def feed(self, chunk: str) -> str:
        if self.leaked:
            return ""
        if not self.active:
            self._out += chunk
            self._shown = len(self._out)
            return chunk
        index = len(self._out) - 1
        self._out += chunk
        # every character of every answer passes here: the automaton's walk is written out with
        # local names (a method call and attribute lookups per character were a fifth of the
        # instructions, callgrind)
        nxt, link, length, threshold = self._nxt, self._link, self._len, self.threshold
        state, match, space = self._state, self._match, self._space
        remember = self._origins.append  # where each character fed came from in the answer
        for char in chunk:
            index += 1
            if char.isspace():
                if space:
                    continue  # collapsed into the space already fed
                space = True
                folded = " "
            else:
                space = False
                folded = char.casefold()  # may be several characters (ß → ss)
            for step in folded:
                while state and step not in nxt[state]:
                    state = link[state]
                    match = length[state]
                went = nxt[state].get(step)
                if went is None:
                    state = match = 0
                else:
                    state = went
                    match += 1
                remember(index)
            if match >= threshold:  # the text before the quoted run is still shown,
                self.leaked = True   # however the answer was cut into chunks
                break
        self._state, self._match, self._space = state, match, space
        boundary = self._origins[-match] if match else len(self._out)
        safe = self._out[self._shown : boundary]
        self._shown = max(self._shown, boundary)
        return safe

    def flush(self) -> str:
        """The answer ended: the tail held back matched less than the threshold, so show it."""
        if self.leaked:
            return ""
        tail = self._out[self._shown :]
        self._shown = len(self._out)
        return tail
