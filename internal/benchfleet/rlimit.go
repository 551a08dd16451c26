package benchfleet

import (
	"fmt"
	"syscall"
)

// RaiseNoFile raises the soft RLIMIT_NOFILE to at least want open files,
// raising the hard limit too when it is lower (which needs CAP_SYS_RESOURCE
// and is bounded by /proc/sys/fs/nr_open). It returns the soft limit in
// force afterwards; when want cannot be reached the error says which limit
// stopped it, and the limit is left as high as it could go.
func RaiseNoFile(want uint64) (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("raise open-files limit: getrlimit: %w", err)
	}
	if lim.Cur >= want {
		return lim.Cur, nil
	}
	if lim.Max < want {
		up := syscall.Rlimit{Cur: want, Max: want}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &up); err == nil {
			return want, nil
		}
		// Not privileged (or above nr_open): go as high as the hard limit allows.
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return 0, fmt.Errorf("raise open-files limit to hard limit %d: setrlimit: %w", lim.Max, err)
		}
		return lim.Cur, fmt.Errorf("raise open-files limit to %d: hard limit is %d and cannot be raised (needs CAP_SYS_RESOURCE, and at most /proc/sys/fs/nr_open)", want, lim.Max)
	}
	lim.Cur = want
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("raise open-files limit to %d: setrlimit: %w", want, err)
	}
	return want, nil
}
