package store

import (
	"bytes"
	"errors"
	"testing"

	"github.com/cockroachdb/pebble/v2"
)

// TestConfigPending: the pending config write round-trips, is replaced by the next, is
// sealed at rest (the config holds the API key), survives a reopen, and is gone once
// cleared; without the secrets key it is refused.
func TestConfigPending(t *testing.T) {
	s, dir, keyFile := openSecrets(t)
	if _, err := s.ConfigPending(); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ConfigPending before any write: %v, want ErrNotFound", err)
	}
	first, second := []byte(`{"api_key":"first-secret-key"}`), []byte(`{"api_key":"second-secret-key"}`)
	for _, v := range [][]byte{first, second} {
		if err := s.SetConfigPending(v); err != nil {
			t.Fatal(err)
		}
		if got, err := s.ConfigPending(); err != nil || !bytes.Equal(got, v) {
			t.Fatalf("ConfigPending = %q, %v; want %q", got, err, v)
		}
	}
	if err := s.read(func(db *pebble.DB) error {
		raw, err := get(db, []byte(keyConfigPending))
		if err == nil && bytes.Contains(raw, []byte("second-secret-key")) {
			t.Error("the pending config write is stored in the clear")
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	s = reopen(t, s, dir, Options{})
	if got, err := s.ConfigPending(); !errors.Is(err, ErrSecretsNotOpen) {
		t.Fatalf("ConfigPending without the secrets key = %q, %v", got, err)
	}
	if err := s.OpenSecrets(keyFile); err != nil {
		t.Fatal(err)
	}
	if got, err := s.ConfigPending(); err != nil || !bytes.Equal(got, second) {
		t.Fatalf("ConfigPending after reopen = %q, %v", got, err)
	}
	if err := s.ClearConfigPending(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ConfigPending(); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ConfigPending after clear: %v, want ErrNotFound", err)
	}
}
