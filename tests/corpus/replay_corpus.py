#!/usr/bin/env python3
"""integration.corpus: replays every case of tests/corpus/cases.jsonl (see gen_corpus.py for
the format) against the real ingress (two: one with the Feishu encrypt_key, one with the
token only), a real worker and notifier, the fake Slack, Feishu, API and GitLab, on the ctest
Kafka and Redis. Asserts per case the HTTP status and reply fragment, the final reply the
user sees for accepted commands, and at the end: nothing on the requests (or
pipeline-events) topic but the accepted cases, once each; no direct call outside its API
path or with a dot segment; every service still alive. Cases marked with an issue 19 item
are known defects: they fail until that item is fixed and are listed as such.
  replay_corpus.py [CASE_ID_SUBSTRING...]   only the matching cases (all by default)
"""
import base64
import hashlib
import hmac
import json
import os
import select
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "faults"))
import faultlib as fl  # noqa: E402

cqt = fl.cqt
CASES = os.path.join(HERE, "cases.jsonl")


def raw_http(port, method, path, headers, body, timeout=15):
    """One request over a fresh connection, bytes as given (Content-Length may be forged with
    the X-Content-Length-Override header). Returns (status, body bytes); status 0 when the
    connection failed or closed without an answer."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    head = "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n" % (method, path, port)
    cl = str(len(body))
    for k, v in headers.items():
        if k == "X-Content-Length-Override":
            cl = v
        else:
            head += "%s: %s\r\n" % (k, v)
    head += "Content-Length: %s\r\n\r\n" % cl
    data = b""
    try:
        s.sendall(head.encode("utf-8"))
        off = 0
        while off < len(body):
            r, w, _ = select.select([s], [s], [], timeout)
            if r:
                break  # answered before the whole body went out (e.g. 413)
            if w:
                off += s.send(body[off:off + 65536])
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    finally:
        s.close()
    if not data.startswith(b"HTTP/1."):
        return 0, data
    head, _, rest = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    if b"transfer-encoding: chunked" in head.lower():
        out = b""
        while rest:
            n, _, rest = rest.partition(b"\r\n")
            n = int(n.split(b";")[0] or b"0", 16)
            if n == 0:
                break
            out, rest = out + rest[:n], rest[n + 2:]
        rest = out
    return status, rest


def build(case, st):
    body = base64.b64decode(case["body_b64"]) if "body_b64" in case else \
        case["body"].encode("utf-8")
    headers = dict(case["headers"])
    pad = case.get("pad")
    if pad:
        fill = pad["ch"] * pad["n"]
        body = body.replace(pad["at"].encode(), fill.encode())
        headers = {k: v.replace(pad["at"], fill) for k, v in headers.items()}
    body = body.replace(b"RESPONSE_URL", urllib.parse.quote(
        st.slack.response_url(case["id"]), safe="").encode())
    sign = case.get("sign")
    if sign:
        ts = sign.get("ts", "now")
        ts = ts[4:] if isinstance(ts, str) and ts.startswith("raw:") else \
            str(int(time.time()) + (0 if ts == "now" else int(ts)))
        if sign["kind"] in ("dingtalk", "webex", "discord"):
            h = sign_more(sign, ts, body)
        elif sign["kind"] == "slack":
            secret = fl.SLACK_SECRET if sign.get("secret", "good") == "good" else "wrong-secret"
            sig = cqt.slack_signature(secret, ts, body)
            if sign.get("upper"):
                sig = "v0=" + sig[3:].upper()
            h = {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sign.get("sig", sig)}
        else:
            key = fl.SECRETS["fs_key"] if sign.get("secret", "good") == "good" else "wrong-key"
            nonce = uuid.uuid4().hex[:16]
            sig = cqt.feishu_signature(key, ts, nonce, body)
            h = {"X-Lark-Request-Timestamp": ts, "X-Lark-Request-Nonce": nonce,
                 "X-Lark-Signature": sign.get("sig", sig)}
        for d in sign.get("drop", []):
            h.pop(d, None)
        headers.update(h)
        body += sign.get("append", "").encode()
    return headers, body


# issue 18: RFC 8032 test key 1 (the corpus config's discord.public_key) as PKCS#8 DER
DISCORD_DER = bytes.fromhex("302e020100300506032b657004220420"
                            "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")


def sign_more(sign, ts, body):
    """The signature headers of DingTalk (ts in ms), Webex and Discord (openssl CLI)."""
    good = sign.get("secret", "good") == "good"
    if sign["kind"] == "dingtalk":
        # seconds from build() become DingTalk's ms, unless the case keeps seconds ("unit")
        ms = str(int(ts) * 1000) if ts.isdigit() and sign.get("unit") != "s" else ts
        secret = fl.SECRETS["dt_secret"] if good else "wrong-secret"
        mac = hmac.new(secret.encode(), (ms + "\n" + secret).encode(), hashlib.sha256)
        return {"timestamp": ms, "sign": sign.get("sig", base64.b64encode(mac.digest()).decode())}
    if sign["kind"] == "webex":
        secret = fl.SECRETS["wx_secret"] if good else "wrong-secret"
        return {"X-Spark-Signature":
                sign.get("sig", hmac.new(secret.encode(), body, hashlib.sha1).hexdigest())}
    with tempfile.TemporaryDirectory() as d:
        key, msg = os.path.join(d, "k.der"), os.path.join(d, "m.bin")
        with open(key, "wb") as f:
            f.write(DISCORD_DER)
        with open(msg, "wb") as f:
            f.write(ts.encode() + body)
        sig = subprocess.run(["openssl", "pkeyutl", "-sign", "-inkey", key, "-keyform", "DER",
                              "-rawin", "-in", msg], capture_output=True, check=True).stdout.hex()
    return {"X-Signature-Timestamp": ts, "X-Signature-Ed25519": sign.get("sig", sig)}


def finals_for(st, case):
    """Bodies of the final replies the fake platforms accepted for an accepted case."""
    e = case["expect"]
    out = []
    path = urllib.parse.unquote(case["path"])
    if path == "/slack/commands":
        for r in st.slack.requests("/response/" + case["id"]):
            if r["status"] == 200 and fl._final_text(r["body"]):
                out.append(r["body"])
    elif path == "/slack/events":
        ts = json.loads(case["body"])["event"]["ts"]
        for r in st.slack.requests("/api/chat.postMessage"):
            try:
                m = json.loads(r["body"])
            except ValueError:
                continue
            if r["status"] == 200 and m.get("thread_ts") == ts and fl._final_text(r["body"]):
                out.append(r["body"])
    elif e.get("reply_to"):
        for r in st.feishu.requests("/open-apis/im/v1/messages/%s/reply" % e["reply_to"]):
            if r["status"] == 200:
                out.append(r["body"])
    return out


def strings(o):
    """Every string inside a JSON value (a string holding JSON is opened too)."""
    if isinstance(o, str):
        try:
            inner = json.loads(o)
        except ValueError:
            return [o]
        return [o] + (strings(inner) if isinstance(inner, (dict, list)) else [])
    if isinstance(o, dict):
        return [x for v in o.values() for x in strings(v)]
    if isinstance(o, list):
        return [x for v in o for x in strings(v)]
    return []


def shown_text(body):
    """The texts a platform renders from a reply body (Slack text and blocks, Feishu content),
    JSON escaping undone."""
    try:
        return "\n".join(strings(json.loads(body)))
    except ValueError:
        return body


def dot_segment(path):
    return any(urllib.parse.unquote(s) in (".", "..") for s in path.split("/"))


def main():
    only = sys.argv[1:]
    with open(CASES) as f:
        cases = [json.loads(line) for line in f if line.strip()]
    cqt.check(len(cases) >= 200, "the corpus has at least 200 cases (%d)" % len(cases))
    if only:
        cases = [c for c in cases if any(o in c["id"] for o in only)]
    st = fl.Stack("corpus")
    failed = {}  # id -> reasons

    def fail(case, why):
        failed.setdefault(case["id"], []).append(why)
    try:
        ing = {"enc": st.add("ingress", "ingress-enc"),
               "plain": st.add("ingress", "ingress-plain",
                               cfg=st.variant("plain", drop=("encrypt_key",),
                                              replace={"encrypt_key": "require_encrypt_key: false"}))}
        st.add("worker")
        st.add("notifier")
        t0 = time.time()
        for c in cases:
            headers, body = build(c, st)
            status, reply = raw_http(ing[c["ingress"]].port, c["method"], c["path"], headers,
                                     body)
            c["got"] = (status, reply.decode("utf-8", "replace"))
            e = c["expect"]
            want = e["status"] if isinstance(e["status"], list) else [e["status"]]
            if status not in want:
                fail(c, "status %d, want %s (reply %r)" % (status, e["status"],
                                                            c["got"][1][:120]))
            elif e.get("reply") and e["reply"] not in c["got"][1]:
                fail(c, "reply %r lacks %r" % (c["got"][1][:160], e["reply"]))
            if not e.get("queued") and "queued" in c["got"][1]:
                fail(c, "refused input answered 'queued'")
        fl.log("%d cases sent in %.1f s" % (len(cases), time.time() - t0))

        # the worker's answers for the accepted commands
        want_final = [c for c in cases if c["expect"].get("final") is not None and
                      c["got"][0] == 200]
        fl.wait_for(lambda: all(finals_for(st, c) for c in want_final), 60, 0.2)
        for c in want_final:
            fin = finals_for(st, c)
            e = c["expect"]
            if not fin:
                fail(c, "no final reply reached the platform")
            elif len(fin) > 1:
                fail(c, "%d final replies" % len(fin))
            elif e["final"] not in json.loads(fin[0]).get("text", "") + fin[0]:
                fail(c, "final %r lacks %r" % (fin[0][:200], e["final"]))
            if fin and e.get("reply_not") and e["reply_not"] in shown_text(fin[0]):
                fail(c, "final %r contains %r" % (fin[0][:200], e["reply_not"]))

        # nothing queued but the accepted cases, each once
        topics = {"requests": "fq.%s.requests" % st.run,
                  "pipeline_events": "fq.%s.pipeline-events" % st.run}
        got = {}
        for name, t in topics.items():
            for m in cqt.topic_dump(st.brokers, t, timeout_ms=3000):
                try:
                    v = json.loads(m.get("value") or "{}")
                except ValueError:
                    v = {}
                got.setdefault(name, []).append(v)
        keys = {}
        for v in got.get("requests", []):
            keys[v.get("dedupe_key")] = keys.get(v.get("dedupe_key"), 0) + 1
        by_key = {c["expect"].get("key"): c for c in cases if c["expect"].get("key")}
        for k, n in keys.items():
            c = by_key.get(k)
            if not c:
                cqt.check(False, "a message nobody expected on the requests topic: %r" % k)
            elif not c["expect"].get("queued"):
                fail(c, "refused (%d) but queued on the requests topic" % c["got"][0])
            elif n != 1:
                fail(c, "queued %d times" % n)
        for k, c in by_key.items():
            if c["expect"].get("queued") and c["got"][0] == 200 and k not in keys:
                fail(c, "acknowledged but not on the requests topic")
        hooks = {}
        for c in cases:
            if c["path"] == "/gitlab/webhook":
                try:
                    hooks[json.loads(c.get("body", ""))["object_attributes"]["id"]] = c
                except (ValueError, KeyError, TypeError, RecursionError):
                    pass
        seen = set()
        for v in got.get("pipeline_events", []):
            pid = (v.get("object_attributes") or {}).get("id") if isinstance(v, dict) else None
            c = hooks.get(pid)
            if not c:
                cqt.check(False, "a message nobody expected on pipeline-events: %r" % str(v)[:200])
            elif c["expect"].get("queued") != "pipeline_events":
                fail(c, "refused (%d) but queued on pipeline-events" % c["got"][0])
            seen.add(pid)
        for pid, c in hooks.items():
            if c["expect"].get("queued") == "pipeline_events" and pid not in seen:
                fail(c, "acknowledged but not on pipeline-events")

        # direct calls stayed on their API path; no segment is a dot segment once decoded
        # (RFC 3986: %2E is "."; a server normalises "%2E%2E" to "..")
        by_arg = {c["expect"]["arg"]: c for c in cases if "arg" in c["expect"]}
        for r in st.api.requests():
            p = r["path"]
            if p.startswith("/api/v4/features/fx"):
                continue
            try:
                arg = json.loads(r["body"]).get("text")
            except ValueError:
                arg = None
            c = by_arg.get(arg)
            ok = p.startswith("/api/v4/echo/") and not dot_segment(p)
            if c and not ok:
                fail(c, "the API received %r" % p)
            elif not ok:
                cqt.check(False, "API call stays under its path: %r (body %r)"
                          % (p, r["body"][:100]))
        for s in st.services:
            if cqt.check(s.alive(), "%s alive after the corpus" % s.name):
                rc = st.stop_service(s)
                cqt.check(rc == 0, "%s exits 0 on SIGTERM (rc %s)" % (s.name, rc))
    finally:
        st.close()
    known = {i: r for i, r in failed.items()
             if next(c for c in cases if c["id"] == i)["expect"].get("issue")}
    for c in cases:
        if c["id"] in failed:
            issue = c["expect"].get("issue")
            cqt.check(False, "%s%s (%s): %s" % (c["id"], " [known defect, issue %s]" % issue
                                                if issue else "", c["desc"],
                                                "; ".join(failed[c["id"]])))
    fl.log("corpus: %d cases, %d as expected, %d not (%d of them marked known defects)"
           % (len(cases), len(cases) - len(failed), len(failed), len(known)))
    return cqt.summary(st.dir)


if __name__ == "__main__":
    fl.main(main)
