package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"syscall"
)

// heapProfileEnv names the file a running daemon writes a heap profile to on SIGUSR1. It is
// opt-in and local: only the daemon's own user can send it a signal and choose the path in
// its environment, so it needs no route and exposes nothing over HTTP. It is how the memory
// figures of the README (B8) are explained: `go tool pprof -sample_index=inuse_space`.
const heapProfileEnv = "MCPPROXY_HEAP_PROFILE"

// watchHeapProfile writes a heap profile to the file named by MCPPROXY_HEAP_PROFILE each
// time the daemon gets SIGUSR1 (and the text form with runtime.MemStats to <file>.txt),
// until ctx ends. Without the variable it does nothing and SIGUSR1 keeps its default action.
func watchHeapProfile(ctx context.Context, logger *slog.Logger) {
	path := os.Getenv(heapProfileEnv)
	if path == "" {
		return
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGUSR1)
	go func() {
		defer signal.Stop(sig)
		for {
			select {
			case <-ctx.Done():
				return
			case <-sig:
				if err := writeHeapProfile(path); err != nil {
					logger.Error("heap profile", "err", err)
					continue
				}
				logger.Warn("heap profile written", "path", path)
			}
		}
	}()
}

// writeHeapProfile collects first so the profile's in-use figures are the live heap now,
// and writes through a temporary file renamed into place, so a reader polling for the file
// never sees half of it.
func writeHeapProfile(path string) error {
	runtime.GC()
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if err := pprof.WriteHeapProfile(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	// The legacy text form ends with runtime.MemStats (heap in use, idle, released, stacks),
	// which say how much of the RSS the live heap explains.
	txt, err := os.Create(path + ".txt")
	if err != nil {
		return err
	}
	defer txt.Close()
	return pprof.Lookup("heap").WriteTo(txt, 1)
}
