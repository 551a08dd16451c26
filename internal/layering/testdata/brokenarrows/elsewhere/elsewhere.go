// Package elsewhere stands for a third-party package.
package elsewhere

// X is something to import.
const X = 1
