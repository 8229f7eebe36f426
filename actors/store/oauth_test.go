package store

import (
	"errors"
	"sync"
	"testing"
)

// The OAuth records are cached in memory (oauthCache): every write must show on the next
// read, a missing record included, and a record stays the store's after Close.
func TestOAuthReadsSeeEveryWrite(t *testing.T) {
	s, _, _ := openSecrets(t)
	const key = "tok/srv"
	for range 2 { // the second read is answered from the cache
		if _, err := s.OAuth(key); !errors.Is(err, ErrNotFound) {
			t.Fatalf("OAuth before any write: err = %v, want ErrNotFound", err)
		}
	}
	for _, v := range []string{"one", "two"} {
		if err := s.SetOAuth(key, []byte(v)); err != nil {
			t.Fatalf("SetOAuth: %v", err)
		}
		for range 2 {
			got, err := s.OAuth(key)
			if err != nil || string(got) != v {
				t.Fatalf("OAuth after SetOAuth(%q) = %q, %v", v, got, err)
			}
			got[0] = 'X' // what a caller does with its copy is not the store's
		}
	}
	if err := s.DeleteOAuth(key); err != nil {
		t.Fatalf("DeleteOAuth: %v", err)
	}
	if _, err := s.OAuth(key); !errors.Is(err, ErrNotFound) {
		t.Fatalf("OAuth after DeleteOAuth: err = %v, want ErrNotFound", err)
	}
	if err := s.SetOAuth(key, []byte("three")); err != nil {
		t.Fatalf("SetOAuth: %v", err)
	}
	if got, err := s.OAuth(key); err != nil || string(got) != "three" {
		t.Fatalf("OAuth = %q, %v", got, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.OAuth(key); !errors.Is(err, ErrClosed) {
		t.Fatalf("OAuth after Close: err = %v, want ErrClosed", err)
	}
}

// A read racing with writes never leaves a stale record in the cache: once the writers
// are done, the last value written is what every read gets.
func TestOAuthCacheRacingWrites(t *testing.T) {
	s, _, _ := openSecrets(t)
	const key = "tok/srv"
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
					_, _ = s.OAuth(key)
				}
			}
		})
	}
	for i := range 50 {
		if err := s.SetOAuth(key, []byte{byte('a' + i%26)}); err != nil {
			t.Fatalf("SetOAuth: %v", err)
		}
	}
	close(stop)
	wg.Wait()
	want := string([]byte{byte('a' + 49%26)})
	if got, err := s.OAuth(key); err != nil || string(got) != want {
		t.Fatalf("OAuth after the writes = %q, %v; want %q", got, err, want)
	}
}
