#!/usr/bin/env python3
# Copied from the shared bench kit (../shared/bench/slack_wrk.py) so the bench runs without it.
"""Write a wrk Lua script that sends N distinct, correctly signed Slack slash
commands (signature v0, timestamp = now) to PATH.  Usage:
  slack_wrk.py OUT.lua PATH [N] [SECRET] [COMMAND] [TEXT]"""
import hmac, hashlib, sys, time, urllib.parse
out, path = sys.argv[1], sys.argv[2]
n = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
secret = (sys.argv[4] if len(sys.argv) > 4 else '8f742231b10e8888abcd99yyyzzz85a5').encode()
command = sys.argv[5] if len(sys.argv) > 5 else '/deploy'
text = sys.argv[6] if len(sys.argv) > 6 else 'status staging'
ts = str(int(time.time()))
reqs = []
for i in range(n):
    body = urllib.parse.urlencode({
        'token': 'gIkuvaNzQIHg97ATvDxqgjtO', 'team_id': 'T0001', 'team_domain': 'example',
        'channel_id': 'C2147483705', 'channel_name': 'ops', 'user_id': 'U2147483697',
        'user_name': 'alice', 'command': command, 'text': text,
        'api_app_id': 'A123456', 'response_url': 'http://127.0.0.1:9/commands/%d' % i,
        'trigger_id': '13345224609.738474920.%032x' % i})
    sig = 'v0=' + hmac.new(secret, ('v0:%s:%s' % (ts, body)).encode(), hashlib.sha256).hexdigest()
    reqs.append((body, sig))
with open(out, 'w') as f:
    f.write('local reqs = {\n')
    for body, sig in reqs:
        f.write('  {%r, %r},\n' % (body, sig))
    f.write('}\nlocal i = 0\n')
    f.write('request = function()\n  i = i %% #reqs + 1\n  local r = reqs[i]\n'
            '  return wrk.format("POST", %r, {["Content-Type"]="application/x-www-form-urlencoded",'
            ' ["X-Slack-Request-Timestamp"]="%s", ["X-Slack-Signature"]=r[2]}, r[1])\nend\n' % (path, ts))
    f.write('done = function(summary, latency, requests)\n'
            '  for _, p in ipairs({50, 90, 99, 99.9}) do io.write(string.format("p%g_us %d\\n", p, latency:percentile(p))) end\n'
            '  io.write(string.format("non2xx %d\\n", summary.errors.status))\nend\n')
