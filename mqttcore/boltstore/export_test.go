package boltstore

// Crash stops s as a killed process would leave it: every call queued is
// committed to the log, but nothing more is applied to the bbolt file and
// the log is left as it is.
func Crash(s *Store) error { return s.close(false) }
