#!/usr/bin/env bash
# run.sh MODE N [extra bench flags]: MODE embedded|bridged|direct|bridged-gannet; prints one summary
# line. bridged-gannet: the central broker is a second gannet (remote.toml: its MQTT listener on
# Mosquitto's port, memory store), not Mosquitto; "mosq_us" is then that broker's CPU.
set -u
W=${W:-/tmp/gannet-qb}; cd $W; MODE=$1; N=$2; shift 2
BIN=${BIN:-/tmp/gannet}
D=$(mktemp -d); GW=
if [ $MODE = bridged-gannet ]; then
  mkdir $D/remote; (cd $D/remote && exec $BIN serve -config $W/remote.toml) 2>$D/remote.log & MQ=$!
  until curl -sf 127.0.0.1:32985/readyz >/dev/null; do sleep 0.1; done
else
  mosquitto -c mosq.conf >/dev/null 2>&1 & MQ=$!
fi
if [ $MODE != direct ]; then
  CFG=gw.toml; case $MODE in bridged*) CFG=br.toml ;; esac
  (cd $D && exec $BIN serve -config $W/$CFG) 2>$D/gw.log & GW=$!
  until curl -sf 127.0.0.1:31985/readyz >/dev/null; do sleep 0.1; done
fi
until mosquitto_pub -p 31990 -t ping -m x 2>/dev/null; do sleep 0.1; done
case $MODE in
embedded) $BIN bench publish -gateway 127.0.0.1:31884 -gateway-pid $GW -broker 127.0.0.1:31883 -sensors $N -qos 1 -duration 10s -drain 60s -json -progress=false "$@" ;;
bridged|bridged-gannet) $BIN bench publish -gateway 127.0.0.1:31884 -gateway-pid $GW -broker 127.0.0.1:31990 -sensors $N -qos 1 -duration 10s -drain 60s -json -progress=false "$@" ;;
direct) $BIN bench mqtt-publish -broker 127.0.0.1:31990 -sensors $N -qos 1 -duration 10s -drain 60s -json -progress=false "$@" ;;
esac > $D/out.json
MQCPU=$(awk '{print $14+$15}' /proc/$MQ/stat)
[ -n "$GW" ] && { kill $GW; wait $GW 2>/dev/null; }
kill $MQ; wait $MQ 2>/dev/null
python3 - "$D/out.json" "$MODE" "$N" "$MQCPU" "$(cut -d' ' -f1 /proc/loadavg)" <<'PY'
import json,sys
r=json.load(open(sys.argv[1])); mode,n,mq,load=sys.argv[2:]
def g(*ks):
    for k in ks:
        if k in r: return r[k]
    return None
lat=r.get('latency',{}) or {}
d=g('delivered')
gw=r.get('gateway') or {}
ack=r['acknowledged']/r['send_seconds']
print(mode,n,'deliv/s=%.0f'%(g('delivered_per_s') or 0),'ack/s=%.0f'%ack,
      'p50=%s p99=%s'%(lat.get('p50_ms'),lat.get('p99_ms')),'gwcpu_us=%.1f'%(gw.get('cpu_seconds',0)*1e6/max(1,r['acknowledged'])),
      'mosq_us=%.1f'%((float(mq)*10000/d) if d else 0),'lost=%s dup=%s'%(g('lost'),g('duplicated')),'load=%s'%load)
PY
cp $D/out.json $W/last.json; rm -rf $D
