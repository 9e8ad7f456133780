"""A plain text table: aligned columns, cells wrapped at spaces, no colour and no rich.

For output that is not a terminal (a pipe, a file, a CI log), where a Rich table costs more
to import and render than the command itself. Pure: rows in, text out. Widths count code
points (the text it is given is ASCII); lines carry no trailing spaces.
"""
from __future__ import annotations

from collections.abc import Collection, Sequence

GAP = 2  # spaces between columns


def render_plain_table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, width: int = 100,
                       title: str = "", whole: Collection[int] = ()) -> str:
    """`rows` as columns under `headers`, every line at most `width` long (unless even one
    character per column does not fit). A cell wraps at spaces and folds a word only when the
    word is wider than its column; columns in `whole` (indexes) have their words folded only
    when folding every other column's longest words is not enough."""
    n = len(headers)
    table = [list(headers), *([str(c) for c in row] for row in rows)]
    if any(len(r) != n for r in table):
        raise ValueError(f"every row needs {n} cells")
    widths = _widths(table, n, max(width - GAP * (n - 1), n), set(whole))
    lines = _wrap(title, max(width, 1)) if title else []
    for row in table:
        cells = [_wrap(cell, w) for cell, w in zip(row, widths)]
        for i in range(max(len(c) for c in cells)):
            parts = [(c[i] if i < len(c) else "").ljust(w) for c, w in zip(cells, widths)]
            lines.append((" " * GAP).join(parts).rstrip())
    return "\n".join(lines) + "\n"


def _widths(table: list[list[str]], n: int, room: int, whole: set[int]) -> list[int]:
    """Each column's natural width (its longest line) if all fit in `room`; else each
    column's longest word plus a share of what is left, in proportion to how much wider it
    would like to be; else the longest words capped at a common level (`whole` last)."""
    natural = [max(len(ln) for row in table for ln in row[i].split("\n")) for i in range(n)]
    words = [max([len(w) for row in table for w in row[i].split()] or [0]) for i in range(n)]
    if sum(natural) <= room:
        return natural
    if sum(words) <= room:
        spare, want = room - sum(words), [a - b for a, b in zip(natural, words)]
        total = sum(want)
        # Largest remainders, so the shares add up to `spare` exactly.
        shares = [spare * w // total for w in want]
        order = sorted(range(n), key=lambda i: (spare * want[i]) % total, reverse=True)
        for i in order[:spare - sum(shares)]:
            shares[i] += 1
        return [max(1, b + s) for b, s in zip(words, shares)]
    fixed = {i: words[i] for i in whole if i < n}
    if sum(fixed.values()) + (n - len(fixed)) > room:  # not even then: cap every column
        fixed = {}
    capped = _level([words[i] for i in range(n) if i not in fixed], room - sum(fixed.values()))
    it = iter(capped)
    return [fixed[i] if i in fixed else next(it) for i in range(n)]


def _level(wants: list[int], room: int) -> list[int]:
    """`wants` capped at the highest common level whose sum fits `room` (each at least 1)."""
    if not wants:
        return []
    cap = max(wants)
    while cap > 1 and sum(min(w, cap) for w in wants) > room:
        cap -= 1
    out = [max(1, min(w, cap)) for w in wants]
    # Hand what the integer cap left over to the capped columns, left to right.
    spare = room - sum(out)
    for i, w in enumerate(wants):
        if spare <= 0:
            break
        if w > out[i]:
            add = min(spare, w - out[i])
            out[i] += add
            spare -= add
    return out


def _wrap(text: str, width: int) -> list[str]:
    """Greedy word wrap at whitespace; a word longer than `width` is folded into pieces.
    Line breaks in `text` are kept. Always at least one line."""
    lines: list[str] = []
    for para in text.split("\n"):
        line = ""
        for word in para.split():
            while len(word) > width:  # fold: the line so far, then pieces of the word
                if line:
                    lines.append(line)
                    line = ""
                cut = _fold_at(word, width)
                lines.append(word[:cut])
                word = word[cut:]
            if not word:
                continue
            if not line:
                line = word
            elif len(line) + 1 + len(word) <= width:
                line += " " + word
            else:
                lines.append(line)
                line = word
        lines.append(line)
    return lines or [""]


def _fold_at(word: str, width: int) -> int:
    """Where to fold a word longer than `width`: after its last `_ . - /` that leaves a piece
    at least a third of the width (OTEL_EXPORTER_OTLP_ | ENDPOINT), else at the width."""
    cut = max(word.rfind(sep, 0, width) for sep in "_.-/") + 1
    return cut if cut > width // 3 else width
