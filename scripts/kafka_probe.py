#!/usr/bin/env python3
"""kafka_probe.py HOST:PORT: is a Kafka broker ready to serve clients?

Speaks the Kafka wire protocol with the standard library only: ApiVersions v0 (must
answer error_code 0), then Metadata (must list at least one broker and a controller).
Exit 0 when ready, 1 otherwise; one line on stdout says what was seen. Used by kafka.sh.
"""
import socket
import struct
import sys

API_METADATA = 3
API_VERSIONS = 18


def request(sock, api_key, version, corr, body):
    client = b"cq-probe"
    hdr = struct.pack(">hhih", api_key, version, corr, len(client)) + client
    msg = hdr + body
    sock.sendall(struct.pack(">i", len(msg)) + msg)
    size = struct.unpack(">i", recv_exact(sock, 4))[0]
    if size < 4 or size > 16 << 20:
        raise ValueError("bad response size %d" % size)
    data = recv_exact(sock, size)
    got = struct.unpack(">i", data[:4])[0]
    if got != corr:
        raise ValueError("correlation id %d, want %d" % (got, corr))
    return data[4:]


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed by broker")
        buf += chunk
    return buf


def api_versions(sock):
    """Returns {api_key: (min, max)}; raises on a non-zero error code."""
    body = request(sock, API_VERSIONS, 0, 1, b"")
    err, count = struct.unpack(">hi", body[:6])
    if err != 0:
        raise ValueError("ApiVersions error_code %d" % err)
    out = {}
    for i in range(count):
        key, lo, hi = struct.unpack(">hhh", body[6 + 6 * i:12 + 6 * i])
        out[key] = (lo, hi)
    return out


def metadata_brokers(sock, version):
    """Metadata v4..v8 (non-flexible), no topics: returns (brokers, controller_id)."""
    body = struct.pack(">i", 0) + b"\x00"  # topics: empty array; allow_auto_topic_creation
    if version >= 8:
        body += b"\x00\x00"  # include cluster/topic authorized operations
    data = request(sock, API_METADATA, version, 2, body)
    pos = 4  # throttle_time_ms
    count = struct.unpack(">i", data[pos:pos + 4])[0]
    pos += 4
    brokers = []
    for _ in range(count):
        node, hlen = struct.unpack(">ih", data[pos:pos + 6])
        pos += 6
        host = data[pos:pos + hlen].decode()
        pos += hlen
        port, rlen = struct.unpack(">ih", data[pos:pos + 6])
        pos += 6 + max(rlen, 0)
        brokers.append((node, host, port))
    clen = struct.unpack(">h", data[pos:pos + 2])[0]
    pos += 2 + max(clen, 0)
    controller = struct.unpack(">i", data[pos:pos + 4])[0]
    return brokers, controller


def main():
    if len(sys.argv) != 2 or ":" not in sys.argv[1]:
        print("usage: kafka_probe.py HOST:PORT", file=sys.stderr)
        return 2
    host, port = sys.argv[1].rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.settimeout(5)
            versions = api_versions(sock)
            lo, hi = versions.get(API_METADATA, (99, -1))
            version = min(8, hi)
            if version < max(lo, 4):
                print("not ready: Metadata v4..v8 unsupported (%d..%d)" % (lo, hi))
                return 1
            brokers, controller = metadata_brokers(sock, version)
    except (OSError, ValueError, struct.error) as e:
        print("not ready: %s" % e)
        return 1
    if not brokers or controller < 0:
        print("not ready: brokers=%s controller=%d" % (brokers, controller))
        return 1
    print("ready: %d api keys, brokers=%s controller=%d" % (len(versions), brokers, controller))
    return 0


if __name__ == "__main__":
    sys.exit(main())
