package store

import (
	"io"
	"os"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// privateFS is the file system pebble writes the store through: pebble creates files 0666
// and dirs as asked, less the umask (so usually 0644 and 0755), and the store holds sessions,
// events and encrypted secrets, which are for the owner alone. Every file pebble creates or
// opens for writing is set to 0600 and every dir it makes is 0700, whatever the umask, so the
// doctor can expect nothing in the data dir to be open to other users. The rest is the
// wrapped file system's. A new file is 0644 between its open and the chmod (pebble's Create
// removes and recreates with 0666, so no mode can be set before it): harmless, because the
// store's dir is 0700, and the reason the test lets a file settle.
type privateFS struct{ vfs.FS }

var _ vfs.FS = privateFS{}

// private sets name to 0600 after a successful create. A failed chmod does not fail the
// write: the data dir is 0700 anyway, and the doctor reports the file.
func private(name string, err error) error {
	if err == nil {
		_ = os.Chmod(name, 0o600)
	}
	return err
}

func (p privateFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := p.FS.Create(name, c)
	return f, private(name, err)
}

func (p privateFS) OpenReadWrite(name string, c vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := p.FS.OpenReadWrite(name, c, opts...)
	return f, private(name, err)
}

func (p privateFS) ReuseForWrite(oldname, newname string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := p.FS.ReuseForWrite(oldname, newname, c)
	return f, private(newname, err)
}

func (p privateFS) Lock(name string) (io.Closer, error) {
	l, err := p.FS.Lock(name)
	return l, private(name, err)
}

func (p privateFS) MkdirAll(dir string, _ os.FileMode) error {
	return p.FS.MkdirAll(dir, 0o700)
}

// Unwrap is nil: privateFS is the root pebble should see, so that nothing unwraps past it
// to the default file system and creates files with its modes.
func (p privateFS) Unwrap() vfs.FS { return nil }
