#!/usr/bin/env python3
"""Sends exactly N distinct, correctly signed Slack slash commands to the ingress over C
keep-alive connections (C threads, one request in flight per connection) and checks every
answer is the Kafka-confirmed "queued" one. A deterministic load for instruction, syscall and
allocation counts (bench/ingress/profile.sh), not a timing tool.
  drive.py PORT N [CONNS=8] [SECRET] [--mark FILE]
With --mark, the wall-clock start and end (time.time()) of the N requests are written to FILE."""
import hashlib, hmac, http.client, sys, threading, time, urllib.parse

args = [a for a in sys.argv[1:] if not a.startswith('--')]
mark = sys.argv[sys.argv.index('--mark') + 1] if '--mark' in sys.argv else None
if mark:
    args.remove(mark)
port, n = int(args[0]), int(args[1])
conns = int(args[2]) if len(args) > 2 else 8
secret = (args[3] if len(args) > 3 else '8f742231b10e8888abcd99yyyzzz85a5').encode()
seed = '%x' % int(time.time() * 1000)


def request(i):
    body = urllib.parse.urlencode({
        'token': 'gIkuvaNzQIHg97ATvDxqgjtO', 'team_id': 'T0001', 'team_domain': 'example',
        'channel_id': 'C%010d' % (i % 1000), 'channel_name': 'ops', 'user_id': 'U2147483697',
        'user_name': 'alice', 'command': '/deploy', 'text': 'status staging',
        'api_app_id': 'A123456', 'response_url': 'http://127.0.0.1:9/commands/%d' % i,
        'trigger_id': '13345224609.%s.%032x' % (seed, i)})
    ts = str(int(time.time()))
    sig = 'v0=' + hmac.new(secret, ('v0:%s:%s' % (ts, body)).encode(), hashlib.sha256).hexdigest()
    return body, {'Content-Type': 'application/x-www-form-urlencoded',
                  'X-Slack-Request-Timestamp': ts, 'X-Slack-Signature': sig}


reqs = [request(i) for i in range(n)]
bad = []
lock = threading.Lock()


def worker(k):
    c = http.client.HTTPConnection('127.0.0.1', port, timeout=120)
    for i in range(k, n, conns):
        body, hdrs = reqs[i]
        c.request('POST', '/slack/commands', body, hdrs)
        r = c.getresponse()
        text = r.read()
        if r.status != 200 or b'queued' not in text:
            with lock:
                bad.append((r.status, text[:200]))
    c.close()


t0 = time.time()
ts = [threading.Thread(target=worker, args=(k,)) for k in range(conns)]
for t in ts:
    t.start()
for t in ts:
    t.join()
t1 = time.time()
if mark:
    with open(mark, 'w') as f:
        f.write('%.6f %.6f\n' % (t0, t1))
print('sent %d, not queued %d' % (n, len(bad)))
for b in bad[:3]:
    print('  ', b)
sys.exit(1 if bad else 0)
