package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/gannet-mqtt/gannet/mqttcore/auth"
)

// passwd adds, replaces or deletes one user in a password file, in the
// format Mosquitto's password_file uses ($7$ PBKDF2-SHA512, see
// auth.HashPassword), so the file works with Gannet and with Mosquitto.
//
//	gannet passwd [-c] FILE USERNAME   read the password from stdin and set it
//	gannet passwd -D FILE USERNAME     delete the user
//
// The password is the first line of standard input (without its line
// ending); it is never taken from the command line, where other users of
// the machine could see it. Other lines of the file, comments included, are
// kept as they are. The file is replaced atomically (written beside it, then
// renamed) and keeps its permissions; a new file gets 0600. gannet serve
// reads it at start (and on SIGHUP where that is wired).
func passwd(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fl := flagSet("passwd", stderr)
	create := fl.Bool("c", false, "create the file, replacing an existing one")
	del := fl.Bool("D", false, "delete the user instead of setting a password")
	fl.Usage = func() {
		fmt.Fprint(fl.Output(), "usage: gannet passwd [-c | -D] FILE USERNAME  (password: first line of stdin)\n")
		fl.PrintDefaults()
	}
	if err := fl.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fl.NArg() != 2 {
		fl.Usage()
		return errUsage
	}
	if *create && *del {
		fmt.Fprintln(fl.Output(), "gannet passwd: -c and -D exclude each other")
		return errUsage
	}
	path, user := fl.Arg(0), fl.Arg(1)
	if err := checkUsername(user); err != nil {
		return fmt.Errorf("passwd: %w", err)
	}

	var old []byte
	mode := fs.FileMode(0o600)
	if !*create {
		var err error
		if old, err = os.ReadFile(path); err != nil {
			return fmt.Errorf("passwd: read %s: %w (use -c to create it)", path, err)
		}
		if st, err := os.Stat(path); err == nil {
			mode = st.Mode().Perm()
		}
	}

	var entry string
	if !*del {
		password, err := readPassword(stdin)
		if err != nil {
			return fmt.Errorf("passwd: %w", err)
		}
		h, err := auth.HashPassword(password, auth.PBKDF2SHA512)
		if err != nil {
			return fmt.Errorf("passwd: %w", err)
		}
		entry = user + ":" + h
	}
	out, found := replaceEntry(old, user, entry)
	if *del && !found {
		return fmt.Errorf("passwd: user %q not in %s", user, path)
	}
	if err := writeFileAtomic(path, out, mode); err != nil {
		return fmt.Errorf("passwd: %w", err)
	}
	switch {
	case *del:
		fmt.Fprintf(stdout, "%s: deleted %s\n", path, user)
	case found:
		fmt.Fprintf(stdout, "%s: updated %s\n", path, user)
	default:
		fmt.Fprintf(stdout, "%s: added %s\n", path, user)
	}
	return nil
}

// checkUsername refuses a username the password file cannot hold: empty, or
// containing ':' (the separator) or a line break, or with surrounding
// spaces (trimmed when the file is read).
func checkUsername(u string) error {
	switch {
	case u == "":
		return errors.New("empty username")
	case strings.ContainsAny(u, ":\r\n"):
		return fmt.Errorf("username %q contains ':' or a line break", u)
	case strings.TrimSpace(u) != u || u[0] == '#':
		return fmt.Errorf("username %q starts or ends with white space or starts with '#'", u)
	}
	return nil
}

// readPassword reads the first line of r, without its line ending.
func readPassword(r io.Reader) ([]byte, error) {
	line, err := bufio.NewReader(r).ReadBytes('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read password from stdin: %w", err)
	}
	line = bytes.TrimSuffix(line, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	if len(line) == 0 {
		return nil, errors.New("empty password on stdin (give it as the first line)")
	}
	return line, nil
}

// replaceEntry returns file with user's line replaced by entry (removed if
// entry is ""), or entry appended if user has no line, and whether user had
// one. Other lines are kept byte for byte.
func replaceEntry(file []byte, user, entry string) ([]byte, bool) {
	var out bytes.Buffer
	found := false
	for rest := file; len(rest) > 0; {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i+1], rest[i+1:]
		} else {
			rest = nil
		}
		text := strings.TrimSpace(string(line))
		if u, _, ok := strings.Cut(text, ":"); ok && text[0] != '#' && u == user {
			if !found && entry != "" {
				out.WriteString(entry + "\n")
			}
			found = true
			continue
		}
		out.Write(line)
		if line[len(line)-1] != '\n' {
			out.WriteByte('\n')
		}
	}
	if !found && entry != "" {
		out.WriteString(entry + "\n")
	}
	return out.Bytes(), found
}

// writeFileAtomic writes data to a new file beside path and renames it over
// path, so a reader (gannet serve reloading) sees the old or the new file,
// never half of one.
func writeFileAtomic(path string, data []byte, mode fs.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(mode)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
