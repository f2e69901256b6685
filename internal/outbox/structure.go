package outbox

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
)

// This file checks the page structure of a bbolt file (format version 2,
// as bbolt v1.5.0 writes it) by reading the file itself, before bbolt is
// let near its trees. bbolt's cursors and its own Tx.Check follow branch
// pointers without remembering where they have been: a page that points at
// itself or at an ancestor makes them loop for ever, and a cursor's stack
// grows on each lap (bbolt issues #877 and #1257). checkStructure visits
// every page reachable from the meta page at most once, so it runs in time
// and memory bounded by the file size, and stops at the first page that
// is not what a bbolt tree can contain.

// Offsets and flags of bbolt's on-disk format (internal/common in bbolt).
const (
	pageHeaderSize   = 16 // id u64, flags u16, count u16, overflow u32
	pageElementSize  = 16 // branch: pos u32, ksize u32, pgid u64; leaf: flags u32, pos u32, ksize u32, vsize u32
	bucketHeaderSize = 16 // root pgid u64, sequence u64; an inline page follows when root is 0

	branchPageFlag   = 0x01
	leafPageFlag     = 0x02
	metaPageFlag     = 0x04
	freelistPageFlag = 0x10
	bucketLeafFlag   = 0x01

	boltMagic      = 0xED0CDAED
	boltVersion    = 2
	noFreelist     = ^uint64(0)
	metaSumLen     = 56 // bytes of the meta covered by its checksum
	minPageSize    = 1024
	maxPageSize    = 1 << 24 // the largest page size bbolt looks for
	countOverflows = 0xFFFF  // a freelist count this high is stored in the first element
	maxKeySize     = 32768   // bbolt's MaxKeySize
)

// PageError is a structural fault of the outbox file: the page it names
// cannot be part of a bbolt tree. It wraps ErrCorrupt.
type PageError struct {
	Page    uint64 // page id: its offset in the file is Page × page size
	Problem string
}

// Error names the page and what is wrong with it.
func (e *PageError) Error() string {
	return fmt.Sprintf("%v: page %d: %s", ErrCorrupt, e.Page, e.Problem)
}

// Unwrap returns ErrCorrupt.
func (e *PageError) Unwrap() error { return ErrCorrupt }

func pageErr(id uint64, format string, args ...any) error {
	return &PageError{Page: id, Problem: fmt.Sprintf(format, args...)}
}

// boltMeta is the meta page bbolt will use: the valid one with the highest
// transaction id.
type boltMeta struct {
	pageSize uint64
	root     uint64 // root bucket's page
	freelist uint64 // noFreelist when the freelist is not synced
	hwm      uint64 // high water mark: pages [0, hwm) are in use or free
	txid     uint64
	page     uint64 // the meta page it was read from, 0 or 1
}

// readMeta picks the meta page as bbolt's Open and DB.meta do: the page
// size from the first meta page if it is valid, else from the second one
// found at the offsets bbolt tries; then of the two meta pages the valid
// one with the higher transaction id.
func readMeta(f io.ReaderAt, size int64) (boltMeta, error) {
	buf := make([]byte, 4096)
	read := func(off int64) (boltMeta, bool) {
		n, err := f.ReadAt(buf, off)
		if err != nil && !errors.Is(err, io.EOF) {
			return boltMeta{}, false
		}
		return parseMeta(buf[:n])
	}
	m0, ok0 := read(0)
	pageSize := m0.pageSize
	if !ok0 {
		for i := 0; i <= 14; i++ {
			pos := int64(1024) << i
			if pos >= size-1024 {
				break
			}
			if m, ok := read(pos); ok {
				pageSize = m.pageSize
				break
			}
		}
	}
	if pageSize == 0 {
		return boltMeta{}, pageErr(0, "neither meta page is valid (magic, version, checksum)")
	}
	if pageSize < minPageSize || pageSize > maxPageSize || pageSize&(pageSize-1) != 0 {
		return boltMeta{}, pageErr(0, "page size %d is not a power of two in [%d, %d]", pageSize, minPageSize, maxPageSize)
	}
	m0, ok0 = read(0)
	m1, ok1 := read(int64(pageSize))
	m, metaID := m0, uint64(0)
	switch {
	case ok1 && (!ok0 || m1.txid > m0.txid):
		m, metaID = m1, 1
	case !ok0:
		return boltMeta{}, pageErr(0, "neither meta page is valid (magic, version, checksum)")
	}
	m.page = metaID
	if m.pageSize != pageSize {
		return boltMeta{}, pageErr(metaID, "says page size %d, the page size found is %d", m.pageSize, pageSize)
	}
	switch {
	case m.hwm < 3:
		return m, pageErr(metaID, "high water mark %d leaves no page for the root", m.hwm)
	case m.hwm > uint64(size)/m.pageSize:
		return m, pageErr(metaID, "high water mark %d pages of %d bytes is beyond the file's %d bytes", m.hwm, m.pageSize, size)
	case m.root < 2 || m.root >= m.hwm:
		return m, pageErr(metaID, "root bucket page %d outside [2, %d)", m.root, m.hwm)
	case m.freelist != noFreelist && (m.freelist < 2 || m.freelist >= m.hwm):
		return m, pageErr(metaID, "freelist page %d outside [2, %d)", m.freelist, m.hwm)
	}
	return m, nil
}

// parseMeta reads a meta page and reports whether it validates as bbolt's
// Meta.Validate does.
func parseMeta(p []byte) (boltMeta, bool) {
	if len(p) < pageHeaderSize+metaSumLen+8 {
		return boltMeta{}, false
	}
	b := p[pageHeaderSize:]
	le := binary.LittleEndian
	h := fnv.New64a()
	h.Write(b[:metaSumLen])
	if le.Uint32(b[0:]) != boltMagic || le.Uint32(b[4:]) != boltVersion || le.Uint64(b[metaSumLen:]) != h.Sum64() {
		return boltMeta{}, false
	}
	return boltMeta{
		pageSize: uint64(le.Uint32(b[8:])),
		root:     le.Uint64(b[16:]),
		freelist: le.Uint64(b[32:]),
		hwm:      le.Uint64(b[40:]),
		txid:     le.Uint64(b[48:]),
	}, true
}

// pageRef is a page still to visit, the page that points at it, and the
// keys its subtree must hold: at least min, below max (none when nil).
type pageRef struct {
	id, parent uint64
	min, max   []byte
	tree       *keyOrder
}

// keyOrder follows the leaf keys of one bucket's tree, which the walk
// visits left to right: each must be above the one before.
type keyOrder struct {
	last    []byte
	started bool
}

// walker visits the pages of one file. Its memory is a bit per page, a
// stack of at most one entry per page, and a buffer as large as the
// largest page (overflow included), all bounded by the file size.
type walker struct {
	f     io.ReaderAt
	meta  boltMeta
	seen  []uint64 // bit set of pages reached
	stack []pageRef
	buf   []byte
	pages int // pages visited
}

// checkStructure reads the meta pages and every page reachable from the
// root bucket, and returns the meta page bbolt will use. It fails with a
// *PageError at the first page that is out of bounds, reached twice (a
// cycle of any length, or a child shared by two parents), of the wrong
// type or inconsistent with itself: more elements than fit in it (the
// fan-out its size allows), a key or value beyond it, a bucket value too
// short for its header. As no page is entered twice, no tree is deeper
// than the file has pages. It reads each page once; it never follows a
// pointer it has not bounded first.
//
// It also checks what bbolt's own checker reports, so that bbolt never
// finds a fault after it: keys in order within each page and within the
// range their parent's keys give, across the whole tree. That matters
// beyond the message: with the freelist not synced, bbolt's Tx.Check
// rebuilds it on a goroutine that keeps walking the mapping after the
// first fault it reports, and faults fatally once the file is closed.
func checkStructure(f io.ReaderAt, size int64) (boltMeta, error) {
	m, err := readMeta(f, size)
	if err != nil {
		return m, err
	}
	w := &walker{f: f, meta: m, seen: make([]uint64, (m.hwm+63)/64)}
	w.mark(0)
	w.mark(1)
	if m.freelist != noFreelist {
		if err := w.checkFreelist(); err != nil {
			return m, err
		}
	}
	if err := w.push(pageRef{id: m.root, parent: m.page, tree: &keyOrder{}}); err != nil {
		return m, err
	}
	for len(w.stack) > 0 {
		ref := w.stack[len(w.stack)-1]
		w.stack = w.stack[:len(w.stack)-1]
		if err := w.visit(ref); err != nil {
			return m, err
		}
	}
	return m, nil
}

func (w *walker) isSeen(id uint64) bool { return w.seen[id/64]&(1<<(id%64)) != 0 }
func (w *walker) mark(id uint64)        { w.seen[id/64] |= 1 << (id % 64) }

// push queues page id, pointed at by parent, refusing an id out of bounds
// or already reached: in a tree every page has one parent.
func (w *walker) push(ref pageRef) error {
	if err := w.claim(ref.id, ref.parent); err != nil {
		return err
	}
	w.stack = append(w.stack, ref)
	return nil
}

// claim marks page id, pointed at by parent, as reached, refusing an id
// out of bounds or already reached: in a tree every page has one parent.
func (w *walker) claim(id, parent uint64) error {
	switch {
	case id < 2 || id >= w.meta.hwm:
		return pageErr(parent, "points at page %d, outside [2, %d)", id, w.meta.hwm)
	case w.isSeen(id):
		return pageErr(parent, "points at page %d, already reached: a cycle or a page shared by two parents", id)
	}
	w.mark(id)
	return nil
}

// read returns page id with its overflow pages, after checking its header
// names it and its overflow stays below the high water mark and unreached.
func (w *walker) read(id, parent uint64) ([]byte, uint16, error) {
	ps := w.meta.pageSize
	if uint64(cap(w.buf)) < ps {
		w.buf = make([]byte, ps)
	}
	p := w.buf[:ps]
	if _, err := w.f.ReadAt(p, int64(id*ps)); err != nil {
		return nil, 0, fmt.Errorf("%w: read page %d: %w", ErrCorrupt, id, err)
	}
	le := binary.LittleEndian
	if got := le.Uint64(p); got != id {
		return nil, 0, pageErr(id, "identifies itself as page %d (pointed at by page %d)", got, parent)
	}
	flags := le.Uint16(p[8:])
	overflow := uint64(le.Uint32(p[12:]))
	if overflow >= w.meta.hwm-id {
		return nil, 0, pageErr(id, "%d overflow pages run past the high water mark %d", overflow, w.meta.hwm)
	}
	for i := uint64(1); i <= overflow; i++ {
		if w.isSeen(id + i) {
			return nil, 0, pageErr(id, "overflow page %d is also reached from elsewhere", id+i)
		}
		w.mark(id + i)
	}
	if overflow > 0 {
		n := (overflow + 1) * ps
		if uint64(cap(w.buf)) < n {
			w.buf = make([]byte, n)
		}
		p = w.buf[:n]
		if _, err := w.f.ReadAt(p, int64(id*ps)); err != nil {
			return nil, 0, fmt.Errorf("%w: read page %d: %w", ErrCorrupt, id, err)
		}
	}
	w.pages++
	return p, flags, nil
}

// checkFreelist checks that a synced freelist page is one, and that its
// ids fit in it; bbolt's Check then looks at the ids themselves.
func (w *walker) checkFreelist() error {
	id := w.meta.freelist
	w.mark(id)
	p, flags, err := w.read(id, w.meta.page)
	if err != nil {
		return err
	}
	if flags != freelistPageFlag {
		return pageErr(id, "the meta page's freelist page has flags %#x", flags)
	}
	n := uint64(binary.LittleEndian.Uint16(p[10:]))
	skip := uint64(0)
	if n == countOverflows {
		if len(p) < pageHeaderSize+8 {
			return pageErr(id, "freelist too short for its count")
		}
		n, skip = binary.LittleEndian.Uint64(p[pageHeaderSize:]), 1
	}
	if n > (uint64(len(p))-pageHeaderSize)/8-skip {
		return pageErr(id, "freelist of %d ids does not fit in %d bytes", n, len(p))
	}
	return nil
}

// visit checks one page of a bucket's tree and queues its children and the
// roots of the buckets it holds.
func (w *walker) visit(ref pageRef) error {
	p, flags, err := w.read(ref.id, ref.parent)
	if err != nil {
		return err
	}
	switch flags {
	case branchPageFlag:
		return w.branch(ref, p)
	case leafPageFlag:
		return w.leaf(ref, p, false)
	default:
		return pageErr(ref.id, "flags %#x: neither branch nor leaf (pointed at by page %d)", flags, ref.parent)
	}
}

// elements returns the page's element count after checking that the
// elements fit in it: the fan-out a page of this size allows.
func elements(id uint64, p []byte) (int, error) {
	n := int(binary.LittleEndian.Uint16(p[10:]))
	if pageHeaderSize+n*pageElementSize > len(p) {
		return 0, pageErr(id, "%d elements do not fit in its %d bytes", n, len(p))
	}
	return n, nil
}

func (w *walker) branch(ref pageRef, p []byte) error {
	n, err := elements(ref.id, p)
	if err != nil {
		return err
	}
	if n == 0 {
		return pageErr(ref.id, "branch page without elements")
	}
	le := binary.LittleEndian
	total := 0
	for i := range n {
		off := pageHeaderSize + i*pageElementSize
		e := p[off:]
		end := uint64(off) + uint64(le.Uint32(e)) + uint64(le.Uint32(e[4:]))
		if end > uint64(len(p)) {
			return pageErr(ref.id, "key of element %d ends at byte %d, beyond the page's %d", i, end, len(p))
		}
		if err := keySize(ref.id, i, le.Uint32(e[4:])); err != nil {
			return err
		}
		total += int(le.Uint32(e[4:]))
	}
	// The children's key ranges outlive the buffer: copy the keys once.
	block := make([]byte, 0, total)
	keys := make([][]byte, n)
	for i := range n {
		off := pageHeaderSize + i*pageElementSize
		e := p[off:]
		pos := off + int(le.Uint32(e))
		block = append(block, p[pos:pos+int(le.Uint32(e[4:]))]...)
		keys[i] = block[len(block)-int(le.Uint32(e[4:])):]
	}
	// Pointers first: a cycle or a shared child is the fault that matters.
	for i := range n {
		if err := w.claim(le.Uint64(p[pageHeaderSize+i*pageElementSize+8:]), ref.id); err != nil {
			return err
		}
	}
	for i := range n {
		switch {
		case i == 0 && ref.min != nil && bytes.Compare(keys[0], ref.min) < 0:
			return pageErr(ref.id, "key %s of element 0 is below %s, its parent's key for it", short(keys[0]), short(ref.min))
		case i > 0 && bytes.Compare(keys[i], keys[i-1]) <= 0:
			return pageErr(ref.id, "key %s of element %d is not above the one before it", short(keys[i]), i)
		case ref.max != nil && bytes.Compare(keys[i], ref.max) >= 0:
			return pageErr(ref.id, "key %s of element %d is not below %s, its parent's next key", short(keys[i]), i, short(ref.max))
		}
	}
	// Pushed last to first, so that the walk visits them first to last.
	for i := n - 1; i >= 0; i-- {
		limit := ref.max
		if i < n-1 {
			limit = keys[i+1]
		}
		child := le.Uint64(p[pageHeaderSize+i*pageElementSize+8:])
		w.stack = append(w.stack, pageRef{id: child, parent: ref.id, min: keys[i], max: limit, tree: ref.tree})
	}
	return nil
}

// leaf checks a leaf page, or an inline bucket's page held in its parent's
// value (inline; bbolt does not check their key order), and queues the
// root of every bucket it holds.
func (w *walker) leaf(ref pageRef, p []byte, inline bool) error {
	id := ref.id
	n, err := elements(id, p)
	if err != nil {
		return err
	}
	le := binary.LittleEndian
	for i := range n {
		off := pageHeaderSize + i*pageElementSize
		e := p[off:]
		start := uint64(off) + uint64(le.Uint32(e[4:]))
		kEnd := start + uint64(le.Uint32(e[8:]))
		vEnd := kEnd + uint64(le.Uint32(e[12:]))
		if vEnd > uint64(len(p)) {
			return pageErr(id, "value of element %d ends at byte %d, beyond the page's %d", i, vEnd, len(p))
		}
		if err := keySize(id, i, le.Uint32(e[8:])); err != nil {
			return err
		}
		key := p[start:kEnd]
		if !inline {
			if err := ref.checkKey(i, key); err != nil {
				return err
			}
		}
		if le.Uint32(e)&bucketLeafFlag == 0 {
			continue
		}
		if inline {
			return pageErr(id, "an inline bucket holds bucket %s: bbolt never writes one", short(key))
		}
		v := p[kEnd:vEnd]
		if len(v) < bucketHeaderSize {
			return pageErr(id, "bucket %s: value of %d bytes is shorter than a bucket header", short(key), len(v))
		}
		root := le.Uint64(v)
		if root != 0 {
			if err := w.push(pageRef{id: root, parent: id, tree: &keyOrder{}}); err != nil {
				return err
			}
			continue
		}
		in := v[bucketHeaderSize:]
		if len(in) < pageHeaderSize {
			return pageErr(id, "inline bucket %s: %d bytes are shorter than a page header", short(key), len(in))
		}
		if f := le.Uint16(in[8:]); f != leafPageFlag {
			return pageErr(id, "inline bucket %s: page flags %#x, not a leaf", short(key), f)
		}
		if err := w.leaf(ref, in, true); err != nil {
			return err
		}
	}
	return nil
}

// keySize refuses the keys bbolt's Put never writes: empty ones (bbolt
// asserts on them when it reads the page to change it) and longer ones
// than its MaxKeySize.
func keySize(id uint64, i int, n uint32) error {
	if n == 0 || n > maxKeySize {
		return pageErr(id, "key of element %d is %d bytes, not 1 to %d", i, n, maxKeySize)
	}
	return nil
}

// checkKey checks the i-th key of leaf ref against the range its parent
// gives and against the key before it in the tree.
func (ref pageRef) checkKey(i int, key []byte) error {
	o := ref.tree
	switch {
	case ref.min != nil && bytes.Compare(key, ref.min) < 0:
		return pageErr(ref.id, "key %s of element %d is below %s, its parent's key for it", short(key), i, short(ref.min))
	case ref.max != nil && bytes.Compare(key, ref.max) >= 0:
		return pageErr(ref.id, "key %s of element %d is not below %s, its parent's next key", short(key), i, short(ref.max))
	case o.started && bytes.Compare(key, o.last) <= 0:
		return pageErr(ref.id, "key %s of element %d is not above the key before it, %s", short(key), i, short(o.last))
	}
	o.last, o.started = append(o.last[:0], key...), true
	return nil
}

// short shows a key in an error: hex, its first 16 bytes at most.
func short(k []byte) string {
	if len(k) > 16 {
		return fmt.Sprintf("%x… (%d bytes)", k[:16], len(k))
	}
	return fmt.Sprintf("%x", k)
}
