package tlog

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"path"
	"sort"
	"strings"
	"sync"
)

// memFS is an in-memory FS that models what survives a crash: a file's
// data is durable only after a Sync of it, and a name created, replaced or
// removed only after a SyncDir of its folder (or a SyncAll). Crash drops
// the rest. Folders are durable once made (the log recreates the ones it
// needs). fault, if set, is called before every operation that changes
// something and may fail it.
//
// A Sync (or SyncAll) that fails leaves the data it did not make durable
// marked clean, as Linux does after an fsync fails with EIO: those bytes
// never reach the disk (a later Sync succeeds and keeps zeros there)
// unless they are written again; the bytes written after them are synced
// as any.
type memFS struct {
	mu      sync.Mutex
	files   map[string]*inode // the names as a reader sees them
	durable map[string]*inode // the names as they are after a crash
	dirs    map[string]bool
	fault   func(op, name string) error
}

type inode struct {
	data   []byte
	synced []byte   // the data that a crash keeps
	lost   [][2]int // byte ranges a failed Sync dropped: zeros on disk
}

// failSync records what a failed Sync of ino dropped: the data it had not
// made durable.
func (ino *inode) failSync() {
	from := len(ino.synced)
	if !bytes.HasPrefix(ino.data, ino.synced) {
		from = 0
	}
	if from < len(ino.data) {
		ino.lost = append(ino.lost, [2]int{from, len(ino.data)})
	}
}

// sync makes ino's data durable but for the bytes a failed Sync dropped.
func (ino *inode) sync() {
	ino.synced = bytes.Clone(ino.data)
	for _, r := range ino.lost {
		clear(ino.synced[min(r[0], len(ino.synced)):min(r[1], len(ino.synced))])
	}
}

// written takes the bytes from off to end out of the lost ranges: they
// are dirty again.
func (ino *inode) written(off, end int) {
	var kept [][2]int
	for _, r := range ino.lost {
		if r[0] < off {
			kept = append(kept, [2]int{r[0], min(r[1], off)})
		}
		if r[1] > end {
			kept = append(kept, [2]int{max(r[0], end), r[1]})
		}
	}
	ino.lost = kept
}

var errCrashed = errors.New("memfs: the machine is down")

func newMemFS() *memFS {
	return &memFS{files: map[string]*inode{}, durable: map[string]*inode{}, dirs: map[string]bool{".": true}}
}

// check runs the fault hook; the caller holds mu.
func (m *memFS) check(op, name string) error {
	if m.fault != nil {
		if err := m.fault(op, name); err != nil {
			return &fs.PathError{Op: op, Path: name, Err: err}
		}
	}
	return nil
}

func notExist(op, name string) error { return &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist} }

func (m *memFS) addDirs(dir string) {
	for ; dir != "." && dir != "/" && !m.dirs[dir]; dir = path.Dir(dir) {
		m.dirs[dir] = true
	}
}

func (m *memFS) ReadFile(name string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check("read", name); err != nil {
		return nil, err
	}
	ino, ok := m.files[name]
	if !ok {
		return nil, notExist("read", name)
	}
	return bytes.Clone(ino.data), nil
}

type memReader struct{ *bytes.Reader }

func (memReader) Close() error { return nil }

func (m *memFS) Open(name string) (io.ReadSeekCloser, error) {
	data, err := m.ReadFile(name)
	if err != nil {
		return nil, err
	}
	return memReader{bytes.NewReader(data)}, nil
}

func (m *memFS) WriteFile(name string, data []byte, sync bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check("write", name); err != nil {
		return err
	}
	m.addDirs(path.Dir(name))
	ino := &inode{data: bytes.Clone(data)}
	if sync {
		ino.synced = bytes.Clone(data)
	}
	m.files[name] = ino // the rename
	if sync {
		m.syncDir(path.Dir(name))
	}
	return nil
}

type memFile struct {
	m   *memFS
	ino *inode
	off int64
	nm  string
}

func (m *memFS) Append(name string, create bool, size int64) (AppendFile, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check("open", name); err != nil {
		return nil, err
	}
	ino, ok := m.files[name]
	switch {
	case create && ok:
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrExist}
	case create:
		if !m.dirs[path.Dir(name)] {
			return nil, notExist("open", name)
		}
		ino = &inode{}
		m.files[name] = ino
	case !ok:
		return nil, notExist("open", name)
	}
	return &memFile{m: m, ino: ino, off: size, nm: name}, nil
}

func (f *memFile) Write(p []byte) (int, error) {
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	if err := f.m.check("write", f.nm); err != nil {
		return 0, err
	}
	f.ino.written(int(f.off), int(f.off)+len(p))
	if int64(len(f.ino.data)) < f.off {
		f.ino.data = append(f.ino.data, make([]byte, f.off-int64(len(f.ino.data)))...)
	}
	f.ino.data = append(f.ino.data[:f.off], p...)
	f.off += int64(len(p))
	return len(p), nil
}

func (f *memFile) Sync() error {
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	if err := f.m.check("sync", f.nm); err != nil {
		f.ino.failSync()
		return err
	}
	f.ino.sync()
	return nil
}

func (f *memFile) Close() error { return nil }

func (m *memFS) ReadDir(name string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check("readdir", name); err != nil {
		return nil, err
	}
	if !m.dirs[name] {
		return nil, notExist("readdir", name)
	}
	seen := map[string]bool{}
	for n := range m.files {
		if path.Dir(n) == name {
			seen[path.Base(n)] = true
		}
	}
	for d := range m.dirs {
		if d != name && path.Dir(d) == name {
			seen[path.Base(d)] = true
		}
	}
	var names []string
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}

func (m *memFS) Exists(name string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check("stat", name); err != nil {
		return false, err
	}
	_, ok := m.files[name]
	return ok || m.dirs[name], nil
}

func (m *memFS) Remove(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check("remove", name); err != nil {
		return err
	}
	if _, ok := m.files[name]; !ok {
		return notExist("remove", name)
	}
	delete(m.files, name)
	return nil
}

func (m *memFS) RemoveAll(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check("removeall", name); err != nil {
		return err
	}
	for n := range m.files {
		if n == name || strings.HasPrefix(n, name+"/") {
			delete(m.files, n)
		}
	}
	for d := range m.dirs {
		if d == name || strings.HasPrefix(d, name+"/") {
			delete(m.dirs, d)
		}
	}
	return nil
}

func (m *memFS) Truncate(name string, size int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check("truncate", name); err != nil {
		return err
	}
	ino, ok := m.files[name]
	if !ok {
		return notExist("truncate", name)
	}
	if int64(len(ino.data)) > size {
		ino.data = ino.data[:size:size]
	}
	return nil
}

func (m *memFS) MkdirAll(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check("mkdir", name); err != nil {
		return err
	}
	m.addDirs(name)
	return nil
}

func (m *memFS) SyncDir(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check("syncdir", name); err != nil {
		return err
	}
	if !m.dirs[name] {
		return notExist("syncdir", name)
	}
	m.syncDir(name)
	return nil
}

func (m *memFS) syncDir(name string) {
	for n := range m.durable {
		if path.Dir(n) == name {
			if _, ok := m.files[n]; !ok {
				delete(m.durable, n)
			}
		}
	}
	for n, ino := range m.files {
		if path.Dir(n) == name {
			m.durable[n] = ino
		}
	}
}

func (m *memFS) SyncAll() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check("syncall", "."); err != nil {
		for _, ino := range m.files {
			ino.failSync()
		}
		return err
	}
	m.durable = make(map[string]*inode, len(m.files))
	for n, ino := range m.files {
		ino.sync()
		m.durable[n] = ino
	}
	return nil
}

// Crash drops what was not made durable and clears the fault hook. With
// rng set, a file whose unsynced data extends its synced data keeps a
// random part of the extension (the pages that happened to reach the
// disk), as a torn write does.
func (m *memFS) Crash(rng *rand.Rand) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fault = nil
	files := make(map[string]*inode, len(m.durable))
	for n, ino := range m.durable {
		data := bytes.Clone(ino.synced)
		if rng != nil && len(ino.data) > len(ino.synced) && bytes.HasPrefix(ino.data, ino.synced) {
			data = bytes.Clone(ino.data[:len(ino.synced)+rng.IntN(len(ino.data)-len(ino.synced)+1)])
		}
		files[n] = &inode{data: data, synced: bytes.Clone(data)}
	}
	m.files = files
	m.durable = make(map[string]*inode, len(files))
	for n, ino := range files {
		m.durable[n] = ino
	}
}

// Clone returns a copy of the FS as a reader sees it, all durable.
func (m *memFS) Clone() *memFS {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := newMemFS()
	for n, ino := range m.files {
		d := &inode{data: bytes.Clone(ino.data), synced: bytes.Clone(ino.data)}
		c.files[n], c.durable[n] = d, d
	}
	for d := range m.dirs {
		c.dirs[d] = true
	}
	return c
}
