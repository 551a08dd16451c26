#!/usr/bin/env bash
# The quiet sitting: issue 13's table (100 and 1,000 sensors; embedded, bridged, direct; 3 rounds,
# order rotated), then bridged at offered 20,000 / 10,000 / 5,000, all one run at a time.
cd "$(dirname "$0")"; ./setup.sh
orders=("embedded bridged direct" "direct embedded bridged" "bridged direct embedded")
for n in 100 1000; do
  for r in 0 1 2; do
    for m in ${orders[$r]}; do echo "$(date +%T) round$r $(./run.sh $m $n)"; done
  done
done
for r in 0 1 2; do
  for rate in 200 100 50; do echo "$(date +%T) round$r rate=$rate $(./run.sh bridged 100 -rate $rate)"; done
done
