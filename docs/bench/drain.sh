#!/usr/bin/env bash
# drain.sh: issue 13's drain of a 100,000-message backlog to Mosquitto, the code before the batched
# sender (95146bf) against this tree, side by side, ROUNDS rounds (default 3), alternating. Both
# count with the same cheap subscriber (internal/mqttsub): the old benchmark's paho subscriber is
# replaced in a scratch worktree of 95146bf.
set -eu
ROOT=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
W=${W:-/tmp/gannet-drain}; mkdir -p $W; ROUNDS=${ROUNDS:-3}
OLD=$W/old95
if [ ! -x $W/old.test ]; then
  rm -rf $OLD; git -C $ROOT worktree prune
  git -C $ROOT worktree add -f -q --detach $OLD 95146bf
  mkdir -p $OLD/internal && cp -r $ROOT/internal/mqttsub $OLD/internal/
  python3 - $OLD/mqttcore/bridge/bench_test.go $ROOT/mqttcore/bridge/bench_test.go <<'PY'
import sys
old, new = sys.argv[1], open(sys.argv[2]).read()
s = open(old).read()
s = s.replace('''		remote := dialRemote(b, ctx, fmt.Sprintf("127.0.0.1:%d", m.port), fmt.Sprintf("sub-%d", i))
		remote.subscribe(b, ctx, "edge/#", 1)
''', '''		sub := dialCounter(b, ctx, fmt.Sprintf("127.0.0.1:%d", m.port), fmt.Sprintf("sub-%d", i), "edge/#", n, 64)
''')
s = s.replace('''		for got := 0; got < n; got++ {
			remote.next(b, ctx)
		}
''', '''		sub.wait(b, ctx)
''')
assert 'dialCounter' in s and 'remote.next' not in s
s = s.replace('"github.com/eclipse/paho.golang/packets"', '"github.com/eclipse/paho.golang/packets"\n\t"github.com/eclipse/paho.golang/paho"\n\t"github.com/gannet-mqtt/gannet/internal/mqttsub"')
s = s.replace('\t"fmt"\n', '\t"fmt"\n\t"net"\n')
s += new[new.index('// counter is a benchmark'):]
open(old, 'w').write(s)
PY
  (cd $OLD && gofmt -w mqttcore/bridge/bench_test.go && go test -c -o $W/old.test ./mqttcore/bridge/)
fi
(cd $ROOT && go test -c -o $W/new.test ./mqttcore/bridge/)
cd $W
for r in $(seq $ROUNDS); do
  echo "$(date +%T) load $(cut -d' ' -f1 /proc/loadavg) old: $(./old.test -test.run '^$' -test.bench 'Drain100k$' -test.benchtime 1x | grep msgs/s)"
  ./new.test -test.run '^$' -test.bench 'Drain100k/store=core' -test.benchtime 1x | grep msgs/s | sed "s/^/$(date +%T) new: /"
done
