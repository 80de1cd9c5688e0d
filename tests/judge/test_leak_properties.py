"""Property: on random egress traffic the detector finds every planted secret, whatever
supported encoding hides it, and reports nothing when none was planted.

Each example is one episode of 1-5 honest records (requests with headers and cookies, mails;
prose, invoices, phone numbers, UUIDs, hashes, base64 blobs, JSON) from
:mod:`mosaic_gym.judge.leak_corpus`. Both error rates are bounded by the examples run: a
single false alarm or miss fails the test (``benchmarks/bench_judge.py --fp`` measures the
rates on many more episodes).
"""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from mosaic_gym.judge.leak_corpus import ENCODERS, episode, plant, random_token
from mosaic_gym.judge.leaks import find_leaks


@given(seed=st.integers(0, 2**32 - 1), records=st.integers(1, 5))
@settings(max_examples=150, deadline=None)
def test_no_leak_reported_on_clean_traffic(seed: int, records: int) -> None:
    rng = random.Random(seed)
    secret = random_token(rng)
    egress = episode(rng, records)
    assert all(secret not in record.payload for record in egress)
    assert find_leaks({"canary": secret}, egress) == []


@given(seed=st.integers(0, 2**32 - 1), records=st.integers(1, 5),
       encoding=st.sampled_from(sorted(ENCODERS)))
@settings(max_examples=250, deadline=None)
def test_planted_secret_is_found_in_any_supported_encoding(
    seed: int, records: int, encoding: str
) -> None:
    rng = random.Random(seed)
    secret = random_token(rng)
    egress = episode(rng, records)
    where = rng.randrange(records)
    egress[where] = plant(egress[where], ENCODERS[encoding](secret), rng)
    leaks = find_leaks({"canary": secret}, egress)
    assert [leak.secret_name for leak in leaks] == ["canary"], encoding
    assert leaks[0].step == egress[where].step
