package radio

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pion/logging"
)

// pionLogs sends pion/dtls's logs to slog at Debug: what pion reports is
// almost always a peer's doing (bad records, failed handshakes), which the
// link counts; it is not worth Warn on a link anyone can send to.
type pionLogs struct{ log *slog.Logger }

// NewLogger implements logging.LoggerFactory.
func (p pionLogs) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{p.log.With("component", "pion/"+scope)}
}

type pionLogger struct{ log *slog.Logger }

func (p pionLogger) logf(format string, args ...any) {
	if p.log.Enabled(context.Background(), slog.LevelDebug) {
		p.log.Debug(fmt.Sprintf(format, args...))
	}
}

// The methods below implement logging.LeveledLogger; all but Trace log at
// Debug, and only when Debug is enabled.

func (p pionLogger) Trace(string)                      {}
func (p pionLogger) Tracef(string, ...any)             {}
func (p pionLogger) Debug(msg string)                  { p.logf("%s", msg) }
func (p pionLogger) Debugf(format string, args ...any) { p.logf(format, args...) }
func (p pionLogger) Info(msg string)                   { p.logf("%s", msg) }
func (p pionLogger) Infof(format string, args ...any)  { p.logf(format, args...) }
func (p pionLogger) Warn(msg string)                   { p.logf("%s", msg) }
func (p pionLogger) Warnf(format string, args ...any)  { p.logf(format, args...) }
func (p pionLogger) Error(msg string)                  { p.logf("%s", msg) }
func (p pionLogger) Errorf(format string, args ...any) { p.logf(format, args...) }
