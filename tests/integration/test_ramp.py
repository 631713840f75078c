"""Guarded ramps end to end: real redis-server, three apigw processes of one fleet, two recording upstreams (the
route's side and the split side) and `apigw ctl ramp`. With holds of seconds: a healthy split side is ramped
through every step, and users stay on one side across the automatic steps; one that starts answering 10 % 500s,
or grows slow, is put back to 0 % within a check or two and no later step is taken; the judging instance killed
mid-ramp is replaced; Redis paused mid-ramp holds the fleet at its step, and the ramp goes on when Redis returns;
pause, resume and abort."""

import os
import signal
import time

from apigw_harness import wait_until, write_config
from fleet_harness import Load, control, ctl, ctl_json, served, sides, start_fleet
from recording_upstream import Dynamic, Fixed

CHECK_S = 2.0  # the judge's check interval (kRampCheckInterval)


def ramp_of(gw, route="users"):
    ramps = ctl_json(gw, "ramp", "status", route)["ramps"]
    return ramps[0] if ramps else None


def start_ramp(gw, steps, hold="3s", min_requests="30", p99_ratio="5"):
    """Both sides are recording upstreams in this busy test process: their p99s differ by a few milliseconds of
    scheduling alone, so the p99 guard is loosened but for the test of a slow side."""
    r = ctl(gw, "ramp", "users", "--steps", steps, "--hold", hold, "--min-requests", min_requests,
            "--max-p99-ratio", p99_ratio, "--why", "test ramp")
    assert r.rc == 0, r.output
    return r


def split_changes(gw):
    """The control changes of users.split, oldest first: (written_at_ms, new value, author, why)."""
    out = []
    for h in reversed(ctl_json(gw, "history", "-n", "100")["history"]):
        if h["refused"]:
            continue
        state = h["state"]
        value = state["overrides"]["routes"].get("users", {}).get("split")
        out.append((state["written_at_ms"], value, state["author"], state["why"]))
    return out


def assert_sticky(ups, offset):
    """Each user's answers, in order, come from the route's side and then the split side: never back."""
    by_user = {}
    for _, user, side in served(ups, offset):
        by_user.setdefault(user, []).append(side)
    for user, seen in by_user.items():
        first_new = seen.index("new") if "new" in seen else len(seen)
        assert all(side == "new" for side in seen[first_new:]), (user, seen)


def flaky(state, every=10):
    """The split side answers 500 to every `every`th request once state["failing"] is set."""
    counter = {"n": 0}

    def answer(_req):
        counter["n"] += 1
        if state.get("failing") and counter["n"] % every == 0:
            return Fixed(500, b'{"error":"boom"}')
        return Fixed(200, b'{"ok":true}', delay=state.get("delay", 0.0))
    return Dynamic(answer)


def test_a_healthy_split_side_is_ramped_through_every_step_and_users_stay_on_one_side(gateway, upstream, redis):
    server = redis()
    ups = sides(upstream)
    gws = start_fleet(gateway, server, ups, 3, delay="500ms")
    offset = time.time() - time.monotonic()
    with Load(gws, hot=[0, 999, 1000, 4999, 5000, 9999]) as load:
        started = time.time()
        start_ramp(gws[0], "10,50,100")
        assert wait_until(lambda: ramp_of(gws[0])["phase"] == "done", timeout=60), ramp_of(gws[0])["reason"]
        took = time.time() - started
    assert load.errors == [], load.errors[:5]
    changes = [c for c in split_changes(gws[1]) if c[1] is not None]
    assert [c[1] for c in changes] == ["10", "50", "100"]
    assert changes[0][3].startswith("ramp: step 1 of 3")
    for _, _, author, why in changes[1:]:
        assert author.startswith("ramp@") and why.startswith("ramp: step"), (author, why)
        assert "errors" in why and "p99" in why, why
    gaps = [(b[0] - a[0]) / 1000 for a, b in zip(changes, changes[1:])]
    print(f"step to step (s): {gaps}; whole ramp {took:.1f} s")
    for gap in gaps:
        assert 3.0 <= gap <= 3.0 + 0.5 + 3 * CHECK_S, gaps  # hold, delay, and at most a check or two late
    assert_sticky(ups, offset)
    # Every instance shows the ramp as it read it at its last round (every check interval).
    for gw in gws:
        assert wait_until(lambda: gw.metric('apigw_ramp_state{route="users",state="done"}') == 1, timeout=5)
        assert gw.metric('apigw_ramp_step{route="users"}') == 3
    assert sum(1 for gw in gws if control(gw)["judging_ramps"]) == 1
    text = ctl(gws[2], "ramp", "status").stdout
    assert "route users: done, step 3 of 3" in text, text


def test_a_split_side_that_starts_failing_is_rolled_back_at_once_and_no_later_step_is_taken(gateway, upstream,
                                                                                            redis):
    server = redis()
    state = {}
    ups = {"old": upstream("old"), "new": upstream("new", default=flaky(state)), "mirror": upstream("mirror")}
    gws = start_fleet(gateway, server, ups, 3, delay="500ms")
    with Load(gws):
        start_ramp(gws[0], "10,25,50,100")
        # The third step in effect: from now on, one answer in ten from the split side is a 500.
        assert wait_until(lambda: ramp_of(gws[0])["step"] == 2, timeout=30), ramp_of(gws[0])
        assert wait_until(lambda: ramp_of(gws[0])["step_since_ms"] <= time.time() * 1000, timeout=5)
        state["failing"] = True
        failing_at = time.time()
        assert wait_until(lambda: ramp_of(gws[0])["phase"] == "rolled_back", timeout=20), ramp_of(gws[0])
        detected = time.time() - failing_at
        time.sleep(2 * CHECK_S)  # no later step after it
    ramp = ramp_of(gws[1])
    assert ramp["step"] == 2 and ramp["phase"] == "rolled_back", ramp
    assert "error" in ramp["reason"], ramp["reason"]
    changes = [c for c in split_changes(gws[0]) if c[1] is not None]
    assert [c[1] for c in changes] == ["10", "25", "50", "0"], changes
    assert changes[-1][3].startswith("ramp rolled back: step 3 of 4"), changes[-1]
    print(f"failing to rolled back (s): {detected:.2f}; reason: {ramp['reason']}")
    assert detected <= 3 * CHECK_S + 1, detected
    for gw in gws:
        assert control(gw)["overrides"]["routes"]["users"]["split"] == "0"
        assert wait_until(lambda: gw.metric('apigw_ramp_state{route="users",state="rolled_back"}') == 1, timeout=5)


def test_a_split_side_that_grows_slow_is_rolled_back(gateway, upstream, redis):
    server = redis()
    state = {}
    ups = {"old": upstream("old"), "new": upstream("new", default=flaky(state)), "mirror": upstream("mirror")}
    gws = start_fleet(gateway, server, ups, 2, delay="500ms")
    with Load(gws):
        start_ramp(gws[0], "10,50,100", p99_ratio="3")
        assert wait_until(lambda: ramp_of(gws[0])["step"] == 1, timeout=30), ramp_of(gws[0])
        state["delay"] = 0.05
        slow_at = time.time()
        assert wait_until(lambda: ramp_of(gws[0])["phase"] == "rolled_back", timeout=20), ramp_of(gws[0])
        detected = time.time() - slow_at
    ramp = ramp_of(gws[0])
    assert "p99 ratio" in ramp["reason"], ramp["reason"]
    print(f"slow to rolled back (s): {detected:.2f}; reason: {ramp['reason']}")
    assert [c[1] for c in split_changes(gws[0]) if c[1] is not None] == ["10", "50", "0"]


def test_another_instance_judges_when_the_judge_is_killed(gateway, upstream, redis):
    server = redis()
    ups = sides(upstream)
    first = start_fleet(gateway, server, ups, 1, delay="500ms")[0]
    assert wait_until(lambda: control(first)["judging_ramps"], timeout=10)
    others = start_fleet(gateway, server, ups, 2, delay="500ms", name="other")
    with Load(others):
        start_ramp(others[0], "10,50,100")
        assert wait_until(lambda: ramp_of(others[0])["step"] == 1, timeout=30)
        first.proc.kill()  # by PID, no goodbye: its lease runs out
        first.proc.wait(timeout=10)
        killed_at = time.time()
        assert wait_until(lambda: any(control(gw)["judging_ramps"] for gw in others), timeout=15)
        took_over = time.time() - killed_at
        assert wait_until(lambda: ramp_of(others[0])["phase"] == "done", timeout=40), ramp_of(others[0])
    print(f"judge killed to taken over (s): {took_over:.2f}")
    assert took_over <= 3 * CHECK_S + CHECK_S + 1


def test_redis_paused_mid_ramp_holds_the_fleet_and_the_ramp_goes_on_when_it_returns(gateway, upstream, redis):
    server = redis()
    ups = sides(upstream)
    gws = start_fleet(gateway, server, ups, 2, delay="500ms")
    with Load(gws):
        start_ramp(gws[0], "10,50,100", "4s")
        assert wait_until(lambda: ramp_of(gws[0])["step"] == 1, timeout=30)
        written = ctl_json(gws[0], "status")["state"]["version"]
        assert wait_until(lambda: all(control(gw)["version"] == written for gw in gws), timeout=5)
        versions = [control(gw)["version"] for gw in gws]
        os.kill(server.proc.pid, signal.SIGSTOP)
        try:
            time.sleep(6)  # longer than the hold: nothing may move meanwhile
            assert [control(gw)["version"] for gw in gws] == versions
            assert all(control(gw)["redis"] == "failing" for gw in gws)
        finally:
            os.kill(server.proc.pid, signal.SIGCONT)
        resumed_at = time.time()
        # The outage was not held: the step goes on for the rest of its hold (4 s, of which at most 2 s before).
        assert wait_until(lambda: ramp_of(gws[0])["step"] == 2, timeout=20), ramp_of(gws[0])
        next_step = time.time() - resumed_at
        assert next_step >= 1.5, next_step
        assert wait_until(lambda: ramp_of(gws[0])["phase"] == "done", timeout=40), ramp_of(gws[0])
    print(f"Redis back to the next step (s): {next_step:.1f}")


def test_pause_resume_and_abort(gateway, upstream, redis):
    server = redis()
    ups = sides(upstream)
    gws = start_fleet(gateway, server, ups, 2, delay="300ms")
    with Load(gws):
        start_ramp(gws[0], "10,50,100", "2s")
        r = ctl(gws[1], "ramp", "pause", "users")
        assert r.rc == 0, r.output
        # Usually still before the first step; on a loaded machine the judge may have taken it already.
        paused_at = ramp_of(gws[0])["step"]
        assert paused_at <= 1
        time.sleep(3 * CHECK_S)
        ramp = ramp_of(gws[0])
        assert ramp["phase"] == "paused" and ramp["step"] == paused_at, ramp  # no step while paused
        assert ctl(gws[1], "ramp", "pause", "users").rc == 1  # already paused
        assert ctl(gws[1], "ramp", "resume", "users").rc == 0
        assert wait_until(lambda: ramp_of(gws[0])["step"] == paused_at + 1, timeout=20), ramp_of(gws[0])
        r = ctl(gws[1], "ramp", "abort", "users", "--why", "enough")
        assert r.rc == 0, r.output
    ramp = ramp_of(gws[0])
    assert ramp["phase"] == "aborted" and "enough" in ramp["reason"], ramp
    assert wait_until(lambda: all(control(gw)["overrides"]["routes"]["users"]["split"] == "0" for gw in gws),
                      timeout=5)
    # A new ramp may start once the last one ended; one at a time per route.
    start_ramp(gws[0], "5,100", "30s")
    r = ctl(gws[0], "ramp", "users", "--steps", "5,100", "--hold", "30s")
    assert r.rc == 1 and "has a running ramp" in r.stderr, r.output
    r = ctl(gws[0], "ramp", "status")
    assert "route users: running, step 1 of 2" in r.stdout, r.stdout
    ctl(gws[0], "ramp", "abort", "users")


def test_the_audits_match_rate_guards_a_shadowed_route(gateway, upstream, redis, tmp_path):
    server = redis()
    ups = {"old": upstream("old", default=Fixed(200, b'{"v":1}')), "new": upstream("new"),
           # The shadow side answers differently: every audited copy is a mismatch.
           "mirror": upstream("mirror", default=Fixed(200, b'{"v":2}'))}
    gws = start_fleet(gateway, server, ups, 2, delay="500ms", shadow="100")
    for i, gw in enumerate(gws):
        gw.config["migration"]["audit"] = {"sink": f"file:{tmp_path / f'audit{i}.ndjson'}", "sample": 100}
        write_config(gw.config_path, gw.config)
        gw.proc.send_signal(signal.SIGHUP)
    assert wait_until(lambda: all(gw.metric("apigw_config_generation") >= 2 for gw in gws), timeout=5)
    with Load(gws):
        r = ctl(gws[0], "ramp", "users", "--steps", "10,100", "--hold", "30s", "--min-requests", "30",
                "--max-p99-ratio", "5", "--min-audit-match", "99%")
        assert r.rc == 0, r.output
        assert wait_until(lambda: ramp_of(gws[0])["phase"] == "rolled_back", timeout=20), ramp_of(gws[0])
    reason = ramp_of(gws[0])["reason"]
    assert "audit match 0.00 % below 99.00 %" in reason, reason


def test_bad_ramps_are_refused(gateway, upstream, redis):
    server = redis()
    gws = start_fleet(gateway, server, sides(upstream), 1)
    cases = [
        (["--steps", "5,1", "--hold", "1s"], "the steps must rise: 1 after 5"),
        (["--steps", "5,101", "--hold", "1s"], "route 'users' split.percent: must be from 0 to 100, got 101"),
        (["--steps", "0.001", "--hold", "1s"], "0.001 is finer than buckets 10000 allows"),
        (["--steps", "5", "--hold", "1s", "--max-error-ratio", "0.5"],
         "--max-error-ratio must be a number of at least 1"),
    ]
    for args, message in cases:
        r = ctl(gws[0], "ramp", "users", *args)
        assert r.rc == 1 and message in r.stderr, (args, r.output)
    assert ctl(gws[0], "ramp", "users", "--steps", "5").rc == 2  # no --hold
    r = ctl(gws[0], "ramp", "nosuch", "--steps", "5", "--hold", "1s")
    assert r.rc == 1 and "route 'nosuch' is not in" in r.stderr
    assert "no ramp" in ctl(gws[0], "ramp", "status").stdout
    assert control(gws[0])["version"] == 0
