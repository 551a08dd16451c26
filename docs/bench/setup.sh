#!/usr/bin/env bash
set -eu
ROOT=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
W=${W:-/tmp/gannet-qb}; mkdir -p $W; cd $W
sed -e 's/127.0.0.1:1884/127.0.0.1:31884/' -e 's/^address = "127.0.0.1:1883"/address = "127.0.0.1:31883"/' \
    -e 's/^address = "127.0.0.1:9184"/address = "127.0.0.1:31985"/' -e 's/^level = "info"/level = "warn"/' \
    $ROOT/config.toml > gw.toml
sed -i '/^\[rate_limit.unknown_sources\]/,$d' gw.toml
sed 's/^disabled = false/disabled = true/' gw.toml > br.toml
cat >> br.toml <<'EOT'
[[bridge]]
name = "mosq"
servers = ["mqtt://127.0.0.1:31990"]
client_id = "gannet-bench"
[[bridge.rule]]
pattern = "bench/#"
direction = "out"
qos = 1
EOT
# remote.toml: a second gannet as the central broker (bridged-gannet), on Mosquitto's port, with
# Mosquitto's windows (max_inflight_messages 1000, max_queued_messages 100000) and no persistence.
sed -e 's/127.0.0.1:1884/127.0.0.1:32884/' -e 's/^address = "127.0.0.1:1883"/address = "127.0.0.1:31990"/' \
    -e 's/^address = "127.0.0.1:9184"/address = "127.0.0.1:32985"/' -e 's/^level = "info"/level = "warn"/' \
    -e 's/^type = "bolt"/type = "memory"/' -e 's/^max_queued = 1000$/max_queued = 100000/' \
    -e 's/^max_inflight = 32$/max_inflight = 1000/' $ROOT/config.toml > remote.toml
sed -i '/^\[rate_limit.unknown_sources\]/,$d' remote.toml
printf 'listener 31990 127.0.0.1\nallow_anonymous true\npersistence false\nmax_inflight_messages 1000\nmax_queued_messages 100000\n' > mosq.conf
