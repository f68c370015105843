"""URL slugs for product pages: lower case ASCII words joined by dashes."""

import unicodedata

MAX_SLUG_LENGTH = 60


def ascii_fold(text: str) -> str:
    """Drop accents: "Crème brûlée" becomes "Creme brulee"."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def slugify(title: str) -> str:
    words = []
    current = []
    for ch in ascii_fold(title).lower():
        if ch.isalnum():
            current.append(ch)
        elif current:
            words.append("".join(current))
            current = []
    if current:
        words.append("".join(current))
    slug = "-".join(words)
    if len(slug) > MAX_SLUG_LENGTH:
        slug = slug[:MAX_SLUG_LENGTH].rsplit("-", 1)[0]
    return slug or "item"


def unique_slug(title: str, taken: set[str]) -> str:
    """A slug not in `taken`, numbered from 2 when the plain one is used."""
    base = slugify(title)
    slug = base
    n = 2
    while slug in taken:
        slug = f"{base}-{n}"
        n += 1
    return slug


if __name__ == "__main__":
    print(slugify("Crème Brûlée Torch — Professional (Refillable)"))
    print(unique_slug("Kettle", {"kettle", "kettle-2"}))
