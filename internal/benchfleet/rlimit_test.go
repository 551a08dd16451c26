package benchfleet

import (
	"syscall"
	"testing"
)

func TestRaiseNoFileKeepsAHigherLimit(t *testing.T) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	got, err := RaiseNoFile(lim.Cur / 2)
	if err != nil || got != lim.Cur {
		t.Errorf("RaiseNoFile(%d) = %d, %v; want the current %d, nil", lim.Cur/2, got, err, lim.Cur)
	}
}
