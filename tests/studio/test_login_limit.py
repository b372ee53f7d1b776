"""ui/studio/login_limit.py: failed studio logins lock the username, with a growing delay."""

from __future__ import annotations

import pytest

from fastapi import HTTPException

from ui.studio.login_limit import FORGET_AFTER_S, MAX_TRACKED_NAMES, LoginLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_right_login_passes_wrong_fails(clock):
    limiter = LoginLimiter("maya", "pw", clock=clock)
    assert limiter("maya", "pw") is True
    assert limiter("maya", "nope") is False
    assert limiter("mallory", "pw") is False


def test_lockout_after_free_failures_refuses_even_the_right_password(clock):
    limiter = LoginLimiter("maya", "pw", free_failures=3, first_lock_s=2.0, clock=clock)
    for _ in range(2):
        assert limiter("maya", "guess") is False
    assert limiter.locked_for("maya") == 0.0
    assert limiter("maya", "pw") is True  # a success before the limit clears the count
    for _ in range(3):
        assert limiter("maya", "guess") is False
    assert limiter.locked_for("maya") == pytest.approx(2.0)
    with pytest.raises(HTTPException) as refused:  # locked: not even checked
        limiter("maya", "pw")
    assert refused.value.status_code == 429
    assert refused.value.detail == "too many attempts, try again in 2 s"
    clock.now += 2.1
    assert limiter("maya", "pw") is True


def test_delay_doubles_with_each_failure_up_to_the_cap(clock):
    limiter = LoginLimiter("maya", "pw", free_failures=1, first_lock_s=1.0, max_lock_s=8.0,
                           clock=clock)
    delays = []
    for _ in range(6):
        assert limiter("maya", "guess") is False
        delays.append(limiter.locked_for("maya"))
        clock.now += delays[-1] + 0.01  # wait the lock out, then fail again
    assert delays == pytest.approx([1.0, 2.0, 4.0, 8.0, 8.0, 8.0])


def test_thirty_fast_guesses_mostly_go_unchecked(clock):
    """The issue's probe: 30 wrong passwords in a burst. Only the free ones are checked."""
    checked = []
    limiter = LoginLimiter("ryla", "secret", clock=clock)
    for i in range(30):
        if not limiter.locked_for("ryla"):
            checked.append(i)
            assert limiter("ryla", f"guess{i}") is False
        else:
            with pytest.raises(HTTPException, match="too many attempts"):
                limiter("ryla", f"guess{i}")
    assert len(checked) == 5


def test_usernames_are_limited_separately(clock):
    limiter = LoginLimiter("maya", "pw", free_failures=1, clock=clock)
    assert limiter("mallory", "x") is False
    assert limiter.locked_for("mallory") > 0
    assert limiter("maya", "pw") is True


def test_made_up_usernames_do_not_evict_a_locked_user(clock):
    """The issue's probe: a user locked out, then 10,050 failures with made-up names."""
    limiter = LoginLimiter("maya", "pw", clock=clock)
    for _ in range(5):
        assert limiter("maya", "guess") is False
    locked = limiter.locked_for("maya")
    assert locked > 0
    for i in range(MAX_TRACKED_NAMES + 50):
        try:
            limiter(f"made-up-{i}", "x")
        except HTTPException:
            pass  # the names without room share one record, which locks too
    assert len(limiter._failures) <= MAX_TRACKED_NAMES + 1  # bounded memory
    with pytest.raises(HTTPException, match="too many attempts"):
        limiter("maya", "pw")
    clock.now += locked + 0.1
    assert limiter("maya", "pw") is True


def test_usernames_without_room_share_one_locking_record(clock):
    limiter = LoginLimiter("maya", "pw", free_failures=2, max_tracked=3, clock=clock)
    for name in ("a", "b", "c"):
        for _ in range(2):
            limiter(name, "x")  # three locked records fill the table
    assert limiter("d", "x") is False
    assert limiter("e", "x") is False  # d and e share a record: its second failure locks
    assert limiter.locked_for("f") > 0
    with pytest.raises(HTTPException):
        limiter("maya", "pw")  # no room for maya either, until the locks pass


def test_records_expire_once_unlocked_and_quiet(clock):
    limiter = LoginLimiter("maya", "pw", free_failures=3, clock=clock)
    limiter("a", "x")
    limiter("b", "x")
    clock.now += FORGET_AFTER_S + 1
    limiter("c", "x")
    assert list(limiter._failures) == ["c"]
