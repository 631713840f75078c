"""Fleet control end to end: real redis-server, several real apigw processes of one fleet (and one of another), the
real `apigw ctl`. A ramp while 10,000 distinct users are served must switch every instance at one instant (each
user served by one side at any moment, moving once, never back); Redis down keeps every instance on its state and a
restart reads the state file; two writers at once: one wins, the other is told; abort stops every shadow copy;
bad values are refused in the loader's words."""

import json
import signal
import subprocess
import time

from apigw_harness import apigw_bin, gateway_config, route, run_apigw, wait_until, write_config
from fleet_harness import (DELAY_MS, RECORD_SLACK_MS, SLACK_MS, USER, Load, control, ctl, ctl_json, fleet_config,
                           served, set_split, sides, start_fleet, wait_version)
from rawhttp import request

def test_a_ramp_switches_every_instance_at_one_instant_and_users_stay_on_one_side(gateway, upstream, redis,
                                                                                  tmp_path):
    server = redis()
    ups = sides(upstream)
    blue = start_fleet(gateway, server, ups, 3, tmp_path)
    green, = start_fleet(gateway, server, ups, 1, fleet="green")
    offset = time.time() - time.monotonic()
    ramp = ["0.01", "1", "25", "100"]
    thresholds = [1, 100, 2500, 10000]
    hot = [0, 1, 99, 100, 2499, 2500, 9999]
    states = []
    applied = []
    with Load(blue, hot=hot) as load:
        time.sleep(0.5)
        for percent in ramp:
            state = set_split(blue[0], percent, why=f"ramp to {percent}")
            assert state["effective_at_ms"] - state["written_at_ms"] == DELAY_MS
            wait_version(blue, state["version"], timeout=DELAY_MS / 1000 + 5)
            applied.append([control(gw) for gw in blue])
            states.append(state)
            time.sleep(1.0)  # served a while in this state
        assert wait_until(load.all_covered, timeout=60), load.covered
    assert load.errors == [], load.errors[:10]

    # Every instance switched to each version within delay + 100 ms of its write, at or after effective_at.
    delays = []
    for state, views in zip(states, applied):
        for view in views:
            assert view["version"] == state["version"]
            late = view["applied_at_ms"] - state["effective_at_ms"]
            assert 0 <= late <= SLACK_MS, (view, state)
            assert view["applied_at_ms"] - state["written_at_ms"] <= DELAY_MS + SLACK_MS
            delays.append(late)
    print(f"apply delays after effective_at (ms): max {max(delays)}, all {sorted(delays)}")

    # From the upstreams' records: every user is on one side at any moment, moves at most once (old to new),
    # never back, and only at the instant its step took effect.
    records = served(ups, offset)
    assert len({user for _, user, _ in records}) == 10000
    effective = [s["effective_at_ms"] for s in states]

    def threshold_at(t):
        current = 0
        for at, limit in zip(effective, thresholds):
            if t >= at:
                current = limit
        return current

    by_user = {}
    for t, user, side in records:
        by_user.setdefault(user, []).append((t, side))
        # Away from a switch instant, the side is exactly what the threshold in force says.
        if all(abs(t - at) > RECORD_SLACK_MS for at in effective):
            assert side == ("new" if user < threshold_at(t) else "old"), (t, user, side, effective)
    moves = 0
    for user, seen in by_user.items():
        order = [side for _, side in seen]
        first_new = order.index("new") if "new" in order else len(order)
        assert all(side == "new" for side in order[first_new:]), (user, seen)  # never back
        if 0 < first_new < len(order):
            moves += 1
            step = next(i for i, limit in enumerate(thresholds) if user < limit)
            # The move happened around its step's instant (the last old answer before it, the first new after).
            assert seen[first_new - 1][0] <= effective[step] + RECORD_SLACK_MS, (user, seen[first_new - 1],
                                                                                 effective[step])
            assert seen[first_new][0] >= effective[step] - RECORD_SLACK_MS, (user, seen[first_new], effective[step])
    # Not vacuous: enough users crossed a step while under load (a few hundred on an idle machine).
    assert moves > 30, moves
    hot_requests = sum(1 for _, user, _ in records if user in hot)
    print(f"{len(records)} requests, {moves} users moved once, {hot_requests} requests of the threshold users")

    # The other fleet never changed.
    assert control(green)["version"] == 0 and control(green)["source"] == "yaml"
    assert green.metric("apigw_control_version") == 0
    r = request(green.port, "GET", "/users/1", [(USER, "0")])
    assert r.header("X-Upstream-Name") == "old"
    assert "no change written yet" in ctl(green, "status").stdout

    # status lists the three live instances at the last version; history has the four steps with who and why.
    status = ctl_json(blue[1], "status")
    assert status["state"]["version"] == states[-1]["version"]
    assert sorted(i["pid"] for i in status["instances"]) == sorted(gw.pid for gw in blue)
    assert {i["version"] for i in status["instances"]} == {states[-1]["version"]}
    history = ctl_json(blue[2], "history")["history"]
    assert [h["state"]["change"] for h in history] == [
        "users.split: 25 -> 100", "users.split: 1 -> 25", "users.split: 0.01 -> 1", "users.split: yaml -> 0.01"]
    assert history[0]["state"]["why"] == "ramp to 100" and "@" in history[0]["state"]["author"]
    text = ctl(blue[2], "history").stdout
    assert "users.split: 1 -> 25" in text and "ramp to 25" in text
    for gw in blue:
        assert gw.metric("apigw_control_version") == states[-1]["version"]
        assert gw.metric("apigw_control_apply_delay_seconds_count") == len(states)


def test_redis_down_keeps_every_instance_on_its_state_and_a_restart_reads_the_state_file(gateway, upstream, redis,
                                                                                         tmp_path):
    server = redis()
    ups = sides(upstream)
    gws = start_fleet(gateway, server, ups, 2, tmp_path)
    state = set_split(gws[0], "25")
    wait_version(gws, state["version"])
    saved = json.loads((tmp_path / "blue0.json").read_text())
    assert saved["version"] == state["version"] and saved["overrides"]["routes"]["users"]["split"] == "25"

    def check_split(gw):
        for user in (0, 2499, 2500, 9999):
            r = request(gw.port, "GET", "/users/1", [(USER, str(user))])
            assert r.status == 200, r
            assert r.header("X-Upstream-Name") == ("new" if user < 2500 else "old"), (gw.name, user)

    server.stop()
    for gw in gws:
        assert wait_until(lambda: control(gw)["redis"] == "failing", timeout=5), control(gw)
        assert gw.metric('apigw_control_errors_total{reason="redis"}') >= 1
        check_split(gw)
        assert control(gw)["version"] == state["version"]

    # Restarted while Redis is down: the state file's version, not the YAML's 0 %.
    gws[0].stop()
    gws[0].start()
    view = control(gws[0])
    assert view["source"] == "state_file" and view["version"] == state["version"], view
    check_split(gws[0])
    assert "Redis is unreachable at start" in gws[0].log()
    r = ctl(gws[0], "status")
    assert r.rc == 1 and "apigw ctl:" in r.stderr, r.output

    # Redis is back, empty: the instances keep their state; the next change goes on from their version.
    server.start()
    assert wait_until(lambda: all(control(gw)["redis"] == "ok" for gw in gws), timeout=10)
    assert wait_until(lambda: "Redis holds no state" in gws[1].log(), timeout=5)
    # Their heartbeats are back within a poll: the next change is numbered after the version they serve.
    assert wait_until(lambda: len(ctl_json(gws[1], "status")["instances"]) == 2, timeout=5)
    check_split(gws[1])
    next_state = set_split(gws[1], "1")
    assert next_state["version"] == state["version"] + 1
    wait_version(gws, next_state["version"])
    assert control(gws[0])["source"] == "redis"


def test_two_writers_at_once_one_wins_and_the_history_tells_both(gateway, upstream, redis):
    server = redis()
    gw = gateway(fleet_config(server, "blue", sides(upstream)))
    first = set_split(gw, "1")
    procs = [subprocess.Popen([apigw_bin(), "ctl", "-c", str(gw.config_path), "set", "users", "split", percent,
                               "--expect-version", str(first["version"]), "--why", who],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for percent, who in (("5", "alice"), ("10", "bob"))]
    results = [(p.wait(timeout=30), p.stdout.read().decode(), p.stderr.read().decode()) for p in procs]
    codes = sorted(rc for rc, _, _ in results)
    assert codes == [0, 1], results
    loser = next(r for r in results if r[0] == 1)
    assert f"refused: fleet 'blue' is at version {first['version'] + 1}" in loser[2], loser
    assert "nothing was written" in loser[2]
    history = ctl_json(gw, "history")["history"]
    assert history[0]["refused"] and history[0]["found"] == first["version"] + 1
    assert not history[1]["refused"] and history[1]["state"]["version"] == first["version"] + 1
    assert {history[0]["state"]["why"], history[1]["state"]["why"]} == {"alice", "bob"}
    assert "REFUSED" in ctl(gw, "history").stdout

    # Without --expect-version, each writer reads then writes: every one either lands or is told, none is lost.
    procs = [subprocess.Popen([apigw_bin(), "ctl", "-c", str(gw.config_path), "set", "users", "split", str(p)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for p in (2, 3, 4, 6, 7)]
    codes = [p.wait(timeout=30) for p in procs]
    assert set(codes) <= {0, 1}
    history = ctl_json(gw, "history", "-n", "100")["history"]
    written = [h for h in history if not h["refused"]]
    assert len(written) == 2 + codes.count(0)
    assert sum(1 for h in history if h["refused"]) == 1 + codes.count(1)
    assert [h["state"]["version"] for h in written] == list(range(len(written), 0, -1))
    status = ctl_json(gw, "status")
    assert status["state"]["version"] == written[0]["state"]["version"]


def test_abort_stops_every_shadow_copy_and_beta_user_within_the_delay(gateway, upstream, redis):
    server = redis()
    ups = sides(upstream)
    gws = start_fleet(gateway, server, ups, 3, shadow="100", beta=["42"], sessions={"tok42": "42"})
    offset = time.time() - time.monotonic()
    with Load(gws, users=200, hot=[42, 1, 2], tokens={42: "tok42"}):
        time.sleep(0.5)
        assert len(ups["mirror"].recorded()) > 0
        assert any(q.header(USER) == "42" for q in ups["new"].recorded())  # the beta user, at 0 %
        state = ctl_json(gws[0], "abort", "--why", "errors on the new side")["state"]
        wait_version(gws, state["version"])
        time.sleep(0.5)
    cutoff = state["effective_at_ms"] + RECORD_SLACK_MS
    late = [q for q in ups["mirror"].recorded() if (q.time + offset) * 1000 > cutoff]
    assert late == [], f"{len(late)} shadow copies after abort took effect"
    late_beta = [q for q in ups["new"].recorded() if (q.time + offset) * 1000 > cutoff]
    assert late_beta == []
    view = control(gws[1])
    assert view["overrides"]["abort"] is True
    assert "ABORTED" in ctl(gws[1], "status").stdout
    # resume: the shadow copies come back.
    before = len(ups["mirror"].recorded())
    state = ctl_json(gws[0], "resume")["state"]
    wait_version(gws, state["version"])
    r = request(gws[0].port, "GET", "/users/1", [(USER, "42"), ("Authorization", "Bearer tok42")])
    assert r.header("X-Upstream-Name") == "new"  # the beta user again
    assert wait_until(lambda: len(ups["mirror"].recorded()) > before, timeout=5)


def test_bad_values_are_refused_with_the_loaders_message(upstream, redis, tmp_path):
    server = redis()
    ups = sides(upstream)
    path = write_config(tmp_path / "gw.yaml", fleet_config(server, "blue", ups))

    def loader_message(percent):
        bad = fleet_config(server, "blue", ups, split=percent)
        r = run_apigw(["-t", "-c", str(write_config(tmp_path / "bad.yaml", bad))])
        assert r.rc == 1
        line = next(line for line in r.stderr.splitlines() if "split.percent" in line)
        return line.split(": ", 1)[1]  # after "file:line:column"

    for percent in ("101", "0.001", "12.5%"):
        r = ctl(path, "set", "users", "split", percent)
        assert r.rc == 1, r.output
        assert f"apigw ctl: {loader_message(percent)}; nothing was written" in r.stderr, r.stderr
    r = ctl(path, "set", "nosuch", "split", "5")
    assert r.rc == 1 and "route 'nosuch' is not in" in r.stderr, r.output
    r = ctl(path, "beta", "add", "")
    assert r.rc == 1 and "migration.beta_users: a user id cannot be empty" in r.stderr, r.output
    r = ctl(path, "ignore", "add", "payments")
    assert r.rc == 1 and "migration.shadow_ignore: bad pattern 'payments'" in r.stderr, r.output
    assert ctl(path, "history").stdout.strip() == "fleet blue: no change written yet"
    # Usage errors are 2.
    assert ctl(path, "set", "users", "split").rc == 2
    assert ctl(path, "frobnicate").rc == 2
    assert ctl(path, "rollback", "x").rc == 2
    # A config without the section says so.
    plain = write_config(tmp_path / "plain.yaml", gateway_config([route("r", "/r", "old")], {"old": ups["old"]}))
    r = ctl(plain, "status")
    assert r.rc == 1 and "has no control section" in r.stderr
    # Nothing to change is not an error, and writes nothing.
    assert ctl(path, "reset", "--all").rc == 0
    assert ctl(path, "history").stdout.strip() == "fleet blue: no change written yet"


def test_lists_rollback_and_a_reload_that_drops_a_gone_route(gateway, upstream, redis):
    server = redis()
    ups = sides(upstream)
    users = route("users", "/users/*rest", "old")
    users["split"] = {"upstream": "new", "percent": "0"}
    orders = route("orders", "/orders/*rest", "old")
    orders["split"] = {"upstream": "new", "percent": "0"}
    cfg = fleet_config(server, "blue", ups, routes=[users, orders], delay="200ms")
    gw = gateway(cfg)
    ctl_json(gw, "set", "users", "split", "25")
    ctl_json(gw, "set", "orders", "split", "10")
    ctl_json(gw, "beta", "add", "u1", "u2")
    state = ctl_json(gw, "ignore", "add", "POST", "/users/*/pay")["state"]
    wait_version([gw], state["version"])
    config = json.loads(request(gw.admin_port, "GET", "/config").body)
    assert config["migration"]["beta_users"] == ["u1", "u2"]
    assert config["migration"]["shadow_ignore"] == ["POST /users/*/pay"]
    assert config["control"]["fleet"] == "blue"
    assert next(r for r in config["routes"] if r["name"] == "users")["split"]["percent"] == "25"
    r = request(gw.port, "GET", "/users/1", [(USER, "9999")])
    assert r.header("X-Upstream-Name") == "old"

    # Rollback writes the old state again, as a new change.
    state = ctl_json(gw, "rollback", "1")["state"]
    assert state["version"] == 5 and state["why"] == "rollback to version 1"
    assert state["overrides"]["routes"] == {"users": {"split": "25"}}
    wait_version([gw], 5)
    assert ctl(gw, "rollback", "99").rc == 1

    # A reload without `orders`: the users override stays; an orders override would be dropped and said so.
    ctl_json(gw, "set", "orders", "split", "10")
    wait_version([gw], 6)
    cfg = json.loads(json.dumps(gw.config))  # with the listen addresses the harness gave it
    cfg["routes"] = [r for r in cfg["routes"] if r["name"] == "users"]
    before = gw.metric("apigw_config_generation")
    write_config(gw.config_path, cfg)
    gw.proc.send_signal(signal.SIGHUP)
    assert wait_until(lambda: gw.metric("apigw_config_generation") > before, timeout=5), gw.log()
    view = control(gw)
    assert view["version"] == 6
    assert any("route 'orders' is not in" in why for why in view["dropped"]), view
    assert gw.metric('apigw_control_errors_total{reason="dropped"}') >= 1
    r = request(gw.port, "GET", "/users/1", [(USER, "2499")])
    assert r.header("X-Upstream-Name") == "new"
