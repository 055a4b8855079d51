#!/usr/bin/env python3
"""Writes tests/corpus/cases.jsonl, the bad-input corpus replayed by replay_corpus.py
(ctest integration.corpus). Run it again after editing; the output is committed, so a review
sees every case. One JSON object per line:

  id        unique name (category-number)
  desc      what the case is
  ingress   "enc" (Feishu encrypt_key set: every event signed) or "plain" (token only)
  method, path, headers
  body      the raw body as text, or body_b64 when it is not valid UTF-8
  pad       {"at": "PADPAD", "n": N, "ch": "a"}: replace the marker by N copies of ch
            (keeps huge bodies out of the file)
  sign      {"kind": "slack"|"feishu", "ts": "now"|seconds offset|"raw:TEXT",
             "secret": "good"|"wrong", "sig": "RAW" (a literal signature header),
             "drop": ["X-Slack-Signature", ...]} computed at replay time over the body as sent
  expect    status (int or list), reply (fragment of the HTTP answer), queued (a message must
            land on the requests / pipeline-events topic under `key`), final (fragment of the
            final reply the real worker sends through the notifier to the fake platform),
            api (for accepted commands: "none" = no call to the fake API; "safe" = calls only
            under /api/v4/echo/ and no dot segment once percent-decoded), issue (a known
            defect of issue 19 this case checks: it fails until that item is fixed)

The body may hold RESPONSE_URL (replaced by the fake Slack response_url of the case, form
encoded). Feishu encrypted bodies are encrypted here (static: only signatures depend on time).
"""
import base64
import hashlib
import json
import os
import subprocess
import sys
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
FEISHU_TOKEN = "corpus-feishu-verification-token"
FEISHU_KEY = "corpus-feishu-encrypt-key"
GITLAB_TOKEN = "corpus-gitlab-hook-token"
BOT = "ou_corpus_bot"
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"

cases = []


def add(cid, desc, path, body, expect, headers=None, sign=None, method="POST", ingress="enc",
        pad=None):
    c = {"id": cid, "desc": desc, "ingress": ingress, "method": method, "path": path,
         "headers": headers or {}}
    if isinstance(body, bytes):
        try:
            c["body"] = body.decode("utf-8")
        except UnicodeDecodeError:
            c["body_b64"] = base64.b64encode(body).decode()
    else:
        c["body"] = body
    if pad:
        c["pad"] = pad
    if sign:
        c["sign"] = sign
    c["expect"] = expect
    assert c["id"] not in {x["id"] for x in cases}, c["id"]
    cases.append(c)


def rej(status, reply, **kw):
    e = {"status": status, "reply": reply, "queued": False}
    e.update(kw)
    return e


# ------------------------------------------------------------------ Slack slash commands

def slack_form(cid, text, **over):
    f = {"token": "legacy", "team_id": "TCORPUS", "team_domain": "corpus",
         "channel_id": "CC00", "channel_name": "ops", "user_id": "UALICE", "user_name": "alice",
         "command": "/ops", "text": text, "response_url": "RESPONSE_URL",
         "trigger_id": "trig-" + cid}
    for k, v in over.items():
        if v is None:
            f.pop(k, None)
        else:
            f[k] = v
    return urllib.parse.urlencode(f).replace("RESPONSE_URL", "RESPONSE_URL")


SIGNED = {"kind": "slack", "ts": "now", "secret": "good"}
FH = {"Content-Type": FORM}


def slack_ok(cid, desc, text, final, api="none", issue=None, **over):
    e = {"status": 200, "reply": "queued", "queued": True, "key": "slack:trig-" + cid,
         "final": final, "api": api}
    if issue:
        e["issue"] = issue
    add(cid, desc, "/slack/commands", slack_form(cid, text, **over), e, FH, SIGNED)


n = 0


def nid(prefix):
    global n
    n += 1
    return "%s-%03d" % (prefix, n)


# accepted: commands that run, unknown ones, hostile arguments
slack_ok(nid("cmd"), "a valid direct command", "flag set fx1", "Succeeded", api="any")
slack_ok(nid("cmd"), "empty text becomes help", "", "Succeeded")
slack_ok(nid("cmd"), "help", "help", "Succeeded")
slack_ok(nid("cmd"), "whoami", "whoami", "Succeeded")
for t in ["frobnicate", "flg set fx1", "FLAG SET fx1", "rm -rf /", "deploy; reboot",
          "$(reboot)", "`id`", "../../etc/passwd", "%2e%2e%2fadmin",
          "\u202eflag set fx1", "flag", "\u00e9cho x", "\U0001f600", "x" * 100]:
    slack_ok(nid("unknown"), "unknown command %r" % t[:30], t, "Invalid command")
slack_ok(nid("cmd"), "a tab separates words like a space", "flag\tset fx1", "Succeeded",
         api="any")
cid = nid("unknown")
add(cid, "a first word longer than the envelope's command limit: refused at the ingress",
    "/slack/commands", slack_form(cid, "x" * 300), rej(400, "malformed request"), FH, SIGNED)
for t in ["fx", "FX1", "fx1/../../x", "fx1%2F..%2F", "fx1;id", "fx1 extra", "'fx1", "fx1\x01",
          "--force fx1", "fx" + "9" * 300]:
    slack_ok(nid("badarg"), "argument refused by the rules %r" % t[:30], "flag set " + t,
             "Invalid command")
# arguments that reach the API as a dot segment today (".." escaped to "%2E%2E", which a
# server normalises back to ".."): issue 19 item 14
DOT_SEGMENT_DEFECT = ("..", ".")
hostile = ["..", ".", "../admin", "..%2Fadmin", "%2e%2e", "%2E%2E%2Fadmin", "%252e%252e",
           "..\\admin", "a/../../b", "/etc/passwd", "a?b=c", "a#frag", "a b", "a\r\nX-Evil: 1",
           "a%0d%0aX-Evil:%201", "$(id)", "`id`", "a;rm -rf /", "a|cat", "a&&b", "<script>",
           "'\"", "%00", "\u2028", "\uff0e\uff0e", "a" * 150, "@channel", "<!everyone>",
           "\u0430dmin", "%", "%%%", "{{secrets.api}}", "{{args.text}}", "${HOME}"]
for t in hostile:
    q = "'" + t.replace("'", "'\\''") + "'" if any(ch in t for ch in " \t'\"") else t
    slack_ok(nid("hostile"), "hostile argument %r reaches the template as data" % t[:30],
             "echo " + q, "", api="safe", issue="19.14" if t in DOT_SEGMENT_DEFECT else None)
    cases[-1]["expect"]["arg"] = t
slack_ok(nid("cut"), "help with 90 euro signs: every reply cut stays valid UTF-8 and is answered",
         "help " + "\u20ac" * 90, "", issue="19.1")
slack_ok(nid("cut"), "echo with 300 euro signs (an argument longer than max_arg_len)",
         "echo " + "\u20ac" * 300, "", issue="19.1")
slack_ok(nid("cut"), "flag set with 90 euro signs (an argument error quoting the argument)",
         "flag set " + "\u20ac" * 90, "")
slack_ok(nid("cut"), "the worker_args libFuzzer finding of issue 19 item 15",
         base64.b64decode("ZWNobyAdIF7bowsLCwsLCwsLCwsLCwsLCwsLCwsLCwsLCwsLCwsLCwsLCwsLCwsLCwsL3Zbk"
                          "nZduNeSdl+SdlzXknZ8=").decode(), "", issue="19.15")
slack_ok(nid("cmd"), "another slash command of the same app must not run as /ops",
         "flag set fx2", None, api="none", issue="19.14", command="/other")
cases[-1]["expect"] = rej([200, 400, 403, 404], "", issue="19.14", key="slack:trig-" + cases[-1]["id"])

# rejected: signatures and timestamps
for i, (desc, sign, reply) in enumerate([
        ("no signature headers", {"kind": "slack", "drop": ["X-Slack-Signature",
                                                            "X-Slack-Request-Timestamp"]},
         "missing signature headers"),
        ("no signature", {"kind": "slack", "drop": ["X-Slack-Signature"]},
         "missing signature headers"),
        ("no timestamp", {"kind": "slack", "drop": ["X-Slack-Request-Timestamp"]},
         "missing signature headers"),
        ("wrong secret", {"kind": "slack", "secret": "wrong"}, "bad signature"),
        ("stale by 301 s", {"kind": "slack", "ts": -301}, "stale timestamp"),
        ("stale by a day", {"kind": "slack", "ts": -86400}, "stale timestamp"),
        ("from the future (+301 s)", {"kind": "slack", "ts": 301}, "stale timestamp"),
        ("timestamp 0", {"kind": "slack", "ts": "raw:0"}, "stale timestamp"),
        ("timestamp not a number", {"kind": "slack", "ts": "raw:abc"}, "bad timestamp"),
        ("timestamp negative", {"kind": "slack", "ts": "raw:-5"}, "bad timestamp"),
        ("timestamp huge", {"kind": "slack", "ts": "raw:99999999999999999999"},
         "bad timestamp"),
        ("timestamp with a leading space (strtoll skips it: just old)",
         {"kind": "slack", "ts": "raw: 1"}, "stale timestamp"),
        ("timestamp hex", {"kind": "slack", "ts": "raw:0x10"}, "bad timestamp"),
        ("empty signature", {"kind": "slack", "sig": ""}, "missing signature headers"),
        ("v1= signature", {"kind": "slack", "sig": "v1=" + "0" * 64}, "bad signature"),
        ("signature without prefix", {"kind": "slack", "sig": "0" * 64}, "bad signature"),
        ("signature truncated", {"kind": "slack", "sig": "v0=abc"}, "bad signature"),
        ("signature with a NUL-looking tail", {"kind": "slack", "sig": "v0=" + "0" * 64 + "%00"},
         "bad signature"),
        ("signature uppercase hex", {"kind": "slack", "upper": True}, "bad signature"),
        ("body changed after signing", {"kind": "slack", "append": "&text=flag+set+fx9"},
         "bad signature")]):
    cid = nid("sig")
    add(cid, "slack command: " + desc, "/slack/commands", slack_form(cid, "flag set fx3"),
        rej(401, reply), FH, dict({"ts": "now", "secret": "good"}, **sign))

# rejected: content types, methods, paths
for ct in [None, "application/json", "text/plain", "multipart/form-data; boundary=x",
           "application/x-www-form-urlencodedx", "form", "application/x-www-form",
           "APPLICATION/JSON"]:
    cid = nid("ctype")
    add(cid, "slack command with content type %r" % ct, "/slack/commands",
        slack_form(cid, "flag set fx3"), rej(415, "content type must be"),
        {"Content-Type": ct} if ct else {}, SIGNED)
cid = nid("ctype")
slack_ok(cid, "content type with charset parameter", "flag set fx4", "Succeeded", api="any")
cases[-1]["headers"] = {"Content-Type": FORM + "; charset=utf-8"}
for m in ["GET", "PUT", "DELETE", "PATCH"]:
    cid = nid("method")
    add(cid, "%s on /slack/commands" % m, "/slack/commands", "", rej(405, "method not allowed"),
        FH, None, method=m)
cid = nid("path")
slack_ok(cid, "a percent-encoded unreserved character in the path is the same path (RFC 3986)",
         "flag set fx5", "Succeeded", api="any")
cases[-1]["path"] = "/%73lack/commands"
for p in ["/slack/commands/", "/slack/command", "/SLACK/COMMANDS", "/slack/commands/../events",
          "/slack//commands", "/"]:
    cid = nid("path")
    add(cid, "unknown path %r" % p, p, slack_form(cid, "flag set fx3"),
        rej(404, "not found"), FH, SIGNED)

# rejected: form encoding, fields, sizes, bytes
for desc, body, st, reply in [
        ("missing user_id", slack_form("x1", "help", user_id=None), 400, "missing user_id"),
        ("empty user_id", slack_form("x2", "help", user_id=""), 400, "missing user_id"),
        ("missing trigger_id", slack_form("x3", "help", trigger_id=None), 400,
         "missing trigger_id"),
        ("empty trigger_id", slack_form("x4", "help", trigger_id=""), 400, "missing trigger_id"),
        ("empty body", "", 400, "missing user_id"),
        ("only ampersands", "&&&&", 400, "missing user_id"),
        ("bad percent escape %zz", "user_id=U1&trigger_id=t&text=%zz", 400, "malformed form"),
        ("truncated percent escape", "user_id=U1&trigger_id=t&text=%4", 400, "malformed form"),
        ("lone percent", "user_id=U1&trigger_id=t&text=%", 400, "malformed form"),
        ("invalid UTF-8 in text (%ff)", "user_id=U1&trigger_id=t-ff&text=%ff", 400,
         "malformed request"),
        ("truncated UTF-8 in text", "user_id=U1&trigger_id=t-tr&text=%E2%82", 400,
         "malformed request"),
        ("overlong UTF-8 (%c0%af)", "user_id=U1&trigger_id=t-ol&text=%c0%af", 400,
         "malformed request"),
        ("UTF-16 surrogate in UTF-8", "user_id=U1&trigger_id=t-sg&text=%ed%a0%80", 400,
         "malformed request"),
        ("NUL in text", "user_id=U1&trigger_id=t-nul&text=a%00b", 400, "malformed form"),
        ("NUL in user_id", "user_id=U1%00U2&trigger_id=t-nul2&text=help", 400,
         "malformed form"),
        ("invalid UTF-8 in user_id", "user_id=U%ff&trigger_id=t-u8&text=help", 400,
         "malformed request"),
        ("user_id of 5000 bytes", "user_id=" + "U" * 5000 + "&trigger_id=t-long&text=help", 400,
         "malformed request"),
        ("trigger_id of 5000 bytes", "user_id=U1&trigger_id=" + "t" * 5000 + "&text=help", 400,
         "malformed request"),
        ("text longer than limits.max_text", "user_id=U1&trigger_id=t-big&text=" + "a" * 600,
         400, "text too long"),
        ("text of 300 4-byte characters (1200 bytes, within max_text) as one word: longer "
         "than the envelope's command limit", "user_id=U1&trigger_id=t-emoji&text=" +
         urllib.parse.quote("\U0001f600" * 300), 400, "malformed request"),
        ("more than 64 fields", "&".join("f%d=1" % i for i in range(80)) +
         "&user_id=U1&trigger_id=t-many&text=help", 400, "malformed form")]:
    cid = nid("form")
    if body.startswith("user_id="):
        body = "command=%2Fops&" + body  # as Slack sends it: the case is about the other fields
    add(cid, "slack command: " + desc, "/slack/commands", body, rej(st, reply), FH, SIGNED)
cid = nid("form")
add(cid, "slack command: raw invalid UTF-8 bytes in the body", "/slack/commands",
    b"command=%2Fops&user_id=U1&trigger_id=t-raw&text=\xff\xfe", rej(400, "malformed request"),
    FH, SIGNED)
cid = nid("form")
add(cid, "slack command: raw NUL byte in the body", "/slack/commands",
    b"command=%2Fops&user_id=U1&trigger_id=t-rawnul&text=a\x00b", rej(400, ""), FH, SIGNED)
for size, st, reply in [(9000, 413, "body too large"), (70000, 413, "body too large"),
                        (2 * 1024 * 1024, 413, "body too large")]:
    cid = nid("size")
    add(cid, "slack command body of %d bytes (limits.max_body 8k)" % size, "/slack/commands",
        "user_id=U1&trigger_id=t-%s&text=PADPAD" % cid, rej(st, reply), FH, SIGNED,
        pad={"at": "PADPAD", "n": size, "ch": "a"})
cid = nid("size")
add(cid, "Content-Length larger than max_body announced, small body", "/slack/commands",
    "user_id=U1", rej(413, "body too large"), dict(FH, **{"X-Content-Length-Override": "999999"}),
    SIGNED)
cid = nid("ssl")
add(cid, "ssl_check=1 unsigned: answered, nothing produced", "/slack/commands",
    "ssl_check=1&token=x", {"status": 200, "reply": "", "queued": False}, FH, None)
cid = nid("ssl")
add(cid, "ssl_check=2 unsigned: refused", "/slack/commands", "ssl_check=2&token=x",
    rej(401, "missing signature headers"), FH, None)

# ------------------------------------------------------------------ Slack events (JSON)

def slack_event(cid, text, **over):
    ev = {"type": "app_mention", "user": "UALICE", "text": text, "channel": "CC01",
          "ts": "1700000000.%06d" % (len(cases) + 1)}
    root = {"type": "event_callback", "team_id": "TCORPUS", "event_id": "Ev" + cid,
            "event": ev}
    for k, v in over.items():
        tgt = ev if k.startswith("ev_") else root
        k = k[3:] if k.startswith("ev_") else k
        if v is None:
            tgt.pop(k, None)
        else:
            tgt[k] = v
    return json.dumps(root)


JH = {"Content-Type": JSON}
cid = nid("sev")
add(cid, "slack event: url_verification answers the challenge", "/slack/events",
    json.dumps({"type": "url_verification", "challenge": "chal-" + cid, "token": "x"}),
    {"status": 200, "reply": "chal-" + cid, "queued": False}, JH, SIGNED)
cid = nid("sev")
add(cid, "slack event: url_verification without challenge", "/slack/events",
    json.dumps({"type": "url_verification"}), rej(400, "missing challenge"), JH, SIGNED)
cid = nid("sev")
add(cid, "slack event: app_mention runs", "/slack/events", slack_event(cid, "<@UBOT> whoami"),
    {"status": 200, "reply": "{}", "queued": True, "key": "slack:Ev" + cid,
     "final": "Succeeded"}, JH, SIGNED)
cid = nid("sev")
add(cid, "slack event: platform retry header on a new event", "/slack/events",
    slack_event(cid, "<@UBOT> help"), {"status": 200, "reply": "{}", "queued": True,
                                       "key": "slack:Ev" + cid, "final": "Succeeded"},
    dict(JH, **{"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}), SIGNED)
for desc, body in [("a bot's own message", slack_event("b1", "x", ev_bot_id="B1")),
                   ("a message event", slack_event("b2", "x", ev_type="message")),
                   ("another callback type", slack_event("b3", "x", type="app_rate_limited")),
                   ("no event object", json.dumps({"type": "event_callback", "event_id": "E"}))]:
    cid = nid("sev")
    add(cid, "slack event: %s is acknowledged, not run" % desc, "/slack/events", body,
        {"status": 200, "reply": "{}", "queued": False}, JH, SIGNED)
for desc, body in [("no event_id", slack_event("m1", "x", event_id=None)),
                   ("no user", slack_event("m2", "x", ev_user=None)),
                   ("no text", slack_event("m3", "x", ev_text=None)),
                   ("event_id not a string", slack_event("m4", "x", event_id=7)),
                   ("empty event_id", slack_event("m5", "x", event_id=""))]:
    cid = nid("sev")
    add(cid, "slack event: " + desc, "/slack/events", body, rej(400, "malformed event"), JH,
        SIGNED)
BROKEN_JSON = [("empty", b""), ("not JSON", b"hello"), ("truncated", b'{"type": "event_'),
               ("array", b"[]"), ("number", b"1"), ("null", b"null"), ("string", b'"x"'),
               ("single quotes", b"{'type': 'x'}"), ("deep nesting", b"[" * 3000 + b"]" * 3000),
               ("unterminated string", b'{"a": "b'), ("bad escape", b'{"a": "\\x"}'),
               ("comments", b'{/* c */ "a": 1}'), ("NaN", b'{"a": NaN}')]
# cJSON takes these (trailing bytes after the object, a raw control character in a string):
# refused later or acknowledged without effect; nothing may be queued.
LENIENT_JSON = [("trailing garbage", b'{"type":"x"} x'), ("control character", b'{"a": "\x01"}')]
for desc, body in BROKEN_JSON:
    cid = nid("sevjson")
    add(cid, "slack event: broken JSON (%s)" % desc, "/slack/events", body,
        rej(400, "malformed JSON"), JH, SIGNED)
for desc, body in LENIENT_JSON:
    cid = nid("sevjson")
    add(cid, "slack event: lenient JSON (%s)" % desc, "/slack/events", body,
        rej([200, 400], ""), JH, SIGNED)
NUL_TRUNCATES = "new: an escaped NUL (\\u0000) in JSON text cuts the command there (cJSON)"
for desc, text, reply, issue in [
        ("invalid UTF-8 in text", b"\xff\xfe", "malformed request", None),
        ("escaped NUL in text", b"\\u0000 production", "", NUL_TRUNCATES),
        ("lone surrogate escape", b"\\ud800", "malformed JSON", None)]:
    cid = nid("sevbytes")
    body = slack_event(cid, "<@UBOT> whoami PLACE").encode().replace(b"PLACE", text)
    add(cid, "slack event: " + desc, "/slack/events", body,
        rej(400, reply, key="slack:Ev" + cid, **({"issue": issue} if issue else {})), JH,
        SIGNED)
for desc, sign, reply in [("unsigned", {"kind": "slack", "drop": ["X-Slack-Signature"]},
                           "missing signature headers"),
                          ("wrong secret", {"kind": "slack", "secret": "wrong"},
                           "bad signature"),
                          ("stale", {"kind": "slack", "ts": -600}, "stale timestamp")]:
    cid = nid("sevsig")
    add(cid, "slack event: " + desc, "/slack/events", slack_event(cid, "<@UBOT> help"),
        rej(401, reply), JH, dict({"ts": "now", "secret": "good"}, **sign))
for ct in [FORM, "text/json", None]:
    cid = nid("sevct")
    add(cid, "slack event with content type %r" % ct, "/slack/events", slack_event(cid, "x"),
        rej(415, "content type must be application/json"), {"Content-Type": ct} if ct else {},
        SIGNED)
cid = nid("sevsize")
add(cid, "slack event of 100 KiB", "/slack/events", slack_event(cid, "PADPAD"),
    rej(413, "body too large"), JH, SIGNED, pad={"at": "PADPAD", "n": 100000, "ch": "b"})

# ------------------------------------------------------------------ Feishu events

def feishu_event(cid, text, chat="oc_corpus", chat_type="group", mention=True, **over):
    msg = {"message_id": "om_" + cid, "chat_id": chat, "chat_type": chat_type,
           "message_type": "text",
           "content": json.dumps({"text": ("@_user_1 " if mention else "") + text})}
    if mention:
        msg["mentions"] = [{"key": "@_user_1", "id": {"open_id": BOT}, "name": "bot"}]
    root = {"schema": "2.0",
            "header": {"event_id": "fe_" + cid, "event_type": "im.message.receive_v1",
                       "token": FEISHU_TOKEN, "tenant_key": "tk", "app_id": "cli_corpus"},
            "event": {"sender": {"sender_id": {"open_id": "ou_alice"}, "sender_type": "user"},
                      "message": msg}}
    for k, v in over.items():
        parts = k.split("__")
        tgt = root
        for p in parts[:-1]:
            tgt = tgt[p]
        if v is None:
            tgt.pop(parts[-1], None)
        else:
            tgt[parts[-1]] = v
    return json.dumps(root)


def encrypt(plain):
    key = hashlib.sha256(FEISHU_KEY.encode()).hexdigest()
    iv = hashlib.md5(plain).digest()  # deterministic, so the file does not churn
    out = subprocess.run(["openssl", "enc", "-aes-256-cbc", "-K", key, "-iv", iv.hex()],
                         input=plain, capture_output=True, check=True).stdout
    return base64.b64encode(iv + out).decode()


FS = {"kind": "feishu", "ts": "now", "secret": "good"}
ENC = lambda plain: json.dumps({"encrypt": encrypt(plain.encode() if isinstance(plain, str)  # noqa: E731
                                                   else plain)})


def fs_ok(cid, desc, body, final, ingress="enc", sign=FS, issue=None, key=None):
    e = {"status": 200, "reply": "{}", "queued": True, "key": key or "feishu:fe_" + cid,
         "final": final, "reply_to": "om_" + cid}
    if issue:
        e["issue"] = issue
    add(cid, desc, "/feishu/events", body, e, JH, sign, ingress=ingress)


cid = nid("fs")
fs_ok(cid, "feishu: plain event, token only (no encrypt_key)", feishu_event(cid, "whoami"),
      "You are", ingress="plain", sign=None)
cid = nid("fs")
fs_ok(cid, "feishu: plain event, signed (encrypt_key set)", feishu_event(cid, "help"), "help",
      sign=FS)
cid = nid("fs")
fs_ok(cid, "feishu: encrypted event, signed", ENC(feishu_event(cid, "whoami")), "You are")
cid = nid("fs")
fs_ok(cid, "feishu: p2p message without a mention", feishu_event(cid, "whoami",
                                                                   chat_type="p2p",
                                                                   mention=False), "You are")
cid = nid("fs")
fs_ok(cid, "feishu: unknown command", feishu_event(cid, "frobnicate now"), "unknown command")
cid = nid("fs")
fs_ok(cid, "feishu: reply text is escaped (<at user_id=\"all\"> typed by a user)",
      feishu_event(cid, 'echo <at user_id="all">x</at>'), "", issue="19.14")
cases[-1]["expect"]["reply_not"] = '<at user_id="all">'
cid = nid("fs")
add(cid, "feishu: url_verification (plain) answers the challenge", "/feishu/events",
    json.dumps({"type": "url_verification", "challenge": "c-" + cid, "token": FEISHU_TOKEN}),
    {"status": 200, "reply": "c-" + cid, "queued": False}, JH, None, ingress="plain")
cid = nid("fs")
add(cid, "feishu: url_verification (encrypted) answers the challenge", "/feishu/events",
    ENC(json.dumps({"type": "url_verification", "challenge": "c-" + cid,
                    "token": FEISHU_TOKEN})),
    {"status": 200, "reply": "c-" + cid, "queued": False}, JH, None)
cid = nid("fs")
add(cid, "feishu: url_verification with a bad token", "/feishu/events",
    json.dumps({"type": "url_verification", "challenge": "c", "token": "nope"}),
    rej(401, "unauthorized"), JH, None, ingress="plain")
for desc, over, st, reply in [
        # token-only mode: the token is the authentication, so every failure before it
        # (including a body without the header that carries it) is the one uniform 401
        ("bad token", {"header__token": "nope"}, 401, "unauthorized"),
        ("no token", {"header__token": None}, 401, "unauthorized"),
        ("schema 1.0 (no header)", {"header": None}, 401, "unauthorized"),
        ("no event_id", {"header__event_id": None}, 400, "malformed event"),
        ("no sender", {"event__sender": None}, 400, "malformed event"),
        ("no message", {"event__message": None}, 400, "malformed event"),
        ("content not JSON", {"event__message__content": "not json"}, 400,
         "malformed message content"),
        ("content without text", {"event__message__content": "{}"}, 400,
         "malformed message content"),
        ("content text not a string", {"event__message__content": '{"text": 5}'}, 400,
         "malformed message content")]:
    cid = nid("fsbad")
    add(cid, "feishu (plain): " + desc, "/feishu/events", feishu_event(cid, "help", **over),
        rej(st, reply), JH, None, ingress="plain")
for desc, over in [("an image message", {"event__message__message_type": "image"}),
                   ("another event type", {"header__event_type": "im.chat.updated_v1"}),
                   ("the bot's own message",
                    {"event__sender": {"sender_id": {"open_id": BOT}, "sender_type": "user"}}),
                   ("an app's message",
                    {"event__sender": {"sender_id": {"open_id": "ou_x"}, "sender_type": "app"}}),
                   ("a group message not addressed to the bot", {"event__message__mentions": []})]:
    cid = nid("fsign")
    add(cid, "feishu (plain): %s is acknowledged, not run" % desc, "/feishu/events",
        feishu_event(cid, "help", **over), {"status": 200, "reply": "{}", "queued": False}, JH,
        None, ingress="plain")
for desc, body in BROKEN_JSON:
    cid = nid("fsjson")
    add(cid, "feishu (plain): broken JSON (%s)" % desc, "/feishu/events", body,
        rej(401, "unauthorized"), JH, None, ingress="plain")  # no token can be read: item 10
for desc, body in LENIENT_JSON:
    cid = nid("fsjson")
    add(cid, "feishu (plain): lenient JSON (%s)" % desc, "/feishu/events", body,
        rej([200, 400, 401], ""), JH, None, ingress="plain")
for desc, text, issue in [("invalid UTF-8 in text", b"\xff", None),
                          ("escaped NUL in text", b"\\\\u0000 production", NUL_TRUNCATES)]:
    cid = nid("fsbytes")
    body = feishu_event(cid, "whoami PLACE").encode().replace(b"PLACE", text)
    add(cid, "feishu (plain): " + desc, "/feishu/events", body,
        rej(400, "", key="feishu:fe_" + cid, **({"issue": issue} if issue else {})), JH, None,
        ingress="plain")
cid = nid("fsbytes")
add(cid, "feishu (plain): text longer than max_text", "/feishu/events",
    feishu_event(cid, "PADPAD"), rej(400, "text too long"), JH, None, ingress="plain",
    pad={"at": "PADPAD", "n": 700, "ch": "z"})
# signed / encrypted: signature first, one uniform 401 before authentication (item 10)
UNIFORM = "19.10"
for desc, body, sign, st, reply, issue in [
        ("plain event, no signature", feishu_event("s1", "help"), None, 401,
         "unauthorized", None),
        ("plain event, wrong key", feishu_event("s2", "help"),
         dict(FS, secret="wrong"), 401, "unauthorized", None),
        ("encrypted event, no signature", ENC(feishu_event("s3", "help")), None, 401, "", None),
        ("encrypted event, wrong key", ENC(feishu_event("s4", "help")), dict(FS, secret="wrong"),
         401, "", None),
        ("encrypted event, body changed after signing", ENC(feishu_event("s5", "help")),
         dict(FS, append=" "), 401, "", None),
        ("encrypted garbage, no signature", json.dumps({"encrypt": "AAAA"}), None, 401, "",
         UNIFORM),
        ("encrypt not base64, no signature", json.dumps({"encrypt": "!!!***"}), None, 401, "",
         UNIFORM),
        ("encrypt of a bad block size, no signature",
         json.dumps({"encrypt": base64.b64encode(b"x" * 37).decode()}), None, 401, "", UNIFORM),
        ("encrypt with bad padding, no signature",
         json.dumps({"encrypt": base64.b64encode(b"\x00" * 48).decode()}), None, 401, "",
         UNIFORM),
        ("encrypted non-JSON, no signature", ENC("not json"), None, 401, "", UNIFORM),
        ("encrypted non-JSON, wrong key", ENC("not json"), dict(FS, secret="wrong"), 401, "",
         UNIFORM),
        ("encrypt not a string", json.dumps({"encrypt": 5}), None, 401, "", None),
        ("signed event 10 minutes old (replay window)", ENC(feishu_event("s6", "help")),
         dict(FS, ts=-600), 401, "", UNIFORM),
        ("signed event a day old (replay window)", feishu_event("s7", "help"),
         dict(FS, ts=-86400), 401, "", UNIFORM),
        ("signed event from the future", feishu_event("s8", "help"), dict(FS, ts=3600), 401, "",
         UNIFORM)]:
    cid = nid("fssig")
    ev = json.loads(body)
    if "encrypt" in ev:
        key = None
    else:
        key = "feishu:" + ev["header"]["event_id"]
    add(cid, "feishu (encrypt_key set): " + desc, "/feishu/events", body,
        rej(st, reply, **({"issue": issue} if issue else {})), JH, sign)
    if key or "s6" in desc or "old" in desc:
        cases[-1]["expect"]["key"] = key or "feishu:fe_s6"
for ct in [FORM, "text/plain", None]:
    cid = nid("fsct")
    add(cid, "feishu with content type %r" % ct, "/feishu/events", feishu_event(cid, "help"),
        rej(415, "content type must be application/json"), {"Content-Type": ct} if ct else {},
        None, ingress="plain")
for m in ["GET", "PUT", "DELETE"]:
    cid = nid("fsmethod")
    add(cid, "%s on /feishu/events" % m, "/feishu/events", "", rej(405, "method not allowed"),
        JH, None, method=m, ingress="plain")
cid = nid("fssize")
add(cid, "feishu event of 100 KiB", "/feishu/events", feishu_event(cid, "PADPAD"),
    rej(413, "body too large"), JH, None, ingress="plain",
    pad={"at": "PADPAD", "n": 100000, "ch": "c"})

# ------------------------------------------------------------------ GitLab hooks

HOOK_IDS = iter(range(900001, 999999))


def hook(cid, **over):
    h = {"object_kind": "pipeline",
         "object_attributes": {"id": next(HOOK_IDS), "iid": 1, "status": "success",
                               "ref": "main"},
         "project": {"id": 77, "path_with_namespace": "ops/corpus"}}
    for k, v in over.items():
        parts = k.split("__")
        tgt = h
        for p in parts[:-1]:
            tgt = tgt[p]
        if v is None:
            tgt.pop(parts[-1], None)
        else:
            tgt[parts[-1]] = v
    return json.dumps(h)


GH = {"Content-Type": JSON, "X-Gitlab-Token": GITLAB_TOKEN, "X-Gitlab-Event": "Pipeline Hook"}
cid = nid("gl")
add(cid, "gitlab: a pipeline hook is queued on pipeline-events", "/gitlab/webhook", hook(cid),
    {"status": 200, "reply": "{}", "queued": "pipeline_events"}, GH)
for desc, hdrs, st, reply in [
        ("no token", {"Content-Type": JSON}, 401, "missing token"),
        ("empty token", dict(GH, **{"X-Gitlab-Token": ""}), 401, ""),
        ("wrong token", dict(GH, **{"X-Gitlab-Token": "nope"}), 401, "bad token"),
        ("token with a trailing space", dict(GH, **{"X-Gitlab-Token": GITLAB_TOKEN + " "}), 401,
         "bad token"),
        ("token prefix only", dict(GH, **{"X-Gitlab-Token": GITLAB_TOKEN[:-1]}), 401,
         "bad token")]:
    cid = nid("gltok")
    add(cid, "gitlab: " + desc, "/gitlab/webhook", hook(cid), rej(st, reply), hdrs)
for desc, hdrs in [("a Push Hook", dict(GH, **{"X-Gitlab-Event": "Push Hook"})),
                   ("a hook without X-Gitlab-Event", {"Content-Type": JSON,
                                                      "X-Gitlab-Token": GITLAB_TOKEN})]:
    cid = nid("glign")
    add(cid, "gitlab: %s is acknowledged, not queued" % desc, "/gitlab/webhook",
        hook(cid, object_kind="push"), {"status": 200, "reply": "{}", "queued": False}, hdrs)
for desc, body in [("object_kind push", hook("p", object_kind="push")),
                   ("no object_kind", hook("p2", object_kind=None))]:
    cid = nid("glhdr")
    add(cid, "gitlab: a Pipeline Hook (the header decides) with %s is queued" % desc,
        "/gitlab/webhook", body, {"status": 200, "reply": "{}", "queued": "pipeline_events"},
        GH)
for desc, body in [("no project id", hook("q1", project__id=None)),
                   ("no object_attributes", hook("q2", object_attributes=None)),
                   ("no pipeline id", hook("q3", object_attributes__id=None)),
                   ("pipeline id a string", hook("q4", object_attributes__id="x"))]:
    cid = nid("glbad")
    add(cid, "gitlab: malformed pipeline hook (%s)" % desc, "/gitlab/webhook", body,
        rej(400, "malformed pipeline hook"), GH)
for desc, body in BROKEN_JSON[:10]:
    cid = nid("gljson")
    add(cid, "gitlab: broken JSON (%s)" % desc, "/gitlab/webhook", body,
        rej(400, "malformed JSON"), GH)
for desc, body in LENIENT_JSON:
    cid = nid("gljson")
    add(cid, "gitlab: lenient JSON (%s)" % desc, "/gitlab/webhook", body, rej([200, 400], ""),
        GH)
for ct in [FORM, None]:
    cid = nid("glct")
    h = dict(GH)
    h.pop("Content-Type")
    if ct:
        h["Content-Type"] = ct
    add(cid, "gitlab with content type %r" % ct, "/gitlab/webhook", hook(cid),
        rej(415, "content type must be application/json"), h)
cid = nid("glsize")
add(cid, "gitlab hook of 100 KiB", "/gitlab/webhook", hook(cid, project__name="PADPAD"),
    rej(413, "body too large"), GH, pad={"at": "PADPAD", "n": 100000, "ch": "d"})
cid = nid("glm")
add(cid, "GET on /gitlab/webhook", "/gitlab/webhook", "", rej(405, "method not allowed"), GH,
    method="GET")

# headers too large for the connection memory (libmicrohttpd answers 431 itself)
cid = nid("hdr")
add(cid, "a 20 KiB header", "/slack/commands", slack_form(cid, "help"),
    {"status": [400, 413, 431], "reply": "", "queued": False},
    dict(FH, **{"X-Big": "PADPAD"}), SIGNED, pad={"at": "PADPAD", "n": 20000, "ch": "h"})

# ------------------------------------------------------------------ issue 18: DingTalk,
# Mattermost, Discord, Webex (bad input only: each refused, nothing queued; the accepted paths
# are in tests/integration/test_ingress_platforms.py)

MM_TOKEN = "corpus-mattermost-token"
DT = {"kind": "dingtalk", "ts": "now", "secret": "good"}
WX = {"kind": "webex", "secret": "good"}
DC = {"kind": "discord", "ts": "now"}


def dt_msg(cid, **over):
    m = {"conversationId": "cidCorpus", "msgId": "msg-" + cid, "senderStaffId": "staff-alice",
         "senderNick": "alice", "conversationType": "2", "msgtype": "text",
         "sessionWebhook": "http://127.0.0.1:1/robot/sendBySession?session=" + cid,
         "text": {"content": " help"}}
    for k, v in over.items():
        if v is None:
            m.pop(k, None)
        else:
            m[k] = v
    return json.dumps(m)


for desc, sign, st, reply in [
        ("no signature headers", None, 401, "missing signature headers"),
        ("a wrong secret", dict(DT, secret="wrong"), 401, "bad signature"),
        ("a timestamp 2 h old", dict(DT, ts=-7200), 401, "stale timestamp"),
        ("a timestamp 2 h ahead", dict(DT, ts=7200), 401, "stale timestamp"),
        ("a timestamp in seconds, not ms", dict(DT, unit="s"), 401, "stale timestamp"),
        ("a non-numeric timestamp", dict(DT, ts="raw:12ab"), 401, "bad timestamp")]:
    cid = nid("dtsig")
    add(cid, "dingtalk: " + desc, "/dingtalk/events", dt_msg(cid), rej(st, reply), JH, sign)
for desc, body, st, reply in [
        ("no msgId", dt_msg("x1", msgId=None), 400, "malformed message"),
        ("no text.content", dt_msg("x2", text={}), 400, "malformed message"),
        ("an escaped NUL", dt_msg("x3", text={"content": "help\u0000x"}), 400, "malformed"),
        ("not JSON", "{\"msgtype\": ", 400, "malformed JSON"),
        ("a JSON list", "[1]", 400, "malformed JSON"),
        ("text over limits.max_text", dt_msg("x4", text={"content": "x" * 600}), 400,
         "text too long")]:
    cid = nid("dtbad")
    add(cid, "dingtalk: signed, " + desc, "/dingtalk/events", body,
        rej(st, reply), JH, DT)
cid = nid("dtpic")
add(cid, "dingtalk: a picture is acknowledged, not queued", "/dingtalk/events",
    dt_msg(cid, msgtype="picture"), {"status": 200, "reply": "{}", "queued": False}, JH, DT)


def mm_form(cid, **over):
    f = {"channel_id": "mmcorpus", "command": "/ops", "team_id": "team1", "text": "help",
         "token": MM_TOKEN, "trigger_id": "mm-" + cid, "user_id": "mm-alice",
         "response_url": "http://127.0.0.1:1/hooks/" + cid}
    for k, v in over.items():
        if v is None:
            f.pop(k, None)
        else:
            f[k] = v
    return urllib.parse.urlencode(f)


for desc, body, st, reply in [
        ("no token", mm_form("m1", token=None), 401, "missing token"),
        ("a wrong token", mm_form("m2", token="corpus-mattermost-tokem"), 401, "bad token"),
        ("a token prefix", mm_form("m3", token=MM_TOKEN[:-1]), 401, "bad token"),
        ("the token twice, the first wrong", "token=x&" + mm_form("m4"), 401, "bad token"),
        ("a bad percent escape", mm_form("m5") + "&text=%zz", 401, "malformed form"),
        ("no user_id", mm_form("m6", user_id=None), 400, "malformed command"),
        ("no trigger_id", mm_form("m7", trigger_id=None), 400, "malformed command")]:
    cid = nid("mmbad")
    add(cid, "mattermost: " + desc, "/mattermost/commands", body, rej(st, reply), FH)
cid = nid("mmct")
add(cid, "mattermost: JSON instead of a form", "/mattermost/commands", "{}",
    rej(415, "content type must be application/x-www-form-urlencoded"), JH)

for desc, sign, st, reply in [
        ("no signature headers", None, 401, "invalid request signature"),
        ("a wrong signature", dict(DC, sig="00" * 64), 401, "invalid request signature"),
        ("a short signature", dict(DC, sig="abcd"), 401, "invalid request signature"),
        ("a signature 10 min old", dict(DC, ts=-600), 401, "invalid request signature")]:
    cid = nid("dcsig")
    add(cid, "discord: " + desc, "/discord/interactions", '{"type":1}', rej(st, reply), JH, sign)
cid = nid("dcping")
add(cid, "discord: a signed PING is answered PONG", "/discord/interactions", '{"type":1}',
    {"status": 200, "reply": '{"type":1}', "queued": False}, JH, DC)
for desc, body in [("no type", '{"id":"1"}'), ("not JSON", '{"type":'),
                   ("a command without a token",
                    '{"type":2,"id":"9","application_id":"1","data":{"name":"help"},'
                    '"user":{"id":"u"}}'),
                   ("options not a list",
                    '{"type":2,"id":"9","application_id":"1","token":"t","user":{"id":"u"},'
                    '"data":{"name":"lb","options":{"a":1}}}')]:
    cid = nid("dcbad")
    add(cid, "discord: signed, " + desc, "/discord/interactions", body,
        rej(400, "malformed"), JH, DC)


def wx_note(cid, **data):
    d = {"id": "wx-" + cid, "roomId": "room-corpus", "personId": "p-alice",
         "personEmail": "alice@example.com"}
    d.update(data)
    return json.dumps({"id": "wh", "resource": "messages", "event": "created", "data": d})


for desc, sign, st, reply in [
        ("no signature", None, 401, "missing signature header"),
        ("a wrong secret", dict(WX, secret="wrong"), 401, "bad signature"),
        ("a SHA-256 length signature", dict(WX, sig="ab" * 32), 401, "bad signature")]:
    cid = nid("wxsig")
    add(cid, "webex: " + desc, "/webex/events", wx_note(cid), rej(st, reply), JH, sign)
for desc, body, st, reply in [
        ("no message id", wx_note("w1", id=None), 400, "malformed notification"),
        ("a numeric room id", wx_note("w2", roomId=7), 400, "malformed notification"),
        ("not JSON", "{", 400, "malformed JSON")]:
    cid = nid("wxbad")
    add(cid, "webex: signed, " + desc, "/webex/events", body, rej(st, reply), JH, WX)
cid = nid("wxown")
add(cid, "webex: the bot's own message is acknowledged, not queued", "/webex/events",
    wx_note(cid, personId="p-corpus-bot"), {"status": 200, "reply": "{}", "queued": False}, JH,
    WX)

if __name__ == "__main__":
    out = os.path.join(HERE, "cases.jsonl")
    with open(out, "w") as f:
        for c in cases:
            f.write(json.dumps(c, ensure_ascii=False, sort_keys=True) + "\n")
    print("%d cases -> %s" % (len(cases), out), file=sys.stderr)
