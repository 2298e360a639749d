package scripts

// The durable script log, Output.seqlog. One record per line:
//
//	<crc> SP <sequence> SP <source> SP <occurred> SP <text> LF
//
// crc is the CRC-32C of everything between "<crc> " and the LF, as 8 lowercase hex digits;
// sequence is decimal, starting at 1, one more than the previous record's; source is
// "stdout", "stderr" or "debug"; occurred is RFC 3339 UTC with nanoseconds; text is valid
// UTF-8 without CR or LF (output is split at line breaks before it gets here), possibly
// empty. Example:
//
//	5f0c2d41 1 debug 2026-01-02T03:04:05.123456789Z Executable directory is /bin
//
// The format is plain text so an operator can read it with cat or tail, and append-only so
// that a record's bytes never change once written. Only a record ended by LF with a good
// checksum and the expected sequence number counts. A reader stops quietly at an unfinished
// last record (the writer may be halfway through it, or died there); a finished record that
// does not check out is corruption, reported as upstream does with one synthetic StdErr line.
// A writer opening the log cuts it back to the last good record before appending, which is
// what makes a torn tail after a crash harmless.

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

var castagnoli = sync.OnceValue(func() *crc32.Table { return crc32.MakeTable(crc32.Castagnoli) })

// maxRecordBytes bounds one record when reading: the longest line a writer can produce
// (MaxLineLengthLimit bytes, grown up to 3x by replacing invalid UTF-8) plus the fields.
const maxRecordBytes = 3*MaxLineLengthLimit + 128

const logTimeLayout = time.RFC3339Nano

func sourceName(s Source) string {
	switch s {
	case StdErr:
		return "stderr"
	case Debug:
		return "debug"
	}
	return "stdout"
}

func parseSourceName(b []byte) (Source, bool) {
	switch string(b) {
	case "stdout":
		return StdOut, true
	case "stderr":
		return StdErr, true
	case "debug":
		return Debug, true
	}
	return 0, false
}

// sanitizeLogText makes text storable as one record: valid UTF-8 (invalid bytes become
// U+FFFD, as upstream's decoder does) and no line breaks.
func sanitizeLogText(text string) string {
	text = strings.ToValidUTF8(text, "\uFFFD")
	if strings.ContainsAny(text, "\r\n") {
		text = strings.NewReplacer("\r\n", " ", "\r", " ", "\n", " ").Replace(text)
	}
	return text
}

// appendRecord appends the encoded record to b.
func appendRecord(b []byte, seq int64, src Source, at time.Time, text string) []byte {
	start := len(b)
	b = append(b, "00000000 "...)
	body := len(b)
	b = strconv.AppendInt(b, seq, 10)
	b = append(b, ' ')
	b = append(b, sourceName(src)...)
	b = append(b, ' ')
	b = at.UTC().AppendFormat(b, logTimeLayout)
	b = append(b, ' ')
	b = append(b, sanitizeLogText(text)...)
	var crc [4]byte
	v := crc32.Checksum(b[body:], castagnoli())
	crc[0], crc[1], crc[2], crc[3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
	hex.Encode(b[start:start+8], crc[:])
	return append(b, '\n')
}

// parseRecord decodes one record (without its LF) that must carry sequence number want.
// Without withText it checks the record but leaves Text empty, which costs no allocation
// for a record the reader only passes over.
func parseRecord(line []byte, want int64, withText bool) (LogRecord, error) {
	if len(line) < 9 || line[8] != ' ' {
		return LogRecord{}, errors.New("record too short")
	}
	var crc [4]byte
	if _, err := hex.Decode(crc[:], line[:8]); err != nil {
		return LogRecord{}, errors.New("bad checksum field")
	}
	body := line[9:]
	got := uint32(crc[0])<<24 | uint32(crc[1])<<16 | uint32(crc[2])<<8 | uint32(crc[3])
	if crc32.Checksum(body, castagnoli()) != got {
		return LogRecord{}, errors.New("checksum mismatch")
	}
	fields := bytes.SplitN(body, []byte{' '}, 4)
	if len(fields) != 4 {
		return LogRecord{}, errors.New("missing fields")
	}
	seq, err := strconv.ParseInt(string(fields[0]), 10, 64)
	if err != nil || seq != want {
		return LogRecord{}, fmt.Errorf("sequence %q where %d was expected", fields[0], want)
	}
	src, ok := parseSourceName(fields[1])
	if !ok {
		return LogRecord{}, fmt.Errorf("unknown source %q", fields[1])
	}
	at, err := time.Parse(logTimeLayout, string(fields[2]))
	if err != nil {
		return LogRecord{}, fmt.Errorf("bad time %q", fields[2])
	}
	if !utf8.Valid(fields[3]) {
		return LogRecord{}, errors.New("text is not UTF-8")
	}
	rec := LogRecord{Sequence: seq, Source: src, Occurred: at.UTC()}
	if withText {
		rec.Text = string(fields[3])
	}
	return rec, nil
}

// logScanner reads records in order from a position known to start record nextSeq.
type logScanner struct {
	r       *bufio.Reader
	offset  int64 // of the next unread record
	nextSeq int64
	scratch []byte
}

type scanResult int

const (
	scanRecord  scanResult = iota
	scanEnd                // end of file or an unfinished last record
	scanCorrupt            // a finished record that does not check out
)

func newLogScanner(r io.Reader, offset, nextSeq int64) *logScanner {
	return &logScanner{r: bufio.NewReaderSize(r, 64<<10), offset: offset, nextSeq: nextSeq}
}

// next returns the next record, its Text only if withText; on scanCorrupt the error says
// what was wrong.
func (s *logScanner) next(withText bool) (LogRecord, scanResult, error) {
	line, finished, err := s.readLine()
	if err != nil {
		return LogRecord{}, scanEnd, err
	}
	if !finished {
		return LogRecord{}, scanEnd, nil
	}
	rec, perr := parseRecord(line[:len(line)-1], s.nextSeq, withText)
	if perr != nil {
		return LogRecord{}, scanCorrupt, perr
	}
	s.offset += int64(len(line))
	s.nextSeq++
	return rec, scanRecord, nil
}

// readLine returns the next line including its LF; finished is false when the data ends
// without one (or a line is longer than any record can be, which counts the same).
func (s *logScanner) readLine() (line []byte, finished bool, err error) {
	s.scratch = s.scratch[:0]
	for {
		chunk, err := s.r.ReadSlice('\n')
		switch {
		case err == nil:
			if len(s.scratch) == 0 {
				return chunk, true, nil
			}
			s.scratch = append(s.scratch, chunk...)
			return s.scratch, true, nil
		case errors.Is(err, bufio.ErrBufferFull):
			s.scratch = append(s.scratch, chunk...)
			if len(s.scratch) > maxRecordBytes {
				return nil, false, nil
			}
		case errors.Is(err, io.EOF):
			return nil, false, nil
		default:
			return nil, false, err
		}
	}
}

// logWriter appends records; only one may exist per log at a time (see the ownership rules
// in doc.go).
type logWriter struct {
	f        *os.File
	next     int64 // sequence number of the next record
	end      int64 // offset just past the last record written whole
	buf      []byte
	unsynced bool
}

// openLogWriter opens (creating if needed) the log at path for appending, after cutting
// off anything past the last good record.
func openLogWriter(path string) (*logWriter, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("cannot open script log: %w", err)
	}
	sc := newLogScanner(f, 0, 1)
	for {
		_, res, err := sc.next(false)
		if err != nil && res != scanCorrupt {
			f.Close()
			return nil, fmt.Errorf("cannot read script log %s: %w", path, err)
		}
		if res != scanRecord {
			break
		}
	}
	// Everything from sc.offset on is a torn or corrupt tail: no reader has reported it as
	// a record, so it can go.
	if st, err := f.Stat(); err == nil && st.Size() > sc.offset {
		if err := f.Truncate(sc.offset); err != nil {
			f.Close()
			return nil, fmt.Errorf("cannot repair script log %s: %w", path, err)
		}
	}
	if _, err := f.Seek(sc.offset, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("cannot open script log %s: %w", path, err)
	}
	return &logWriter{f: f, next: sc.nextSeq, end: sc.offset}, nil
}

// logLine is one line waiting to be appended.
type logLine struct {
	source Source
	at     time.Time
	text   string
}

// append writes the lines with one write call, so a crash tears at most the last record.
func (w *logWriter) append(lines ...logLine) error {
	w.buf = w.buf[:0]
	for i, l := range lines {
		w.buf = appendRecord(w.buf, w.next+int64(i), l.source, l.at, l.text)
	}
	if _, err := w.f.Write(w.buf); err != nil {
		// Part of the bytes may be on disk (a disk that filled up half-way): cut them off,
		// so that appending the same lines again, once there is space, writes the same
		// records at the same place. A reader never reported the torn record; records it
		// may have read whole come back byte for byte (same sequence, time and text).
		if terr := w.f.Truncate(w.end); terr == nil {
			_, _ = w.f.Seek(w.end, io.SeekStart)
		}
		return fmt.Errorf("cannot write script log: %w", err)
	}
	w.end += int64(len(w.buf))
	w.next += int64(len(lines))
	w.unsynced = true
	return nil
}

func (w *logWriter) sync() error {
	if !w.unsynced {
		return nil
	}
	if err := w.f.Sync(); err != nil {
		return fmt.Errorf("cannot sync script log: %w", err)
	}
	w.unsynced = false
	return nil
}

func (w *logWriter) close() error {
	err := w.sync()
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// appendLogLines opens the log, appends, syncs (as d says) and closes: for the agent's few
// lines before a supervisor exists and after one died.
func appendLogLines(path string, d durability, lines ...logLine) error {
	w, err := openLogWriter(path)
	if err != nil {
		return err
	}
	err = w.append(lines...)
	if err == nil && d == survivesPowerLoss {
		err = w.sync()
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// logIndex remembers where some records start, so paging through a long log does not
// re-read it from the beginning each time: one checkpoint every indexEveryRecords records
// or indexEveryBytes bytes, whichever comes first (a log of long lines needs the second).
// Offsets of good records never change, so any checkpoint stays true.
type logIndex struct {
	mu          sync.Mutex
	checkpoints []logCheckpoint // ascending
}

// logCheckpoint says that record seq starts at offset.
type logCheckpoint struct{ seq, offset int64 }

const (
	indexEveryRecords = 256
	indexEveryBytes   = 1 << 20
)

// seek returns where to start reading to find record after+1, and that record's number.
func (x *logIndex) seek(after int64) (offset, seq int64) {
	if x == nil {
		return 0, 1
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	i := sort.Search(len(x.checkpoints), func(i int) bool { return x.checkpoints[i].seq > after+1 })
	if i == 0 {
		return 0, 1
	}
	c := x.checkpoints[i-1]
	return c.offset, c.seq
}

// note is told where each record read starts.
func (x *logIndex) note(seq, offset int64) {
	if x == nil {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	last := logCheckpoint{seq: 1, offset: 0}
	if n := len(x.checkpoints); n > 0 {
		last = x.checkpoints[n-1]
	}
	if seq-last.seq >= indexEveryRecords || offset-last.offset >= indexEveryBytes {
		x.checkpoints = append(x.checkpoints, logCheckpoint{seq, offset})
	}
}

// logPage is the result of one read.
type logPage struct {
	records []LogRecord
	next    int64
	more    bool // stopped at a limit with records left
}

// pageLimit bounds one read: its records' wire cost (text plus LogRecordWireOverhead each)
// and their number. At least one record is returned whatever its size. A negative field
// means no bound (tests only).
type pageLimit struct {
	bytes   int
	records int
}

// readLog returns the records after sequence number after, up to limit. A missing log reads
// as empty. Its memory is the page it returns and a buffer of one record, however long the
// log.
func readLog(path string, index *logIndex, after int64, limit pageLimit) (logPage, error) {
	page := logPage{next: after}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return page, nil
	}
	if err != nil {
		return page, fmt.Errorf("cannot read script log: %w", err)
	}
	defer f.Close()
	offset, seq := index.seek(after)
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return page, fmt.Errorf("cannot read script log: %w", err)
	}
	sc := newLogScanner(f, offset, seq)
	size := 0
	for {
		start := sc.offset
		rec, res, err := sc.next(sc.nextSeq > after)
		switch res {
		case scanEnd:
			if err != nil {
				return page, fmt.Errorf("cannot read script log: %w", err)
			}
			return page, nil
		case scanCorrupt:
			// Upstream's wording; shown once, numbered where the bad record is.
			if sc.nextSeq > after {
				page.records = append(page.records, LogRecord{
					Sequence: sc.nextSeq,
					Source:   StdErr,
					Occurred: time.Now().UTC(),
					Text:     fmt.Sprintf("Corrupt Tentacle log at line %d, no more logs will be read", sc.nextSeq),
				})
				page.next = sc.nextSeq
			}
			return page, nil
		}
		index.note(rec.Sequence, start)
		if rec.Sequence <= after {
			continue
		}
		cost := len(rec.Text) + LogRecordWireOverhead
		full := limit.records >= 0 && len(page.records) >= limit.records ||
			limit.bytes >= 0 && len(page.records) > 0 && size+cost > limit.bytes
		if full {
			page.more = true
			return page, nil
		}
		size += cost
		page.records = append(page.records, rec)
		page.next = rec.Sequence
	}
}
