#!/usr/bin/env bash
# The quiet sitting: issue 13's table (100 and 1,000 sensors; embedded, bridged to Mosquitto, paho
# straight to Mosquitto, bridged to a second gannet; 3 rounds, order rotated), then the bridged
# paths at offered 20,000 / 10,000 / 5,000 msgs/s, all one run at a time.
cd "$(dirname "$0")"; ./setup.sh
orders=("embedded bridged direct bridged-gannet" "direct bridged-gannet embedded bridged" "bridged-gannet embedded bridged direct")
for n in 100 1000; do
  for r in 0 1 2; do
    for m in ${orders[$r]}; do echo "$(date +%T) round$r $(./run.sh $m $n)"; done
  done
done
for r in 0 1 2; do
  for rate in 200 100 50; do
    for m in bridged bridged-gannet; do echo "$(date +%T) round$r rate=$rate $(./run.sh $m 100 -rate $rate)"; done
  done
done
