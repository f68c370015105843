"""Search tokens: what the search box matches on, and how well a query matches a product title."""

from typing import List

STOP_WORDS: List[str] = ["a", "an", "and", "for", "of", "the", "with"]


def tokenize(text: str) -> List[str]:
    """Lower-case words of letters and digits; everything else separates words."""
    tokens: List[str] = []
    current: str = ""
    for ch in text.lower():
        if ch.isalnum():
            current += ch
        elif current:
            tokens.append(current)
            current = ""
    if current:
        tokens.append(current)
    return [t for t in tokens if t not in STOP_WORDS]


def overlap(query: List[str], title: List[str]) -> int:
    """How many distinct query tokens the title contains."""
    seen: List[str] = []
    hits = 0
    for token in query:
        if token in seen:
            continue
        seen.append(token)
        if token in title:
            hits += 1
    return hits


def score(query: str, title: str) -> float:
    """Share of the query's tokens found in the title, with a bonus when the title starts with the query."""
    q = tokenize(query)
    t = tokenize(title)
    if not q:
        return 0.0
    base = overlap(q, t) / len(set(q))
    if t[: len(q)] == q:
        base += 0.25
    return min(base, 1.0)


if __name__ == "__main__":
    print(tokenize("Kettle, 1.7 L — stainless steel & glass"))
    print(score("steel kettle", "Kettle, 1.7 L — stainless steel & glass"))
