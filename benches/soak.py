#!/usr/bin/env python3
"""Mixed load against a running veza-stream on loopback, for benches/soak.sh.

Threads, each bounded by the deadline: uploads of small fixtures (and deletes, so storage stays
bounded), playback of tracks (master, media playlists, init and segments, with Range now and
then), playlists created, stitched and played, control API reads, and a trickle of bad requests.
Every 10 s it samples the server's RSS and open descriptors, its CPU and this process's CPU.
Prints one JSON line per sample and a summary line; exits by itself.
"""
import array
import json
import os
import random
import re
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

base, key, pid, minutes, fixtures = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5:]
deadline = time.monotonic() + minutes * 60
auth = {"Authorization": f"Bearer {key}"}
counts = {"ok": 0, "client_error": 0, "server_error": 0, "failed": 0}
lock = threading.Lock()
ready = []  # track ids ready to play
latency = {}  # "METHOD /route/{id}" -> array of seconds, as this client saw them

UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def route(method, url):
    """The route template of a request: ids as {id}, media files under /hls as {file}."""
    path = urllib.parse.urlsplit(url).path
    parts = []
    for i, part in enumerate(path.split("/")):
        if UUID.match(part):
            part = "{id}"
        elif path.startswith("/hls/") and i >= 4 and part:
            part = "{file}" if "." in part else "{rendition}"
        parts.append(part)
    return f"{method} {'/'.join(parts)}"


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def call(method, path, body=None, headers=None, expect_error=False):
    req = urllib.request.Request(base + path if path.startswith("/") else path, data=body, method=method)
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    started = time.monotonic()
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            data = r.read()
            took = time.monotonic() - started
            with lock:
                counts["ok"] += 1
                latency.setdefault(route(method, req.full_url), array.array("d")).append(took)
            return r.status, data
    except urllib.error.HTTPError as e:
        e.read()
        with lock:
            counts["server_error" if e.code >= 500 else "client_error"] += 1
            if e.code >= 500:
                print(f"5xx: {method} {path} {e.code}", file=sys.stderr)
        return e.code, b""
    except Exception as e:  # connection errors count as failures
        with lock:
            counts["failed"] += 1
        print(f"failed: {method} {path}: {e}", file=sys.stderr)
        return 0, b""


def uploader():
    mine = []
    n = 0
    while time.monotonic() < deadline:
        f = fixtures[n % len(fixtures)]
        n += 1
        with open(f, "rb") as fh:
            status, data = call("POST", f"/v1/tracks?title=soak{n}", fh.read(),
                                {**auth, "Content-Type": "application/octet-stream"})
        if status == 202:
            tid = json.loads(data)["id"]
            for _ in range(600):
                if time.monotonic() > deadline:
                    break
                s, d = call("GET", f"/v1/tracks/{tid}", headers=auth)
                if s == 200 and json.loads(d)["status"] in ("ready", "failed"):
                    break
                time.sleep(0.5)
            mine.append(tid)
            with lock:
                ready.append(tid)
                if len(ready) > 6:
                    ready.pop(0)
        if len(mine) > 6:
            old = mine.pop(0)
            call("DELETE", f"/v1/tracks/{old}", headers=auth)
        time.sleep(5)


def media_uris(text):
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def player():
    while time.monotonic() < deadline:
        with lock:
            tracks = list(ready)
        if not tracks:
            time.sleep(0.5)
            continue
        tid = random.choice(tracks)
        s, d = call("POST", f"/v1/tracks/{tid}/playback", headers=auth)
        if s != 200:
            continue
        master = json.loads(d)["master_url"]
        s, m = call("GET", master)
        if s != 200:
            continue
        prefix = master.rsplit("/", 1)[0]
        for variant in media_uris(m.decode())[:2]:
            s, p = call("GET", f"{prefix}/{variant}")
            if s != 200:
                continue
            vprefix = f"{prefix}/{variant}".rsplit("/", 1)[0]
            init = [line for line in p.decode().splitlines() if line.startswith("#EXT-X-MAP")]
            segs = media_uris(p.decode())[:4]
            for seg in segs:
                headers = {"Range": "bytes=0-999"} if random.random() < 0.2 else {}
                call("GET", f"{vprefix}/{seg}", headers=headers)
            if init:
                uri = init[0].split('URI="')[1].split('"')[0]
                call("GET", f"{vprefix}/{uri}")


def playlister():
    n = 0
    while time.monotonic() < deadline:
        with lock:
            tracks = list(ready)
        if len(tracks) < 2:
            time.sleep(1)
            continue
        n += 1
        body = json.dumps({"title": f"soak {n}", "visibility": "public", "track_ids": tracks[:3]}).encode()
        s, d = call("POST", "/v1/playlists", body, {**auth, "Content-Type": "application/json"})
        if s != 201:
            continue
        pid_ = json.loads(d)["id"]
        s, d = call("POST", f"/v1/playlists/{pid_}/playback", headers=auth)
        if s == 200:
            master = json.loads(d)["master_url"]
            s, m = call("GET", master)
            if s == 200:
                prefix = master.rsplit("/", 1)[0]
                for variant in media_uris(m.decode())[:1]:
                    call("GET", f"{prefix}/{variant}")
        call("GET", f"/v1/playlists/{pid_}", headers=auth)
        call("DELETE", f"/v1/playlists/{pid_}", headers=auth)
        time.sleep(0.5)


def controller():
    while time.monotonic() < deadline:
        call("GET", "/v1/tracks?limit=20", headers=auth)
        call("GET", "/v1/playlists?scope=all", headers=auth)
        call("GET", "/healthz")
        call("GET", "/readyz")
        call("GET", "/metrics")
        # Bad requests: each must be a 4xx, never a 5xx.
        call("GET", "/v1/tracks", headers={"Authorization": "Bearer nope"})
        call("POST", "/v1/playlists", b"{not json", {**auth, "Content-Type": "application/json"})
        call("GET", "/v1/tracks/not-a-uuid", headers=auth)
        call("GET", "/hls/tracks/00000000-0000-0000-0000-000000000000/master.m3u8?token=x")
        time.sleep(0.2)


def sample():
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    server_cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    t = os.times()
    return {"rss_kib": rss, "fds": fds, "server_cpu_s": round(server_cpu, 1),
            "loadgen_cpu_s": round(t.user + t.system, 1)}


threads = [threading.Thread(target=f, daemon=True) for f in (uploader, player, player, playlister, controller)]
for t in threads:
    t.start()
start = time.monotonic()
samples = []
while time.monotonic() < deadline:
    time.sleep(min(10, max(0, deadline - time.monotonic())))
    s = sample()
    s["t"] = round(time.monotonic() - start)
    with lock:
        s.update(counts)
    samples.append(s)
    print(json.dumps(s), flush=True)
for t in threads:
    t.join(timeout=40)

# Growth after warm-up: the first fifth of the run (at least one minute) is warm-up; compare the
# mean of the three samples after it with the mean of the last three.
warm = max(6, len(samples) // 5)
after = samples[warm:]
if len(after) >= 6:
    def mean(xs, k):
        return sum(x[k] for x in xs) / len(xs)
    first, last = after[:3], after[-3:]
    rss_growth = 100 * (mean(last, "rss_kib") - mean(first, "rss_kib")) / mean(first, "rss_kib")
    fd_growth = 100 * (mean(last, "fds") - mean(first, "fds")) / mean(first, "fds")
else:
    rss_growth = fd_growth = float("nan")
end = samples[-1] if samples else {}
# Latency by route as this client saw it (loopback, both processes on the same 2 cores), and the
# control API's p95 against the platform's SLO (150 ms).
with lock:
    routes = {k: list(v) for k, v in latency.items()}
for name in sorted(routes, key=lambda k: -len(routes[k])):
    v = routes[name]
    print(json.dumps({"route": name, "requests": len(v),
                      "p50_ms": round(1000 * percentile(v, 0.50), 2),
                      "p95_ms": round(1000 * percentile(v, 0.95), 2),
                      "p99_ms": round(1000 * percentile(v, 0.99), 2)}), flush=True)
api = [x for k, v in routes.items() if " /v1/" in k for x in v]
print(json.dumps({
    "api_p95_ms": round(1000 * percentile(api, 0.95), 2),
    "api_p99_ms": round(1000 * percentile(api, 0.99), 2),
    "api_slo_p95_under_150_ms": percentile(api, 0.95) < 0.150 if api else None,
}), flush=True)
print(json.dumps({
    "summary": True, "minutes": minutes, "samples": len(samples),
    "rss_growth_percent": round(rss_growth, 2), "fd_growth_percent": round(fd_growth, 2),
    "rss_kib_after_warmup": after[0]["rss_kib"] if after else None,
    "rss_kib_end": end.get("rss_kib"), "fds_end": end.get("fds"),
    "server_cpu_s": end.get("server_cpu_s"), "loadgen_cpu_s": end.get("loadgen_cpu_s"),
    **counts,
}), flush=True)
sys.exit(1 if counts["server_error"] or counts["failed"] else 0)
