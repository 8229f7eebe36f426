package store

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2"
)

// openSecrets opens a store with secrets; the key file sits next to the db.
func openSecrets(t *testing.T) (s *Store, dir, keyFile string) {
	t.Helper()
	s, dir = openStore(t, Options{})
	keyFile = filepath.Join(filepath.Dir(dir), "secrets.key")
	if err := s.OpenSecrets(keyFile); err != nil {
		t.Fatalf("OpenSecrets: %v", err)
	}
	return s, dir, keyFile
}

func TestSecretsRoundTrip(t *testing.T) {
	s, _, _ := openSecrets(t)
	values := map[string]string{
		"GITHUB_TOKEN": "ghp_abcdef123456",
		"empty":        "",
		"unicode":      "pässwörd ✓",
		"binaryish":    "a\x00b\xffc",
	}
	for name, v := range values {
		if _, err := s.SetSecret(name, v); err != nil {
			t.Fatalf("SetSecret(%q): %v", name, err)
		}
	}
	for name, want := range values {
		t.Run(name, func(t *testing.T) {
			got, err := s.SecretValue(name)
			if err != nil || got != want {
				t.Errorf("SecretValue = %q, %v; want %q", got, err, want)
			}
		})
	}
}

func TestSecretMetadata(t *testing.T) {
	s, _, _ := openSecrets(t)
	first, err := s.SetSecret("b", "1")
	if err != nil {
		t.Fatal(err)
	}
	if first.Name != "b" || first.CreatedAt.IsZero() || !first.CreatedAt.Equal(first.UpdatedAt) {
		t.Errorf("new secret meta = %+v", first)
	}
	second, err := s.SetSecret("b", "2")
	if err != nil {
		t.Fatal(err)
	}
	if !second.CreatedAt.Equal(first.CreatedAt) || second.UpdatedAt.Before(first.UpdatedAt) {
		t.Errorf("updated meta = %+v, first %+v: CreatedAt must stay, UpdatedAt must not go back", second, first)
	}
	if v, _ := s.SecretValue("b"); v != "2" {
		t.Errorf("value after update = %q, want 2", v)
	}
	got, err := s.Secret("b")
	if err != nil || !got.CreatedAt.Equal(second.CreatedAt) || !got.UpdatedAt.Equal(second.UpdatedAt) {
		t.Errorf("Secret = %+v, %v; want %+v", got, err, second)
	}
	for _, name := range []string{"c", "a"} {
		if _, err := s.SetSecret(name, "v"); err != nil {
			t.Fatal(err)
		}
	}
	list, err := s.ListSecrets()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range list {
		names = append(names, m.Name)
	}
	if want := []string{"a", "b", "c"}; !reflect.DeepEqual(names, want) {
		t.Errorf("ListSecrets names = %v, want %v", names, want)
	}
}

func TestSecretNotFoundAndDelete(t *testing.T) {
	s, _, _ := openSecrets(t)
	if _, err := s.SetSecret("x", "v"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteSecret("x"); err != nil {
		t.Fatalf("DeleteSecret: %v", err)
	}
	checks := map[string]error{"DeleteSecret again": s.DeleteSecret("x")}
	_, checks["SecretValue"] = s.SecretValue("x")
	_, checks["Secret"] = s.Secret("x")
	for name, err := range checks {
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: err = %v, want ErrNotFound", name, err)
		}
	}
	if list, err := s.ListSecrets(); err != nil || len(list) != 0 {
		t.Errorf("ListSecrets = %v, %v; want empty", list, err)
	}
	if _, err := s.SetSecret("", "v"); err == nil {
		t.Error("SetSecret with an empty name succeeded")
	}
}

func TestSecretsNeedKey(t *testing.T) {
	s, _ := openStore(t, Options{})
	if _, err := s.SetSecret("x", "v"); !errors.Is(err, ErrSecretsNotOpen) {
		t.Errorf("SetSecret before OpenSecrets: err = %v, want ErrSecretsNotOpen", err)
	}
	if _, err := s.SecretValue("x"); !errors.Is(err, ErrSecretsNotOpen) {
		t.Errorf("SecretValue before OpenSecrets: err = %v, want ErrSecretsNotOpen", err)
	}
}

func TestKeyFile(t *testing.T) {
	_, _, keyFile := openSecrets(t)
	info, err := os.Stat(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if got := info.Mode().Perm(); got != 0o600 {
		t.Errorf("key file mode = %o, want 600", got)
	}
	key, err := readKey(keyFile)
	if err != nil || len(key) != secretKeySize {
		t.Fatalf("readKey = %d bytes, %v", len(key), err)
	}
	again, err := loadOrCreateKey(keyFile)
	if err != nil || !bytes.Equal(again, key) {
		t.Errorf("loading an existing key file changed the key (err %v)", err)
	}
	leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(keyFile), ".secrets-key-*"))
	if len(leftovers) != 0 {
		t.Errorf("temporary key files left behind: %v", leftovers)
	}
}

func TestKeyFileFormats(t *testing.T) {
	raw := bytes.Repeat([]byte{0xab}, secretKeySize)
	tests := []struct {
		name    string
		content []byte
		ok      bool
	}{
		{"hex with newline", []byte(hex.EncodeToString(raw) + "\n"), true},
		{"raw bytes", raw, true},
		{"empty", nil, false},
		{"short hex", []byte("abcd"), false},
		{"bad hex", bytes.Repeat([]byte("zz"), secretKeySize), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "key")
			if err := os.WriteFile(f, tt.content, 0o600); err != nil {
				t.Fatal(err)
			}
			key, err := readKey(f)
			if tt.ok && (err != nil || !bytes.Equal(key, raw)) {
				t.Errorf("readKey = %x, %v; want %x", key, err, raw)
			}
			if !tt.ok && err == nil {
				t.Errorf("readKey accepted %q", tt.content)
			}
		})
	}
}

// TestKeyFileCreatedOnce checks that concurrent creators agree on one key.
func TestKeyFileCreatedOnce(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "sub", "secrets.key")
	const n = 8
	keys := make([][]byte, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			keys[i], errs[i] = loadOrCreateKey(keyFile)
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("creator %d: %v", i, errs[i])
		}
		if !bytes.Equal(keys[i], keys[0]) {
			t.Fatalf("creator %d got a different key", i)
		}
	}
	onDisk, err := readKey(keyFile)
	if err != nil || !bytes.Equal(onDisk, keys[0]) {
		t.Errorf("key on disk differs from the key returned (err %v)", err)
	}
}

func TestSecretPlaintextNeverStored(t *testing.T) {
	s, _, _ := openSecrets(t)
	plain := map[string]string{
		"API_KEY":    "sk-live-plaintext-marker-0123456789",
		"PASSWORD":   "hunter2-plaintext-marker",
		"SAME_TWICE": "sk-live-plaintext-marker-0123456789",
	}
	for name, v := range plain {
		if _, err := s.SetSecret(name, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	err := scanPrefix(s.db, "", func(key, value []byte) error {
		for _, v := range plain {
			for _, form := range []string{v, base64.StdEncoding.EncodeToString([]byte(v)), hex.EncodeToString([]byte(v))} {
				if bytes.Contains(value, []byte(form)) || bytes.Contains(key, []byte(form)) {
					t.Errorf("key %q holds the plaintext %q", key, form)
				}
			}
		}
		if bytes.HasPrefix(key, []byte(prefixSecret)) {
			var rec secretRecord
			if err := json.Unmarshal(value, &rec); err != nil {
				t.Errorf("secret %q: %v", key, err)
			}
			seen[string(rec.Nonce)] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != len(plain) {
		t.Errorf("%d distinct nonces for %d secrets; each needs a fresh one", len(seen), len(plain))
	}
}

func TestSecretWithDifferentKeyFailsCleanly(t *testing.T) {
	s, dir, keyFile := openSecrets(t)
	if _, err := s.SetSecret("TOKEN", "value"); err != nil {
		t.Fatal(err)
	}
	s = reopen(t, s, dir, Options{})
	// Replace the key file, as a user restoring the wrong backup would.
	if err := os.Remove(keyFile); err != nil {
		t.Fatal(err)
	}
	if err := s.OpenSecrets(keyFile); err != nil {
		t.Fatalf("OpenSecrets with a new key: %v", err)
	}
	v, err := s.SecretValue("TOKEN")
	if !errors.Is(err, ErrWrongKey) {
		t.Errorf("SecretValue with another key = %q, %v; want ErrWrongKey", v, err)
	}
	if v != "" {
		t.Errorf("SecretValue returned %q with the wrong key", v)
	}
	// Metadata stays readable and the secret can be set again.
	if _, err := s.Secret("TOKEN"); err != nil {
		t.Errorf("Secret: %v", err)
	}
	if _, err := s.SetSecret("TOKEN", "new"); err != nil {
		t.Fatal(err)
	}
	if v, err := s.SecretValue("TOKEN"); err != nil || v != "new" {
		t.Errorf("after setting again: %q, %v", v, err)
	}
}

// TestSecretTampering checks that records altered in the database fail
// authentication instead of decrypting to something else.
func TestSecretTampering(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(t *testing.T, s *Store)
	}{
		{"ciphertext swapped between names", func(t *testing.T, s *Store) {
			other, err := get(s.db, []byte(prefixSecret+"B"))
			if err != nil {
				t.Fatal(err)
			}
			if err := s.db.Set([]byte(prefixSecret+"A"), other, pebble.Sync); err != nil {
				t.Fatal(err)
			}
		}},
		{"ciphertext bit flipped", func(t *testing.T, s *Store) {
			rec, err := getSecretRecord(s.db, "A")
			if err != nil {
				t.Fatal(err)
			}
			rec.Ciphertext[0] ^= 1
			putRecord(t, s, "A", rec)
		}},
		{"nonce truncated", func(t *testing.T, s *Store) {
			rec, err := getSecretRecord(s.db, "A")
			if err != nil {
				t.Fatal(err)
			}
			rec.Nonce = rec.Nonce[:4]
			putRecord(t, s, "A", rec)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _, _ := openSecrets(t)
			for name, v := range map[string]string{"A": "alpha", "B": "bravo"} {
				if _, err := s.SetSecret(name, v); err != nil {
					t.Fatal(err)
				}
			}
			tt.mutate(t, s)
			v, err := s.SecretValue("A")
			if !errors.Is(err, ErrSecretCorrupt) || v != "" {
				t.Errorf("SecretValue = %q, %v; want ErrSecretCorrupt", v, err)
			}
		})
	}
}

func putRecord(t *testing.T, s *Store, name string, rec secretRecord) {
	t.Helper()
	v, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.db.Set([]byte(prefixSecret+name), v, pebble.Sync); err != nil {
		t.Fatal(err)
	}
}
