package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
)

// maxTightened bounds the walk of privateDataDir, so that a data dir someone filled with a
// huge tree cannot stall the start; what is left is the doctor's to report.
const maxTightened = 100_000

// privateDataDir makes dir (which exists) private before anything is written into it: it
// holds the config with the API key, the secrets key and the store. A dir open to other
// users (mode wider than 0700) is tightened to 0700 with a warning; one that cannot be
// tightened, because another user owns it say, is refused with the reason and the fix:
// carrying on would leave the secrets where others can read them. Files and dirs inside
// that others may use (left by an older version or copied in) are tightened too; those that
// cannot be (another user's) are only counted in a warning, and the doctor names them. No log
// line names a file.
func privateDataDir(dir string, logger *slog.Logger) error {
	info, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	if !info.IsDir() {
		return fmt.Errorf("data dir %s is not a directory", dir)
	}
	if mode := info.Mode().Perm(); mode&0o077 != 0 {
		if err := os.Chmod(dir, 0o700); err != nil {
			owner := ""
			if st, ok := info.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Getuid() {
				owner = fmt.Sprintf(" and belongs to uid %d, not to this user (uid %d)", st.Uid, os.Getuid())
			}
			return fmt.Errorf("data dir %s has mode %04o%s: other users could read the API key and the secrets it holds, "+
				"and it cannot be made private (%v); run `chmod 700 %s` as its owner, or choose another --data-dir",
				dir, mode, owner, errors.Unwrap(err), dir)
		}
		logger.Warn("data dir was open to other users; made it private", "data_dir", dir,
			"mode", fmt.Sprintf("%04o", mode), "now", "0700")
	}
	tightened, others, seen := 0, 0, 0
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == dir {
			return nil // unreadable entries are the doctor's to report
		}
		if seen++; seen > maxTightened {
			return filepath.SkipAll
		}
		if !d.Type().IsRegular() && !d.IsDir() {
			return nil // a symlink's mode is not its target's; sockets are set when made
		}
		fi, err := d.Info()
		if err != nil || fi.Mode().Perm()&0o077 == 0 {
			return nil
		}
		if os.Chmod(path, fi.Mode().Perm()&^0o077) == nil {
			tightened++
		} else {
			others++
		}
		return nil
	})
	if tightened > 0 {
		logger.Warn("files in the data dir were open to other users; made them private", "files", tightened)
	}
	if others > 0 {
		logger.Warn("files in the data dir are open to other users and could not be made private; see `mcpproxy doctor`", "files", others)
	}
	return nil
}
