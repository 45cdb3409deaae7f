package tlog

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
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
// Open cuts it off. Anything else that does not read back is corruption.

const walHeaderSize = 16

var crcTable = crc32.MakeTable(crc32.Castagnoli)

type walRecord struct {
	index uint64
	data  []byte
}

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
func listWALSegments(dir string) ([]uint64, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reading write-ahead log folder: %w", err)
	}
	var starts []uint64
	for _, de := range des {
		name := de.Name()
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

// readWALSegment reads the records of one segment, calling fn for each. It
// returns the offset just past the last good record, and whether the file
// continues past it (a torn or damaged tail).
func readWALSegment(path string, start uint64, fn func(index uint64, data []byte) error) (good int64, torn bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	var h [walHeaderSize]byte
	next := start
	for {
		if _, err := io.ReadFull(r, h[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return good, false, nil
			}
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return good, true, nil
			}
			return good, false, err
		}
		n := binary.BigEndian.Uint32(h[0:])
		index := binary.BigEndian.Uint64(h[8:])
		if n > MaxEntrySize || index != next {
			return good, true, nil
		}
		data := make([]byte, n)
		if _, err := io.ReadFull(r, data); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return good, true, nil
			}
			return good, false, err
		}
		crc := crc32.Update(0, crcTable, h[8:16])
		if crc32.Update(crc, crcTable, data) != binary.BigEndian.Uint32(h[4:]) {
			return good, true, nil
		}
		if err := fn(index, data); err != nil {
			return good, false, err
		}
		good += walHeaderSize + int64(n)
		next++
	}
}

// walWriter appends records to the current segment.
type walWriter struct {
	dir   string
	start uint64 // first index of the current segment
	f     *os.File
	size  int64
	buf   []byte
}

func createWALSegment(dir string, start uint64) (*walWriter, error) {
	// O_EXCL: a segment is never truncated; it may hold the only copy of
	// acknowledged entries.
	f, err := os.OpenFile(filepath.Join(dir, walSegmentName(start)), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("creating write-ahead log segment: %w", err)
	}
	if err := syncDir(dir); err != nil {
		f.Close()
		return nil, err
	}
	return &walWriter{dir: dir, start: start, f: f}, nil
}

func openWALSegment(dir string, start uint64, size int64) (*walWriter, error) {
	f, err := os.OpenFile(filepath.Join(dir, walSegmentName(start)), os.O_WRONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("opening write-ahead log segment: %w", err)
	}
	if _, err := f.Seek(size, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	return &walWriter{dir: dir, start: start, f: f, size: size}, nil
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
	if err := fdatasync(w.f); err != nil {
		return fmt.Errorf("syncing write-ahead log: %w", err)
	}
	w.size += int64(len(w.buf))
	return nil
}

func (w *walWriter) close() error { return w.f.Close() }
