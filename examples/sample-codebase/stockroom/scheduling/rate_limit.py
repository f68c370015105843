"""Token buckets that keep the storefront's API clients within their request quota.

Time is in milliseconds and tokens in thousandths of a request, so refills never need floats.
"""

from dataclasses import dataclass

SCALE: int = 1000


@dataclass
class TokenBucket:
    capacity: int
    refill_per_second: int
    tokens_milli: int
    last_refill_ms: int

    def refilled_tokens(self, now_ms: int) -> int:
        """Tokens (in thousandths) the bucket would hold at now_ms."""
        elapsed: int = now_ms - self.last_refill_ms
        if elapsed < 0:
            elapsed = 0
        tokens: int = self.tokens_milli + elapsed * self.refill_per_second
        if tokens > self.capacity * SCALE:
            tokens = self.capacity * SCALE
        return tokens

    def allows(self, now_ms: int, cost: int) -> bool:
        return self.refilled_tokens(now_ms) >= cost * SCALE

    def wait_ms(self, now_ms: int, cost: int) -> int:
        """How long a client must wait before a request of this cost is allowed."""
        missing: int = cost * SCALE - self.refilled_tokens(now_ms)
        if missing <= 0:
            return 0
        if self.refill_per_second <= 0:
            return -1
        return (missing + self.refill_per_second - 1) // self.refill_per_second

    def after_request(self, now_ms: int, cost: int) -> "TokenBucket":
        """The bucket's state once a request was let through."""
        tokens: int = self.refilled_tokens(now_ms) - cost * SCALE
        return TokenBucket(self.capacity, self.refill_per_second, tokens, now_ms)


def main() -> None:
    bucket = TokenBucket(10, 5, 2000, 0)
    print(bucket.allows(100, 3))
    print(bucket.wait_ms(100, 3))
    after = bucket.after_request(400, 3)
    print(after.tokens_milli)


if __name__ == "__main__":
    main()
