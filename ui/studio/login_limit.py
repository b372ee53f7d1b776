"""Failed studio logins are rate-limited: after a few wrong passwords for a username,
that username is locked for a delay that doubles with each further failure (capped).

Gradio takes `auth` as a callable `(username, password) -> bool` and calls it on the
event loop, so the limiter refuses during a lockout instead of sleeping (a sleep would
stall every user). During a lockout even the right password is refused, unchecked: a
guess made then tells the guesser nothing. Gradio does not pass the caller's address to
`auth`, and a `--share` link reaches the studio through Gradio's tunnel from loopback, so
the limit is per username: the one username that can log in is the one worth guessing.
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

FREE_FAILURES = 5  # wrong passwords allowed before the first lockout
FIRST_LOCK_S = 2.0
MAX_LOCK_S = 300.0
MAX_TRACKED_NAMES = 10_000  # made-up usernames must not grow memory without bound


@dataclass
class _Failures:
    count: int = 0
    locked_until: float = 0.0


class LoginLimiter:
    """`auth` for Gradio: checks (user, password) and rate-limits failures per username."""

    def __init__(self, user: str, password: str, *, free_failures: int = FREE_FAILURES,
                 first_lock_s: float = FIRST_LOCK_S, max_lock_s: float = MAX_LOCK_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._user, self._password = user, password
        self.free_failures = free_failures
        self.first_lock_s = first_lock_s
        self.max_lock_s = max_lock_s
        self._clock = clock
        self._failures: OrderedDict[str, _Failures] = OrderedDict()
        self._lock = threading.Lock()

    def locked_for(self, username: str) -> float:
        """Seconds until `username` may try again (0 when it may now)."""
        with self._lock:
            state = self._failures.get(username.strip().casefold())
            return max(0.0, state.locked_until - self._clock()) if state else 0.0

    def __call__(self, username: str, password: str) -> bool:
        key = username.strip().casefold()
        if self.locked_for(key):
            log.warning("studio login for %r refused: locked after repeated failures", username)
            return False
        # constant-time comparisons: the answer's timing must not leak the password
        ok = hmac.compare_digest(username.encode(), self._user.encode()) & \
            hmac.compare_digest(password.encode(), self._password.encode())
        with self._lock:
            if ok:
                self._failures.pop(key, None)
                return True
            state = self._failures.pop(key, None) or _Failures()
            state.count += 1
            over = state.count - self.free_failures
            if over >= 0:
                lock = min(self.max_lock_s, self.first_lock_s * 2 ** over)
                state.locked_until = self._clock() + lock
                log.warning("studio login for %r failed %d times: locked for %.0f s",
                            username, state.count, lock)
            self._failures[key] = state  # most recent last
            while len(self._failures) > MAX_TRACKED_NAMES:
                self._failures.popitem(last=False)
        return False
