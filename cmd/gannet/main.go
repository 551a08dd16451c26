// Command gannet is the Gannet MQTT-SN gateway.
//
//	gannet serve [-config FILE]            run the gateway and its broker
//	gannet pub -topic TOPIC -message MSG   publish as an MQTT-SN sensor would
//	gannet sub -topic FILTER               subscribe as an MQTT-SN sensor and print
//	gannet check-config [-config FILE]     load and validate a configuration
//	gannet reload [-config FILE]           make a running gateway reread its configuration
//	gannet backup [-config FILE] -o FILE   a consistent copy of the store, gateway running or not
//	gannet passwd [-c | -D] FILE USER      set (password on stdin) or delete a user
//	gannet version                         print the version
//	gannet help COMMAND                    a command's usage and flags
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/gannet-mqtt/gannet/internal/config"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

const usage = `usage: gannet COMMAND [flags]

commands:
  serve          run the gateway and its embedded broker
  pub            publish to an MQTT-SN gateway, as a sensor would
  sub            subscribe at an MQTT-SN gateway and print what arrives
  bench          simulate a sensor fleet against a gateway and report throughput and latency
  check-config   load and validate a configuration file
  reload         make a running gateway reread its configuration
  backup         write a consistent copy of the store (sessions, queues, retained), running or not
  passwd         add, change or delete a user in a password file (Mosquitto's $7$ format)
  version        print the version
  help COMMAND   a command's usage and flags
`

// run executes one command and returns the process exit code: 0 success,
// 1 failure, 2 bad usage.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = serve(ctx, args[1:], stderr)
	case "pub":
		err = pub(ctx, args[1:], stdin, stderr)
	case "sub":
		err = sub(ctx, args[1:], stdout, stderr)
	case "bench":
		err = bench(ctx, args[1:], stdout, stderr)
	case "check-config":
		err = checkConfig(args[1:], stdout, stderr)
	case "reload":
		err = reloadCmd(ctx, args[1:], stdout, stderr)
	case "backup":
		err = backupCmd(ctx, args[1:], stdout, stderr) // backup.go
	case "passwd":
		err = passwd(args[1:], stdin, stdout, stderr) // passwd.go
	case "version":
		fmt.Fprintln(stdout, "gannet", version())
	case "help":
		return help(ctx, args[1:], stdout)
	case "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "gannet: unknown command %q\n%s", args[0], usage)
		return 2
	}
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		reportUsage(stderr, args[0], err)
		return 2
	case err != nil:
		fmt.Fprintln(stderr, "gannet:", err)
		return 1
	}
	return 0
}

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

func loadConfig(path string) (*fileConfig, error) {
	var cfg fileConfig
	if err := config.LoadFile(path, &cfg); err != nil {
		return nil, err
	}
	if len(cfg.Listen) == 0 {
		return nil, fmt.Errorf("%s: no [[listen]] section: the gateway would serve nothing", path)
	}
	return &cfg, nil
}

// configFlag defines -config and its short form -c.
func configFlag(fs *flag.FlagSet) *string {
	path := fs.String("config", "config.toml", "configuration `file`")
	alias(fs, "config", "c")
	return path
}
