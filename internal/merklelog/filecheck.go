package merklelog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
)

// checkFile reads the bbolt file at path with plain reads, before bbolt
// maps it, and checks what bbolt trusts without checking: bbolt panics
// (or faults, or loops) on a truncated file or a damaged page, and it
// silently falls back to the older meta page when the newer one is
// damaged, losing the last committed batch. So both meta pages must be
// intact and consecutive, the file as long as they say, and the pages
// reachable from the newer one a tree (each page once, inside the file,
// elements inside their page) with a freelist that shares no page with
// it. The layout read here is bbolt's (go.etcd.io/bbolt/internal/common,
// format version 2), in the machine's byte order as bbolt writes it.
func checkFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	size := st.Size()
	if size == 0 {
		return fmt.Errorf("%w: the file is empty (0 bytes)", ErrCorrupt)
	}
	metas, pageSize, err := readMetas(f, size)
	if err != nil {
		return err
	}
	newest := metas[0]
	if metas[1].txid > newest.txid {
		newest = metas[1]
	}
	w := &walker{r: f, pageSize: uint64(pageSize), hwm: newest.pgid, used: make([]bool, newest.pgid)}
	w.used[0], w.used[1] = true, true
	if err := w.tree(newest.root, 0); err != nil {
		return fmt.Errorf("%w: the tree of meta page %d (txid %d): %v", ErrCorrupt, newest.txid%2, newest.txid, err)
	}
	if err := w.freelist(newest.freelist); err != nil {
		return fmt.Errorf("%w: the freelist of meta page %d (txid %d): %v", ErrCorrupt, newest.txid%2, newest.txid, err)
	}
	return nil
}

const (
	boltMagic        = 0xED0CDAED
	boltVersion      = 2
	pageHeaderSize   = 16
	elementSize      = 16 // a branch or leaf page element
	metaSize         = 64
	branchPageFlag   = 0x01
	leafPageFlag     = 0x02
	metaPageFlag     = 0x04
	freelistPageFlag = 0x10
	bucketLeafFlag   = 0x01
	maxTreeDepth     = 64
	maxPageSpan      = 64 << 20 // the most bytes one page with its overflow may span
)

var ne = binary.NativeEndian

type meta struct {
	pageSize                   uint32
	root, freelist, pgid, txid uint64
}

// readMetas reads and checks both meta pages and the file's size.
func readMetas(f io.ReaderAt, size int64) ([2]meta, int, error) {
	var metas [2]meta
	// Meta page 0 gives the page size; if it is damaged, look for meta
	// page 1 where bbolt would, one OS page further.
	pageSize := os.Getpagesize()
	var errs [2]error
	for i := range 2 {
		off := int64(0)
		if i == 1 {
			off = int64(pageSize)
		}
		metas[i], errs[i] = readMeta(f, size, off, uint64(i))
		if i == 0 && errs[0] == nil {
			pageSize = int(metas[0].pageSize)
		}
	}
	switch {
	case errs[0] != nil && errs[1] != nil:
		return metas, 0, fmt.Errorf("%w: not a bbolt database, or both meta pages are damaged (page 0: %v; page 1: %v)", ErrCorrupt, errs[0], errs[1])
	case errs[0] != nil || errs[1] != nil:
		bad := 0
		if errs[1] != nil {
			bad = 1
		}
		return metas, 0, fmt.Errorf("%w: meta page %d is damaged (%v); bbolt would fall back to the other one silently and lose what the newer one committed", ErrCorrupt, bad, errs[bad])
	}
	m0, m1 := metas[0], metas[1]
	if m0.pageSize != m1.pageSize {
		return metas, 0, fmt.Errorf("%w: the meta pages disagree on the page size (%d, %d)", ErrCorrupt, m0.pageSize, m1.pageSize)
	}
	if d := int64(m0.txid) - int64(m1.txid); d != 1 && d != -1 {
		return metas, 0, fmt.Errorf("%w: the meta pages' transaction ids %d and %d are not consecutive", ErrCorrupt, m0.txid, m1.txid)
	}
	if size%int64(pageSize) != 0 {
		return metas, 0, fmt.Errorf("%w: the file's size %d is not a multiple of its page size %d (truncated or extended)", ErrCorrupt, size, pageSize)
	}
	for i, m := range metas {
		if m.pgid > uint64(size)/uint64(pageSize) {
			return metas, 0, fmt.Errorf("%w: meta page %d (txid %d) needs %d pages of %d bytes, the file holds only %d: it was truncated", ErrCorrupt, i, m.txid, m.pgid, pageSize, size/int64(pageSize))
		}
	}
	return metas, pageSize, nil
}

// readMeta reads the meta page at off, which must be page id.
func readMeta(f io.ReaderAt, size, off int64, id uint64) (meta, error) {
	var b [pageHeaderSize + metaSize]byte
	if off+int64(len(b)) > size {
		return meta{}, fmt.Errorf("beyond the end of the file (%d bytes)", size)
	}
	if _, err := f.ReadAt(b[:], off); err != nil {
		return meta{}, err
	}
	hdr, mb := b[:pageHeaderSize], b[pageHeaderSize:]
	h := fnv.New64a()
	h.Write(mb[:56])
	m := meta{
		pageSize: ne.Uint32(mb[8:]),
		root:     ne.Uint64(mb[16:]),
		freelist: ne.Uint64(mb[32:]),
		pgid:     ne.Uint64(mb[40:]),
		txid:     ne.Uint64(mb[48:]),
	}
	switch ps := m.pageSize; {
	case ne.Uint32(mb) != boltMagic:
		return m, errors.New("bad magic")
	case ne.Uint32(mb[4:]) != boltVersion:
		return m, fmt.Errorf("format version %d, want %d", ne.Uint32(mb[4:]), boltVersion)
	case ne.Uint64(mb[56:]) != h.Sum64():
		return m, errors.New("checksum mismatch")
	case ne.Uint64(hdr) != id || ne.Uint16(hdr[8:]) != metaPageFlag:
		return m, errors.New("not marked as a meta page")
	case ps < 512 || ps > 1<<16 || ps&(ps-1) != 0:
		return m, fmt.Errorf("page size %d", ps)
	case m.txid%2 != id:
		return m, fmt.Errorf("txid %d on page %d", m.txid, id)
	case m.pgid < 4 || m.root < 2 || m.root >= m.pgid || m.freelist < 2 || m.freelist >= m.pgid:
		return m, fmt.Errorf("page ids out of range (root %d, freelist %d, high water mark %d)", m.root, m.freelist, m.pgid)
	}
	return m, nil
}

// walker visits the pages of one meta's tree and freelist.
type walker struct {
	r        io.ReaderAt
	pageSize uint64
	hwm      uint64
	used     []bool // pages reached, or free
}

// page reads page id with its overflow pages and marks them used.
func (w *walker) page(id uint64, flags ...uint16) ([]byte, error) {
	if id < 2 || id >= w.hwm {
		return nil, fmt.Errorf("page id %d outside 2..%d", id, w.hwm-1)
	}
	var hdr [pageHeaderSize]byte
	if _, err := w.r.ReadAt(hdr[:], int64(id*w.pageSize)); err != nil {
		return nil, fmt.Errorf("page %d: %v", id, err)
	}
	if got := ne.Uint64(hdr[:]); got != id {
		return nil, fmt.Errorf("page %d identifies itself as page %d", id, got)
	}
	fl, over := ne.Uint16(hdr[8:]), uint64(ne.Uint32(hdr[12:]))
	ok := false
	for _, f := range flags {
		ok = ok || fl == f
	}
	if !ok {
		return nil, fmt.Errorf("page %d has type flags %#x, want one of %#x", id, fl, flags)
	}
	if over >= w.hwm-id || (over+1)*w.pageSize > maxPageSpan {
		return nil, fmt.Errorf("page %d claims %d overflow pages", id, over)
	}
	for p := id; p <= id+over; p++ {
		if w.used[p] {
			return nil, fmt.Errorf("page %d is reached twice", p)
		}
		w.used[p] = true
	}
	b := make([]byte, (over+1)*w.pageSize)
	if _, err := w.r.ReadAt(b, int64(id*w.pageSize)); err != nil {
		return nil, fmt.Errorf("page %d: %v", id, err)
	}
	return b, nil
}

// tree checks the B+tree rooted at page id, and the buckets in it.
func (w *walker) tree(id uint64, depth int) error {
	if depth > maxTreeDepth {
		return fmt.Errorf("tree deeper than %d pages at page %d", maxTreeDepth, id)
	}
	p, err := w.page(id, branchPageFlag, leafPageFlag)
	if err != nil {
		return err
	}
	if ne.Uint16(p[8:]) == leafPageFlag {
		return w.leaf(p, id, depth)
	}
	n := int(ne.Uint16(p[10:]))
	if n == 0 || pageHeaderSize+n*elementSize > len(p) {
		return fmt.Errorf("branch page %d holds %d elements", id, n)
	}
	for i := range n {
		e := p[pageHeaderSize+i*elementSize:]
		start := uint64(pageHeaderSize+i*elementSize) + uint64(ne.Uint32(e))
		if start+uint64(ne.Uint32(e[4:])) > uint64(len(p)) {
			return fmt.Errorf("branch page %d: key %d lies outside the page", id, i)
		}
		if err := w.tree(ne.Uint64(e[8:]), depth+1); err != nil {
			return err
		}
	}
	return nil
}

// leaf checks the elements of leaf page p (or an inline bucket's page)
// and the buckets among them.
func (w *walker) leaf(p []byte, id uint64, depth int) error {
	n := int(ne.Uint16(p[10:]))
	if pageHeaderSize+n*elementSize > len(p) {
		return fmt.Errorf("leaf page %d holds %d elements", id, n)
	}
	for i := range n {
		e := p[pageHeaderSize+i*elementSize:]
		start := uint64(pageHeaderSize+i*elementSize) + uint64(ne.Uint32(e[4:]))
		ks, vs := uint64(ne.Uint32(e[8:])), uint64(ne.Uint32(e[12:]))
		if start+ks+vs > uint64(len(p)) {
			return fmt.Errorf("leaf page %d: element %d lies outside the page", id, i)
		}
		if ne.Uint32(e)&bucketLeafFlag == 0 {
			continue
		}
		v := p[start+ks : start+ks+vs]
		if len(v) < 16 {
			return fmt.Errorf("leaf page %d: bucket %d has a %d-byte header", id, i, len(v))
		}
		if root := ne.Uint64(v); root != 0 {
			if err := w.tree(root, depth+1); err != nil {
				return err
			}
			continue
		}
		inline := v[16:] // an inline bucket: a leaf page inside the value
		if len(inline) < pageHeaderSize || ne.Uint16(inline[8:]) != leafPageFlag {
			return fmt.Errorf("leaf page %d: inline bucket %d is malformed", id, i)
		}
		if depth >= maxTreeDepth {
			return fmt.Errorf("buckets nested deeper than %d", maxTreeDepth)
		}
		if err := w.leaf(inline, id, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// freelist checks the freelist page id: its ids inside the file and
// none of them a page of the tree (bbolt would hand it out again and
// overwrite live data).
func (w *walker) freelist(id uint64) error {
	p, err := w.page(id, freelistPageFlag)
	if err != nil {
		return err
	}
	n, at := uint64(ne.Uint16(p[10:])), uint64(pageHeaderSize)
	if n == 0xFFFF { // the count is the first element
		if len(p) < pageHeaderSize+8 {
			return fmt.Errorf("freelist page %d is too short", id)
		}
		n, at = ne.Uint64(p[pageHeaderSize:]), at+8
	}
	if n > (uint64(len(p))-at)/8 {
		return fmt.Errorf("freelist page %d claims %d free pages", id, n)
	}
	for i := range n {
		free := ne.Uint64(p[at+8*i:])
		if free < 2 || free >= w.hwm {
			return fmt.Errorf("free page id %d outside 2..%d", free, w.hwm-1)
		}
		if w.used[free] {
			return fmt.Errorf("page %d is both free and in use (or free twice)", free)
		}
		w.used[free] = true
	}
	return nil
}
