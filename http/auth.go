package http

import "crypto/subtle"

// keysEqual compares a presented key with the configured one in constant time. An empty
// configured key matches nothing.
func keysEqual(got, want string) bool {
	if want == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}
