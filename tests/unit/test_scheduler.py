"""Streaming-aware admission, playback deadlines, fair share and the adaptive window, as pure
functions of views, costs and an injected time."""

from __future__ import annotations

import pytest

from voxbatch_server.batching.fairshare import FairShare
from voxbatch_server.batching.playback import PlaybackClock, RequestTrack, RowProgress
from voxbatch_server.batching.protection import Protection, light_limit
from voxbatch_server.batching.scheduler import (
    Candidate,
    RowView,
    StepCosts,
    adaptive_window,
    admit,
    arrival_rate,
    may_wait,
    predicted_slack,
)
from voxbatch_server.errors import Overloaded

AUDIO = 0.16  # audio per step
MARGIN = 0.32
# One row: 0.04 s per 0.16 s of audio; four rows take exactly a step's audio; five fall behind.
COSTS = StepCosts(step_s=lambda n: 0.04 * n, prefill_s=lambda n: 0.05 * n)


def stream(slack, remaining=20):
    return RowView(slack, remaining, AUDIO, required_s=MARGIN)


def new_stream(remaining=20):
    return RowView(None, remaining, AUDIO, fresh=True)


def unary(deadline_in=None, remaining=20):
    return RowView(deadline_in, remaining)


def names(candidates, running, room=8, costs=COSTS):
    return admit(running, [Candidate(name, view, due) for name, view, due in candidates], room, costs)


# -- admission -------------------------------------------------------------------------------------


def test_holds_back_when_a_running_stream_would_fall_below_the_margin():
    # Three running streams, one only just above the margin: a fourth row's prefill would take
    # it below, so the new request waits (and so does everything behind it).
    running = [stream(1.0), stream(1.0), stream(MARGIN + 0.15)]
    assert names([("new", new_stream(), False), ("next", new_stream(), False)], running) == []


def test_admits_when_streams_are_ahead_even_past_the_sustainable_batch():
    # Five rows cost 0.20 s a step for 0.16 s of audio: sustainable only with slack to spend.
    # The candidate is the next sentence of a stream that is far ahead.
    later = stream(3.0, remaining=10)
    behind = [stream(0.5, remaining=10) for _ in range(4)]
    ahead = [stream(3.0, remaining=10) for _ in range(4)]
    assert names([("later", later, False)], behind) == []
    assert names([("later", later, False)], ahead) == ["later"]
    # Work without a listener joins such a batch too, for throughput...
    assert names([("job", unary(), False)], ahead) == ["job"]
    # ... but a new stream would fall behind its own playback in it, so it waits.
    assert names([("new", new_stream(), False)], ahead) == []


def test_admits_only_as_many_as_keep_every_stream_ahead():
    running = [stream(2.0, remaining=30)]
    joined = names([(f"r{i}", new_stream(remaining=30), False) for i in range(6)], running)
    # The grown batch must not make any of its new streams lose playback after their first chunk:
    # with 0.04 s a row, at most four rows keep up with 0.16 s of audio a step.
    assert joined == ["r0", "r1", "r2"]


def test_quick_start_for_a_new_request_when_no_stream_is_endangered():
    running = [stream(2.0), unary()]
    assert names([("new", new_stream(), False)], running) == ["new"]
    # A fresh batch takes its first row unconditionally: there is nothing to protect.
    assert names([("first", new_stream(), False)], []) == ["first"]


def test_rows_without_time_pressure_never_hold_admission_back():
    assert names([("a", unary(), False), ("b", unary(), False)], [unary(), unary()]) == ["a", "b"]


def test_a_due_sentence_may_spend_the_margin_of_others_but_not_stall_them():
    running = [stream(MARGIN + 0.05, remaining=10)]
    assert names([("later", stream(0.4, remaining=10), False)], running) == []
    assert names([("later", stream(0.4, remaining=10), True)], running) == ["later"]
    nearly_stalled = [stream(0.08, remaining=10)]
    assert names([("later", stream(0.4, remaining=10), True)], nearly_stalled) == []


def test_unary_deadline_holds_back_rows_that_would_make_it_late():
    # 20 steps left at 0.04 s each alone = 0.8 s; with a second row 1.6 s plus its prefill.
    assert names([("new", unary(), False)], [unary(deadline_in=1.0)]) == []
    assert names([("new", unary(), False)], [unary(deadline_in=5.0)]) == ["new"]
    # A candidate with a deadline it can still meet is taken; one it cannot meet is not.
    assert names([("urgent", unary(deadline_in=1.0), True)], []) == ["urgent"]
    assert names([("late", unary(deadline_in=0.5), False)], [unary()]) == []


def test_predicted_slack_counts_prefill_steps_finishing_rows_and_the_overlap():
    row = stream(1.0)
    assert predicted_slack(row, 1, 0.1, 0.05) == pytest.approx(0.85)
    # Each step takes 0.04 s more than the audio it gives: the fifth chunk is the latest.
    assert predicted_slack(row, 5, 0.2, 0.05) == pytest.approx(1.0 - 0.05 - 0.2 - 4 * 0.04)
    # Another row finishing in step 2 (its final decode, 0.3 s) delays chunks 3 on.
    assert predicted_slack(row, 5, 0.2, 0.05, finishes=[2], finish_s=0.3) == pytest.approx(1.0 - 0.05 - 0.2 - 4 * 0.04 - 0.3)
    # A fresh stream's clock starts at its first chunk: its fifth is 4 x 0.04 s late.
    assert predicted_slack(new_stream(), 5, 0.2, 0.05) == pytest.approx(-4 * 0.04)
    assert predicted_slack(new_stream(), 5, 0.1, 0.05) == pytest.approx(0.06)
    # A unary row with a deadline: all its steps, then its own final decode.
    assert predicted_slack(unary(2.0), 5, 0.2, 0.05, finish_s=0.3) == pytest.approx(2.0 - 0.05 - 1.0 - 0.3)


def test_rows_far_ahead_may_wait_while_another_stream_is_behind():
    rows = [stream(0.1), stream(4 * MARGIN + 0.5), unary(), new_stream()]
    assert may_wait(rows, MARGIN) == [False, True, True, False]
    assert may_wait([stream(1.0), stream(4 * MARGIN + 0.5)], MARGIN) == [False, False]
    # A stream that just started (one chunk ahead) on steps cheaper than its audio gains on every
    # step: nothing waits for it, batching goes on. On steps dearer than its audio, it loses.
    starting = [stream(AUDIO), stream(4 * MARGIN + 0.5)]
    assert may_wait(starting, MARGIN, step_s=0.06) == [False, False]
    assert may_wait(starting, MARGIN, step_s=0.20) == [False, True]


# -- playback deadlines ----------------------------------------------------------------------------


def test_playback_starts_at_the_first_chunk_and_counts_stalls():
    clock = PlaybackClock()
    assert clock.slack(0.0) is None
    clock.deliver(1.0, 0.16)
    clock.deliver(1.1, 0.16)
    assert clock.slack(1.1) == pytest.approx(0.22)
    clock.deliver(1.5, 0.16)  # playback ran out at 1.32: a 0.18 s gap
    assert clock.stalls == 1 and clock.stalled_s == pytest.approx(0.18)
    assert clock.slack(1.5) == pytest.approx(0.16)  # the player resumed with this chunk


def test_a_later_sentence_is_needed_only_when_the_audio_before_it_has_played():
    track = RequestTrack(stream=True, rows=[RowProgress(), RowProgress()])
    assert track.needed_at(0, 5.0) is None  # not started: quick start, no deadline yet
    track.emitted(0, 10.0, 0.16)
    track.emitted(0, 10.1, 0.16)
    # Sentence 1's next chunk: when its 0.32 s have played.
    assert track.needed_at(0, 5.0) == pytest.approx(10.32)
    # Sentence 2 starts after sentence 1, expected to last 5 s in all: 4.68 s more to come.
    assert track.needed_at(1, 5.0) == pytest.approx(15.0)
    track.emitted(1, 10.2, 0.16)  # emitted early: buffered, it does not count as delivered yet
    assert track.clock.delivered_s == pytest.approx(0.32)
    assert track.needed_at(1, 5.0) == pytest.approx(15.16)
    track.finished(0, 10.3)  # sentence 1 was 0.32 s long after all: sentence 2's chunk plays now
    assert track.clock.delivered_s == pytest.approx(0.48)
    assert track.needed_at(1, 5.0) == pytest.approx(10.48)


# -- fair share ------------------------------------------------------------------------------------


def test_fair_share_serves_callers_in_turn_whatever_they_queued():
    fair = FairShare()
    flood = [("flood", fair.tag("flood", 0)) for _ in range(6)]
    light = [("light", fair.tag("light", 0)) for _ in range(2)]
    order = [c for c, _ in sorted(flood + light, key=lambda x: x[1])]
    assert order[:4] == ["flood", "light", "flood", "light"] or order[:4] == ["light", "flood", "light", "flood"]
    # A caller arriving later starts at the current round, not behind the whole flood.
    for _, tag in sorted(flood + light, key=lambda x: x[1])[:4]:
        fair.left_queue("flood", 0, tag, dispatched=True)
    late = fair.tag("late", 0)
    waiting = sorted(t for c, t in flood[2:])
    assert late <= waiting[1]


def test_per_caller_cap_refuses_the_flooding_caller_only():
    fair = FairShare(per_caller_cap=3)
    for _ in range(3):
        fair.tag("flood", 0)
    with pytest.raises(Overloaded, match="at most 3"):
        fair.check("flood", 1)
    fair.check("light", 1)  # others still get in
    fair.left_queue("flood", 0, 0.0, dispatched=True)
    fair.check("flood", 1)  # room again once one of its items left the queue


# -- adaptive window -------------------------------------------------------------------------------


def step_cost(n):
    return 0.05 + 0.01 * n  # batching saves most of a step per extra row


def test_adaptive_window_stays_within_its_bounds():
    low, high = 0.010, 0.050
    for rate in (0.0, 0.5, 5.0, 50.0, 5000.0):
        for queued in range(1, 9):
            assert low <= adaptive_window(rate, queued, 8, step_cost, low, high) <= high


def test_adaptive_window_waits_only_when_arrivals_pay_for_the_wait():
    low, high = 0.010, 0.050
    assert adaptive_window(0.0, 1, 8, step_cost, low, high) == low  # nobody is coming
    assert adaptive_window(2.0, 4, 8, step_cost, low, high) == low  # saving 0.05 s x 2/s < 4 rows delayed
    assert adaptive_window(1000.0, 1, 8, step_cost, low, high) == low  # the batch fills within 10 ms anyway
    assert adaptive_window(200.0, 2, 8, step_cost, low, high) == pytest.approx(0.030)  # 6 more at 200/s
    assert adaptive_window(200.0, 8, 8, step_cost, low, high) == low  # already full
    linear = lambda n: 0.06 * n  # noqa: E731 - batching saves nothing: never wait
    assert adaptive_window(1000.0, 1, 8, linear, low, high) == low


def test_arrival_rate_counts_recent_arrivals():
    assert arrival_rate([], 10.0) == 0.0
    assert arrival_rate([9.0, 9.5, 10.0], 10.0) == pytest.approx(2.0)
    assert arrival_rate([0.0, 1.0, 9.0, 9.5, 10.0], 10.0, horizon_s=2.0) == pytest.approx(2.0)


def test_places_are_kept_for_the_next_sentences_of_started_streams():
    running = [stream(3.0), stream(3.0)]
    # Two places free, one kept for a started stream's next sentence: one new request gets in...
    assert admit(running, [Candidate("a", new_stream()), Candidate("b", new_stream())], 2, COSTS, reserved=1) == ["a"]
    # ... a due sentence takes a free place before them, and the kept one stays kept.
    due_first = [Candidate("next", stream(2.0), True), Candidate("a", new_stream())]
    assert admit(running, due_first, 2, COSTS, reserved=1) == ["next"]
    assert admit(running, due_first, 3, COSTS, reserved=1) == ["next", "a"]
    assert admit(running, [Candidate("a", new_stream())], 1, COSTS, reserved=1) == []


# -- latency protection for light callers ----------------------------------------------------------


def caller_rows(*callers, key="k"):
    from voxbatch_server.batching.policy import Pending

    return [Pending(payload=c, key=key, priority=0, seq=i, enqueued_at=0.0, caller=c) for i, c in enumerate(callers)]


def test_light_limit_follows_what_batching_costs_on_the_hardware():
    cpu = lambda n: 0.010 + 0.0075 * n  # noqa: E731 - eight rows cost about four times one
    gpu = lambda n: 0.020 + 0.0001 * n  # noqa: E731 - eight rows cost about what one costs
    assert light_limit(cpu, 8, 1.5) == 2
    assert light_limit(cpu, 8, 2.0) == 3
    assert light_limit(gpu, 8, 1.5) == 8


def test_a_heavier_caller_cannot_take_the_places_a_lighter_active_caller_needs():
    # The flood holds two rows of a batch whose limit is three; the light caller, active a moment
    # ago, holds none: one place stays free for it, so the flood may not grow.
    rule = Protection(caller_rows("flood", "flood"), {"flood": 0, "light": 0}, limit=3)
    flood, light = caller_rows("flood", "light")
    assert not rule.may_grow(flood)
    assert rule.may_grow(light)
    # Without another active caller the flood grows freely (up to the batch's own limits).
    alone = Protection(caller_rows("flood", "flood"), {"flood": 0}, limit=3)
    assert alone.may_grow(flood, caller_rows("flood"))
    # A background caller is not protected against interactive work.
    background = Protection(caller_rows("flood", "flood"), {"flood": 0, "batch-job": 1}, limit=3)
    assert background.may_grow(flood)


def test_callers_with_one_row_each_still_fill_the_batch():
    # The load benchmark's shape: sixteen callers, each with one request; none holds more than
    # another before it joins, so batching is untouched.
    running = caller_rows(*(f"c{i}" for i in range(5)))
    rule = Protection(running, {f"c{i}": 0 for i in range(16)}, limit=2)
    joined = []
    for item in caller_rows(*(f"c{i}" for i in range(5, 8))):
        assert rule.may_grow(item, joined)
        joined.append(item)


def test_admission_skips_the_heavier_caller_and_lets_the_lighter_one_in():
    flood_rows = [stream(3.0) for _ in range(2)]
    rule = Protection(caller_rows("flood", "flood"), {"flood": 0, "light": 0}, limit=3)
    flood, light = caller_rows("flood", "light")
    candidates = [Candidate(flood, new_stream()), Candidate(light, unary())]
    assert admit(flood_rows, candidates, 6, COSTS, fits=rule.may_grow) == [light]
    # A started stream's due sentence is never refused for the share: it must not stall.
    due = [Candidate(flood, stream(2.0), True), Candidate(light, unary())]
    assert admit(flood_rows, due, 6, COSTS, fits=rule.may_grow) == [flood, light]


def test_a_light_callers_request_goes_first_beside_a_flood_on_a_whole_batch_engine():
    from voxbatch_server.batching.admission import Scheduling
    from voxbatch_server.batching.costmodel import CostModel
    from voxbatch_server.batching.policy import BatchLimits

    costs = CostModel()
    for _ in range(3):
        costs.observe_step("k", 1, 0.03)  # a work item takes 0.03 s; a batch may run 8 (0.24 s) first
    clock = SimClockValue()
    scheduling = Scheduling(BatchLimits(), costs, clock)
    scheduling.stepwise = False  # a whole batch at a time (Piper computing rows in turn)
    flood = caller_rows(*["flood"] * 5)  # more queued than one stream's ramp: a backlog
    due = flood[0]
    due.track = RequestTrack(stream=True, caller="flood", rows=[RowProgress(done=True), RowProgress()])
    due.row = 1
    due.track.emitted(0, 0.0, 0.55)
    due.track.finished(0, 0.0)
    [light] = caller_rows("light")
    light.seq = 9
    scheduling.rank([*flood, light], 0, 0.0)
    # The flood's next sentence is due (0.55 s of slack, 0.27 s of lead) and can spare a light
    # request: the light request goes first, ahead of the flood's due sentence.
    assert due.rank == 0 and light.rank == -1
    # Once that sentence could not wait for it and keep half the margin, the light request waits.
    clock.t = 0.15
    scheduling.rank([*flood, light], 0, 0.15)
    assert due.rank == 0 and light.rank == 1
    # A peer with as little queued as it (no backlog beside it) keeps its place in fair order.
    scheduling.rank([*flood[1:4], light], 0, 0.15)
    assert light.rank == 1
    # Under an overload many callers share (an open loop), each holding a few items, none floods:
    # a caller's lone request does not overtake the others' streams.
    clock.t = 0.0
    peers = [item for name in ("a", "b", "c") for item in caller_rows(*[name] * 4)]
    scheduling.rank([due, *peers, light], 0, 0.0)
    assert due.rank == 0 and light.rank == 1


def test_a_cut_in_needs_a_caller_that_holds_most_of_the_queue():
    from voxbatch_server.batching.admission import Scheduling
    from voxbatch_server.batching.costmodel import CostModel
    from voxbatch_server.batching.policy import BatchLimits

    scheduling = Scheduling(BatchLimits(), CostModel(), SimClockValue())
    [running] = caller_rows("flood")
    [light] = caller_rows("light")
    flood = caller_rows(*["flood"] * 4)
    assert scheduling.cut_in([running], [*flood, light]) is light
    # The batch's caller is one of several with a few items each: nobody cuts into its item.
    peers = [*caller_rows(*["flood"] * 4), *caller_rows(*["b"] * 4), *caller_rows(*["c"] * 4), light]
    assert scheduling.cut_in([running], peers) is None


class SimClockValue:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t
