// Package safefile reads and writes files that hopcheck cannot trust:
// scenario files a user names, records in a shared state directory, and
// report files in directories others may write. It reads only regular
// files, within a size limit, in chunks that a cancelled context ends, and
// never blocks opening a FIFO; it writes a new file beside the target and
// renames it into place, so a symbolic link planted at the target is
// replaced, never followed.
package safefile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrNotRegular is returned for a path that is not a regular file: a
// device, a FIFO, a socket or a directory.
var ErrNotRegular = errors.New("not a regular file")

// ErrTooLarge is returned for a file over the size limit.
var ErrTooLarge = errors.New("file too large")

// ErrUntrusted is returned for a file or directory that someone other than
// root and this user could have written.
var ErrUntrusted = errors.New("not safe to trust")

// ErrSymlink is returned by a read that must not follow a symbolic link.
var ErrSymlink = errors.New("is a symbolic link")

// readChunk is how much is read between two looks at the context.
const readChunk = 64 << 10

// ReadOptions say what Read accepts.
type ReadOptions struct {
	// MaxSize is the largest file accepted, in bytes; it must be > 0.
	MaxSize int64
	// NoFollow refuses a symbolic link as the last element of the path.
	NoFollow bool
	// Trusted requires the file to be owned by root or this process's
	// user and not writable by group or others.
	Trusted bool
}

// Read returns the contents of the regular file at path. It refuses
// anything else before opening it (a FIFO is never opened, a device never
// read), refuses a file larger than opt.MaxSize, and stops when ctx is
// done. Errors are *fs.PathError; errors.Is finds ErrNotRegular,
// ErrTooLarge, ErrUntrusted and ErrSymlink.
func Read(ctx context.Context, path string, opt ReadOptions) ([]byte, error) {
	if opt.MaxSize <= 0 {
		return nil, &fs.PathError{Op: "read", Path: path, Err: errors.New("safefile: no size limit")}
	}
	var before unix.Stat_t
	stat := unix.Stat
	if opt.NoFollow {
		stat = unix.Lstat
	}
	if err := stat(path, &before); err != nil {
		return nil, &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	if err := check(&before, opt); err != nil {
		return nil, &fs.PathError{Op: "read", Path: path, Err: err}
	}
	// O_NONBLOCK: should the path have become a FIFO since the stat, the
	// open returns at once instead of waiting for a writer.
	flags := unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NONBLOCK | unix.O_NOCTTY
	if opt.NoFollow {
		flags |= unix.O_NOFOLLOW
	}
	fd, err := openRetry(path, flags, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) && opt.NoFollow {
			err = ErrSymlink
		}
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	if st.Dev != before.Dev || st.Ino != before.Ino {
		return nil, &fs.PathError{Op: "read", Path: path, Err: errors.New("the file changed while it was opened")}
	}
	if err := check(&st, opt); err != nil {
		return nil, &fs.PathError{Op: "read", Path: path, Err: err}
	}
	var out []byte
	r := io.LimitReader(f, opt.MaxSize+1)
	buf := make([]byte, readChunk)
	for {
		if err := ctx.Err(); err != nil {
			return nil, &fs.PathError{Op: "read", Path: path, Err: context.Cause(ctx)}
		}
		n, err := r.Read(buf)
		out = append(out, buf[:n]...)
		if int64(len(out)) > opt.MaxSize {
			return nil, &fs.PathError{Op: "read", Path: path, Err: tooLarge(int64(len(out)), opt.MaxSize, true)}
		}
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, &fs.PathError{Op: "read", Path: path, Err: err}
		}
	}
}

func openRetry(path string, flags int, perm uint32) (int, error) {
	for {
		fd, err := unix.Open(path, flags, perm)
		if !errors.Is(err, unix.EINTR) {
			return fd, err
		}
	}
}

// check applies opt to a file's status.
func check(st *unix.Stat_t, opt ReadOptions) error {
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
	case unix.S_IFLNK:
		return ErrSymlink
	default:
		return fmt.Errorf("%w (it is %s)", ErrNotRegular, Kind(st.Mode))
	}
	if st.Size > opt.MaxSize {
		return tooLarge(st.Size, opt.MaxSize, false)
	}
	if opt.Trusted {
		if err := trusted(st); err != nil {
			return err
		}
	}
	return nil
}

func tooLarge(size, limit int64, atLeast bool) error {
	more := ""
	if atLeast {
		more = "more than "
	}
	return fmt.Errorf("%w: %s%d bytes; the limit is %s", ErrTooLarge, more, size, FormatSize(limit))
}

// FormatSize writes a size limit for people: 4 MiB, 64 KiB, 100 bytes.
func FormatSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// trusted checks that st belongs to root or this process's user and that
// nobody else may write it.
func trusted(st *unix.Stat_t) error {
	if uid := uint32(os.Geteuid()); st.Uid != 0 && st.Uid != uid {
		return fmt.Errorf("%w: owned by uid %d, neither root nor this user", ErrUntrusted, st.Uid)
	}
	if st.Mode&0o022 != 0 {
		return fmt.Errorf("%w: writable by group or others (mode %04o)", ErrUntrusted, st.Mode&0o7777)
	}
	return nil
}

// CheckDir checks that path is a directory that only root or this
// process's user can write, so that what it holds can be trusted. It
// follows a symbolic link to the directory. A missing directory is
// returned as an error that errors.Is finds fs.ErrNotExist in.
func CheckDir(path string) error {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return &fs.PathError{Op: "check", Path: path, Err: fmt.Errorf("not a directory (it is %s)", Kind(st.Mode))}
	}
	if err := trusted(&st); err != nil {
		return &fs.PathError{Op: "check", Path: path, Err: err}
	}
	return nil
}

// Kind names the file type in mode (a stat mode) for messages.
func Kind(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return "a regular file"
	case unix.S_IFDIR:
		return "a directory"
	case unix.S_IFCHR:
		return "a character device"
	case unix.S_IFBLK:
		return "a block device"
	case unix.S_IFIFO:
		return "a FIFO"
	case unix.S_IFSOCK:
		return "a socket"
	case unix.S_IFLNK:
		return "a symbolic link"
	}
	return "of an unknown type"
}

// File is a file written whole or not at all: its data goes to a new
// temporary file in the target's directory, created exclusively (so a
// planted name or symbolic link is never opened), and Commit renames it
// onto the target. A symbolic link at the target is replaced, not followed.
type File struct {
	f    *os.File
	path string
	done bool
}

// Create starts writing the file at path with permissions perm. It fails
// at once when the directory cannot be written or path is a directory.
func Create(path string, perm os.FileMode) (*File, error) {
	if fi, err := os.Lstat(path); err == nil && fi.IsDir() {
		return nil, &fs.PathError{Op: "create", Path: path, Err: errors.New("is a directory")}
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	// CreateTemp opens with O_CREAT|O_EXCL: a name that exists, a symbolic
	// link included, is never opened.
	f, err := os.CreateTemp(dir, "."+strings.TrimPrefix(base, ".")+".*.tmp")
	if err != nil {
		return nil, &fs.PathError{Op: "create", Path: path, Err: unwrapPath(err)}
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, &fs.PathError{Op: "create", Path: path, Err: unwrapPath(err)}
	}
	return &File{f: f, path: path}, nil
}

func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Name returns the path the file will have once committed.
func (w *File) Name() string { return w.path }

// Write writes to the temporary file.
func (w *File) Write(p []byte) (int, error) { return w.f.Write(p) }

// Commit closes the temporary file and renames it onto the target.
func (w *File) Commit() error {
	if w.done {
		return &fs.PathError{Op: "commit", Path: w.path, Err: os.ErrClosed}
	}
	w.done = true
	tmp := w.f.Name()
	if err := w.f.Close(); err != nil {
		os.Remove(tmp)
		return &fs.PathError{Op: "write", Path: w.path, Err: unwrapPath(err)}
	}
	if err := os.Rename(tmp, w.path); err != nil {
		os.Remove(tmp)
		return &fs.PathError{Op: "write", Path: w.path, Err: unwrapPath(err)}
	}
	return nil
}

// Abort removes the temporary file; the target is left as it was. After
// Commit it does nothing.
func (w *File) Abort() {
	if w.done {
		return
	}
	w.done = true
	w.f.Close()
	os.Remove(w.f.Name())
}

// WriteFile writes data to path as Create and Commit do.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	w, err := Create(path, perm)
	if err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		w.Abort()
		return &fs.PathError{Op: "write", Path: path, Err: unwrapPath(err)}
	}
	return w.Commit()
}

// Staging is a private directory inside a shared one, where a producer
// that creates files by name (os.Create) can write safely; Commit moves
// every regular file it holds into the shared directory by rename, which
// replaces a symbolic link planted there instead of writing through it.
type Staging struct {
	// Dir is the private directory to write into.
	Dir   string
	final string
}

// NewStaging makes a staging directory inside dir, which must exist and
// be a directory.
func NewStaging(dir string) (*Staging, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, &fs.PathError{Op: "stage", Path: dir, Err: errors.New("not a directory")}
	}
	d, err := os.MkdirTemp(dir, ".hopcheck-*")
	if err != nil {
		return nil, err
	}
	return &Staging{Dir: d, final: dir}, nil
}

// Commit moves the regular files of the staging directory into the shared
// one and removes the staging directory.
func (s *Staging) Commit() error {
	ents, err := os.ReadDir(s.Dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		if err := os.Rename(filepath.Join(s.Dir, e.Name()), filepath.Join(s.final, e.Name())); err != nil {
			errs = append(errs, err)
		}
	}
	if err := os.RemoveAll(s.Dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Abort removes the staging directory and what it holds.
func (s *Staging) Abort() error { return os.RemoveAll(s.Dir) }

// Same reports whether a and b name the same file: the same cleaned
// absolute path, or, when both exist, the same inode (a link to it).
func Same(a, b string) bool {
	aa, err1 := filepath.Abs(a)
	bb, err2 := filepath.Abs(b)
	if err1 == nil && err2 == nil && aa == bb {
		return true
	}
	fa, err1 := os.Stat(a)
	fb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(fa, fb)
}
