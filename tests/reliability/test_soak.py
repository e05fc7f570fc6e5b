"""A CI-sized load through the gateway process (closed loop, bounded by count): every request answered as
specified, the gateway's own counts equal to the client's, streams closed once, memory and open files flat."""

from __future__ import annotations

from tests.reliability.soak import MIX, run_soak

ROUNDS = 20  # of the whole mix


def test_mixed_load_is_answered_counted_and_leaves_the_process_as_it_found_it() -> None:
    result = run_soak(total=ROUNDS * len(MIX), rate=None, concurrency=8, warmup=10 * len(MIX))
    report = result.as_dict()
    tally = result.tally
    assert tally.no_answer == 0 and tally.sent == result.requests, report
    assert tally.server_errors == 0 and dict(tally.unexpected) == {}, report
    assert tally.by_class["2xx"] > 0 and tally.by_class["4xx"] > 0, report
    assert tally.streams == tally.streams_well_closed == ROUNDS * sum(kind.stream for kind in MIX), report
    assert result.metrics_match, result.metrics_diff
    assert result.final["from_clients"] == 0, report
    assert result.final["non_socket_files"] <= result.baseline["non_socket_files"], report
    assert result.final["to_upstream"] <= result.baseline["concurrency"], report
    assert result.rss_growth_kib <= result.rss_limit_kib, report
