"""Failed studio logins are rate-limited: after a few wrong passwords for a username,
that username is locked for a delay that doubles with each further failure (capped).

Gradio takes `auth` as a callable `(username, password) -> bool` and calls it on the
event loop, so the limiter refuses during a lockout instead of sleeping (a sleep would
stall every user). During a lockout even the right password is refused, unchecked: a
guess made then tells the guesser nothing. The refusal is a 429 whose detail says
"too many attempts, try again in N s" (Gradio's login page shows its own fixed text for a
400, so a plain False would read "Incorrect Credentials" to someone who only mistyped).

Gradio does not pass the caller's address to `auth`, and a `--share` link reaches the
studio through Gradio's tunnel from loopback, so the limit is per username. Memory stays
bounded without forgetting a lockout: a record is forgotten only once its lock is over
and it has seen no failure for FORGET_AFTER_S; when MAX_TRACKED_NAMES records are all
still needed, the usernames without room share one record, locked like any other.
"""

from __future__ import annotations

import hmac
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import HTTPException

log = logging.getLogger(__name__)

FREE_FAILURES = 5  # wrong passwords allowed before the first lockout
FIRST_LOCK_S = 2.0
MAX_LOCK_S = 300.0
FORGET_AFTER_S = 900.0  # an unlocked record with no failure for this long is dropped
MAX_TRACKED_NAMES = 10_000  # made-up usernames must not grow memory without bound
NO_ROOM = "\x00no-room"  # the record shared by usernames that found the table full


# The login page shows this; on a lockout the page itself only stops answering (it shows
# text for a 400 alone), while the 429's detail says how long to wait.
LOGIN_MESSAGE = (f"RYLA Studio. After {FREE_FAILURES} wrong passwords a username must wait "
                 f"before trying again: {FIRST_LOCK_S:.0f} s, doubling with each further "
                 f"failure, up to {MAX_LOCK_S / 60:.0f} min.")


@dataclass
class _Failures:
    count: int = 0
    locked_until: float = 0.0
    last_failure: float = 0.0


class LoginLimiter:
    """`auth` for Gradio: checks (user, password) and rate-limits failures per username."""

    def __init__(self, user: str, password: str, *, free_failures: int = FREE_FAILURES,
                 first_lock_s: float = FIRST_LOCK_S, max_lock_s: float = MAX_LOCK_S,
                 max_tracked: int = MAX_TRACKED_NAMES,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._user, self._password = user, password
        self.free_failures = free_failures
        self.first_lock_s = first_lock_s
        self.max_lock_s = max_lock_s
        self.max_tracked = max_tracked
        self._clock = clock
        self._failures: OrderedDict[str, _Failures] = OrderedDict()  # oldest failure first
        self._lock = threading.Lock()

    def _record_key(self, key: str) -> str:
        return key if key in self._failures or len(self._failures) < self.max_tracked else NO_ROOM

    def locked_for(self, username: str) -> float:
        """Seconds until `username` may try again (0 when it may now)."""
        key = username.strip().casefold()
        with self._lock:
            state = self._failures.get(key) or self._failures.get(NO_ROOM)
            return max(0.0, state.locked_until - self._clock()) if state else 0.0

    def __call__(self, username: str, password: str) -> bool:
        key = username.strip().casefold()
        wait = self.locked_for(key)
        if wait:
            log.warning("studio login for %r refused: locked after repeated failures", username)
            raise HTTPException(status_code=429,
                                detail=f"too many attempts, try again in {math.ceil(wait)} s")
        # constant-time comparisons: the answer's timing must not leak the password
        ok = hmac.compare_digest(username.encode(), self._user.encode()) & \
            hmac.compare_digest(password.encode(), self._password.encode())
        with self._lock:
            if ok:
                self._failures.pop(key, None)
                return True
            now = self._clock()
            self._forget_expired(now)
            record_key = self._record_key(key)
            state = self._failures.pop(record_key, None) or _Failures()
            state.count += 1
            state.last_failure = now
            over = state.count - self.free_failures
            if over >= 0:
                lock = min(self.max_lock_s, self.first_lock_s * 2 ** over)
                state.locked_until = now + lock
                log.warning("studio login for %r failed %d times: locked for %.0f s",
                            username, state.count, lock)
            self._failures[record_key] = state  # most recent failure last
        return False

    def _forget_expired(self, now: float) -> None:
        """Drop, oldest failure first, records whose lock is over and that have seen no
        failure for FORGET_AFTER_S; a record still locked is never dropped."""
        while self._failures:
            state = next(iter(self._failures.values()))
            if now - state.last_failure <= FORGET_AFTER_S or state.locked_until > now:
                break  # every later record failed more recently
            self._failures.popitem(last=False)
