"""Retry timing for calls to carriers and payment providers: capped exponential backoff with jitter."""

import random
import time
from typing import Callable, Optional, TypeVar

T = TypeVar("T")


def delay_seconds(attempt: int, base: float = 0.5, cap: float = 30.0) -> float:
    """Full-jitter backoff: a random delay between 0 and min(cap, base * 2 ** attempt)."""
    return random.uniform(0, min(cap, base * 2**attempt))


def retry(call: Callable[[], T], attempts: int = 5, retry_on: tuple = (ConnectionError, TimeoutError)) -> T:
    """Run call until it succeeds, sleeping between attempts; the last failure is raised."""
    last_error: Optional[BaseException] = None
    for attempt in range(attempts):
        try:
            return call()
        except retry_on as err:
            last_error = err
            time.sleep(delay_seconds(attempt))
    assert last_error is not None
    raise last_error


if __name__ == "__main__":
    print([round(delay_seconds(n), 2) for n in range(6)])
