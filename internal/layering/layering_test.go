package layering

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// rule is what one of the module's packages may import in its non-test
// files. Paths are relative to the module; "x/..." matches the packages
// below x (not x itself).
type rule struct {
	pkg string
	// may lists the module's packages it may import.
	may []string
	// stdOnly: nothing from outside the module but the standard library.
	stdOnly bool
	// testOnly: a test helper, which only _test.go files (and other test
	// helpers) may import.
	testOnly bool
}

// rules are DEVELOPERS.md's arrows: cmd -> {gateway, radio, snclient,
// mqttcore}; gateway -> {snpacket, mqttcore}; snclient -> snpacket; radio
// parses nothing; mqttcore knows nothing of MQTT-SN and imports only the
// standard library (its subpackages may import more); snpacket imports only
// the standard library. Every package of the module must have a rule, so a
// new package is a decision, not an accident.
var rules = []rule{
	{pkg: "snpacket", stdOnly: true},
	{pkg: "snpacket/...", may: []string{"snpacket", "snpacket/..."}, stdOnly: true},
	{pkg: "mqttcore", stdOnly: true},
	{pkg: "mqttcore/...", may: []string{"mqttcore", "mqttcore/..."}},
	{pkg: "gateway", may: []string{"snpacket", "mqttcore"}},
	{pkg: "snclient", may: []string{"snpacket"}, stdOnly: true},
	{pkg: "radio"},
	{pkg: "cmd/...", may: []string{"gateway", "radio", "snclient", "mqttcore", "mqttcore/...",
		"internal/config", "internal/benchfleet", "internal/procstat"}},
	// cmd's helpers: the config decoder, and the bench fleet, a load
	// generator that writes MQTT-SN frames itself.
	{pkg: "internal/config"},
	{pkg: "internal/benchfleet", may: []string{"snclient", "snpacket", "internal/mqttsub", "internal/procstat"}},
	// The measuring MQTT subscriber's connection, shared by the bench fleet
	// and the bridge's benchmarks: MQTT 5 only, nothing of MQTT-SN.
	{pkg: "internal/mqttsub", stdOnly: true},
	// What /proc says of a process (CPU time, memory): for the bench fleet,
	// `gannet bench` and the bridge's benchmarks.
	{pkg: "internal/procstat", stdOnly: true},
	// Test helpers.
	{pkg: "internal/sntest", may: []string{"gateway", "mqttcore", "mqttcore/...", "snclient", "snpacket", "internal/outside"}, testOnly: true},
	{pkg: "internal/memlink", testOnly: true},
	{pkg: "internal/lossy", may: []string{"internal/memlink"}, testOnly: true},
	{pkg: "internal/outside", testOnly: true},
	{pkg: "internal/layering", testOnly: true},
}

// mqttsn are the packages that speak MQTT-SN: mqttcore's tests may not
// import them either.
var mqttsn = []string{"snpacket", "snclient", "gateway", "radio", "internal/sntest", "internal/benchfleet"}

func matches(pattern, pkg string) bool {
	if sub, ok := strings.CutSuffix(pattern, "/..."); ok {
		return strings.HasPrefix(pkg, sub+"/")
	}
	return pattern == pkg
}

func matchesAny(patterns []string, pkg string) bool {
	return slices.ContainsFunc(patterns, func(p string) bool { return matches(p, pkg) })
}

func ruleFor(pkg string) (rule, bool) {
	for _, r := range rules {
		if matches(r.pkg, pkg) {
			return r, true
		}
	}
	return rule{}, false
}

// listed is the part of `go list -json` output the check reads.
type listed struct {
	ImportPath   string
	Standard     bool
	Module       *struct{ Path string }
	Imports      []string
	TestImports  []string
	XTestImports []string
	Error        *struct{ Err string }
}

// goList returns the packages of the module in dir and everything they
// depend on, by import path, and the module's path.
func goList(t *testing.T, dir string) (map[string]*listed, string) {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	run := func(args ...string) []byte {
		cmd := exec.Command(goTool, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOWORK=off")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go %s in %s: %v\n%s", strings.Join(args, " "), dir, err, stderr.Bytes())
		}
		return out
	}
	mod := strings.TrimSpace(string(run("list", "-m")))
	pkgs := map[string]*listed{}
	dec := json.NewDecoder(bytes.NewReader(run("list", "-deps", "-json", "./...")))
	for {
		p := &listed{}
		if err := dec.Decode(p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		if p.Error != nil {
			t.Fatalf("go list: %s: %s", p.ImportPath, p.Error.Err)
		}
		pkgs[p.ImportPath] = p
	}
	return pkgs, mod
}

// check returns every import in the module at dir that breaks a rule.
func check(t *testing.T, dir string) []string {
	pkgs, mod := goList(t, dir)
	inModule := func(path string) (string, bool) {
		if path == mod {
			return ".", true
		}
		return strings.CutPrefix(path, mod+"/")
	}
	std := func(path string) bool {
		if p, ok := pkgs[path]; ok {
			return p.Standard
		}
		first, _, _ := strings.Cut(path, "/")
		return !strings.Contains(first, ".") // only tests import it: go list did not load it
	}
	var broken []string
	for path, p := range pkgs {
		pkg, ok := inModule(path)
		if !ok || p.Module == nil || p.Module.Path != mod {
			continue
		}
		r, ok := ruleFor(pkg)
		if !ok {
			broken = append(broken, fmt.Sprintf("%s: no rule; add it to DEVELOPERS.md and this test", pkg))
			continue
		}
		for _, imp := range p.Imports {
			if dep, ok := inModule(imp); ok {
				dr, _ := ruleFor(dep)
				switch {
				case dr.testOnly && !r.testOnly:
					broken = append(broken, fmt.Sprintf("%s -> %s: a test helper, for _test.go files only", pkg, dep))
				case !dr.testOnly && !matchesAny(r.may, dep):
					broken = append(broken, fmt.Sprintf("%s -> %s", pkg, dep))
				}
				continue
			}
			if r.stdOnly && !std(imp) {
				broken = append(broken, fmt.Sprintf("%s -> %s: the standard library only", pkg, imp))
			}
		}
		if pkg == "mqttcore" || matches("mqttcore/...", pkg) {
			for _, imp := range slices.Concat(p.TestImports, p.XTestImports) {
				if dep, ok := inModule(imp); ok && matchesAny(mqttsn, dep) {
					broken = append(broken, fmt.Sprintf("%s (tests) -> %s: mqttcore knows nothing of MQTT-SN", pkg, dep))
				}
			}
		}
	}
	slices.Sort(broken)
	return broken
}

// TestImportArrows holds the module to DEVELOPERS.md's import arrows.
func TestImportArrows(t *testing.T) {
	if broken := check(t, filepath.Join("..", "..")); len(broken) > 0 {
		t.Errorf("imports against DEVELOPERS.md's arrows:\n\t%s", strings.Join(broken, "\n\t"))
	}
}

// TestImportArrowsCatchBreaks runs the check on a fixture module that
// breaks one arrow of each kind.
func TestImportArrowsCatchBreaks(t *testing.T) {
	got := check(t, filepath.Join("testdata", "brokenarrows"))
	want := []string{
		"cmd/gannet -> snpacket",
		"gateway -> internal/memlink: a test helper, for _test.go files only",
		"mqttcore (tests) -> snpacket: mqttcore knows nothing of MQTT-SN",
		"mqttcore -> snpacket",
		"radio -> snpacket",
		"snpacket -> example.com/elsewhere: the standard library only",
		"tools: no rule; add it to DEVELOPERS.md and this test",
	}
	if !slices.Equal(got, want) {
		t.Errorf("check(brokenarrows) =\n\t%s\nwant\n\t%s", strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
}
