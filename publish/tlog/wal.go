package tlog

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"path"
	"sort"
	"strconv"
	"strings"
)

// The write-ahead log makes appends durable before they are integrated into
// tiles. It is a folder of segments, each named by the index of its first
// record. A record is:
//
//	u32 length | u32 CRC-32C of index and data | u64 index | data
//
// all big-endian. Only the tail of the last segment can be torn (a record
// that was being written when the process died was never acknowledged), and
// Open cuts it off, but only when no valid record follows the bad one and
// no published entry lies beyond it. Anything else that does not read back
// is damage: Open stops and names the segment and the offset.
//
// A power cut can, rarely, leave a later page of the last batch (never
// acknowledged) on disk without an earlier one. Open cannot tell this from
// damage and stops too: it will not guess, since the other reading loses
// acknowledged entries.

const walHeaderSize = 16

var crcTable = crc32.MakeTable(crc32.Castagnoli)

func appendWALRecord(buf []byte, index uint64, data []byte) []byte {
	var h [walHeaderSize]byte
	binary.BigEndian.PutUint32(h[0:], uint32(len(data)))
	binary.BigEndian.PutUint64(h[8:], index)
	crc := crc32.Update(0, crcTable, h[8:16])
	crc = crc32.Update(crc, crcTable, data)
	binary.BigEndian.PutUint32(h[4:], crc)
	return append(append(buf, h[:]...), data...)
}

func walSegmentName(start uint64) string { return fmt.Sprintf("%020d.wal", start) }

// listWALSegments returns the segments in dir, ordered by first index.
func listWALSegments(fsys FS, dir string) ([]uint64, error) {
	names, err := fsys.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reading write-ahead log folder: %w", err)
	}
	var starts []uint64
	for _, name := range names {
		if strings.HasPrefix(name, ".") {
			continue
		}
		num, ok := strings.CutSuffix(name, ".wal")
		start, err := strconv.ParseUint(num, 10, 64)
		if !ok || err != nil || walSegmentName(start) != name {
			return nil, fmt.Errorf("write-ahead log folder %s holds an unknown file %q: move it away", dir, name)
		}
		starts = append(starts, start)
	}
	sort.Slice(starts, func(i, j int) bool { return starts[i] < starts[j] })
	return starts, nil
}

// walDamage describes the first record of a segment that does not read
// back: where it is, which index it should hold, and the first valid
// record that follows it, if any.
type walDamage struct {
	offset    int64  // where the bad record starts
	index     uint64 // the index it should hold
	nextValid int64  // offset of a valid record after it, or -1
	nextIndex uint64 // that record's index
}

// readWALSegment reads the records of one segment, calling fn for each. It
// returns the offset just past the last good record and, if the file
// continues past it, what follows (a torn tail, or damage when a valid
// record follows). It never writes.
func readWALSegment(fsys FS, path string, start uint64, fn func(index uint64, data []byte) error) (good int64, bad *walDamage, err error) {
	f, err := fsys.Open(path)
	if err != nil {
		return 0, nil, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	var h [walHeaderSize]byte
	next := start
	data := make([]byte, 0, 4096)
	for {
		if _, err := io.ReadFull(r, h[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return good, nil, nil
			}
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				return good, nil, err
			}
			break
		}
		n := binary.BigEndian.Uint32(h[0:])
		index := binary.BigEndian.Uint64(h[8:])
		if n > MaxEntrySize || index != next {
			break
		}
		if cap(data) < int(n) {
			data = make([]byte, n)
		}
		data = data[:n]
		if _, err := io.ReadFull(r, data); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				break
			}
			return good, nil, err
		}
		crc := crc32.Update(0, crcTable, h[8:16])
		if crc32.Update(crc, crcTable, data) != binary.BigEndian.Uint32(h[4:]) {
			break
		}
		// fn may keep the entry: give it its own copy.
		if err := fn(index, bytes.Clone(data)); err != nil {
			return good, nil, err
		}
		good += walHeaderSize + int64(n)
		next++
	}
	// The record at good did not read back. Read the rest of the file
	// afresh: a writer appending to the segment (a read-only open runs
	// beside one) may have completed the record since.
	if _, err := f.Seek(good, io.SeekStart); err != nil {
		return good, nil, err
	}
	rest, err := io.ReadAll(f)
	if err != nil {
		return good, nil, err
	}
	for len(rest) > 0 {
		n, data, ok := parseWALRecord(rest, next)
		if !ok {
			break
		}
		if err := fn(next, bytes.Clone(data)); err != nil {
			return good, nil, err
		}
		good += int64(n)
		next++
		rest = rest[n:]
	}
	if len(rest) == 0 {
		return good, nil, nil
	}
	// Look for a valid record after the bad one: if there is one, this is
	// not a torn tail.
	bad = &walDamage{offset: good, index: next, nextValid: -1}
	if len(rest) < 2 {
		return good, bad, nil
	}
	if off, idx, ok := findWALRecord(rest[1:], next); ok {
		bad.nextValid, bad.nextIndex = good+1+int64(off), idx
	}
	return good, bad, nil
}

// parseWALRecord parses the record at the start of b, which must hold
// index want, and returns its length and data.
func parseWALRecord(b []byte, want uint64) (int, []byte, bool) {
	if len(b) < walHeaderSize {
		return 0, nil, false
	}
	n := binary.BigEndian.Uint32(b[0:])
	if n > MaxEntrySize || binary.BigEndian.Uint64(b[8:]) != want || len(b) < walHeaderSize+int(n) {
		return 0, nil, false
	}
	crc := crc32.Update(0, crcTable, b[8:16])
	if crc32.Update(crc, crcTable, b[walHeaderSize:walHeaderSize+int(n)]) != binary.BigEndian.Uint32(b[4:]) {
		return 0, nil, false
	}
	return walHeaderSize + int(n), b[walHeaderSize : walHeaderSize+int(n)], true
}

// findWALRecord returns the offset of the first complete record in b with
// a valid checksum and an index of at least min.
func findWALRecord(b []byte, min uint64) (int, uint64, bool) {
	for off := 0; off+walHeaderSize <= len(b); off++ {
		n := binary.BigEndian.Uint32(b[off:])
		index := binary.BigEndian.Uint64(b[off+8:])
		if n > MaxEntrySize || index < min || off+walHeaderSize+int(n) > len(b) {
			continue
		}
		crc := crc32.Update(0, crcTable, b[off+8:off+16])
		crc = crc32.Update(crc, crcTable, b[off+walHeaderSize:off+walHeaderSize+int(n)])
		if crc == binary.BigEndian.Uint32(b[off+4:]) {
			return off, index, true
		}
	}
	return 0, 0, false
}

// walWriter appends records to the current segment.
type walWriter struct {
	fsys  FS
	dir   string
	start uint64 // first index of the current segment
	f     AppendFile
	size  int64
	buf   []byte
}

func createWALSegment(fsys FS, dir string, start uint64) (*walWriter, error) {
	f, err := fsys.Append(path.Join(dir, walSegmentName(start)), true, 0)
	if err != nil {
		return nil, fmt.Errorf("creating write-ahead log segment: %w", err)
	}
	if err := fsys.SyncDir(dir); err != nil {
		f.Close()
		return nil, err
	}
	return &walWriter{fsys: fsys, dir: dir, start: start, f: f}, nil
}

func openWALSegment(fsys FS, dir string, start uint64, size int64) (*walWriter, error) {
	f, err := fsys.Append(path.Join(dir, walSegmentName(start)), false, size)
	if err != nil {
		return nil, fmt.Errorf("opening write-ahead log segment: %w", err)
	}
	return &walWriter{fsys: fsys, dir: dir, start: start, f: f, size: size}, nil
}

// write appends records and makes them durable with one fsync.
func (w *walWriter) write(first uint64, entries [][]byte) error {
	w.buf = w.buf[:0]
	for i, e := range entries {
		w.buf = appendWALRecord(w.buf, first+uint64(i), e)
	}
	if _, err := w.f.Write(w.buf); err != nil {
		return fmt.Errorf("writing write-ahead log: %w", err)
	}
	if err := w.f.Sync(); err != nil {
		return fmt.Errorf("syncing write-ahead log: %w", err)
	}
	w.size += int64(len(w.buf))
	return nil
}

func (w *walWriter) close() error { return w.f.Close() }
