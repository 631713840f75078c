"""Fleet control's test helpers: a fleet's config, its instances, `apigw ctl`, `/control`, and a load of many users
whose requests the upstreams record, for the stickiness checks."""

import json
import random
import threading

from apigw_harness import gateway_config, redis_sessions, route, run_apigw, wait_until
from rawhttp import Client, request

USER = "X-User-Key"
DELAY_MS = 1000
SLACK_MS = 100  # the contract: every instance applies a change within delay + 100 ms of its write
# The upstreams record when they read a request, in this (busy, single-GIL) process: checks on those times allow
# for the recording's own lateness. The instances' switch times themselves are held to SLACK_MS, from /control.
RECORD_SLACK_MS = 250


def fleet_config(redis, fleet, ups, state_file=None, split="0", shadow="0", beta=(), routes=None, delay="1s",
                 poll="1s", sessions=None):
    """`sessions` (token -> user id): bearer tokens in the same Redis, for beta users (who are authenticated)."""
    users = route("users", "/users/*rest", "old")
    users["split"] = {"upstream": "new", "percent": split}
    users["shadow"] = {"upstream": "mirror", "percent": shadow}
    cfg = gateway_config(routes or [users], ups, server={"workers": 2})
    cfg["migration"] = {"affinity": [f"header:{USER}"], "beta_users": list(beta)}
    cfg["control"] = {"redis": {"nodes": [f"127.0.0.1:{redis.port}"]}, "fleet": fleet, "delay": delay,
                      "poll": poll}
    if state_file:
        cfg["control"]["state_file"] = str(state_file)
    if sessions:
        cfg["auth"] = redis_sessions(redis, sessions)
        for r in cfg["routes"]:
            r["auth"] = "optional"
    return cfg


def start_fleet(gateway, server, ups, count, tmp_path=None, fleet="blue", name=None, **kw):
    """`count` instances of `fleet` on one Redis, named `name` (default: the fleet's) and a number, each with a state
    file of its own when `tmp_path` is given."""
    name = name or fleet
    return [gateway(fleet_config(server, fleet, ups, state_file=tmp_path / f"{name}{i}.json" if tmp_path else None,
                                 **kw), name=f"{name}{i}")
            for i in range(count)]


def sides(upstream):
    return {"old": upstream("old"), "new": upstream("new"), "mirror": upstream("mirror")}


def ctl(gw_or_path, *args, timeout=30):
    path = getattr(gw_or_path, "config_path", gw_or_path)
    return run_apigw(["ctl", "-c", str(path), *args], timeout=timeout)


def ctl_json(gw, *args):
    r = ctl(gw, *args, "--json")
    assert r.rc == 0, r.output
    return json.loads(r.stdout)


def control(gw):
    r = request(gw.admin_port, "GET", "/control", timeout=5)
    assert r.status == 200, r
    return json.loads(r.body)


def wait_version(gws, version, timeout=10):
    assert wait_until(lambda: all(control(gw)["version"] == version for gw in gws), timeout=timeout), \
        [control(gw) for gw in gws]


def set_split(gw, percent, why="ramp"):
    return ctl_json(gw, "set", "users", "split", percent, "--why", why)["state"]


class Load:
    """Threads sending GET /users/1 with a user key, each on keep-alive connections to every instance in turn.
    Background threads walk all `users` (each user belongs to one thread, so a user's requests are in order);
    hot threads cycle a few users at the thresholds as fast as they can, so that an instance switching later
    than another would be caught."""

    def __init__(self, gws, users=10000, hot=(), background=3, hot_threads=2, tokens=None):
        self.gws = gws
        self.tokens = tokens or {}  # user -> bearer token, for users who sign in
        self.stop_flag = threading.Event()
        self.errors = []
        self.covered = [0] * background
        self.users = users
        self.threads = [threading.Thread(target=self._walk, args=(i, background), daemon=True)
                        for i in range(background)]
        hot = list(hot)
        self.threads += [threading.Thread(target=self._cycle, args=(hot[i::hot_threads],), daemon=True)
                         for i in range(hot_threads) if hot[i::hot_threads]]

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        self.stop_flag.set()
        for t in self.threads:
            t.join(timeout=30)

    def _clients(self):
        return [Client(gw.port, timeout=10) for gw in self.gws]

    def _send(self, clients, n, user):
        i = n % len(clients)
        try:
            headers = [(USER, str(user))]
            if user in self.tokens:
                headers.append(("Authorization", f"Bearer {self.tokens[user]}"))
            r = clients[i].request("GET", "/users/1", headers)
            if r.status != 200:
                self.errors.append(f"user {user}: {r.status}")
        except Exception as e:  # a failed request is a failed test, reported at the end
            self.errors.append(f"user {user} on instance {i}: {e!r}")
            clients[i] = Client(self.gws[i].port, timeout=10)

    def _walk(self, index, count):
        clients = self._clients()
        mine = list(range(index, self.users, count))
        random.Random(index).shuffle(mine)
        n = 0
        while not self.stop_flag.is_set():
            for user in mine:
                if self.stop_flag.is_set():
                    break
                self._send(clients, n, user)
                n += 1
            else:
                self.covered[index] += 1
        for c in clients:
            c.close()

    def _cycle(self, users):
        clients = self._clients()
        n = 0
        while not self.stop_flag.is_set():
            for user in users:
                self._send(clients, n, user)
                n += 1
        for c in clients:
            c.close()

    def all_covered(self):
        return all(c >= 1 for c in self.covered)


def served(ups, offset):
    """[(wall time in ms, user, side)] from the upstreams' records, in time order."""
    out = []
    for name in ("old", "new"):
        for q in ups[name].recorded():
            out.append(((q.time + offset) * 1000, int(q.header(USER)), name))
    out.sort()
    return out
