#!/usr/bin/env bash
# Within-run A/B of scraping /metrics at 1/s: one long closed-loop bench; the scraper is on in
ROOT=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
# alternate 10 s blocks (ABBA order); the gateway's own message counter, read once at every
# block boundary in both conditions, gives each block's rate. Drift cancels between neighbours.
set -eu
BIN=${BIN:-/tmp/gannet}; C=${W:-/tmp/gannet-scrape}; mkdir -p $C; BLOCKS=${BLOCKS:-24}; RATE=${RATE:-1}
cd $C
sed -e 's/127.0.0.1:1884/127.0.0.1:33884/' -e 's/^address = "127.0.0.1:1883"/address = "127.0.0.1:33883"/' \
    -e 's/^address = "127.0.0.1:9184"/address = "127.0.0.1:33985"/' -e 's/^level = "info"/level = "warn"/' \
    $ROOT/config.toml > gw.toml
sed -i '/^\[rate_limit.unknown_sources\]/,$d' gw.toml
D=$(mktemp -d); (cd $D && exec $BIN serve -config $C/gw.toml) & GW=$!
trap 'kill $GW $BP 2>/dev/null; rm -rf $D' EXIT
until curl -sf 127.0.0.1:33985/readyz >/dev/null; do sleep 0.1; done
BS=${BS:-10}; DUR=$((BLOCKS*BS+20))
$BIN bench publish -gateway 127.0.0.1:33884 -broker 127.0.0.1:33883 -gateway-pid $GW -sensors 100 -qos 1 -window 1 -duration ${DUR}s -json -progress=false > bench.json & BP=$!
count() { curl -sf 127.0.0.1:33985/metrics | awk '/^gannet_mqttsn_messages_received_total/ {s+=$2} END {printf "%d", s}'; }
cpu() { awk '{print $14+$15}' /proc/$GW/stat; }
sleep 10   # warm-up: connect and reach a steady state
prev=$(count); pcpu=$(cpu); t0=${EPOCHREALTIME/./}
echo "block cond msgs_per_s cpu_us_per_msg load1" > blocks.txt
for b in $(seq 0 $((BLOCKS-1))); do
  # ABBA: off on on off | off on on off ...; "off" fetches /readyz (no metrics work) on the same
  # schedule, so both conditions start the same processes at the same times
  case $((b%4)) in 0|3) cond=off; url=/readyz;; *) cond=on; url=/metrics;; esac
  end=$((t0 + BS*1000000*(b+1)))
  while (( ${EPOCHREALTIME/./} < end - 1000000 )); do curl -sf -o /dev/null 127.0.0.1:33985$url; sleep 1; done
  left=$((end - ${EPOCHREALTIME/./})); (( left > 0 )) && sleep $(printf '%d.%06d' $((left/1000000)) $((left%1000000)))
  now=$(count); ncpu=$(cpu)
  echo "$b $cond $(( (now-prev)/BS )) $(echo "($ncpu-$pcpu)*10000/($now-$prev)" | bc -l | cut -c1-6) $(cut -d' ' -f1 /proc/loadavg)" >> blocks.txt
  prev=$now; pcpu=$ncpu
done
kill $BP 2>/dev/null || true; wait $BP 2>/dev/null || true
cat blocks.txt
awk 'NR>1 {r[$2]=r[$2]" "$3} END {print "off:" r["off"]; print "on: " r["on"]}' blocks.txt
# paired: each ABBA quad gives (on1+on2)/(off1+off2)-1
awk 'NR>1 {q=int($1/4); if ($2=="on") on[q]+=$3; else off[q]+=$3} END {for (q in on) printf "quad %d: %+.2f %%\n", q, 100*(on[q]/off[q]-1)}' blocks.txt | sort -k2 -n
