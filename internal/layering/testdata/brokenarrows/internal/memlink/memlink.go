// Package memlink stands for a test helper.
package memlink

// X is something to import.
const X = 1
