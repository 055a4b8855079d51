#!/usr/bin/env python3
"""Smoke test of the ctest fixtures: the Kafka broker and Redis that scripts/kafka.sh and
scripts/redis.sh started for this run answer real protocol requests over raw sockets
(Redis RESP PING, Kafka ApiVersions v0), so every other integration test can trust them.
"""
import os
import socket
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from cqt import check, stack_file  # noqa: E402
import cqt  # noqa: E402



def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


def test_redis_ping():
    port = int(stack_file("redis/port"))
    check(port != 6379, "fixture redis is not the system redis on 6379")
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"*1\r\n$4\r\nPING\r\n")
        reply = recv_exact(s, 7)
        check(reply == b"+PONG\r\n", "redis PING -> +PONG, got %r" % reply)
        # AOF on is what the services' durability relies on.
        s.sendall(b"*3\r\n$6\r\nCONFIG\r\n$3\r\nGET\r\n$10\r\nappendonly\r\n")
        reply = s.recv(256)
        check(b"appendonly" in reply and b"yes" in reply, "redis appendonly yes, got %r" % reply)
    print("ok   redis_ping (port %d)" % port)


def test_kafka_api_versions():
    bootstrap = stack_file("kafka/bootstrap")
    host, port = bootstrap.rsplit(":", 1)
    check(host == "127.0.0.1", "bootstrap host is 127.0.0.1, got %s" % host)
    corr = 0x5EED
    client = b"cq-smoke"
    msg = struct.pack(">hhih", 18, 0, corr, len(client)) + client  # ApiVersions v0
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.settimeout(5)
        s.sendall(struct.pack(">i", len(msg)) + msg)
        size = struct.unpack(">i", recv_exact(s, 4))[0]
        body = recv_exact(s, size)
    got_corr, err, count = struct.unpack(">ihi", body[:10])
    check(got_corr == corr, "correlation id echoed (%#x)" % got_corr)
    check(err == 0, "ApiVersions error_code 0, got %d" % err)
    keys = {}
    for i in range(max(count, 0)):
        k, lo, hi = struct.unpack(">hhh", body[10 + 6 * i:16 + 6 * i])
        keys[k] = (lo, hi)
    # Produce (0), Fetch (1), Metadata (3) must be there for librdkafka to work at all.
    for k in (0, 1, 3, 18):
        check(k in keys, "broker supports api key %d" % k)
    print("ok   kafka_api_versions (%s, %d api keys)" % (bootstrap, len(keys)))


test_redis_ping()
test_kafka_api_versions()
sys.exit(cqt.summary())
