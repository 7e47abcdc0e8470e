"""A pure token bucket per client key: the receiver's flood guard.

No clock or I/O here: callers pass ``now`` (monotonic seconds), so the policy
is tested as a table and a flood can be simulated without sleeping.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Bucket:
    tokens: float
    updated: float


@dataclass
class TokenBuckets:
    """``rate`` requests per second with bursts of up to ``burst`` per key.

    At most ``max_keys`` buckets are kept (the least recently used one is
    forgotten), so an attacker inventing keys cannot grow memory.
    """

    rate: float
    burst: float
    max_keys: int = 1024
    _buckets: dict[str, Bucket] = field(default_factory=dict)

    def take(self, key: str, now: float) -> float:
        """Spend one token for ``key``; 0.0 when allowed, else seconds until one is free."""
        bucket = self._buckets.pop(key, None)
        if bucket is None:
            bucket = Bucket(tokens=self.burst, updated=now)
        elapsed = max(0.0, now - bucket.updated)
        bucket.tokens = min(self.burst, bucket.tokens + elapsed * self.rate)
        bucket.updated = now
        wait = 0.0
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
        else:
            wait = (1.0 - bucket.tokens) / self.rate
        self._buckets[key] = bucket  # re-inserted last: most recently used
        while len(self._buckets) > self.max_keys:
            del self._buckets[next(iter(self._buckets))]
        return wait

    def __len__(self) -> int:
        return len(self._buckets)


def for_rate(requests_per_second: int) -> TokenBuckets:
    """The receiver's policy: a one-second burst of the configured rate."""
    return TokenBuckets(rate=float(requests_per_second), burst=float(max(1, requests_per_second)))
