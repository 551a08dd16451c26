package listener

import (
	"net/http"
	"testing"
)

// TestOriginChecker keeps the browser-origin rules the listener had with
// coder/websocket: no Origin, the listener's own host, or a pattern
// matching the origin's host (or scheme://host for a pattern with "://").
func TestOriginChecker(t *testing.T) {
	tests := []struct {
		patterns []string
		origin   string
		ok       bool
	}{
		{nil, "", true},
		{nil, "http://box.local:8080", true}, // same host as the request
		{nil, "HTTP://BOX.LOCAL:8080", true},
		{nil, "http://evil.example", false},
		{[]string{"*.example.com"}, "https://app.example.com", true},
		{[]string{"*.example.com"}, "https://example.org", false},
		{[]string{"https://app.example.com"}, "https://app.example.com", true},
		{[]string{"https://app.example.com"}, "http://app.example.com", false},
		{nil, "://bad", false},
	}
	for _, tt := range tests {
		r, err := http.NewRequest(http.MethodGet, "http://box.local:8080/mqtt", nil)
		if err != nil {
			t.Fatal(err)
		}
		if tt.origin != "" {
			r.Header.Set("Origin", tt.origin)
		}
		if got := originChecker(tt.patterns)(r); got != tt.ok {
			t.Errorf("origin %q with patterns %q: allowed = %v; want %v", tt.origin, tt.patterns, got, tt.ok)
		}
	}
}
