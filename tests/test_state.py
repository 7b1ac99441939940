"""The in-memory fleet view: checks declared from the plan (a planned, never-run check exists
and is not up; a check no longer planned disappears; standing checks stay), results
counted, and snapshots that stay as they were taken, whichever thread reads them."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from helpers import config_of, endpoint, role_of

from probe.config.model import Endpoint
from probe.job import Job
from probe.outcome import Outcome, ProbeResult
from probe.state import (
    CHECK_LATENCY_BUCKETS,
    CheckState,
    EndpointView,
    FleetState,
    Histogram,
    KindStats,
    KindView,
    Snapshot,
)
from probe.verdict import State, Window

NOW = datetime(2026, 2, 18, 10, tzinfo=UTC)
A, B = endpoint(name="a", checks=("models", "health")), endpoint(name="b", checks=("models",))


def jobs_of(target: Endpoint, *checks: str) -> Job:
    return Job(f"{target.name}/{'+'.join(checks)}", target, checks, target.interval_s)


def result(target: str = "a", check: str = "models", outcome: Outcome = Outcome.OK,
           attempts: int = 1, latency_s: float = 0.2) -> ProbeResult:
    return ProbeResult(target, "pod", check, outcome, datetime(2026, 2, 18, 9, tzinfo=UTC),
                       latency_s, attempts, "http://pod.test", role=role_of(check))


def declared(state: FleetState) -> set[tuple[str, str]]:
    return set(state.snapshot().checks)


@pytest.mark.parametrize(
    ("endpoints", "jobs", "checks"),
    [((A,), [jobs_of(A, "models", "health")], {"a": ("models", "health")}),
     ((A,), [jobs_of(A, "models"), jobs_of(A, "prompt:arith")],
      {"a": ("models", "prompt:arith")}),
     ((A,), [jobs_of(A, "models", "health"), jobs_of(A, "health", "context")],
      {"a": ("models", "health", "context")}),
     ((A, B), [jobs_of(A, "models")], {"a": ("models",), "b": ()})],
    ids=["one-job", "a-feature-adds-a-job", "a-check-planned-twice-is-declared-once",
         "an-endpoint-with-no-job"],
)
def test_the_plan_declares_the_checks(endpoints: tuple[Endpoint, ...], jobs: list[Job],
                                      checks: dict[str, tuple[str, ...]]) -> None:
    state = FleetState(role_of)
    state.configure(config_of(*endpoints), jobs)
    snapshot = state.snapshot()
    assert {name: view.checks for name, view in snapshot.endpoints.items()} == checks
    assert set(snapshot.checks) == {(name, c) for name, cs in checks.items() for c in cs}
    for declared_check in snapshot.checks.values():  # planned, never run: exists, not up
        assert declared_check.latest is None and declared_check.last_success_ts is None
        assert not declared_check.outcomes


def test_endpoints_are_described_for_metrics() -> None:
    state = FleetState(role_of, clock=lambda: 1000.0)
    state.configure(config_of(A), [jobs_of(A, "models")])
    interval = A.interval_s
    snapshot = state.snapshot()
    assert snapshot.endpoints == {"a": EndpointView(
        "pod", "http://pod.test", ("models",), State.UNKNOWN, None)}, "not yet judged"
    assert snapshot.kinds == {"a": (KindView("api", KindStats.of("api"),
                                             1000.0 + 3 * interval + 300),)}


def test_results_are_counted_per_endpoint_and_kind_of_check() -> None:
    """The SLI's events and latency of an endpoint's checks, kept per kind of check; a
    check goes stale three intervals (plus 5 minutes) after its last result."""
    state = FleetState(role_of, clock=lambda: 1000.0)
    state.configure(config_of(A), [jobs_of(A, "models", "health", "prompt:arith")])
    for check, outcome, latency in (("models", Outcome.OK, 0.2), ("health", Outcome.HTTP_502, 3.0),
                                    ("models", Outcome.RATE_LIMITED, 0.1),
                                    ("prompt:arith", Outcome.OK, 4.0)):
        state.update(result(check=check, outcome=outcome, latency_s=latency))
    kinds = {k.kind: k for k in state.snapshot().kinds["a"]}
    assert set(kinds) == {"api", "generation"}
    api, generation = kinds["api"].stats, kinds["generation"].stats
    assert (api.observed_total, api.failed_total) == (2, 1), "rate_limited observes nothing"
    assert dict(api.latency.buckets()) == {"0.25": 2.0, "1.0": 2.0, "2.5": 2.0, "10.0": 3.0,
                                           "+Inf": 3.0}
    assert (generation.observed_total, generation.failed_total) == (1, 0)
    assert dict(generation.latency.buckets())["5.0"] == 1.0
    started = result().started_at.timestamp()
    assert kinds["api"].stale_at == started + 3 * A.interval_s + 300


def test_a_result_renews_only_its_own_kinds_view() -> None:
    """The other kinds' views are told again as the same objects (a watcher rewrites only
    the new one), and the new one is what judging every kind afresh gives."""
    state = FleetState(role_of, clock=lambda: 1000.0)
    state.configure(config_of(A), [jobs_of(A, "models", "health", "prompt:arith")])
    state.update(result(check="prompt:arith", latency_s=4.0))
    before = state.snapshot().kinds["a"]
    state.update(result(check="health", outcome=Outcome.HTTP_502, latency_s=3.0))
    after = state.snapshot().kinds["a"]
    assert [k.kind for k in after] == [k.kind for k in before] == ["api", "generation"]
    assert after[1] is before[1] and after[0] is not before[0]
    assert after[0].stats.failed_total == 1
    assert after == state._kind_views("a", ("models", "health", "prompt:arith"))


@pytest.mark.parametrize(
    ("second_config", "second_jobs", "kept", "gone"),
    [((A,), [jobs_of(A, "models")], {("a", "models")}, {("a", "prompt:arith")}),
     ((B,), [jobs_of(B, "models")], {("b", "models")}, {("a", "models"), ("a", "prompt:arith")}),
     ((A, B), [jobs_of(A, "models", "prompt:arith"), jobs_of(B, "models")],
      {("a", "models"), ("a", "prompt:arith"), ("b", "models")}, set())],
    ids=["a-prompt-removed", "an-endpoint-removed", "an-endpoint-added"],
)
def test_a_check_no_longer_planned_disappears_and_the_others_keep_their_results(
        second_config: tuple[Endpoint, ...], second_jobs: list[Job], kept: set[tuple[str, str]],
        gone: set[tuple[str, str]]) -> None:
    state = FleetState(role_of)
    state.configure(config_of(A), [jobs_of(A, "models", "prompt:arith")])
    state.update(result("a", "models"))
    state.update(result("a", "prompt:arith", Outcome.EXPECTATION_FAILED))
    state.configure(config_of(*second_config), second_jobs)
    assert declared(state) == kept and not declared(state) & gone
    if ("a", "models") in kept:
        assert state.latest("a", "models") == result("a", "models"), "results are kept"
    assert all(state.latest(*key) is None for key in gone)


def test_standing_checks_survive_configure() -> None:
    state = FleetState(role_of)
    state.declare_standing("runpod-api", "discovery")
    assert ("runpod-api", "discovery") in declared(state)
    assert state.latest("runpod-api", "discovery") is None, "declared, never run: not up"
    state.update(result("runpod-api", "discovery", Outcome.UNKNOWN))
    state.configure(config_of(A), [jobs_of(A, "models")])
    state.configure(config_of(B), [jobs_of(B, "models")])
    assert declared(state) == {("runpod-api", "discovery"), ("b", "models")}
    latest = state.latest("runpod-api", "discovery")
    assert latest is not None and latest.outcome is Outcome.UNKNOWN
    view = state.snapshot().endpoints["runpod-api"]
    assert view.kind is None and view.checks == (), "judged, but not a configured endpoint"


def test_the_status_line_counts_endpoints_not_the_discovery_pseudo_endpoint() -> None:
    # issue 24: "14 endpoints: 1 maintenance, 14 unknown": runpod-api counted in the states
    state = FleetState()
    state.declare_standing("runpod-api", "discovery")
    state.configure(config_of(A, B), [jobs_of(A, "models"), jobs_of(B, "models")])
    assert state.standing_outcomes() == {"runpod-api/discovery": "not run yet"}
    state.update(result("runpod-api", "discovery", Outcome.UNAUTHORIZED))
    assert state.states() == {"unknown": 2}
    assert state.standing_outcomes() == {"runpod-api/discovery": "unauthorized"}


@pytest.mark.parametrize(
    ("outcome", "attempts", "success", "retried_ok", "latency_observed"),
    [(Outcome.OK, 1, True, 0, True), (Outcome.OK, 2, True, 1, True),
     (Outcome.HTTP_404, 2, False, 0, True), (Outcome.TIMEOUT, 1, False, 0, True),
     (Outcome.SKIPPED_BUDGET, 1, False, 0, False)],
    ids=["ok", "ok-after-a-retry", "http-404", "timeout", "skipped-budget-not-timed"],
)
def test_update_counts_each_result(outcome: Outcome, attempts: int, success: bool,
                                   retried_ok: int, latency_observed: bool) -> None:
    state = FleetState(role_of)
    state.per_check_latency = True  # metrics: {per_check: true}
    state.configure(config_of(A), [jobs_of(A, "models")])
    state.update(result(outcome=outcome, attempts=attempts))
    check = state.snapshot().checks[("a", "models")]
    assert check.outcomes == {str(outcome): 1}
    assert (check.last_success_ts is not None) is success
    assert check.retried_ok_total == retried_ok
    assert sum(check.latency.counts) == int(latency_observed)
    assert state.snapshot().daemon.probes_total == 1


def test_a_checks_own_latency_is_kept_only_when_exported() -> None:
    """Unless ``metrics: {per_check: true}`` shows them (its collector sets
    ``per_check_latency``), no check keeps a histogram of its own (they share one empty
    histogram, never changed); with it, each check's is its own."""
    state = FleetState(role_of)
    state.configure(config_of(A), [jobs_of(A, "models", "health")])
    state.update(result(check="models"))
    state.update(result(check="health"))
    checks = state.snapshot().checks
    assert checks[("a", "models")].latency is checks[("a", "health")].latency
    assert sum(checks[("a", "models")].latency.counts) == 0
    state.per_check_latency = True
    state.update(result(check="models"))
    checks = state.snapshot().checks
    assert sum(checks[("a", "models")].latency.counts) == 1
    assert sum(checks[("a", "health")].latency.counts) == 0


def test_counts_by_outcome_are_one_shared_empty_mapping_until_a_failure() -> None:
    """Checks and kinds of check that have counted no failure share one read-only empty
    mapping (no dict each); the first failure gives the check and its kind their own,
    and the shared one stays empty."""
    state = FleetState(role_of)
    state.configure(config_of(A), [jobs_of(A, "models", "health")])
    state.update(result(check="models"))
    snapshot = state.snapshot()
    models, health = snapshot.checks[("a", "models")], snapshot.checks[("a", "health")]
    (api,) = [k.stats for k in snapshot.kinds["a"]]
    assert models.not_ok is health.not_ok is api.failed_by_outcome
    assert dict(models.not_ok) == {}
    with pytest.raises(TypeError):
        models.not_ok["error"] = 1  # type: ignore[index]
    state.update(result(check="health", outcome=Outcome.HTTP_502))
    snapshot = state.snapshot()
    health = snapshot.checks[("a", "health")]
    (api,) = [k.stats for k in snapshot.kinds["a"]]
    assert health.outcomes == {"http_502": 1}
    assert dict(api.failed_by_outcome) == {"http_502": 1}
    assert dict(snapshot.checks[("a", "models")].not_ok) == {}
    assert dict(CheckState().not_ok) == {} and dict(KindStats.of("api").failed_by_outcome) == {}


def test_a_result_for_an_undeclared_check_is_kept() -> None:
    state = FleetState(role_of)
    state.update(result("runpod-api", "discovery"))
    assert state.latest("runpod-api", "discovery") is not None


def _in_another_thread(state: FleetState) -> Snapshot:
    taken: list[Snapshot] = []
    reader = threading.Thread(target=lambda: taken.append(state.snapshot()))
    reader.start()
    reader.join()
    return taken[0]


@pytest.mark.parametrize("reader", ["writer-thread", "other-thread"])
def test_a_snapshot_stays_as_it_was_taken_in_any_thread(reader: str) -> None:
    """/metrics is written in slices between probes (in the event loop's thread) or read from
    the listener's: either way what a snapshot holds (its checks' counters, which endpoints
    and checks, each endpoint's view) does not move when the event loop writes."""
    state = FleetState(role_of)
    state.per_check_latency = True  # metrics: {per_check: true}
    state.configure(config_of(A), [jobs_of(A, "models")])
    state.update(result())
    snapshot = _in_another_thread(state) if reader == "other-thread" else state.snapshot()
    before = snapshot.endpoints["a"]
    state.update(result(outcome=Outcome.TIMEOUT, latency_s=3.0))
    state.add_in_flight(1)
    state.observe_lag(0.5)
    assert state.snapshot().checks[("a", "models")].outcomes == {"ok": 1, "timeout": 1}
    state.configure(config_of(B), [jobs_of(B, "models")])
    check = snapshot.checks[("a", "models")]
    assert check.outcomes == {"ok": 1} and sum(check.latency.counts) == 1
    assert check.latest == result()
    assert snapshot.daemon.probes_total == 1 and snapshot.daemon.in_flight == 0
    assert sum(snapshot.daemon.lag.counts) == 0
    assert set(snapshot.endpoints) == {"a"} and set(snapshot.checks) == {("a", "models")}
    assert snapshot.endpoints["a"] is before
    # ... and clearing its mappings does not touch the state
    snapshot.endpoints.clear()
    snapshot.checks.clear()
    fresh = state.snapshot()
    assert fresh.checks[("b", "models")].outcomes == {}
    assert set(fresh.endpoints) == {"b"}


def test_an_endpoints_view_follows_each_of_its_results_and_windows() -> None:
    state = FleetState(role_of)
    state.configure(config_of(B), [jobs_of(B, "models")])
    assert state.views()["b"].state is State.UNKNOWN
    for _ in range(2):
        state.update(result("b"))
    assert state.views()["b"].state is State.UP
    for _ in range(3):
        state.update(result("b", outcome=Outcome.HTTP_404))
    down = state.views()["b"]
    assert down.state is State.DOWN and down.cause is not None
    assert down.cause.outcome == "http_404" and down.since is not None
    window = Window("w", "w", "upgrade", "config", NOW, None)
    state.set_maintenance("b", window, NOW)
    assert state.views()["b"].state is State.MAINTENANCE
    assert state.views()["b"].window == "w: upgrade"
    state.set_maintenance("b", None, NOW)
    assert state.views()["b"].state is State.DOWN


def test_histogram_buckets_are_cumulative() -> None:
    histogram = Histogram(CHECK_LATENCY_BUCKETS)
    for value in (0.01, 0.05, 0.3, 100.0):
        histogram.observe(value)
    buckets = dict(histogram.buckets())
    assert buckets["0.05"] == 2.0 and buckets["0.5"] == 3.0 and buckets["60.0"] == 3.0
    assert buckets["+Inf"] == 4.0 and histogram.total == pytest.approx(100.36)


def test_a_server_minting_model_names_cannot_mint_series() -> None:
    """The served model is a label value the server chooses: bounded in length, and in how
    many distinct values one endpoint shows; the rest fold into "other"."""
    state = FleetState(role_of)
    state.configure(config_of(A), [jobs_of(A, "models")])
    labels = []
    for n in range(10):
        state.update(ProbeResult("a", "pod", "models", Outcome.OK, datetime.now(UTC), 0.01, 1,
                                 "http://pod.test", details={"model": f"m{n}" + "x" * 500,
                                                            "max_model_len": 8192}, role=role_of("models")))
        labels.append(state.snapshot().endpoints["a"].model_label)
    assert len(set(labels)) == 4 and labels[-1] == "other"
    assert all(label is not None and len(label) <= 120 for label in labels)


def test_up_waits_for_every_job_run_as_often_as_the_endpoints_own_checks() -> None:
    # the context fit runs as a job of its own at the endpoint's interval: read before "up";
    # a round trip every 10 minutes can hold the endpoint down but not its first "up"
    jobs = [jobs_of(A, "models", "health"), jobs_of(A, "context"),
            Job("a/roundtrip", A, ("roundtrip",), 600.0)]
    state = FleetState(role_of)
    state.configure(config_of(A), jobs)
    for check in ("models", "health", "roundtrip", "models", "health", "roundtrip"):
        state.update(result(check=check))
    assert state.views()["a"].state is State.UNKNOWN, "the context job has not vouched yet"
    for outcome in (Outcome.OK, Outcome.OK):
        state.update(result(check="context", outcome=outcome))
    assert state.views()["a"].state is State.UP


class Told:
    """A watcher that notes what the state tells it: (kind, name, value or None)."""

    def __init__(self) -> None:
        self.told: list[tuple[str, object, object]] = []

    def check_changed(self, key: tuple[str, str], state: CheckState | None) -> None:
        self.told.append(("check", key, None if state is None else dict(state.outcomes)))

    def view_changed(self, name: str, view: EndpointView | None) -> None:
        self.told.append(("view", name, None if view is None else view.state))

    def kinds_changed(self, name: str, kinds: tuple[KindView, ...] | None) -> None:
        self.told.append(("kinds", name, None if kinds is None else
                          {k.kind: k.stats.observed_total for k in kinds}))


def test_watchers_are_told_of_what_is_held_and_of_each_change() -> None:
    state = FleetState(role_of)
    state.configure(config_of(B), [jobs_of(B, "models")])
    watcher = Told()
    state.watch(watcher)
    assert watcher.told == [("check", ("b", "models"), {}), ("view", "b", State.UNKNOWN),
                            ("kinds", "b", {"api": 0})]
    watcher.told.clear()
    for _ in range(3):
        state.update(result("b"))
    assert watcher.told == [("kinds", "b", {"api": 1}), ("check", ("b", "models"), {"ok": 1}),
                            ("kinds", "b", {"api": 2}), ("check", ("b", "models"), {"ok": 2}),
                            ("view", "b", State.UP),  # the view only when it changed
                            ("kinds", "b", {"api": 3}), ("check", ("b", "models"), {"ok": 3})]
    watcher.told.clear()
    state.configure(config_of(A), [jobs_of(A, "models")])
    assert sorted(watcher.told, key=str) == sorted(
        [("check", ("a", "models"), {}), ("check", ("b", "models"), None),
         ("view", "a", State.UNKNOWN), ("view", "b", None), ("kinds", "a", {"api": 0}),
         ("kinds", "b", None)], key=str)


def test_the_view_is_the_verdicts_after_every_result() -> None:
    # A result whose track shows what it showed leaves the view as it was (not built again):
    # after each of a long mixed run (passes after passes, failures, results that observed
    # nothing, a governed answer failing and passing, the served model changing) the view
    # still says what the verdict and the latest served model say, and watchers were told
    # of every view that changed.
    import random

    target = endpoint(name="a", checks=("models", "health"))
    jobs = [jobs_of(target, "models", "health"), jobs_of(target, "prompt:arith")]
    state = FleetState(role_of)
    state.configure(config_of(target), jobs)
    watcher = Told()
    state.watch(watcher)
    pick = random.Random(25)
    outcomes = [Outcome.OK] * 6 + [Outcome.TIMEOUT, Outcome.HTTP_502, Outcome.UNKNOWN,
                                   Outcome.RATE_LIMITED, Outcome.EXPECTATION_FAILED]
    at = NOW
    model: tuple[str, int] | None = None
    for i in range(600):
        check = pick.choice(["models", "health", "prompt:arith"])
        outcome = pick.choice(outcomes)
        details: dict[str, object] = {}
        if check == "models" and outcome is Outcome.OK:
            details = {"model": pick.choice(["m1", "m2"]), "max_model_len": 4096}
        at = at.replace(second=i % 60)
        state.update(ProbeResult("a", "pod", check, outcome, at, 0.1, 1, "http://pod.test",
                                 details=details, role=role_of(check)))
        if check == "models":
            model = (str(details["model"]), 4096) if details else None
        verdict = state.verdict("a")
        assert verdict is not None
        view = state.views()["a"]
        assert (view.state, view.cause, view.since) == \
            (verdict.state, verdict.cause, verdict.since), f"after result {i}"
        assert (view.model_label, view.max_model_len) == (model or (None, None))
        told = [value for kind, name, value in watcher.told if kind == "view"]
        assert told and told[-1] is view.state, f"watchers behind after result {i}"
    seen = {str(v) for kind, _, v in watcher.told if kind == "view"}
    assert {"up", "down", "degraded"} <= seen, "the run went through every state"


def test_the_latest_result_is_kept_without_its_details_and_they_still_judge() -> None:
    """The details (what the check saw) are the database's: the state keeps the rest of the
    latest result, after they served the verdict (a served model changed)."""
    state = FleetState(role_of)
    state.configure(config_of(A), [jobs_of(A, "models", "health")])
    seen = ProbeResult("a", "pod", "models", Outcome.OK, NOW, 0.2, 1, "http://pod.test",
                       "served m1", 200, {"model": "m1", "max_model_len": 8192, "ids": ["m1"]},
                       role_of("models"))
    state.update(seen)
    kept = state.latest("a", "models")
    assert kept is not None and kept.details == {} and seen.details["model"] == "m1"
    assert (kept.outcome, kept.message, kept.http_status, kept.started_at, kept.role) == \
        (Outcome.OK, "served m1", 200, NOW, role_of("models"))
    assert state.views()["a"].model_label == "m1" and state.views()["a"].max_model_len == 8192
    plain = result("a", "health")
    state.update(plain)
    assert state.latest("a", "health") is plain, "a result without details is kept as it is"
