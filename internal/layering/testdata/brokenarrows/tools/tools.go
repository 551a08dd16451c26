// Package tools has no rule.
package tools
