package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// errUsage marks a usage error: run prints the error's text, the command's
// usage line and where to find its flags, and exits 2. Wrap it with %w
// after a message saying what is wrong; bare, it means the message was
// already printed (the flag package's own errors).
var errUsage = errors.New("usage")

// synopses are the commands' usage lines, printed with a usage error and by
// "gannet help CMD". A command without one gets "gannet CMD [flags]".
var synopses = map[string]string{
	"serve":        "gannet serve [-config FILE]",
	"pub":          "gannet pub (-topic NAME | -topic-id ID | -short-topic XY) (-message TEXT | -lines | -null) [flags]",
	"sub":          "gannet sub (-topic FILTER | -topic-id ID | -short-topic XY) [flags]",
	"bench":        "gannet bench SCENARIO [flags]   (gannet help bench lists the scenarios)",
	"check-config": "gannet check-config [-config FILE]",
	"reload":       "gannet reload [-config FILE | -url URL] [-user USER]",
	"backup":       "gannet backup [-config FILE] [-url URL] [-user USER] -o FILE",
	"version":      "gannet version",
}

func synopsis(cmd string) string {
	if s, ok := synopses[cmd]; ok {
		return s
	}
	return "gannet " + cmd + " [flags]"
}

// reportUsage prints a usage error of command cmd to w.
func reportUsage(w io.Writer, cmd string, err error) {
	if err == errUsage {
		return // the flag package printed the error and the flags
	}
	fmt.Fprintf(w, "gannet %s: %s\n", cmd, strings.TrimSuffix(err.Error(), ": "+errUsage.Error()))
	fmt.Fprintf(w, "usage: %s\nRun \"gannet help %s\" for the flags.\n", synopsis(cmd), cmd)
}

// help runs "gannet help [CMD [SCENARIO]]": the command's usage line and
// flags on stdout.
func help(ctx context.Context, args []string, stdout io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stdout, usage)
		return 0
	}
	cmd := args[0]
	switch cmd {
	case "help":
		fmt.Fprint(stdout, usage)
		return 0
	case "version":
		fmt.Fprintf(stdout, "usage: %s\n", synopsis(cmd))
		return 0
	}
	// The command prints its flags on -h; send them to stdout. An
	// unknown command gets run's own "unknown command" and exit 2; a
	// command without a synopsis gets "gannet CMD [flags]".
	return run(ctx, append(append([]string{cmd}, args[1:]...), "-h"), nil, stdout, stdout)
}

// flagSet returns a FlagSet for a command that reports its own errors and
// prints the command's usage line before its flags. Flags whose usage
// starts with "internal:" are not listed.
func flagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("gannet "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cmd, _, _ := strings.Cut(name, " ")
	fs.Usage = func() {
		w := fs.Output()
		if cmd == name {
			fmt.Fprintf(w, "usage: %s\n\nflags:\n", synopsis(cmd))
		} else {
			fmt.Fprintf(w, "usage: gannet %s [flags]\n\nflags:\n", name)
		}
		printFlags(w, fs, func(f *flag.Flag) bool { return !strings.HasPrefix(f.Usage, "internal:") })
	}
	return fs
}

// printFlags prints the flags of fs that keep accepts, as
// flag.PrintDefaults does, with each flag's other spellings (see alias)
// beside it rather than on lines of their own.
func printFlags(w io.Writer, fs *flag.FlagSet, keep func(*flag.Flag) bool) {
	others := map[string][]string{}
	fs.VisitAll(func(f *flag.Flag) {
		if name, ok := strings.CutPrefix(f.Usage, aliasUsage); ok {
			others[name] = append(others[name], "-"+f.Name)
		}
	})
	var b strings.Builder
	fs.VisitAll(func(f *flag.Flag) {
		if !keep(f) || strings.HasPrefix(f.Usage, aliasUsage) {
			return
		}
		name, use := flag.UnquoteUsage(f)
		fmt.Fprintf(&b, "  -%s", f.Name)
		if name != "" {
			fmt.Fprintf(&b, " %s", name)
		}
		if o := others[f.Name]; len(o) > 0 {
			fmt.Fprintf(&b, "   (or %s)", strings.Join(o, ", "))
		}
		b.WriteString("\n    \t")
		b.WriteString(strings.ReplaceAll(use, "\n", "\n    \t"))
		switch {
		case f.DefValue == "" || f.DefValue == "0" || f.DefValue == "false" || f.DefValue == "0s":
		case fmt.Sprintf("%T", f.Value) == "*flag.stringValue":
			fmt.Fprintf(&b, " (default %q)", f.DefValue)
		default:
			fmt.Fprintf(&b, " (default %s)", f.DefValue)
		}
		b.WriteByte('\n')
	})
	_, _ = io.WriteString(w, b.String())
}

// aliasUsage starts the usage of a flag that alias defined.
const aliasUsage = "same as -"

// alias makes old another name of the flag called name, so that an earlier
// spelling keeps working.
func alias(fs *flag.FlagSet, name, old string) {
	fs.Var(fs.Lookup(name).Value, old, aliasUsage+name)
}

// parse parses a command's flags; a bad flag or a stray argument is a
// usage error (already printed).
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q: %w", fs.Arg(0), errUsage)
	}
	return nil
}
