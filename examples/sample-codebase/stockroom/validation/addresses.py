"""Postal addresses: postcode formats per country and normalisation of street lines."""

import re
from dataclasses import dataclass
from typing import Dict, List

POSTCODE_PATTERNS: Dict[str, str] = {
    "DE": r"^\d{5}$",
    "FR": r"^\d{5}$",
    "NL": r"^\d{4} ?[A-Z]{2}$",
    "GB": r"^[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}$",
    "US": r"^\d{5}(-\d{4})?$",
    "SE": r"^\d{3} ?\d{2}$",
}

ABBREVIATIONS: Dict[str, str] = {"str.": "strasse", "st.": "street", "ave.": "avenue", "rd.": "road"}


@dataclass
class Address:
    name: str
    street: str
    postcode: str
    city: str
    country: str


class AddressError(ValueError):
    pass


def valid_postcode(country: str, postcode: str) -> bool:
    pattern = POSTCODE_PATTERNS.get(country.upper())
    if pattern is None:
        return len(postcode.strip()) > 0
    return re.match(pattern, postcode.strip().upper()) is not None


def normalise_street(street: str) -> str:
    words: List[str] = []
    for word in street.strip().split():
        words.append(ABBREVIATIONS.get(word.lower(), word))
    return " ".join(words)


def validate(address: Address) -> List[str]:
    """Problems with an address, as messages for the person who typed it; empty when it is fine."""
    problems: List[str] = []
    if not address.name.strip():
        problems.append("name is missing")
    if not address.street.strip():
        problems.append("street is missing")
    if not valid_postcode(address.country, address.postcode):
        problems.append(f"postcode {address.postcode!r} is not valid in {address.country}")
    if len(address.country) != 2:
        problems.append("country must be a two-letter code")
    return problems


def require_valid(address: Address) -> Address:
    problems = validate(address)
    if problems:
        raise AddressError("; ".join(problems))
    return Address(
        address.name.strip(),
        normalise_street(address.street),
        address.postcode.strip().upper(),
        address.city.strip(),
        address.country.upper(),
    )
