// Package layering holds the test that keeps the module's import arrows
// (DEVELOPERS.md, "Imports point one way") true: it reads the import graph
// with `go list -deps -json` and checks every package against its rule. It
// has no code of its own; its testdata holds a fixture module that breaks
// the arrows, so the test can be seen to catch a break.
package layering
