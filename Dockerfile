# One image for the three services and chatopsctl (Debian 12, the same packages as the
# native stack). Build: docker build -t chatops .  Each compose service picks its binary.
FROM debian:12 AS build
RUN apt-get update && apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config librdkafka-dev libhiredis-dev libcjson-dev \
      libmicrohttpd-dev libcurl4-openssl-dev libssl-dev libyaml-dev libuv1-dev python3 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=RelWithDebInfo && cmake --build /build -j"$(nproc)" \
      --target chatops-ingress chatops-worker chatops-notifier chatopsctl

FROM debian:12
RUN apt-get update && apt-get install -y --no-install-recommends \
      librdkafka1 libhiredis0.14 libcjson1 libmicrohttpd12 libcurl4 libssl3 libyaml-0-2 libuv1 \
      ca-certificates python3 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /build/ingress/chatops-ingress /build/worker/chatops-worker \
     /build/notifier/chatops-notifier /build/tools/chatopsctl /usr/local/bin/
COPY examples /etc/chatops/examples
# The demo fakes (docker-compose.yml): scripts/demo_fakes.py imports ../tests/fakes.
COPY tests/fakes /opt/chatops/tests/fakes
COPY scripts/demo_fakes.py /opt/chatops/scripts/demo_fakes.py
ENV CHATOPS_CONFIG=/etc/chatops/examples/ops.yaml
USER nobody
